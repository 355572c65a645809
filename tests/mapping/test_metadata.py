"""Mappings from the org's `*Mapping__mdt` records, checked against the demo org's own records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.mapping.errors import MappingError
from pipeline.mapping.files import dump_mappings, load_mappings
from pipeline.mapping.metadata import (
    METADATA_FIELDS,
    from_metadata_records,
    metadata_mapping_set,
    metadata_query,
)
from pipeline.mapping.spec import (
    ENTITIES,
    METADATA_TYPE,
    Entity,
    Location,
    MappingRecord,
    MappingSpecError,
)
from pipeline.sandbox.salesforce.mapping_records import records_of
from pipeline.sandbox.salesforce.schema import METADATA_TYPES


def rest_record(entity: Entity, **values: Any) -> dict[str, Any]:
    """A record as simple-salesforce returns it from `query_all(metadata_query(entity))`."""
    type_name = METADATA_TYPE[entity]
    row: dict[str, Any] = {
        "attributes": {"type": type_name, "url": f"/services/data/v62.0/sobjects/{type_name}/m"}
    }
    row.update(dict.fromkeys(METADATA_FIELDS[entity]))
    row.update({"Active__c": True, **values})
    return row


def demo_rows(entity: Entity) -> list[dict[str, Any]]:
    """The demo org's records of `entity`'s type, with exactly the selected fields."""
    return [
        rest_record(
            entity,
            **{name: record.columns()[name] for name in METADATA_FIELDS[entity]},
        )
        for record in records_of(METADATA_TYPE[entity])
    ]


def problems_of(entity: Entity, *rows: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(MappingSpecError) as raised:
        from_metadata_records(entity, rows)
    return raised.value.problems


ACCOUNT = {"DeveloperName": "A", "Source_Object__c": "Account"}


@pytest.mark.parametrize("entity", ENTITIES)
def test_selected_fields_exist_on_the_orgs_metadata_type(entity: Entity) -> None:
    (schema,) = [obj for obj in METADATA_TYPES if obj.name == METADATA_TYPE[entity]]
    fields = {field.name for field in schema.fields}
    assert set(METADATA_FIELDS[entity]) <= fields
    mapping_fields = {f for f in fields if f.endswith("__c")} | {"DeveloperName"}
    assert mapping_fields <= set(METADATA_FIELDS[entity])


def test_the_query_selects_the_fields_of_the_type_in_a_stable_order() -> None:
    assert metadata_query("accounts") == (
        "SELECT DeveloperName, Source_Object__c, Where__c, Fields__c, Hardcoded__c, "
        "Custom_Fields__c, Combine__c, Active__c FROM AccountMapping__mdt ORDER BY DeveloperName"
    )


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_demo_record_converts_and_validates(entity: Entity) -> None:
    demo = records_of(METADATA_TYPE[entity])

    records = from_metadata_records(entity, demo_rows(entity))

    assert [r.name for r in records] == [d.developer_name for d in demo]
    for record, source in zip(records, demo, strict=True):
        assert record.object == source.source_object
        assert record.where == source.where
        assert record.fields == dict(source.fields)
        assert record.hardcoded == dict(source.hardcoded)
        assert record.custom_fields == dict(source.custom_fields)
        assert record.segments == source.segments
        assert record.sync_level == source.sync_level
        assert record.active is True


def test_json_fields_are_parsed_into_the_model() -> None:
    row = rest_record(
        "accounts",
        **ACCOUNT,
        Fields__c='{"code": "Id", "address.locality": "BillingCity"}',
        Hardcoded__c='{"daysBeforeBillDue": 30, "flag": true, "none": null}',
        Custom_Fields__c='{"region": "Region__c"}',
    )

    assert from_metadata_records("accounts", [row]) == [
        MappingRecord(
            "A",
            "Account",
            fields={"code": "Id", "address.locality": "BillingCity"},
            hardcoded={"daysBeforeBillDue": 30, "flag": True, "none": None},
            custom_fields={"region": "Region__c"},
        )
    ]


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_blank_json_fields_mean_empty(blank: str | None) -> None:
    row = rest_record(
        "accounts", **ACCOUNT, Fields__c=blank, Hardcoded__c=blank, Custom_Fields__c=blank
    )

    assert from_metadata_records("accounts", [row]) == [MappingRecord("A", "Account")]


def test_invalid_json_names_the_type_the_record_and_the_field() -> None:
    row = rest_record("pricings", **ACCOUNT, Sync_Level__c="line_item", Fields__c='{"code": Id}')

    assert problems_of("pricings", row) == (
        "PricingMapping__mdt 'A': Fields__c: invalid JSON: Expecting value (line 1 column 10)",
    )


def test_json_that_is_not_an_object_is_an_error() -> None:
    row = rest_record("accounts", **ACCOUNT, Hardcoded__c='["code", "Id"]')

    assert problems_of("accounts", row) == (
        "AccountMapping__mdt 'A': Hardcoded__c: expected a JSON object ({...}), not list",
    )


def test_a_repeated_json_key_is_an_error_rather_than_last_one_wins() -> None:
    row = rest_record("accounts", **ACCOUNT, Fields__c='{"code": "Id", "code": "Name"}')

    assert problems_of("accounts", row) == (
        "AccountMapping__mdt 'A': Fields__c: invalid JSON: duplicate key 'code'",
    )


def test_rule_problems_name_the_metadata_field() -> None:
    row = rest_record(
        "plans",
        **ACCOUNT,
        Fields__c=json.dumps({"code": "Order..Id"}),
        Custom_Fields__c=json.dumps({"Bad Key": "Name"}),
    )

    assert problems_of("plans", row) == (
        "PlanMapping__mdt 'A': Fields__c: fields key 'code': 'Order..Id' is not a Salesforce "
        "field or relationship path (Field__c, Order.Account.Name)",
        "PlanMapping__mdt 'A': Custom_Fields__c: custom_fields key 'Bad Key' is not an m3ter "
        "field name (camelCase, dots for nested fields: address.locality)",
        "PlanMapping__mdt 'A': Sync_Level__c: missing key 'sync_level' (required in plans "
        "mappings: 'agreement' or 'line_item')",
    )


def test_problems_of_all_records_are_reported_together() -> None:
    rows = [
        rest_record("accounts", DeveloperName="A", Source_Object__c=None),
        rest_record("accounts", **ACCOUNT),
        rest_record("accounts", DeveloperName=None, Source_Object__c="Account"),
    ]

    with pytest.raises(MappingError) as raised:
        from_metadata_records("accounts", rows)

    assert str(raised.value).splitlines() == [
        "AccountMapping__mdt 'A': Source_Object__c: missing key 'object'",
        "AccountMapping__mdt 'A': DeveloperName: duplicate mapping name 'A'",
        "AccountMapping__mdt record #3: DeveloperName: missing key 'name'",
    ]


def test_an_inactive_record_keeps_active_false() -> None:
    (record,) = from_metadata_records(
        "accounts", [rest_record("accounts", **ACCOUNT, Active__c=False)]
    )

    assert record.active is False


def test_rest_attributes_and_unselected_fields_are_ignored() -> None:
    row = rest_record("accounts", **ACCOUNT, Id="m0100000000000001", MasterLabel="A", Foo__c=1)

    assert from_metadata_records("accounts", [row]) == [MappingRecord("A", "Account")]


def test_a_metadata_set_locates_keys_by_type_record_and_field() -> None:
    mapping_set = metadata_mapping_set({e: demo_rows(e) for e in ENTITIES})
    name = mapping_set["pricings"][0].name

    assert mapping_set.locate("pricings", name, "fields", "unitPrice") == Location(
        f"PricingMapping__mdt.{name}.Fields__c"
    )
    assert mapping_set.label("pricings", name) == f"PricingMapping__mdt.{name}: mapping {name!r}"


def test_demo_records_export_to_yaml_and_load_back_equal(tmp_path: Path) -> None:
    mapping_set = metadata_mapping_set({e: demo_rows(e) for e in ENTITIES})

    dump_mappings(mapping_set, tmp_path / "mappings")

    assert len(mapping_set) == sum(len(records_of(t)) for t in METADATA_TYPE.values())
    assert load_mappings(tmp_path / "mappings") == mapping_set
