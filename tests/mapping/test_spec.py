"""The mapping model: which records are valid for which entity, and how a set reports origins."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.mapping.errors import MappingError
from pipeline.mapping.products import PRODUCT_MAPPING_TYPE
from pipeline.mapping.spec import (
    AGREEMENT_ENTITIES,
    ENTITIES,
    KEYS,
    METADATA_TYPE,
    Entity,
    Location,
    MappingRecord,
    MappingSet,
    MappingSpecError,
    RecordOrigin,
    parse_record,
    record_problems,
)
from pipeline.sandbox.salesforce.schema import METADATA_TYPES


def messages(entity: Entity | None, data: dict[str, Any]) -> list[str]:
    return [problem.message for problem in record_problems(entity, data)]


def paths(entity: Entity | None, data: dict[str, Any]) -> list[tuple[str, ...]]:
    return [problem.path for problem in record_problems(entity, data)]


BASE: dict[str, Any] = {"name": "Account_Default", "object": "Account"}


def test_metadata_types_are_the_orgs_mapping_types_one_per_entity() -> None:
    assert set(METADATA_TYPE) == set(ENTITIES)
    mapping_types = {obj.name for obj in METADATA_TYPES} - {PRODUCT_MAPPING_TYPE}
    assert set(METADATA_TYPE.values()) == mapping_types


def test_a_record_with_only_name_and_object_has_empty_defaults() -> None:
    record = MappingRecord("Account_Default", "Account")

    assert record.where is None
    assert record.fields == record.hardcoded == record.custom_fields == {}
    assert record.segments is None
    assert record.sync_level is None
    assert record.active is True


def test_an_invalid_record_cannot_be_constructed() -> None:
    with pytest.raises(MappingError, match=r"mapping 'bad name': 'name' must be an identifier"):
        MappingRecord("bad name", "Account")


def test_mapping_errors_are_value_errors_listing_each_problem() -> None:
    with pytest.raises(ValueError, match="'name'") as raised:
        MappingRecord("bad name", "Order Item")

    assert isinstance(raised.value, MappingSpecError)
    assert len(raised.value.problems) == 2
    assert str(raised.value).splitlines() == list(raised.value.problems)


def test_blank_where_and_segments_are_stored_as_absent() -> None:
    record = MappingRecord("P", "OrderItem", where="  ", segments="", sync_level="line_item")

    assert record.where is None
    assert record.segments is None


def test_record_copies_its_dicts_so_later_changes_to_the_input_do_not_leak_in() -> None:
    fields = {"code": "Id"}
    record = MappingRecord("A", "Account", fields=fields)
    fields["name"] = "Name"

    assert record.fields == {"code": "Id"}


def test_unknown_key_is_reported_with_the_closest_known_key() -> None:
    assert messages("pricings", {**BASE, "segmnets": "x", "sync_level": "agreement"}) == [
        "unknown key 'segmnets' (did you mean 'segments'?)"
    ]


def test_missing_name_and_object_are_both_reported() -> None:
    assert messages("accounts", {}) == ["missing key 'name'", "missing key 'object'"]


@pytest.mark.parametrize("name", ["Account_Default", "a", "OrderItem_Pricing_2"])
def test_identifier_like_names_are_accepted(name: str) -> None:
    assert messages("accounts", {**BASE, "name": name}) == []


@pytest.mark.parametrize("name", ["", "2nd", "_x", "with space", "dash-ed", 7])
def test_names_that_are_not_identifiers_are_rejected(name: Any) -> None:
    assert paths("accounts", {**BASE, "name": name}) == [("name",)]


@pytest.mark.parametrize("source_object", ["Order.Account", "Order Item", "", 3])
def test_object_must_be_a_salesforce_object_api_name(source_object: Any) -> None:
    assert paths("accounts", {**BASE, "object": source_object}) == [("object",)]


@pytest.mark.parametrize(
    "key", ["code", "emailAddress", "address.locality", "address.addressLine1", "x1"]
)
def test_m3ter_field_names_are_camel_case_and_may_be_dotted(key: str) -> None:
    data = {**BASE, "fields": {key: "Id"}, "hardcoded": {key + "X": 1}}
    data["custom_fields"] = {key: "Name"}
    assert messages("accounts", data) == []


@pytest.mark.parametrize("key", ["Code", "email_address", "address..locality", "address.", "a b"])
def test_field_names_that_are_not_m3ter_camel_case_are_rejected(key: str) -> None:
    for section in ("fields", "custom_fields"):
        assert paths("accounts", {**BASE, section: {key: "Id"}}) == [(section, key)]
    assert paths("accounts", {**BASE, "hardcoded": {key: 1}}) == [("hardcoded", key)]


@pytest.mark.parametrize(
    "path", ["Id", "Region__c", "Order.Account.Name", "Order__r.Owner.Profile.Name"]
)
def test_salesforce_fields_and_relationship_paths_are_accepted(path: str) -> None:
    assert messages("accounts", {**BASE, "fields": {"name": path}}) == []


@pytest.mark.parametrize("path", ["", "Order..Name", ".Name", "Name.", "Order.Account Name", "1x"])
def test_salesforce_paths_must_be_dotted_identifiers(path: str) -> None:
    assert messages("accounts", {**BASE, "fields": {"name": path}}) == [
        f"fields key 'name': {path!r} is not a Salesforce field or relationship path "
        "(Field__c, Order.Account.Name)"
    ]


def test_salesforce_paths_of_more_than_five_levels_are_rejected() -> None:
    assert messages("accounts", {**BASE, "custom_fields": {"x": "A.B.C.D.E"}}) == []
    assert messages("accounts", {**BASE, "custom_fields": {"x": "A.B.C.D.E.F"}}) == [
        "custom_fields key 'x': 'A.B.C.D.E.F' has 6 levels; SOQL allows at most 5"
    ]


def test_mapped_values_must_be_text() -> None:
    assert messages("accounts", {**BASE, "fields": {"name": 1}}) == [
        "fields key 'name': value must be a Salesforce field or relationship path, not a number"
    ]


@pytest.mark.parametrize("value", ["NONE", 30, 1.5, True, False, None])
def test_hardcoded_values_may_be_text_numbers_booleans_or_null(value: Any) -> None:
    assert messages("accounts", {**BASE, "hardcoded": {"rounding": value}}) == []


@pytest.mark.parametrize("value", [[1], {"a": 1}, float("nan"), float("inf")])
def test_hardcoded_values_that_are_not_json_scalars_are_rejected(value: Any) -> None:
    assert paths("accounts", {**BASE, "hardcoded": {"rounding": value}}) == [
        ("hardcoded", "rounding")
    ]


@pytest.mark.parametrize("section", ["fields", "hardcoded", "custom_fields"])
def test_sections_must_be_mappings(section: str) -> None:
    assert paths("accounts", {**BASE, section: ["code", "Id"]}) == [(section,)]


def test_a_field_both_mapped_and_hardcoded_is_rejected() -> None:
    data = {**BASE, "fields": {"code": "Id"}, "hardcoded": {"code": "X"}}

    assert messages("accounts", data) == [
        "hardcoded key 'code' is also mapped in 'fields'; keep one"
    ]


def test_segments_are_allowed_in_pricings() -> None:
    data = {**BASE, "segments": "region: Region__c", "sync_level": "line_item"}

    assert messages("pricings", data) == []


@pytest.mark.parametrize("entity", [e for e in ENTITIES if e != "pricings"])
def test_segments_are_rejected_outside_pricings(entity: Entity) -> None:
    data = {**BASE, "segments": "region: Region__c"}
    if entity in AGREEMENT_ENTITIES:
        data["sync_level"] = "agreement"

    assert messages(entity, data) == ["'segments' is only allowed in pricings mappings"]


@pytest.mark.parametrize("entity", sorted(AGREEMENT_ENTITIES))
def test_sync_level_is_required_for_agreement_entities(entity: Entity) -> None:
    assert messages(entity, BASE) == [
        f"missing key 'sync_level' (required in {entity} mappings: 'agreement' or 'line_item')"
    ]


@pytest.mark.parametrize("entity", [e for e in ENTITIES if e not in AGREEMENT_ENTITIES])
def test_sync_level_is_rejected_outside_agreement_entities(entity: Entity) -> None:
    assert messages(entity, {**BASE, "sync_level": "agreement"}) == [
        "'sync_level' is only allowed in plans, pricings, plan_groups, plan_group_links, "
        "account_plans, commitments mappings"
    ]


@pytest.mark.parametrize("entity", [e for e in ENTITIES if e not in AGREEMENT_ENTITIES])
def test_agreement_is_rejected_outside_agreement_entities(entity: Entity) -> None:
    assert messages(entity, {**BASE, "agreement": "SBQQ__Quote__c"}) == [
        "'agreement' is only allowed in plans, pricings, plan_groups, plan_group_links, "
        "account_plans, commitments mappings"
    ]


def test_agreement_must_be_a_field_path() -> None:
    data = {**BASE, "sync_level": "line_item", "agreement": "SBQQ Quote"}
    assert messages("plans", data) == [
        "'agreement' must be the field naming a line's agreement (e.g. SBQQ__Quote__c), "
        "not 'SBQQ Quote'"
    ]


def test_sync_level_must_be_agreement_or_line_item() -> None:
    assert messages("plans", {**BASE, "sync_level": "header"}) == [
        "'sync_level' must be 'agreement' or 'line_item', not 'header'"
    ]


def test_active_must_be_a_boolean() -> None:
    assert messages("accounts", {**BASE, "active": "no"}) == [
        "'active' must be true or false, not 'no'"
    ]


def test_where_and_segments_must_be_text() -> None:
    data = {**BASE, "where": 1, "segments": ["a"], "sync_level": "line_item"}

    assert messages("pricings", data) == [
        "'where' must be text, not a number",
        "'segments' must be text, not a list",
    ]


def test_every_problem_of_a_record_is_reported_at_once() -> None:
    data = {
        "name": "x y",
        "objet": "Account",
        "fields": {"Code": "Id", "name": "A..B"},
        "hardcoded": {"name": []},
    }

    assert paths("plans", data) == [
        ("objet",),
        ("object",),
        ("name",),
        ("fields", "Code"),
        ("fields", "name"),
        ("hardcoded", "name"),
        ("hardcoded", "name"),
        ("sync_level",),
    ]


def test_parse_record_reads_none_as_absent() -> None:
    record, problems = parse_record(
        "accounts", {**BASE, "where": None, "fields": None, "active": None}
    )

    assert problems == []
    assert record == MappingRecord("Account_Default", "Account")


def test_parse_record_returns_no_record_when_there_are_problems() -> None:
    record, problems = parse_record("plans", BASE)

    assert record is None
    assert [p.path for p in problems] == [("sync_level",)]


def test_to_dict_lists_only_non_default_keys_in_export_order() -> None:
    record = MappingRecord(
        "P",
        "OrderItem",
        active=False,
        segments="region: Region__c",
        fields={"code": "Id"},
        sync_level="line_item",
        where="IsDeleted = false",
    )

    assert list(record.to_dict()) == [
        "name",
        "object",
        "where",
        "sync_level",
        "fields",
        "segments",
        "active",
    ]
    assert list(MappingRecord("A", "Account").to_dict()) == ["name", "object"]
    assert set(KEYS) == set(record.__dataclass_fields__)


def test_a_mapping_set_has_every_entity_even_when_empty() -> None:
    mapping_set = MappingSet({"accounts": [MappingRecord("A", "Account")]})

    assert mapping_set["accounts"] == (MappingRecord("A", "Account"),)
    assert all(mapping_set[entity] == () for entity in ENTITIES if entity != "accounts")
    assert len(mapping_set) == 1
    assert list(mapping_set) == [("accounts", MappingRecord("A", "Account"))]


def test_active_lists_only_the_switched_on_records() -> None:
    on, off = MappingRecord("On", "Account"), MappingRecord("Off", "Account", active=False)

    assert MappingSet({"accounts": [on, off]}).active("accounts") == (on,)


def test_a_mapping_set_rejects_duplicate_names_within_an_entity() -> None:
    with pytest.raises(MappingError, match="accounts mapping 'A': duplicate mapping name 'A'"):
        MappingSet({"accounts": [MappingRecord("A", "Account"), MappingRecord("A", "Contact")]})


def test_the_same_name_may_be_used_by_two_entities() -> None:
    record = MappingRecord("Same", "Account")

    assert len(MappingSet({"accounts": [record], "contracts": [record]})) == 2


def test_a_mapping_set_checks_the_entity_rules() -> None:
    with pytest.raises(MappingError, match="plans mapping 'P': missing key 'sync_level'"):
        MappingSet({"plans": [MappingRecord("P", "OrderItem")]})


def test_a_mapping_set_rejects_an_unknown_entity() -> None:
    with pytest.raises(MappingError, match="unknown entity 'pricing' \\(did you mean 'pricings'"):
        MappingSet({"pricing": []})  # type: ignore[dict-item]


def test_mapping_set_equality_ignores_where_records_came_from() -> None:
    record = MappingRecord("A", "Account")
    origin = RecordOrigin(Location("mappings/accounts.yaml", 1))

    assert MappingSet({"accounts": [record]}, {("accounts", "A"): origin}) == MappingSet(
        {"accounts": (record,)}
    )


def test_a_key_is_located_by_its_most_precise_known_path() -> None:
    origin = RecordOrigin(
        Location("m/accounts.yaml", 3),
        {
            ("fields",): Location("m/accounts.yaml", 5),
            ("fields", "code"): Location("m/accounts.yaml", 6),
        },
    )
    mapping_set = MappingSet(
        {"accounts": [MappingRecord("A", "Account")]}, {("accounts", "A"): origin}
    )

    assert mapping_set.locate("accounts", "A", "fields", "code") == Location("m/accounts.yaml", 6)
    assert mapping_set.locate("accounts", "A", "fields", "name") == Location("m/accounts.yaml", 5)
    assert mapping_set.locate("accounts", "A", "where") == Location("m/accounts.yaml", 3)
    assert mapping_set.label("accounts", "A", "fields", "code") == "m/accounts.yaml:6: mapping 'A'"


def test_a_mapping_without_origin_is_labelled_by_its_entity() -> None:
    mapping_set = MappingSet({"accounts": [MappingRecord("A", "Account")]})

    assert mapping_set.locate("accounts", "A") is None
    assert mapping_set.label("accounts", "A", "fields") == "accounts mapping 'A'"


def test_a_location_without_a_line_prints_just_its_source() -> None:
    assert str(Location("PricingMapping__mdt.X.Fields__c")) == "PricingMapping__mdt.X.Fields__c"
    assert str(Location("mappings/pricings.yaml", 14)) == "mappings/pricings.yaml:14"
