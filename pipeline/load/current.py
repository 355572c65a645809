"""What m3ter holds, as far as one run has read it: reads in proportion to the change.

A partition run reads only the objects its staged rows and their references name: by `codes`
filters where m3ter's lists take one, by `ids` (from `load.id_map`) where they do not, 100 to a
request; reference data m3sync never writes (products, plan templates) is listed whole once. A
full reconcile (`whole=True`) lists each collection it touches whole instead, which is how it
finds what the warehouse does not know. Either way the run's own writes keep it up to date, and
the loads of one run share it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from pipeline.load.client import Client
from pipeline.load.entities import CODE_FILTERED
from pipeline.m3ter.errors import M3terForbidden, M3terRejected

BATCH = 100  # ids or codes per filtered list: one page of m3ter's largest
PLANNED = "(new "  # the id a dry run gives an object it would create: m3ter has none to list


class Current:
    """m3ter's objects read so far this run, by collection, id and code."""

    def __init__(self, client: Client, *, whole: bool = False) -> None:
        self.client = client
        self.whole = whole
        self._objects: dict[str, dict[str, dict[str, Any]]] = {}
        self._codes: dict[str, dict[str, list[str]]] = {}
        self._asked: dict[tuple[str, str], set[str]] = {}  # (collection, filter) -> values asked
        self._listed: set[str] = set()
        self._configuration: dict[str, Any] | None = None
        self._configuration_read = False
        self._lock = threading.Lock()

    # ---- reads ------------------------------------------------------------------------------

    def fetch_codes(self, collection: str, codes: Iterable[str]) -> None:
        """Read the objects holding `codes` (a collection with a `codes` filter)."""
        if collection not in CODE_FILTERED:
            raise ValueError(f"m3ter lists no {collection} by code")
        self._fetch(collection, "codes", codes)

    def fetch_ids(self, collection: str, ids: Iterable[str]) -> None:
        self._fetch(collection, "ids", ids)

    def fetch_each(self, collection: str, by: str, values: Iterable[str]) -> None:
        """Read the objects a filter that takes one value names, one list per value.

        [assume: pessimistic] filters the SDK types as a single string (`planGroup`,
        `account`) may not take a comma-joined list, so each value is its own request.
        """
        for value in sorted({v for v in values if v}):
            self._fetch(collection, by, [value])

    def fetch_by(self, collection: str, by: str, values: Iterable[str]) -> None:
        """Read the objects a list filter that takes many values names (`accountId`)."""
        self._fetch(collection, by, values)

    def _fetch(self, collection: str, by: str, wanted: Iterable[str]) -> None:
        wanted = [w for w in wanted if w]
        if self.whole or any("," in w for w in wanted):
            # m3ter splits a list filter on commas, and its code pattern allows one: a code that
            # holds a comma can only be found in the whole listing.
            self.listing(collection)
            return
        with self._lock:
            if collection in self._listed:
                return
            asked = self._asked.setdefault((collection, by), set())
            values = sorted(set(wanted) - asked)
            asked.update(values)
        for start in range(0, len(values), BATCH):
            for obj in self.client.list(collection, **{by: values[start : start + BATCH]}):
                self.remember(collection, obj)

    def listing(self, collection: str) -> list[dict[str, Any]]:
        """Every object of `collection`, listed once per run."""
        with self._lock:
            listed = collection in self._listed
        if not listed:
            objects = list(self.client.list(collection))
            with self._lock:
                for obj in objects:
                    self._put(collection, obj)
                self._listed.add(collection)
        with self._lock:
            return list(self._objects.get(collection, {}).values())

    def mapping_configuration(self) -> dict[str, Any] | None:
        """The organization's ExternalMapping configuration, read once per run; None when it
        cannot be read (no permission, or an m3ter without the endpoint)."""
        with self._lock:
            if self._configuration_read:
                return self._configuration
            self._configuration_read = True
        try:
            answer = self.client.read("externalmappingconfiguration")
        except (M3terRejected, M3terForbidden):
            answer = None
        with self._lock:
            self._configuration = answer if isinstance(answer, dict) else None
            return self._configuration

    # ---- what was read ----------------------------------------------------------------------

    def get(self, collection: str, object_id: str) -> dict[str, Any] | None:
        if self.whole:
            self.listing(collection)
        with self._lock:
            return self._objects.get(collection, {}).get(object_id)

    def with_code(self, collection: str, code: str) -> list[dict[str, Any]]:
        """The objects read so far that hold `code`, oldest first (several only where m3ter's
        codes are not unique, as a Contract's)."""
        if self.whole:
            self.listing(collection)
        with self._lock:
            ids = self._codes.get(collection, {}).get(code, [])
            objects = self._objects.get(collection, {})
            return [objects[i] for i in ids if i in objects]

    def held_id(self, collection: str, code: str | None) -> str | None:
        """The id of the object m3ter holds with `code`, if one was read (not one a dry run
        would make): what a list filter can name."""
        found = self.resolve(collection, code) if code else None
        return None if found is None or found.startswith(PLANNED) else found

    def matching(self, collection: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The first object read so far whose `fields` hold these values (a natural key)."""
        if self.whole:
            self.listing(collection)
        with self._lock:
            for obj in self._objects.get(collection, {}).values():
                if all(obj.get(name) == value for name, value in fields.items()):
                    return obj
        return None

    def resolve(self, collection: str, code: str) -> str | None:
        """The id of the object holding `code`, if one was read (or made) this run."""
        found = self.with_code(collection, code)
        return found[0]["id"] if found else None

    def remember(self, collection: str, obj: dict[str, Any]) -> None:
        """An object read or written: the latest answer replaces what was known of it."""
        with self._lock:
            self._put(collection, obj)

    def forget(self, collection: str, object_id: str) -> None:
        """An object deleted."""
        with self._lock:
            obj = self._objects.get(collection, {}).pop(object_id, None)
            if obj is not None and obj.get("code"):
                holders = self._codes[collection].get(obj["code"], [])
                if object_id in holders:
                    holders.remove(object_id)

    def _put(self, collection: str, obj: dict[str, Any]) -> None:
        objects = self._objects.setdefault(collection, {})
        codes = self._codes.setdefault(collection, {})
        previous = objects.get(obj["id"])
        if previous is not None and previous.get("code") != obj.get("code"):
            holders = codes.get(previous.get("code") or "", [])
            if obj["id"] in holders:
                holders.remove(obj["id"])
        objects[obj["id"]] = obj
        if obj.get("code"):
            holders = codes.setdefault(obj["code"], [])
            if obj["id"] not in holders:
                holders.append(obj["id"])
