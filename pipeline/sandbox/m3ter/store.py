"""The org's state: config objects, ingested measurements, their indexes, and their journal.

All objects live in memory (lists and lookups are dictionary work) and every change is appended to
the journal (`journal.py`) before it is acknowledged. One lock covers check-and-write: a uniqueness
or version check and the write it allows happen with no other write in between, whichever thread
the requests come from. Stored objects are never changed in place (an update stores a new dict), so
the journal can serialise them after the lock is released.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from multidict import MultiMapping

from pipeline.sandbox.m3ter import echo
from pipeline.sandbox.m3ter.entities import ENTITIES, Entity
from pipeline.sandbox.m3ter.errors import ApiError, bad_request, not_found
from pipeline.sandbox.m3ter.journal import Journal, Record
from pipeline.sandbox.m3ter.listing import encode_token, parse_query
from pipeline.sandbox.m3ter.org import OrgSettings
from pipeline.sandbox.m3ter.validation import (
    check_deletable,
    check_rules,
    check_version,
    clean_body,
    format_datetime,
    new_id,
    parse_datetime,
    segment_string,
)

# Compact once the journal holds this many more records than there are live objects.
COMPACT_SLACK = 10_000
MEASUREMENT_CHUNK = 1000


@dataclass(frozen=True)
class SeedObject:
    """One object of the reference configuration, created through the normal validation."""

    collection: str
    object_id: str
    body: dict[str, Any]


class Store:
    """The single org's objects, with code and reference indexes, persisted by a journal."""

    def __init__(
        self,
        path: Path,
        actor: str,
        seed: Callable[[], Iterable[SeedObject]] = lambda: (),
        org: OrgSettings | None = None,
    ) -> None:
        self.actor = actor
        self._org = org or OrgSettings()
        self._seed = seed
        self._lock = threading.RLock()
        self._journal = Journal(path)
        self._clear()
        replayed = 0
        for record in self._journal.replay():
            self._apply(record)
            replayed += 1
        if replayed == 0:  # a fresh state dir (or an empty file): seed it
            self._seed_objects()
        if replayed == 0 or replayed > self._live_records() + COMPACT_SLACK:
            snapshot = self._snapshot()
            self._journal.write_now(snapshot)
            replayed = len(snapshot)
        self._records = replayed
        self._journal.start()

    # ---- state ------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._objects: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in ENTITIES}
        self._seq: dict[str, int] = {}
        self._next_seq = 1
        # code -> ids holding it, in creation order (several only where codes are not unique)
        self._codes: dict[str, dict[str, list[str]]] = {c: {} for c in ENTITIES}
        # target id -> {(collection, referrer id, field name)}
        self._refs: dict[str, set[tuple[str, str, str]]] = {}
        self.measurements: list[dict[str, Any]] = []
        self.ingest_failures: list[dict[str, Any]] = []
        self._uids: set[str] = set()

    def _put(self, collection: str, obj: dict[str, Any], seq: int | None = None) -> int:
        object_id = obj["id"]
        previous = self._objects[collection].get(object_id)
        if previous is not None:
            self._unindex(collection, previous)
            seq = self._seq[object_id]
        elif seq is None:
            seq = self._next_seq
        self._next_seq = max(self._next_seq, seq + 1)
        self._objects[collection][object_id] = obj
        self._seq[object_id] = seq
        self._index(collection, obj)
        return seq

    def _remove(self, collection: str, object_id: str) -> None:
        obj = self._objects[collection].pop(object_id)
        del self._seq[object_id]
        self._unindex(collection, obj)

    def _index(self, collection: str, obj: dict[str, Any]) -> None:
        if obj.get("code") is not None:
            holders = self._codes[collection].setdefault(obj["code"], [])
            if obj["id"] not in holders:
                holders.append(obj["id"])
        for spec in ENTITIES[collection].references:
            for target in _as_list(obj.get(spec.name)):
                self._refs.setdefault(target, set()).add((collection, obj["id"], spec.name))

    def _unindex(self, collection: str, obj: dict[str, Any]) -> None:
        code = obj.get("code")
        holders = self._codes[collection].get(code) if code is not None else None
        if holders is not None and obj["id"] in holders:
            holders.remove(obj["id"])
            if not holders:
                del self._codes[collection][code]
        for spec in ENTITIES[collection].references:
            for target in _as_list(obj.get(spec.name)):
                holders = self._refs.get(target)
                if holders is not None:
                    holders.discard((collection, obj["id"], spec.name))
                    if not holders:
                        del self._refs[target]

    # ---- Lookup (read by the validation rules, always under the lock) ------------------------

    def get(self, collection: str, object_id: str) -> dict[str, Any] | None:
        return self._objects.get(collection, {}).get(object_id)

    def by_code(self, collection: str, code: str) -> str | None:
        holders = self._codes[collection].get(code)
        return holders[0] if holders else None

    def referrers(self, object_id: str, collection: str) -> list[dict[str, Any]]:
        ids = {rid for c, rid, _ in self._refs.get(object_id, ()) if c == collection}
        return [self._objects[collection][rid] for rid in sorted(ids, key=self._seq.__getitem__)]

    def blocking_referrers(self, object_id: str) -> dict[str, int]:
        counts: dict[str, set[str]] = {}
        for collection, rid, name in self._refs.get(object_id, ()):
            if ENTITIES[collection].by_name[name].blocks_delete:
                counts.setdefault(collection, set()).add(rid)
        return {c: len(ids) for c, ids in counts.items()}

    def objects(self, collection: str) -> Iterable[dict[str, Any]]:
        return self._objects[collection].values()

    @property
    def org(self) -> OrgSettings:
        return self._org

    # ---- computed fields ----------------------------------------------------------------------

    def field_value(self, collection: str, obj: dict[str, Any], name: str) -> Any:
        """A field as a filter sees it, including ones m3ter derives from other objects."""
        if name == "productId" and collection == "aggregations":
            meter = self.get("meters", obj["meterId"])
            return meter.get("productId") if meter else None
        if name == "productId" and collection in ("plans", "accountplans"):
            return self._computed(collection, obj).get("productId")
        return obj.get(name)

    def _computed(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        if collection == "plans":
            template = self.get("plantemplates", obj["planTemplateId"])
            return {"productId": template["productId"]} if template else {}
        if collection == "accountplans" and obj.get("planId"):
            plan = self.get("plans", obj["planId"])
            return self._computed("plans", plan) if plan else {}
        if collection == "pricings":
            extra: dict[str, Any] = {
                "aggregationType": "SIMPLE" if obj.get("aggregationId") else "COMPOUND"
            }
            if obj.get("segment"):
                extra["segmentString"] = segment_string(obj["segment"])
            return extra
        if collection == "commitments":
            return {"amountSpent": 0}
        return {}

    def present(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as the API answers it: every field, unset ones as m3ter shows them, and
        the read-only derived ones."""
        return echo.present(ENTITIES[collection], obj, self._computed(collection, obj))

    # ---- operations ---------------------------------------------------------------------------

    def create(self, collection: str, body: Any) -> tuple[dict[str, Any], Future[None]]:
        entity = ENTITIES[collection]
        cleaned = _with_band_ids(collection, clean_body(entity, body))
        with self._lock:
            check_rules(entity, cleaned, None, self)
            now = _now()
            obj = {
                "id": new_id(),
                **cleaned,
                "version": 1,
                "dtCreated": now,
                "dtLastModified": now,
                "createdBy": self.actor,
                "lastModifiedBy": self.actor,
            }
            seq = self._put(collection, obj)
            return self.present(collection, obj), self._log(
                {"op": "put", "c": collection, "seq": seq, "o": obj}
            )

    def retrieve(self, collection: str, object_id: str) -> dict[str, Any]:
        with self._lock:
            return self.present(collection, self._existing(ENTITIES[collection], object_id))

    def update(
        self, collection: str, object_id: str, body: Any
    ) -> tuple[dict[str, Any], Future[None]]:
        entity = ENTITIES[collection]
        with self._lock:
            current = self._existing(entity, object_id)
            object_id = current["id"]
            check_version(entity, body, current)
            cleaned = _with_band_ids(collection, clean_body(entity, body))
            check_rules(entity, cleaned, object_id, self)
            obj = {
                "id": object_id,
                **cleaned,
                "version": current["version"] + 1,
                "dtCreated": current["dtCreated"],
                "dtLastModified": _now(),
                "createdBy": current["createdBy"],
                "lastModifiedBy": self.actor,
            }
            seq = self._put(collection, obj)
            return self.present(collection, obj), self._log(
                {"op": "put", "c": collection, "seq": seq, "o": obj}
            )

    def delete(self, collection: str, object_id: str) -> tuple[dict[str, Any], Future[None]]:
        entity = ENTITIES[collection]
        with self._lock:
            current = self._existing(entity, object_id)
            object_id = current["id"]
            check_deletable(entity, object_id, self)
            answer = self.present(collection, current)
            self._remove(collection, object_id)
            return answer, self._log({"op": "del", "c": collection, "id": object_id})

    def list(self, collection: str, params: MultiMapping[str]) -> dict[str, Any]:
        """One page of `{data, nextToken}`, in creation order."""
        entity = ENTITIES[collection]
        with self._lock:
            query = parse_query(entity, params, self, datetime.now(UTC))
            pool = self._objects[collection]
            ids: Iterable[str]
            narrowed: list[set[str]] = []
            if query.candidates is not None:
                narrowed.append(set(query.candidates))
            if query.codes is not None:
                index = self._codes[collection]
                narrowed.append({i for code in query.codes for i in index.get(code, ())})
            if query.index_filter is not None:
                name, targets = query.index_filter
                narrowed.append(
                    {
                        rid
                        for t in targets
                        for c, rid, n in self._refs.get(t, ())
                        if c == collection and n == name
                    }
                )
            if narrowed:
                chosen = set.intersection(*narrowed)
                ids = sorted((i for i in chosen if i in pool), key=self._seq.__getitem__)
            else:
                ids = pool.keys()
            page: list[dict[str, Any]] = []
            last_seq = 0
            more = False
            for object_id in ids:
                seq = self._seq[object_id]
                if seq <= query.after:
                    continue
                obj = pool[object_id]
                if not all(test(obj) for test in query.predicates):
                    continue
                if len(page) == query.page_size:
                    more = True
                    break
                page.append(self.present(collection, obj))
                last_seq = seq
            answer: dict[str, Any] = {"data": page}
            if more:
                answer["nextToken"] = encode_token(last_seq)
            return answer

    def find(
        self, collection: str, matches: Callable[[dict[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        """Every object of `collection` that `matches`, as presented, in creation order."""
        with self._lock:
            return [
                self.present(collection, o)
                for o in self._objects[collection].values()
                if matches(o)
            ]

    def _existing(self, entity: Entity, object_id: str) -> dict[str, Any]:
        obj = self._objects[entity.collection].get(object_id.lower())
        if obj is None:
            raise not_found(entity.name, object_id)
        return obj

    # ---- measurements -------------------------------------------------------------------------

    def ingest(self, items: list[dict[str, Any]]) -> Future[None]:
        """Accept measurements: drop repeated `uid`s, record (not refuse) content errors.

        As m3ter does, a measurement for an account code nobody created yet creates a skeleton
        Account with that code; content errors surface later in m3ter (as ingest events), so here
        they are kept as `ingestFailures` in the export rather than answered.
        """
        with self._lock:
            accepted: list[dict[str, Any]] = []
            failures: list[dict[str, Any]] = []
            created: list[Record] = []
            meters = {m["code"] for m in self._objects["meters"].values()}
            for item in items:
                uid = item.get("uid")
                if isinstance(uid, str) and uid:
                    if uid in self._uids:
                        continue
                    self._uids.add(uid)
                problem = _measurement_problem(item, meters)
                if problem:
                    failures.append({"reason": problem, "measurement": item})
                    continue
                accepted.append(item)
                account = item["account"]
                if self.by_code("accounts", account) is None:
                    now = _now()
                    skeleton = {
                        "id": new_id(),
                        "code": account,
                        "name": account,
                        "customFields": {},
                        "version": 1,
                        "dtCreated": now,
                        "dtLastModified": now,
                        "createdBy": self.actor,
                        "lastModifiedBy": self.actor,
                    }
                    seq = self._put("accounts", skeleton)
                    created.append({"op": "put", "c": "accounts", "seq": seq, "o": skeleton})
            self.measurements.extend(accepted)
            self.ingest_failures.extend(failures)
            future: Future[None] | None = None
            for record in created:
                future = self._log(record)
            if accepted or failures:
                future = self._log(
                    {
                        "op": "meas",
                        "items": accepted,
                        "failures": failures,
                        "uids": [
                            i["uid"] for i in items if isinstance(i.get("uid"), str) and i["uid"]
                        ],
                    }
                )
            if future is None:
                future = Future()
                future.set_result(None)
            return future

    # ---- admin --------------------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Every object, as the API presents it, per collection; plus what was ingested."""
        with self._lock:
            return {
                "entities": {
                    c: [self.present(c, o) for o in objs.values()]
                    for c, objs in self._objects.items()
                },
                "measurements": list(self.measurements),
                "ingestFailures": list(self.ingest_failures),
            }

    def reset(self) -> Future[None]:
        """Back to the seeded reference configuration, with nothing ingested."""
        with self._lock:
            self._clear()
            self._seed_objects()
            snapshot = self._snapshot()
            self._records = len(snapshot)
            return self._journal.rewrite(snapshot)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {c: len(objs) for c, objs in self._objects.items()}

    def close(self) -> None:
        self._journal.close()

    # ---- persistence --------------------------------------------------------------------------

    def _seed_objects(self) -> None:
        for item in self._seed():
            entity = ENTITIES[item.collection]
            cleaned = clean_body(entity, item.body)
            try:
                check_rules(entity, cleaned, None, self)
            except ApiError as exc:
                raise ValueError(f"seed {item.collection} {item.object_id}: {exc.message}") from exc
            now = _now()
            self._put(
                item.collection,
                {
                    "id": item.object_id,
                    **cleaned,
                    "version": 1,
                    "dtCreated": now,
                    "dtLastModified": now,
                    "createdBy": self.actor,
                    "lastModifiedBy": self.actor,
                },
            )

    def _log(self, record: Record) -> Future[None]:
        future = self._journal.append(record)
        self._records += 1
        if self._records > self._live_records() + COMPACT_SLACK:
            snapshot = self._snapshot()
            self._records = len(snapshot)
            future = self._journal.rewrite(snapshot)
        return future

    def _live_records(self) -> int:
        """How many records a snapshot of the current state holds."""
        longest = max(len(self.measurements), len(self._uids), len(self.ingest_failures))
        return 1 + len(self._seq) + -(-longest // MEASUREMENT_CHUNK)

    def _snapshot(self) -> list[Record]:
        records: list[Record] = [{"op": "meta", "nextSeq": self._next_seq}]
        for collection, objs in self._objects.items():
            records.extend(
                {"op": "put", "c": collection, "seq": self._seq[i], "o": o} for i, o in objs.items()
            )
        uids = sorted(self._uids)
        size = MEASUREMENT_CHUNK
        longest = max(len(self.measurements), len(uids), len(self.ingest_failures))
        for start in range(0, longest, size):
            records.append(
                {
                    "op": "meas",
                    "items": self.measurements[start : start + size],
                    "failures": self.ingest_failures[start : start + size],
                    "uids": uids[start : start + size],
                }
            )
        return records

    def _apply(self, record: Record) -> None:
        op = record["op"]
        if op == "put":
            self._put(record["c"], record["o"], record["seq"])
        elif op == "del":
            self._remove(record["c"], record["id"])
        elif op == "meas":
            self.measurements.extend(record["items"])
            self.ingest_failures.extend(record["failures"])
            self._uids.update(record["uids"])
        elif op == "meta":
            self._next_seq = max(self._next_seq, record["nextSeq"])
        else:
            raise ValueError(f"unknown journal record {op!r}")


def _with_band_ids(collection: str, obj: dict[str, Any]) -> dict[str, Any]:
    """[assume: pessimistic] m3ter gives each pricing band an id of its own, which answers show
    and which a client that compares bands must look past."""
    if collection != "pricings":
        return obj
    for name in ("pricingBands", "overagePricingBands"):
        for band in obj.get(name) or []:
            band.setdefault("id", new_id())
    return obj


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _now() -> str:
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


def _measurement_problem(item: dict[str, Any], meters: set[str]) -> str | None:
    for name in ("account", "meter", "ts"):
        if not isinstance(item.get(name), str) or not item[name]:
            return f"{name}: is required"
    if parse_datetime(item["ts"]) is None:
        return "ts: must be a date-time"
    if item["meter"] not in meters:
        return f"meter: no Meter with code '{item['meter']}'"
    for group in ("measure", "cost", "income"):
        values = item.get(group) or {}
        if not isinstance(values, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()
        ):
            return f"{group}: must map field codes to numbers"
    return None


def check_measurement_batch(body: Any) -> list[dict[str, Any]]:
    """The `measurements` array of an ingest body, 1 to 1000 objects, or a 400."""
    items = body.get("measurements") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise bad_request("measurements: must be a list of measurement objects")
    if not 1 <= len(items) <= 1000:
        raise bad_request(f"measurements: must hold 1 to 1000 items, not {len(items)}")
    return items
