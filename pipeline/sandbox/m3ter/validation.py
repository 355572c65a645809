"""m3ter's validation rules: the shape of a body (from `entities.py`) and the rules across objects.

Shape errors are collected and reported together, each as `field: rule`; cross-object rules stop
at the first broken one. Everything here is pure: the store runs it under its lock with a view of
the current objects, so a check and the write it guards are one atomic step.
"""

from __future__ import annotations

import itertools
import math
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, Protocol

from pipeline.sandbox.m3ter.entities import (
    BY_NAME,
    ENTITIES,
    NUMERIC_CATEGORIES,
    SEGMENTABLE_CATEGORIES,
    Entity,
    Field,
)
from pipeline.sandbox.m3ter.errors import bad_request
from pipeline.sandbox.m3ter.org import OrgSettings

UUID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.]*")
_INVALID = object()
# Answered on every object, never taken from a body.
AUDIT_FIELDS = ("id", "version", "dtCreated", "dtLastModified", "createdBy", "lastModifiedBy")


class Lookup(Protocol):
    """What the cross-object rules may read of the current state."""

    def get(self, collection: str, object_id: str) -> dict[str, Any] | None: ...

    def by_code(self, collection: str, code: str) -> str | None: ...

    def referrers(self, object_id: str, collection: str) -> list[dict[str, Any]]:
        """Objects of `collection` that refer to `object_id` through any reference field."""
        ...

    def blocking_referrers(self, object_id: str) -> dict[str, int]:
        """How many objects per collection hold a delete-blocking reference to `object_id`."""
        ...

    def objects(self, collection: str) -> Iterable[dict[str, Any]]: ...

    @property
    def org(self) -> OrgSettings:
        """The organization's set-up: currencies, external mapping configuration."""
        ...


# ---- values -------------------------------------------------------------------------------------


def parse_datetime(text: str) -> datetime | None:
    """An RFC 3339 date-time with its offset.

    [assume: pessimistic] one without an offset (`2024-01-01T00:00:00`) is refused, as a strict
    ISO 8601 instant parser refuses it, rather than read as UTC.
    """
    if "T" not in text and "t" not in text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return None if value.tzinfo is None else value.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """[assume: pessimistic] m3ter answers date-times in UTC with milliseconds, always
    (`2024-01-01T00:00:00.000Z` for the `2024-01-01T00:00:00Z` it was sent)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_date(text: str) -> date | None:
    if not DATE_PATTERN.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def normalized_segment(
    segment: dict[str, str], segmented_fields: list[str]
) -> tuple[str | None, ...]:
    """A segment as a comparable tuple in `segmentedFields` order (None for a key left out).

    [assume: pessimistic] A key left out is not a wildcard: m3ter documents that a segment value
    the aggregation does not define is an error, and the wildcard `*` is a value like any other,
    to be defined on the aggregation and sent explicitly.
    """
    return tuple(segment.get(name) for name in segmented_fields)


def segment_string(segment: dict[str, str] | None) -> str | None:
    """[assume] The read-only `segmentString` (format undocumented): `k=v` pairs sorted by key."""
    if not segment:
        return None
    return ",".join(f"{key}={segment[key]}" for key in sorted(segment))


# ---- shape --------------------------------------------------------------------------------------


def clean_body(entity: Entity, body: Any) -> dict[str, Any]:
    """The body reduced to the entity's fields, type-checked, with defaults for omitted ones.

    [assume: pessimistic] A property m3ter does not know is refused (a strict JSON binding), at
    any depth; only the fields m3ter itself answers with and never takes (`id`, `version`, the
    audit fields, derived ones such as a plan's `productId`) are ignored, so that an object read
    can be sent back. Audit fields are never taken from a body, and a field that is absent or
    ([assume] kept) null counts as not sent, which is what makes a PUT a full replacement. An
    omitted field with a documented default (`type: DEBIT`, `cumulative: false`, ...) is stored
    with that default, on create and after a PUT alike.
    """
    if not isinstance(body, dict):
        raise bad_request("request body: must be a JSON object")
    errors: list[str] = []
    ignored = {*AUDIT_FIELDS, *entity.computed}
    _check_known(entity.fields, {k: v for k, v in body.items() if k not in ignored}, "", errors)
    cleaned = _clean_members(entity.fields, body, "", errors)
    if errors:
        raise bad_request("; ".join(errors))
    return cleaned


def _check_known(
    fields: Iterable[Field], body: dict[str, Any], prefix: str, errors: list[str]
) -> None:
    known = {spec.name: spec for spec in fields}
    for name, value in body.items():
        spec = known.get(name)
        if spec is None:
            errors.append(f"{prefix}{name}: is not a property m3ter knows here")
        elif spec.kind == "object" and isinstance(value, dict):
            _check_known(spec.items, value, f"{prefix}{name}.", errors)
        elif spec.kind == "object_list" and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _check_known(spec.items, item, f"{prefix}{name}[{i}].", errors)


def _clean_members(
    fields: Iterable[Field], body: dict[str, Any], prefix: str, errors: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in fields:
        path = f"{prefix}{spec.name}"
        value = body.get(spec.name)
        if value is None or (value == "" and spec.kind == "string" and spec.unset == ""):
            # What m3ter echoes for text never given can be sent back: it means not given.
            if spec.required:
                errors.append(f"{path}: is required")
            elif spec.default is not None:
                out[spec.name] = _copy(spec.default)
            continue
        result = _clean_value(spec, value, path, errors)
        if result is not _INVALID:
            out[spec.name] = result
    return out


def _copy(value: Any) -> Any:
    return (
        dict(value)
        if isinstance(value, dict)
        else list(value)
        if isinstance(value, list)
        else value
    )


def _clean_value(spec: Field, value: Any, path: str, errors: list[str]) -> Any:
    kind = spec.kind
    before = len(errors)
    if kind == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: must be a string")
            return _INVALID
        _check_length(spec, value, path, errors)
        if spec.pattern is not None and value and not spec.pattern.match(value):
            errors.append(f"{path}: {spec.pattern_rule}")
        return value if len(errors) == before else _INVALID
    if kind == "uuid":
        if not isinstance(value, str) or not UUID_PATTERN.match(value):
            errors.append(f"{path}: must be a UUID (36 characters)")
            return _INVALID
        return value.lower()
    if kind == "uuid_list":
        if not isinstance(value, list):
            errors.append(f"{path}: must be a list of UUIDs")
            return _INVALID
        _check_items(spec, value, path, errors)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not UUID_PATTERN.match(item):
                errors.append(f"{path}[{i}]: must be a UUID (36 characters)")
        return [v.lower() for v in value] if len(errors) == before else _INVALID
    if kind == "int":
        if not is_number(value) or value != int(value):
            errors.append(f"{path}: must be an integer")
            return _INVALID
        _check_range(spec, value, path, errors)
        return int(value) if len(errors) == before else _INVALID
    if kind == "number":
        if not is_number(value):
            errors.append(f"{path}: must be a number")
            return _INVALID
        _check_range(spec, value, path, errors)
        return value if len(errors) == before else _INVALID
    if kind == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: must be true or false")
            return _INVALID
        return value
    if kind == "enum":
        if value not in spec.choices:
            errors.append(f"{path}: must be one of {', '.join(spec.choices)}")
            return _INVALID
        return value
    if kind == "enum_list":
        if not isinstance(value, list):
            errors.append(f"{path}: must be a list")
            return _INVALID
        for i, item in enumerate(value):
            if item not in spec.choices:
                errors.append(f"{path}[{i}]: must be one of {', '.join(spec.choices)}")
        return list(value) if len(errors) == before else _INVALID
    if kind == "date":
        if not isinstance(value, str) or parse_date(value) is None:
            hint = ", not a date-time" if isinstance(value, str) and "T" in value else ""
            errors.append(f"{path}: must be a date (YYYY-MM-DD){hint}")
            return _INVALID
        return value
    if kind == "datetime":
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            hint = ", not a date" if isinstance(value, str) and parse_date(value) else ""
            errors.append(f"{path}: must be a date-time (e.g. 2024-01-01T00:00:00Z){hint}")
            return _INVALID
        return format_datetime(parsed)
    if kind == "custom_fields":
        if not isinstance(value, dict):
            errors.append(f"{path}: must be an object of name to string or number")
            return _INVALID
        for key, item in value.items():
            if not key or not (isinstance(item, str) or is_number(item)):
                errors.append(f"{path}.{key}: must be a string or a number")
        return dict(value) if len(errors) == before else _INVALID
    if kind == "string_map":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
        ):
            errors.append(f"{path}: must be an object of field code to string value")
            return _INVALID
        return dict(value)
    if kind == "string_list":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            errors.append(f"{path}: must be a list of non-empty strings")
            return _INVALID
        return list(value)
    if kind == "segments":
        if not isinstance(value, list):
            errors.append(f"{path}: must be a list of segment objects")
            return _INVALID
        for i, item in enumerate(value):
            if (
                not isinstance(item, dict)
                or not item
                or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in item.items())
            ):
                errors.append(
                    f"{path}[{i}]: must be a non-empty object of field code to string value"
                )
        return [dict(v) for v in value] if len(errors) == before else _INVALID
    if kind == "object":
        if not isinstance(value, dict):
            errors.append(f"{path}: must be an object")
            return _INVALID
        out = _clean_members(spec.items, value, f"{path}.", errors)
        return out if len(errors) == before else _INVALID
    if kind == "object_list":
        if not isinstance(value, list):
            errors.append(f"{path}: must be a list")
            return _INVALID
        _check_items(spec, value, path, errors)
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                errors.append(f"{path}[{i}]: must be an object")
                continue
            items.append(_clean_members(spec.items, item, f"{path}[{i}].", errors))
        return items if len(errors) == before else _INVALID
    raise AssertionError(kind)


def _check_length(spec: Field, value: str, path: str, errors: list[str]) -> None:
    low, high = spec.min_length, spec.max_length
    if (low is not None and len(value) < low) or (high is not None and len(value) > high):
        if low is not None and high is not None:
            errors.append(f"{path}: must be {low} to {high} characters")
        elif high is not None:
            errors.append(f"{path}: must be at most {high} characters")
        else:
            errors.append(f"{path}: must be at least {low} characters")


def _check_items(spec: Field, value: list[Any], path: str, errors: list[str]) -> None:
    if spec.min_items is not None and len(value) < spec.min_items:
        errors.append(f"{path}: must have at least {spec.min_items} item(s)")
    if spec.max_items is not None and len(value) > spec.max_items:
        errors.append(f"{path}: must have at most {spec.max_items} items")


def _check_range(spec: Field, value: float, path: str, errors: list[str]) -> None:
    if spec.minimum is not None:
        if spec.exclusive_minimum and value <= spec.minimum:
            errors.append(f"{path}: must be greater than {_num(spec.minimum)}")
        elif value < spec.minimum:
            errors.append(f"{path}: must be at least {_num(spec.minimum)}")
    if spec.maximum is not None and value > spec.maximum:
        errors.append(f"{path}: must be at most {_num(spec.maximum)}")


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


# ---- rules across objects -----------------------------------------------------------------------

Rule = Callable[[Lookup, dict[str, Any], str | None], None]


def check_rules(entity: Entity, obj: dict[str, Any], own_id: str | None, lookup: Lookup) -> None:
    """Every cross-object rule for `obj` (a cleaned body); `own_id` is set for an update.

    Exactly-one-of rules come first (a body with both ids is wrong whatever they point at), then
    uniqueness and references, then the entity's rules, which may rely on references existing.
    """
    for first, second in EXACTLY_ONE.get(entity.collection, ()):
        _exactly_one(obj, first, second)
    _check_unique_code(entity, obj, own_id, lookup)
    _check_currencies(entity, obj, lookup)
    _check_references(entity, obj, lookup)
    for rule in RULES.get(entity.collection, ()):
        rule(lookup, obj, own_id)


def _check_unique_code(
    entity: Entity, obj: dict[str, Any], own_id: str | None, lookup: Lookup
) -> None:
    code = obj.get("code")
    if code is None or not entity.unique_code:
        return
    holder = lookup.by_code(entity.collection, code)
    if holder is not None and holder != own_id:
        # [assume] m3ter's status for a duplicate code is undocumented; 400 like other rules.
        # Only entities whose code m3ter documents as unique refuse one; a second Contract with
        # the same code is simply a second Contract.
        raise bad_request(
            f"code: '{code}' is already used by another {entity.name} "
            f"(id {holder}); codes must be unique per {entity.name}"
        )


def _check_currencies(entity: Entity, obj: dict[str, Any], lookup: Lookup) -> None:
    currencies = lookup.org.currencies
    for spec in entity.fields:
        value = obj.get(spec.name)
        if spec.org_currency and value is not None and value not in currencies:
            raise bad_request(
                f"{spec.name}: {value} is not a currency of this organization "
                f"({', '.join(currencies)})"
            )


def _check_references(entity: Entity, obj: dict[str, Any], lookup: Lookup) -> None:
    for spec in entity.references:
        value = obj.get(spec.name)
        if value is None:
            continue
        assert spec.ref is not None
        for target in value if isinstance(value, list) else [value]:
            if lookup.get(spec.ref, target) is None:
                name = ENTITIES[spec.ref].name
                # [assume] a body that points at a missing object is a 400, not a 404.
                raise bad_request(f"{spec.name}: no {name} with id '{target}' exists")


def _exactly_one(obj: dict[str, Any], first: str, second: str) -> None:
    given = [name for name in (first, second) if obj.get(name) is not None]
    if len(given) != 1:
        which = "both were given" if given else "neither was given"
        raise bad_request(
            f"{first}/{second}: exactly one of {first} and {second} is required; {which}"
        )


def _date_order(
    obj: dict[str, Any],
    start: str = "startDate",
    end: str = "endDate",
    allow_equal: bool = False,
    prefix: str = "",
) -> None:
    first, last = obj.get(start), obj.get(end)
    if first is None or last is None:
        return
    a, b = _when(first), _when(last)
    if a > b or (a == b and not allow_equal):
        rule = "on or after" if allow_equal else "after"
        raise bad_request(f"{prefix}{end}: must be {rule} {start} ({last} is not {rule} {first})")


def _when(text: str) -> datetime:
    parsed = parse_datetime(text)
    if parsed is not None:
        return parsed
    day = date.fromisoformat(text)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def overlaps(a_start: str, a_end: str | None, b_start: str, b_end: str | None) -> bool:
    """Two windows with exclusive ends (a missing end is open) share at least one instant."""
    a0, b0 = _when(a_start), _when(b_start)
    a1 = _when(a_end) if a_end else datetime.max.replace(tzinfo=UTC)
    b1 = _when(b_end) if b_end else datetime.max.replace(tzinfo=UTC)
    return a0 < b1 and b0 < a1


def _account_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    if own_id is not None and obj.get("parentAccountId") == own_id:
        raise bad_request("parentAccountId: an Account cannot be its own parent")


def _contract_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    # [assume: pessimistic] startDate before endDate (an exclusive end equal to the start would be
    # an empty contract)
    _date_order(obj)


def _meter_fields(meter: dict[str, Any]) -> dict[str, dict[str, Any]]:
    fields = {f["code"]: f for f in meter.get("dataFields", [])}
    for derived in meter.get("derivedFields", []):
        fields[derived["code"]] = {**derived, "derived": True}
    return fields


def _meter_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    # [assume: pessimistic] field codes are unique within a meter (measurements address fields by
    # code)
    codes = [f["code"] for f in [*obj["dataFields"], *obj["derivedFields"]]]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise bad_request(
            f"dataFields/derivedFields: field codes must be unique within a "
            f"Meter; repeated: {', '.join(duplicates)}"
        )
    if own_id is None:
        return
    fields = _meter_fields(obj)
    for aggregation in lookup.referrers(own_id, "aggregations"):
        needed = [aggregation["targetField"], *aggregation.get("segmentedFields", [])]
        missing = [code for code in needed if code not in fields]
        if missing:
            raise bad_request(
                f"dataFields: field {missing[0]} is used by Aggregation {aggregation['id']} "
                f"and cannot be removed from the Meter"
            )


def _aggregation_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    meter = lookup.get("meters", obj["meterId"])
    assert meter is not None
    fields = _meter_fields(meter)
    target = fields.get(obj["targetField"])
    if target is None:
        raise bad_request(
            f"targetField: '{obj['targetField']}' is not a data or derived field "
            f"of Meter {meter['code']}"
        )
    kind = obj["aggregation"]
    numeric = target.get("derived") or target["category"] in NUMERIC_CATEGORIES
    if kind in ("SUM", "MIN", "MAX", "MEAN", "LATEST") and not numeric:
        raise bad_request(
            f"aggregation: {kind} needs a numeric target field (MEASURE, INCOME, "
            f"COST or derived); '{target['code']}' is {target['category']}"
        )
    if kind == "UNIQUE" and target.get("category") != "METADATA":
        raise bad_request("aggregation: UNIQUE needs a METADATA target field")
    if kind == "CUSTOM_SQL" and not obj.get("customSql"):
        raise bad_request("customSql: is required when aggregation is CUSTOM_SQL")
    segmented = obj.get("segmentedFields") or []
    for code in segmented:
        spec = fields.get(code)
        if spec is None:
            raise bad_request(f"segmentedFields: '{code}' is not a field of Meter {meter['code']}")
        if not spec.get("derived") and spec["category"] not in SEGMENTABLE_CATEGORIES:
            raise bad_request(
                f"segmentedFields: '{code}' is a {spec['category']} field; only "
                "WHO, WHAT and WHERE string fields can be segmented"
            )
    if len(set(segmented)) != len(segmented):
        raise bad_request("segmentedFields: a field can be segmented on only once")
    segments = obj.get("segments") or []
    if segments and not segmented:
        raise bad_request("segments: need segmentedFields to say which fields they segment on")
    seen: set[tuple[str | None, ...]] = set()
    for i, segment in enumerate(segments):
        unknown = sorted(set(segment) - set(segmented))
        if unknown:
            raise bad_request(
                f"segments[{i}]: key {unknown[0]} is not one of the segmentedFields "
                f"({', '.join(segmented)})"
            )
        missing = [name for name in segmented if name not in segment]
        if missing:
            # [assume: pessimistic] a segment gives a value (or `*`) for every segmented field
            raise bad_request(
                f"segments[{i}]: has no value for {missing[0]}; give every segmentedField a "
                "value or the wildcard *"
            )
        key = normalized_segment(segment, segmented)
        if key in seen:
            raise bad_request(f"segments[{i}]: the same segment is defined twice")
        seen.add(key)
    if own_id is not None:
        # [assume: pessimistic] as with meter fields in use, a segment that a pricing prices stays
        # defined
        for pricing in lookup.referrers(own_id, "pricings"):
            segment = pricing.get("segment")
            if segment and normalized_segment(segment, segmented) not in seen:
                raise bad_request(
                    f"segments: segment {segment} is priced by Pricing "
                    f"{pricing['id']} and cannot be removed"
                )


def calculation_references(calculation: str) -> list[str]:
    """Bare identifiers of a formula: aggregation codes (functions and dotted names excluded)."""
    names = []
    for match in IDENTIFIER.finditer(calculation):
        name = match.group(0)
        following = calculation[match.end() :].lstrip()
        if "." in name or following.startswith("("):
            continue
        if match.start() > 0 and calculation[match.start() - 1].isdigit():
            continue  # the exponent of a number such as 1e3
        names.append(name)
    return names


def _compound_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    # [assume: pessimistic] every bare name in the formula is a simple aggregation's code
    # (function calls and dotted names such as custom fields are not checked)
    for name in calculation_references(obj["calculation"]):
        if lookup.by_code("aggregations", name) is None:
            raise bad_request(f"calculation: '{name}' is not the code of an Aggregation")


def _plan_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    # [assume: pessimistic] a bespoke plan needs the account it is bespoke to (the docs pair the
    # two fields)
    if obj.get("bespoke") and obj.get("accountId") is None:
        raise bad_request("accountId: is required for a bespoke Plan")
    if own_id is not None:
        current = lookup.get("plans", own_id)
        assert current is not None
        if current.get("bespoke") and current.get("accountId") != obj.get("accountId"):
            raise bad_request("accountId: a bespoke Plan cannot be moved to another Account")


def _product_of_plan_side(lookup: Lookup, obj: dict[str, Any]) -> str | None:
    if obj.get("planId"):
        plan = lookup.get("plans", obj["planId"])
        assert plan is not None
        template = lookup.get("plantemplates", plan["planTemplateId"])
    else:
        template = lookup.get("plantemplates", obj["planTemplateId"])
    return template["productId"] if template else None


def _pricing_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    _date_order(obj)
    if obj["type"] == "DEBIT":
        for bands in ("pricingBands", "overagePricingBands"):
            for i, band in enumerate(obj.get(bands) or []):
                for price in ("fixedPrice", "unitPrice"):
                    if band[price] < 0:
                        raise bad_request(
                            f"{bands}[{i}].{price}: must not be negative for a DEBIT pricing"
                        )
    for bands in ("pricingBands", "overagePricingBands"):
        limits = [band["lowerLimit"] for band in obj.get(bands) or []]
        # [assume: pessimistic] bands start at 0 and rise strictly; m3ter only documents
        # lowerLimit >= 0.
        if limits and (limits[0] != 0 or any(b <= a for a, b in itertools.pairwise(limits))):
            raise bad_request(
                f"{bands}: lowerLimit must start at 0 and rise strictly from band to band"
            )
    if obj.get("overagePricingBands") and (not obj["cumulative"] or obj["tiersSpanPlan"]):
        raise bad_request(
            "overagePricingBands: only allowed when cumulative is true and "
            "tiersSpanPlan is not true"
        )
    product = _product_of_plan_side(lookup, obj)
    segment = obj.get("segment")
    aggregation = None
    if obj.get("aggregationId"):
        aggregation = lookup.get("aggregations", obj["aggregationId"])
        assert aggregation is not None
        meter = lookup.get("meters", aggregation["meterId"])
        owner = meter.get("productId") if meter else None
    else:
        compound = lookup.get("compoundaggregations", obj["compoundAggregationId"])
        assert compound is not None
        owner = compound.get("productId")
        if segment:
            raise bad_request(
                "segment: only a pricing of a segmented Aggregation (aggregationId) "
                "can have a segment"
            )
    # m3ter: a Product-specific aggregation cannot price plans of another Product; global ones can
    if owner is not None and product is not None and owner != product:
        raise bad_request(
            "aggregationId: the aggregation belongs to another Product than the "
            "plan; only its own Product's or global aggregations can price a plan"
        )
    if aggregation is not None:
        _check_segment(aggregation, segment)
    _check_pricing_overlap(lookup, obj, own_id)


def _check_segment(aggregation: dict[str, Any], segment: dict[str, str] | None) -> None:
    segments = aggregation.get("segments") or []
    fields = aggregation.get("segmentedFields") or []
    if not segments:
        if segment:
            raise bad_request(f"segment: Aggregation {aggregation['id']} is not segmented")
        return
    if segment is None:
        raise bad_request(
            f"segment: is required; Aggregation {aggregation['id']} is segmented "
            f"on {', '.join(fields)}"
        )
    unknown = sorted(set(segment) - set(fields))
    if unknown:
        raise bad_request(
            f"segment: key {unknown[0]} is not one of the aggregation's "
            f"segmentedFields ({', '.join(fields)})"
        )
    missing = [name for name in fields if name not in segment]
    if missing:
        raise bad_request(
            f"segment: has no value for {missing[0]}; Aggregation {aggregation['id']} is "
            f"segmented on {', '.join(fields)}"
        )
    wanted = normalized_segment(segment, fields)
    # [assume] A pricing prices exactly one segment defined on the aggregation (documented: an
    # undefined segment value is an error). `*` is the wildcard value: a pricing for
    # `{"region": "*"}` needs that wildcard segment defined, and a concrete value does not match
    # a wildcard definition (that matching happens to usage at billing time, not to pricings).
    if all(normalized_segment(s, fields) != wanted for s in segments):
        raise bad_request(
            f"segment: {segment} is not one of the segments defined on Aggregation "
            f"{aggregation['id']}"
        )


def _check_pricing_overlap(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    plan_key = obj.get("planId") or obj.get("planTemplateId")
    metric = obj.get("aggregationId") or obj.get("compoundAggregationId")
    assert metric is not None
    aggregation = lookup.get("aggregations", metric)
    fields = (aggregation or {}).get("segmentedFields") or []
    wanted = normalized_segment(obj.get("segment") or {}, fields)
    for other in lookup.referrers(metric, "pricings"):
        other_plan = other.get("planId") or other.get("planTemplateId")
        if other["id"] == own_id or other_plan != plan_key:
            continue
        if normalized_segment(other.get("segment") or {}, fields) != wanted:
            continue
        if overlaps(obj["startDate"], obj.get("endDate"), other["startDate"], other.get("endDate")):
            # [assume: pessimistic] overlapping windows for one plan + aggregation + segment are
            # rejected.
            raise bad_request(
                f"startDate/endDate: overlaps Pricing {other['id']} ({other['startDate']} to "
                f"{other.get('endDate') or 'open end'}) for the same plan, aggregation and "
                "segment"
            )


def _account_plan_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    _date_order(obj)
    plan = lookup.get("plans", obj["planId"]) if obj.get("planId") else None
    if plan is not None and plan.get("bespoke") and plan.get("accountId") != obj["accountId"]:
        raise bad_request(f"planId: Plan {plan['id']} is bespoke to another Account")
    group = lookup.get("plangroups", obj["planGroupId"]) if obj.get("planGroupId") else None
    if group is not None and group.get("accountId") not in (None, obj["accountId"]):
        raise bad_request(f"planGroupId: PlanGroup {group['id']} is bespoke to another Account")
    if obj.get("contractId"):
        # [assume: pessimistic] a linked contract must be one of the same account's contracts
        contract = lookup.get("contracts", obj["contractId"])
        if contract is not None and contract["accountId"] != obj["accountId"]:
            raise bad_request(f"contractId: Contract {contract['id']} belongs to another Account")
    _one_account_plan_per_product(lookup, obj, _products_billed(lookup, obj), {own_id})


def _products_billed(lookup: Lookup, account_plan: dict[str, Any]) -> set[str]:
    """The products an account plan bills: its plan's, or those of every plan its group links.

    [assume: pessimistic] m3ter's one-active-account-plan-per-product rule counts the products a
    plan group attaches as the account's, so a group and a plan of one product (or two groups
    sharing one) cannot be active at once.
    """
    if account_plan.get("planId"):
        product = _product_of_plan_side(lookup, account_plan)
        return {product} if product else set()
    return _group_products(lookup, account_plan["planGroupId"])


def _group_products(lookup: Lookup, group_id: str) -> set[str]:
    products = set()
    for link in lookup.referrers(group_id, "plangrouplinks"):
        product = _product_of_plan_side(lookup, {"planId": link["planId"]})
        if product:
            products.add(product)
    return products


def _one_account_plan_per_product(
    lookup: Lookup, obj: dict[str, Any], products: set[str], own: set[str | None]
) -> None:
    for other in lookup.referrers(obj["accountId"], "accountplans"):
        if other["id"] in own or not products & _products_billed(lookup, other):
            continue
        if overlaps(obj["startDate"], obj.get("endDate"), other["startDate"], other.get("endDate")):
            raise bad_request(
                f"startDate/endDate: only one AccountPlan per Product can be active at a time for "
                f"an Account; overlaps AccountPlan {other['id']} ({other['startDate']} to "
                f"{other.get('endDate') or 'open end'})"
            )


def _plan_group_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    if own_id is None:
        return
    current = lookup.get("plangroups", own_id)
    assert current is not None
    if obj.get("currency") != current.get("currency") and lookup.referrers(
        own_id, "plangrouplinks"
    ):
        # [assume: pessimistic] the plans a group links are in its currency: it cannot change
        # while it links any.
        raise bad_request("currency: cannot change while the PlanGroup links plans")


def _plan_group_link_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    """[assume: pessimistic] m3ter documents only the two ids; a link is refused here whenever
    billing it would be ambiguous: a plan in another currency than its group, a plan bespoke to
    another account, a plan linked twice, two plans of one product in one group, and a plan
    whose product an account the group is attached to already has on another account plan."""
    group = lookup.get("plangroups", obj["planGroupId"])
    plan = lookup.get("plans", obj["planId"])
    assert group is not None and plan is not None
    template = lookup.get("plantemplates", plan["planTemplateId"]) or {}
    if template.get("currency") != group["currency"]:
        raise bad_request(
            f"planId: Plan {plan['id']} is priced in {template.get('currency')}, PlanGroup "
            f"{group['id']} in {group['currency']}"
        )
    if plan.get("bespoke") and group.get("accountId") != plan.get("accountId"):
        raise bad_request(f"planId: Plan {plan['id']} is bespoke to another Account")
    product = template.get("productId")
    for other in lookup.referrers(group["id"], "plangrouplinks"):
        if other["id"] == own_id:
            continue
        if other["planId"] == plan["id"]:
            raise bad_request(
                f"planId: Plan {plan['id']} is already linked to PlanGroup {group['id']}"
            )
        if _product_of_plan_side(lookup, {"planId": other["planId"]}) == product:
            raise bad_request(
                f"planId: PlanGroup {group['id']} already links Plan {other['planId']} of the "
                "same Product"
            )
    if product is None:
        return
    for attached in lookup.referrers(group["id"], "accountplans"):
        _one_account_plan_per_product(lookup, attached, {product}, {attached["id"]})


def _commitment_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    _date_order(obj)
    if obj.get("separateOverageUsage") and obj.get("overageSurchargePercent", 0) != 0:
        raise bad_request(
            "separateOverageUsage: cannot be true while overageSurchargePercent is not 0"
        )
    if obj.get("feeDates") and obj.get("billingPlanId"):
        # [assume: pessimistic] the docs say to omit billingPlanId when using feeDates; both is
        # refused.
        raise bad_request("feeDates/billingPlanId: give a billing plan or fee dates, not both")
    for i, fee in enumerate(obj.get("feeDates") or []):
        _date_order(
            fee,
            "servicePeriodStartDate",
            "servicePeriodEndDate",
            allow_equal=True,
            prefix=f"feeDates[{i}].",
        )
    if obj.get("contractId"):
        # [assume: pessimistic] a linked contract must be one of the same account's contracts
        contract = lookup.get("contracts", obj["contractId"])
        if contract is not None and contract["accountId"] != obj["accountId"]:
            raise bad_request(f"contractId: Contract {contract['id']} belongs to another Account")


def _external_mapping_rules(lookup: Lookup, obj: dict[str, Any], own_id: str | None) -> None:
    """What the org's ExternalMapping configuration permits, and an m3ter object to point at.

    [assume: pessimistic] Nothing keeps two mappings of one external record and entity apart:
    m3ter documents no uniqueness for them, so a client must not count on a refusal.
    """
    org = lookup.org
    entity_name = obj["m3terEntity"]
    if entity_name not in org.mapped_entities:
        raise bad_request(
            f"m3terEntity: {entity_name} is not an entity this organization's external mapping "
            f"configuration permits ({', '.join(org.mapped_entities)})"
        )
    system = org.system(obj["externalSystem"])
    if system is None:
        known = ", ".join(s.name for s in org.external_systems) or "none"
        raise bad_request(
            f"externalSystem: {obj['externalSystem']} is not configured for external mappings "
            f"(configured: {known})"
        )
    if obj["externalTable"] not in system.tables and not system.allow_custom_tables:
        raise bad_request(
            f"externalTable: {obj['externalTable']} is not a table of external system "
            f"{system.name}, and custom external tables are not allowed"
        )
    target = BY_NAME.get(entity_name)
    if target is None or lookup.get(target.collection, obj["m3terId"]) is None:
        raise bad_request(f"m3terId: no {entity_name} with id '{obj['m3terId']}' exists")


EXACTLY_ONE: dict[str, tuple[tuple[str, str], ...]] = {
    "pricings": (("planId", "planTemplateId"), ("aggregationId", "compoundAggregationId")),
    "accountplans": (("planId", "planGroupId"),),
}

RULES: dict[str, tuple[Rule, ...]] = {
    "accounts": (_account_rules,),
    "contracts": (_contract_rules,),
    "meters": (_meter_rules,),
    "aggregations": (_aggregation_rules,),
    "compoundaggregations": (_compound_rules,),
    "plans": (_plan_rules,),
    "pricings": (_pricing_rules,),
    "plangroups": (_plan_group_rules,),
    "plangrouplinks": (_plan_group_link_rules,),
    "accountplans": (_account_plan_rules,),
    "commitments": (_commitment_rules,),
    "externalmappings": (_external_mapping_rules,),
}


def check_version(entity: Entity, body: Any, current: dict[str, Any]) -> None:
    """Optimistic locking: a PUT must carry the stored version.

    [assume: pessimistic] m3ter's status and message for a stale or missing version are
    undocumented and its error list has no 409: both are a 400 whose message names neither the
    version nor the conflict, so a client can only tell by reading the object back.
    """
    version = body.get("version") if isinstance(body, dict) else None
    if version is None or not is_number(version) or version != current["version"]:
        raise bad_request(f"Bad request: the {entity.name} could not be updated")


def check_deletable(entity: Entity, object_id: str, lookup: Lookup) -> None:
    """An object others still point at cannot be deleted.

    m3ter documents this for Accounts (AccountPlans) and Contracts (AccountPlans, Commitments);
    [assume: pessimistic] the same holds for every reference (a pricing's plan, a meter's
    product, an aggregation named in a compound calculation), except ExternalMappings, which
    never block.
    """
    holders = dict(lookup.blocking_referrers(object_id))
    if entity.collection == "aggregations":
        current = lookup.get("aggregations", object_id)
        code = current.get("code") if current else None
        if code:
            for compound in lookup.objects("compoundaggregations"):
                if code in calculation_references(compound["calculation"]):
                    holders["compoundaggregations"] = holders.get("compoundaggregations", 0) + 1
    if holders:
        listed = ", ".join(f"{n} {ENTITIES[c].name}(s)" for c, n in sorted(holders.items()))
        raise bad_request(
            f"id: {entity.name} {object_id} cannot be deleted while {listed} refer to it"
        )


def new_id() -> str:
    return str(uuid.uuid4())
