"""List endpoints: `pageSize`, opaque `nextToken`s and the filters each entity accepts.

Filters follow the reference (§4): array parameters arrive comma-joined (as m3ter's SDK sends
them) or repeated, and are accepted both ways. A parameter an entity does not know is ignored, as
a filter the API does not have would be.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from multidict import MultiMapping

from pipeline.sandbox.m3ter.entities import Entity
from pipeline.sandbox.m3ter.errors import bad_request
from pipeline.sandbox.m3ter.validation import parse_date, parse_datetime

MAX_PAGE_SIZE = 100
# [assume: pessimistic] m3ter does not document a default page size; account search defaults to
# 10, so a client that sends none gets 10 and must page.
DEFAULT_PAGE_SIZE = 10

Predicate = Callable[[dict[str, Any]], bool]


class Resolver(Protocol):
    def field_value(self, collection: str, obj: dict[str, Any], name: str) -> Any: ...


@dataclass(frozen=True)
class Query:
    """A parsed list request: page bounds, candidate ids (if a filter narrows them) and tests."""

    page_size: int
    after: int  # sequence number of the last object of the previous page
    candidates: frozenset[str] | None  # object ids a filter has already narrowed the list to
    codes: frozenset[str] | None  # codes the code index can answer
    index_filter: tuple[str, frozenset[str]] | None  # (field, ids) a reverse index can answer
    predicates: tuple[Predicate, ...]


def values(params: MultiMapping[str], name: str) -> list[str] | None:
    """All values of an array parameter, comma-joined or repeated; None when absent."""
    if name not in params:
        return None
    out = []
    for raw in params.getall(name):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return out


def encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": seq}).encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = data["after"]
        if not isinstance(after, int):
            raise TypeError(after)
        return after
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise bad_request("nextToken: is not a token this list returned") from exc


def page_size(params: Mapping[str, str]) -> int:
    raw = params.get("pageSize")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        # [assume: pessimistic] out-of-range page sizes are refused rather than clamped.
        raise bad_request(f"pageSize: must be an integer from 1 to {MAX_PAGE_SIZE}")
    return size


def _instant(name: str, text: str) -> datetime:
    parsed = parse_datetime(text)
    if parsed is None:
        day = parse_date(text)
        if day is None:
            raise bad_request(f"{name}: must be a date or a date-time")
        parsed = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return parsed


def _active_at(when: datetime) -> Predicate:
    """Active at an instant: started on or before it, ending (exclusively) after it, or open."""

    def active(obj: dict[str, Any]) -> bool:
        if _instant("startDate", obj["startDate"]) > when:
            return False
        end = obj.get("endDate")
        return end is None or _instant("endDate", end) > when

    return active


def parse_query(
    entity: Entity, params: MultiMapping[str], resolver: Resolver, now: datetime
) -> Query:
    """Turn query parameters into candidates and predicates for one entity's list."""
    size = page_size(params)
    token = params.get("nextToken")
    after = decode_token(token) if token else 0
    candidates: frozenset[str] | None = None
    codes: frozenset[str] | None = None
    index_filter: tuple[str, frozenset[str]] | None = None
    predicates: list[Predicate] = []
    collection = entity.collection

    for param, field_name in entity.filters.items():
        wanted = values(params, param)
        if wanted is None:
            continue
        wanted_set = frozenset(w.lower() if _is_id_field(entity, field_name) else w for w in wanted)
        if field_name == "id":
            candidates = wanted_set if candidates is None else candidates & wanted_set
        elif field_name == "code":
            codes = wanted_set
        elif (
            field_name in entity.by_name
            and entity.by_name[field_name].ref is not None
            and index_filter is None
        ):
            index_filter = (field_name, wanted_set)
        else:
            predicates.append(_field_in(resolver, collection, field_name, wanted_set))

    if collection == "accountplans":
        predicates.extend(_account_plan_filters(params, resolver, now))
    if collection == "pricings" and params.get("date"):
        predicates.append(_active_at(_instant("date", params["date"])))
    if collection == "commitments":
        predicates.extend(_commitment_filters(params))
    return Query(size, after, candidates, codes, index_filter, tuple(predicates))


def _is_id_field(entity: Entity, field_name: str) -> bool:
    spec = entity.by_name.get(field_name)
    return field_name == "id" or (spec is not None and spec.kind in ("uuid", "uuid_list"))


def _field_in(resolver: Resolver, collection: str, name: str, wanted: frozenset[str]) -> Predicate:
    def matches(obj: dict[str, Any]) -> bool:
        return resolver.field_value(collection, obj, name) in wanted

    return matches


def _account_plan_filters(
    params: MultiMapping[str], resolver: Resolver, now: datetime
) -> Iterable[Predicate]:
    """The `account` filter lists only plans active now (or at `date`) unless `includeall=true`."""
    account = params.get("account")
    product = params.get("product")
    if product and not account:
        raise bad_request("product: can only be used together with the account filter")
    if product:
        wanted = frozenset(p.lower() for p in values(params, "product") or [])
        yield _field_in(resolver, "accountplans", "productId", wanted)
    if account and params.get("includeall", "false").lower() != "true":
        when = _instant("date", params["date"]) if params.get("date") else now
        yield _active_at(when)
    elif params.get("date"):
        yield _active_at(_instant("date", params["date"]))
    if params.get("contract"):
        yield lambda obj: obj.get("planGroupId") is None


def _commitment_filters(params: MultiMapping[str]) -> Iterable[Predicate]:
    products = values(params, "productId")
    if products:
        wanted = frozenset(p.lower() for p in products)
        # [assume] matches commitments that name the product in productIds
        yield lambda obj: bool(wanted & set(obj.get("productIds") or []))
    if params.get("date"):
        yield _active_at(_instant("date", params["date"]))
    if params.get("endDateStart"):
        low = _instant("endDateStart", params["endDateStart"])
        yield lambda obj: _instant("endDate", obj["endDate"]) >= low
    if params.get("endDateEnd"):
        high = _instant("endDateEnd", params["endDateEnd"])
        yield lambda obj: _instant("endDate", obj["endDate"]) < high
