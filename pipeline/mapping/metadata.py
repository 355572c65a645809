"""Mappings read from the org's `*Mapping__mdt` custom metadata records (DESIGN §5).

Custom metadata is not bulk-queryable, so the records come from REST `query_all` as
simple-salesforce returns them (dicts with `attributes` and field API names). They are turned
into the same `MappingRecord`s as the YAML files, through the same rules; a problem names the
metadata type, the record's DeveloperName and the field, the org-side equivalent of file:line.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pipeline.mapping.products import FIELDS as PRODUCT_FIELDS
from pipeline.mapping.products import PRODUCT_MAPPING_TYPE
from pipeline.mapping.products import from_metadata as products_from_metadata
from pipeline.mapping.products import metadata_query as products_query
from pipeline.mapping.spec import (
    AGREEMENT_ENTITIES,
    ENTITIES,
    METADATA_TYPE,
    SEGMENTED_ENTITIES,
    SYNC_LEVELS,
    Entity,
    Location,
    MappingRecord,
    MappingSet,
    MappingSpecError,
    RecordOrigin,
    parse_record,
)
from pipeline.salesforce.client import SalesforceClient

# Metadata field API name -> the mapping key it holds.
FIELD_KEYS: Final[dict[str, str]] = {
    "DeveloperName": "name",
    "Source_Object__c": "object",
    "Where__c": "where",
    "Sync_Level__c": "sync_level",
    "Agreement_Field__c": "agreement",
    "Identity_Field__c": "identity",
    "Fields__c": "fields",
    "Hardcoded__c": "hardcoded",
    "Custom_Fields__c": "custom_fields",
    "Segments__c": "segments",
    "Product_Mapping__c": "product_mapping",
    "Combine__c": "combine",
    "Active__c": "active",
}
KEY_FIELDS: Final[dict[str, str]] = {key: name for name, key in FIELD_KEYS.items()}
# Fields holding a JSON object as text; blank means an empty object.
JSON_FIELDS: Final[frozenset[str]] = frozenset(
    {"Fields__c", "Hardcoded__c", "Custom_Fields__c", "Combine__c", "Product_Mapping__c"}
)


@dataclass(frozen=True)
class MetadataField:
    """One custom field of a mapping type, as Setup creates it (its Metadata API type)."""

    name: str
    type: Literal["Text", "LongTextArea", "Checkbox", "Picklist"]
    length: int = 0
    required: bool = False
    values: tuple[str, ...] = ()


_JSON_TEXT = 32768
# Every custom field of the `*Mapping__mdt` types, `ProductMapping__mdt` included: what
# `m3sync setup salesforce` deploys and what the org sandbox holds.
METADATA_FIELD_DEFINITIONS: Final[dict[str, MetadataField]] = {
    f.name: f
    for f in (
        MetadataField("Source_Object__c", "Text", 80, required=True),
        MetadataField("Where__c", "LongTextArea", 1000),
        MetadataField("Sync_Level__c", "Picklist", values=SYNC_LEVELS),
        MetadataField("Agreement_Field__c", "Text", 255),
        MetadataField("Identity_Field__c", "Text", 255),
        MetadataField("Fields__c", "LongTextArea", _JSON_TEXT),
        MetadataField("Hardcoded__c", "LongTextArea", _JSON_TEXT),
        MetadataField("Custom_Fields__c", "LongTextArea", _JSON_TEXT),
        MetadataField("Segments__c", "LongTextArea", _JSON_TEXT),
        MetadataField("Product_Mapping__c", "LongTextArea", _JSON_TEXT),
        MetadataField("Combine__c", "LongTextArea", _JSON_TEXT),
        MetadataField("Active__c", "Checkbox", required=True),
        MetadataField("Product_Code__c", "Text", 255, required=True),
        MetadataField("Billing_Frequency__c", "Text", 255),
        MetadataField("Currency__c", "Text", 3),
        MetadataField("Plan_Template_Code__c", "Text", 80, required=True),
    )
}


def _select_list(entity: Entity) -> tuple[str, ...]:
    """Only the fields the entity's type has: `Segments__c` exists on pricings alone, etc."""
    return tuple(
        name
        for name in FIELD_KEYS
        if not (
            name in ("Sync_Level__c", "Agreement_Field__c", "Identity_Field__c")
            and entity not in AGREEMENT_ENTITIES
        )
        and not (name == "Segments__c" and entity not in SEGMENTED_ENTITIES)
        and not (name == "Product_Mapping__c" and entity != "plans")
    )


METADATA_FIELDS: Final[dict[Entity, tuple[str, ...]]] = {e: _select_list(e) for e in ENTITIES}


def type_fields() -> dict[str, tuple[MetadataField, ...]]:
    """Each mapping type's custom fields, `ProductMapping__mdt` included."""
    types = {
        METADATA_TYPE[entity]: tuple(
            METADATA_FIELD_DEFINITIONS[n] for n in names if n in METADATA_FIELD_DEFINITIONS
        )
        for entity, names in METADATA_FIELDS.items()
    }
    types[PRODUCT_MAPPING_TYPE] = tuple(
        METADATA_FIELD_DEFINITIONS[n] for n in PRODUCT_FIELDS.values() if n != "DeveloperName"
    )
    return types


def metadata_query(entity: Entity, present: Collection[str] | None = None) -> str:
    """The SOQL that reads every mapping record of `entity`'s type, in a stable order; only the
    fields in `present` (the type's describe) when given, so that a type deployed before a field
    existed still reads, its records taking the field's default."""
    names = [n for n in METADATA_FIELDS[entity] if present is None or n in present]
    return f"SELECT {', '.join(names)} FROM {METADATA_TYPE[entity]} ORDER BY DeveloperName"


def from_metadata_records(
    entity: Entity, records: Iterable[Mapping[str, Any]]
) -> list[MappingRecord]:
    """The mapping records of one `*Mapping__mdt` type; every problem of every record is raised
    together as one `MappingSpecError`."""
    converted, problems = _convert(entity, records)
    if problems:
        raise MappingSpecError(problems)
    return [record for record, _ in converted]


def metadata_mapping_set(
    records: Mapping[Entity, Iterable[Mapping[str, Any]]],
    products: Iterable[Mapping[str, Any]] = (),
) -> MappingSet:
    """A `MappingSet` from each entity's metadata records and the `ProductMapping__mdt`
    records, remembering which record and field each mapping key came from
    (`PricingMapping__mdt.OrderItem_Pricing.Fields__c`)."""
    mappings: dict[Entity, list[MappingRecord]] = {}
    origins: dict[tuple[Entity, str], RecordOrigin] = {}
    problems: list[str] = []
    for entity, entity_records in records.items():
        if entity not in METADATA_TYPE:
            raise MappingSpecError([f"unknown entity {entity!r}"])
        converted, found = _convert(entity, entity_records)
        problems += found
        mappings[entity] = [record for record, _ in converted]
        origins.update(((entity, record.name), origin) for record, origin in converted)
    table, found = products_from_metadata(products)
    problems += found
    if problems:
        raise MappingSpecError(problems)
    return MappingSet(mappings, origins, table)


def _convert(
    entity: Entity, records: Iterable[Mapping[str, Any]]
) -> tuple[list[tuple[MappingRecord, RecordOrigin]], list[str]]:
    type_name = METADATA_TYPE[entity]
    converted = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, row in enumerate(records, start=1):
        name = row.get("DeveloperName")
        label = f"{type_name} {name!r}" if name else f"{type_name} record #{index}"
        data: dict[str, Any] = {}
        found: list[str] = []
        for field_name in METADATA_FIELDS[entity]:
            value = row.get(field_name)
            if field_name in JSON_FIELDS:
                value, error = _json_object(value)
                if error:
                    found.append(f"{label}: {field_name}: {error}")
            data[FIELD_KEYS[field_name]] = value
        if isinstance(name, str) and name in seen:
            found.append(f"{label}: DeveloperName: duplicate mapping name {name!r}")
        if isinstance(name, str):
            seen.add(name)
        if not found:
            record, rule_problems = parse_record(entity, data)
            found += [f"{label}: {_field_of(p.path)}{p.message}" for p in rule_problems]
            if record is not None:
                converted.append((record, _origin(type_name, record.name)))
        problems += found
    return converted, problems


def _json_object(text: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in a text field (None when blank), or an error saying what is wrong."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None, None
    if not isinstance(text, str):
        return None, f"expected JSON object text, not {type(text).__name__}"
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
    except _DuplicateKeyError as exc:
        return None, f"invalid JSON: duplicate key {exc.args[0]!r}"
    if not isinstance(value, dict):
        return None, f"expected a JSON object ({{...}}), not {type(value).__name__}"
    return value, None


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Rejects a repeated key, which plain `json.loads` would silently resolve to the last one."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _field_of(path: tuple[str, ...]) -> str:
    return f"{KEY_FIELDS[path[0]]}: " if path and path[0] in KEY_FIELDS else ""


def _origin(type_name: str, name: str) -> RecordOrigin:
    source = f"{type_name}.{name}"
    return RecordOrigin(
        Location(source),
        {(key,): Location(f"{source}.{field_name}") for field_name, key in FIELD_KEYS.items()},
    )


def org_metadata_types(client: SalesforceClient) -> tuple[str, ...]:
    """The mapping types the org holds: an org set up before an entity's type existed (plan
    groups, product mappings) simply has no mappings of it."""
    present = client.sobject_names()
    return tuple(t for t in (*METADATA_TYPE.values(), PRODUCT_MAPPING_TYPE) if t in present)


def read_org_mappings(client: SalesforceClient) -> MappingSet:
    """The org's mapping set, from every `*Mapping__mdt` type it holds (REST: custom metadata is
    not bulk-queryable)."""
    present = set(org_metadata_types(client))

    def fields(type_name: str) -> set[str]:
        return {f["name"] for f in client.describe(type_name)["fields"]}

    return metadata_mapping_set(
        {
            entity: client.query_records(metadata_query(entity, fields(METADATA_TYPE[entity])))
            for entity in ENTITIES
            if METADATA_TYPE[entity] in present
        },
        client.query_records(products_query()) if PRODUCT_MAPPING_TYPE in present else (),
    )
