"""Mappings compiled to SQL over the raw tables (DESIGN §5-§6).

Mapping files are written into `tmp_path` so that problems carry file:line, and the compiled
statements run over in-memory DuckDB tables whose columns are named by dotted paths.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.extract.plan import Column, resolve_path
from pipeline.mapping.compiler import (
    CONTINUES,
    CompiledEntity,
    CompiledSet,
    MappingCompileError,
    compile_mappings,
)
from pipeline.mapping.files import load_mappings
from pipeline.sandbox.salesforce.describe import demo_describe, object_describe
from pipeline.sandbox.salesforce.schema import demo_schema
from pipeline.warehouse.sql import identifier

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
SCHEMA = demo_schema().visible_to_integration_user()
STAMP = dt.datetime(2024, 1, 1)


def describe(name: str) -> dict:
    obj = SCHEMA.sobject(name)
    if obj is None:
        raise KeyError(f"sObject type '{name}' is not supported")
    return object_describe(SCHEMA, obj, "59.0")


def write(directory: Path, **files: str) -> Path:
    for entity, text in files.items():
        (directory / f"{entity}.yaml").write_text(textwrap.dedent(text))
    return directory


def compile_files(directory: Path, **files: str) -> CompiledSet:
    return compile_mappings(load_mappings(write(directory, **files)), describe)


def problems_of(directory: Path, **files: str) -> tuple[str, ...]:
    with pytest.raises(MappingCompileError) as info:
        compile_files(directory, **files)
    return info.value.problems


def stage(
    compiled: CompiledEntity,
    rows: list[dict[str, Any]],
    columns: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Run the entity's statement over `rows` (raw column path -> value), ordered by record.

    The raw table has every column the mappings read, typed as the extract types it, plus
    `columns` (path -> DuckDB type).
    """
    read = {
        path: Column(path, resolve_path(mapping.source, path, describe)[1]).duckdb_type
        for mapping in compiled.mappings
        for path in mapping.columns
    }
    columns = {
        "Id": "VARCHAR",
        "IsDeleted": "BOOLEAN",
        "_version_stamp": "TIMESTAMP",
        CONTINUES: "VARCHAR",
        **read,
        **(columns or {}),
    }
    con = duckdb.connect()
    declared = ", ".join(f"{identifier(path)} {kind}" for path, kind in columns.items())
    con.execute(f"CREATE TABLE src ({declared})")
    defaults = {"IsDeleted": False, "_version_stamp": STAMP}
    con.executemany(
        f"INSERT INTO src VALUES ({', '.join('?' for _ in columns)})",
        [[{**defaults, **row}.get(path) for path in columns] for row in rows],
    )
    result = con.execute(
        f"SELECT * FROM ({compiled.sql(lambda source: 'src', extra)}) "
        "ORDER BY _source_id, _tombstone, _mapping"
    )
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def one_row(compiled: CompiledEntity, **row: Any) -> dict[str, Any]:
    (staged,) = stage(compiled, [{"Id": "802000000000001AAA", **row}])
    return staged


# An OrderItem pricing with every key the tests below vary.
PRICING = """\
- name: OrderItem_Pricing
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true
  sync_level: line_item
  fields:
    planCode: OrderId
    aggregationCode: Product2.M3ter_Aggregation_Code__c
    startDate: ServiceDate
    endDate: EndDate
    unitPrice: UnitPrice
"""
SYNCED = {
    "Order.Sync_To_M3ter__c": True,
    "OrderId": "801000000000001AAA",
    "Product2.M3ter_Aggregation_Code__c": "api_calls",
    "ServiceDate": dt.date(2024, 1, 1),
    "EndDate": dt.date(2024, 12, 31),
    "UnitPrice": 0.25,
}


UNDATED_PRICING = PRICING.replace("    startDate: ServiceDate\n    endDate: EndDate\n", "")


def pricing(directory: Path, more: str = "", base: str = PRICING) -> CompiledEntity:
    return compile_files(directory, pricings=base + more)["pricings"]


def segmented(directory: Path, segments: str) -> CompiledEntity:
    return pricing(directory, f"  segments: '{segments}'\n")


# --- codes and field names ------------------------------------------------------------------------


def test_code_defaults_to_the_source_record_id(tmp_path):
    staged = one_row(pricing(tmp_path), **SYNCED)
    assert staged["code"] == "802000000000001AAA"


def test_a_code_naming_the_record_names_the_line_it_continues(tmp_path):
    staged = one_row(pricing(tmp_path), **SYNCED, _continues="802000000000009AAA")
    assert staged["code"] == staged["_identity"] == "802000000000009AAA"
    assert staged["_source_id"] == "802000000000001AAA"


def test_a_mapping_s_identity_field_names_the_line(tmp_path):
    compiled = pricing(tmp_path, "  identity: QuoteLineItemId\n")
    staged = one_row(compiled, **SYNCED, QuoteLineItemId="0QL000000000001AAA")
    assert staged["code"] == staged["_identity"] == "0QL000000000001AAA"
    assert not compiled.succeeds("OrderItem")


def test_a_line_without_its_identity_field_value_keeps_its_id(tmp_path):
    compiled = pricing(tmp_path, "  identity: QuoteLineItemId\n")
    assert one_row(compiled, **SYNCED)["code"] == "802000000000001AAA"


def test_an_identity_on_a_header_object_is_an_error(tmp_path):
    text = """\
    - name: Orders
      object: Order
      sync_level: agreement
      identity: OrderNumber
      fields:
        name: OrderNumber
        planTemplateCode: Type
    """
    (problem,) = problems_of(tmp_path, plans=text)
    assert "identity: only lines are replaced (Order is not a line object)" in problem


def test_an_identity_of_a_number_field_is_an_error(tmp_path):
    (problem,) = problems_of(tmp_path, pricings=PRICING + "  identity: Quantity\n")
    assert "identity: Quantity is a double field, not an id or text naming the line" in problem


def test_two_mappings_of_one_object_naming_different_identities_are_an_error(tmp_path):
    plans = """\
    - name: Items
      object: OrderItem
      sync_level: line_item
      identity: Description
      fields:
        name: Product2.Name
        planTemplateCode: Product2.M3ter_Plan_Template_Code__c
    """
    problems = problems_of(
        tmp_path, plans=plans, pricings=PRICING + "  identity: QuoteLineItemId\n"
    )
    assert any("identity: QuoteLineItemId differs from mapping 'Items'" in p for p in problems)


def test_a_hardcoded_code_replaces_the_default(tmp_path):
    compiled = pricing(tmp_path, "  hardcoded:\n    code: fixed-code\n")
    assert one_row(compiled, **SYNCED)["code"] == "fixed-code"


def test_entities_without_codes_neither_stage_nor_read_one(tmp_path):
    compiled = compile_files(
        tmp_path,
        commitments="""\
        - name: Order_Prepayment
          object: Order
          sync_level: agreement
          fields:
            accountCode: AccountId
            amount: Prepayment_Amount__c
        """,
    )
    assert "code" not in compiled["commitments"].columns
    assert compiled.fields("Order") == ("AccountId", "Prepayment_Amount__c")


def test_an_unknown_m3ter_field_is_an_error_suggesting_the_closest_name(tmp_path):
    (problem,) = problems_of(
        tmp_path, pricings=PRICING.replace("unitPrice: UnitPrice", "unitPrise: UnitPrice")
    )
    assert problem == (
        f"{tmp_path / 'pricings.yaml'}:10: mapping 'OrderItem_Pricing': fields key 'unitPrise': "
        "not a field of m3ter pricings (did you mean 'unitPrice'?)"
    )


def test_an_unknown_salesforce_field_names_file_line_mapping_key_and_field(tmp_path):
    (problem,) = problems_of(
        tmp_path, pricings=PRICING.replace("unitPrice: UnitPrice", "unitPrice: UnitPrise")
    )
    assert problem.startswith(
        f"{tmp_path / 'pricings.yaml'}:10: mapping 'OrderItem_Pricing': fields key 'unitPrice': "
        "'UnitPrise' does not resolve on OrderItem (OrderItem has no field 'UnitPrise'"
    )


def test_a_field_hidden_by_field_level_security_is_a_compile_error_naming_file_mapping_key_and_field(  # noqa: E501
    tmp_path,
):
    (problem,) = problems_of(
        tmp_path,
        pricings=PRICING.replace("unitPrice: UnitPrice", "unitPrice: Internal_Margin__c"),
    )
    assert problem == (
        f"{tmp_path / 'pricings.yaml'}:10: mapping 'OrderItem_Pricing': fields key 'unitPrice': "
        "'Internal_Margin__c' does not resolve on OrderItem (OrderItem has no field "
        "'Internal_Margin__c'; fields hidden by field-level security count as missing)"
    )


def test_a_where_problem_names_file_line_and_mapping(tmp_path):
    (problem,) = problems_of(
        tmp_path, pricings=PRICING.replace("Sync_To_M3ter__c = true", "Sync_To_M3ter__c = 'yes'")
    )
    assert problem == (
        f"{tmp_path / 'pricings.yaml'}:3: mapping 'OrderItem_Pricing': where: "
        "Order.Sync_To_M3ter__c: a boolean field cannot be compared with a quoted string"
    )


def test_an_object_that_cannot_be_described_is_an_error(tmp_path):
    (problem,) = problems_of(
        tmp_path, pricings=PRICING.replace("object: OrderItem", "object: Ordr")
    )
    assert problem.startswith(
        f"{tmp_path / 'pricings.yaml'}:2: mapping 'OrderItem_Pricing': object: 'Ordr' cannot be "
        "described"
    )


def test_an_object_spelled_otherwise_than_in_the_org_is_an_error(tmp_path):
    (problem,) = problems_of(
        tmp_path, pricings=PRICING.replace("object: OrderItem", "object: orderitem")
    )
    assert problem.endswith("object: 'orderitem' is spelled 'OrderItem' in the org")


def test_an_object_the_integration_user_cannot_query_is_an_error(tmp_path):
    def unqueryable(name: str) -> dict:
        return {**describe(name), "queryable": name != "OrderItem"}

    with pytest.raises(MappingCompileError) as info:
        compile_mappings(load_mappings(write(tmp_path, pricings=PRICING)), unqueryable)
    (problem,) = info.value.problems
    assert "mapping 'OrderItem_Pricing': object: the integration user cannot query OrderItem" in (
        problem
    )


# --- hardcoded values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("cumulative", "'yes'", "'yes' is not true or false"),
        ("minimumSpend", "'ten'", "'ten' is not a number"),
        ("description", "5", "5 is not text"),
        (
            "startDate",
            "'2024-01-01'",
            "'2024-01-01' has no UTC offset (write 2024-01-01T00:00:00Z)",
        ),
        ("endDate", "'next year'", "'next year' is not an RFC 3339 date-time"),
    ],
)
def test_a_hardcoded_value_of_the_wrong_type_is_an_error(tmp_path, key, value, message):
    (problem,) = problems_of(
        tmp_path, pricings=UNDATED_PRICING + f"  hardcoded:\n    {key}: {value}\n"
    )
    assert problem == (
        f"{tmp_path / 'pricings.yaml'}:10: mapping 'OrderItem_Pricing': "
        f"hardcoded key {key!r}: {message}"
    )


def test_a_hardcoded_whole_number_field_refuses_a_fraction(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        accounts="""\
        - name: A
          object: Account
          hardcoded:
            daysBeforeBillDue: 1.5
        """,
    )
    assert problem == (
        f"{tmp_path / 'accounts.yaml'}:4: mapping 'A': hardcoded key 'daysBeforeBillDue': "
        "1.5 is not a whole number"
    )


def test_hardcoded_values_are_staged_as_the_target_type(tmp_path):
    compiled = compile_files(
        tmp_path,
        accounts="""\
        - name: A
          object: Account
          hardcoded:
            name: Acme
            daysBeforeBillDue: 30
            billEpoch: '2024-02-29'
        """,
    )["accounts"]
    staged = one_row(compiled)
    assert (staged["name"], staged["daysBeforeBillDue"], staged["billEpoch"]) == (
        "Acme",
        30,
        "2024-02-29",
    )


# --- dates ----------------------------------------------------------------------------------------

CONTRACT = """\
- name: Contracts
  object: Contract
  fields:
    name: ContractNumber
    accountCode: AccountId
    startDate: StartDate
    endDate: {end}
"""


def test_a_salesforce_end_date_becomes_the_next_day_for_a_date_target(tmp_path):
    compiled = compile_files(tmp_path, contracts=CONTRACT.format(end="EndDate"))["contracts"]
    staged = one_row(
        compiled,
        StartDate=dt.date(2024, 1, 1),
        EndDate=dt.date(2024, 12, 31),
    )
    assert (staged["startDate"], staged["endDate"]) == ("2024-01-01", "2025-01-01")


def test_a_salesforce_end_date_becomes_the_next_midnight_for_a_datetime_target(tmp_path):
    staged = one_row(pricing(tmp_path), **{**SYNCED, "EndDate": dt.date(2024, 2, 28)})
    assert (staged["startDate"], staged["endDate"]) == (
        "2024-01-01T00:00:00Z",
        "2024-02-29T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("activated", "end"),
    [
        (dt.datetime(2024, 6, 30, 0, 0, 0), "2024-06-30"),
        (dt.datetime(2024, 6, 30, 0, 0, 1), "2024-07-01"),
        (dt.datetime(2024, 6, 30, 23, 59, 59), "2024-07-01"),
    ],
)
def test_a_datetime_source_for_an_end_date_rounds_up_to_the_next_day_unless_midnight(
    tmp_path, activated, end
):
    compiled = compile_files(tmp_path, contracts=CONTRACT.format(end="ActivatedDate"))["contracts"]
    staged = one_row(compiled, ActivatedDate=activated)
    assert staged["endDate"] == end


def test_a_datetime_source_for_a_datetime_target_keeps_its_time_in_rfc_3339(tmp_path):
    compiled = pricing(
        tmp_path, base=PRICING.replace("startDate: ServiceDate", "startDate: Order.ActivatedDate")
    )
    staged = one_row(
        compiled, **{**SYNCED, "Order.ActivatedDate": dt.datetime(2024, 3, 1, 10, 5, 9)}
    )
    assert staged["startDate"] == "2024-03-01T10:05:09Z"


def test_a_datetime_source_for_a_date_target_keeps_its_day(tmp_path):
    compiled = compile_files(
        tmp_path,
        contracts=CONTRACT.format(end="EndDate").replace(
            "startDate: StartDate", "startDate: ActivatedDate"
        ),
    )["contracts"]
    staged = one_row(compiled, ActivatedDate=dt.datetime(2024, 3, 1, 23, 0))
    assert staged["startDate"] == "2024-03-01"


def test_dates_and_datetimes_sent_as_text_use_the_wire_formats(tmp_path):
    compiled = compile_files(
        tmp_path,
        contracts=CONTRACT.format(end="EndDate")
        + "    description: ActivatedDate\n    purchaseOrderNumber: CustomerSignedDate\n",
    )["contracts"]
    staged = one_row(
        compiled,
        ActivatedDate=dt.datetime(2024, 3, 1, 10, 0),
        CustomerSignedDate=dt.date(2024, 2, 1),
    )
    assert (staged["description"], staged["purchaseOrderNumber"]) == (
        "2024-03-01T10:00:00Z",
        "2024-02-01",
    )


def test_a_hardcoded_end_date_becomes_the_next_day(tmp_path):
    compiled = compile_files(
        tmp_path,
        contracts="""\
        - name: Contracts
          object: Contract
          hardcoded:
            startDate: '2024-01-01'
            endDate: '2024-12-31'
        """,
    )["contracts"]
    staged = one_row(compiled)
    assert (staged["startDate"], staged["endDate"]) == ("2024-01-01", "2025-01-01")


def test_a_hardcoded_datetime_is_converted_to_utc(tmp_path):
    compiled = pricing(
        tmp_path,
        "  hardcoded:\n    startDate: '2024-01-01T02:00:00+02:00'\n",
        base=UNDATED_PRICING,
    )
    assert one_row(compiled, **SYNCED)["startDate"] == "2024-01-01T00:00:00Z"


# --- conversions ----------------------------------------------------------------------------------

TEXT_PRICE = PRICING.replace("unitPrice: UnitPrice", "unitPrice: Product2.ProductCode")


def test_text_read_as_a_number_is_converted(tmp_path):
    compiled = pricing(tmp_path, base=TEXT_PRICE)
    staged = one_row(compiled, **SYNCED, **{"Product2.ProductCode": "1.5"})
    assert (staged["unitPrice"], staged["_errors"]) == (1.5, [])


def test_text_read_as_a_number_that_fails_conversion_gives_an_error_message(tmp_path):
    compiled = pricing(tmp_path, base=TEXT_PRICE)
    staged = one_row(compiled, **SYNCED, **{"Product2.ProductCode": "abc"})
    assert staged["unitPrice"] is None
    (error,) = staged["_errors"]
    assert error.startswith("unitPrice: abc (from Product2.ProductCode) is not a")


def test_a_null_text_read_as_a_number_is_not_an_error(tmp_path):
    compiled = pricing(tmp_path, base=TEXT_PRICE)
    staged = one_row(compiled, **SYNCED, **{"Product2.ProductCode": None})
    assert (staged["unitPrice"], staged["_errors"]) == (None, [])


def test_a_conversion_error_message_reads_as_a_sentence(tmp_path):
    compiled = pricing(tmp_path, base=TEXT_PRICE)
    staged = one_row(compiled, **SYNCED, **{"Product2.ProductCode": "abc"})
    assert staged["_errors"] == ["unitPrice: abc (from Product2.ProductCode) is not a number"]


def test_a_fractional_number_for_a_whole_number_target_is_an_error(tmp_path):
    compiled = compile_files(
        tmp_path,
        accounts="""\
        - name: A
          object: Account
          fields:
            daysBeforeBillDue: AnnualRevenue
        """,
    )["accounts"]
    rows = stage(
        compiled,
        [
            {"Id": "001000000000001AAA", "AnnualRevenue": 30.0},
            {"Id": "001000000000002AAA", "AnnualRevenue": 2.5},
        ],
    )
    assert (rows[0]["daysBeforeBillDue"], rows[0]["_errors"]) == (30, [])
    (error,) = rows[1]["_errors"]
    assert error.startswith("daysBeforeBillDue: 2.5 (from AnnualRevenue) is not a")


def test_text_read_as_a_date_that_fails_conversion_gives_an_error_message(tmp_path):
    compiled = compile_files(
        tmp_path, contracts=CONTRACT.format(end="EndDate").replace("StartDate", "SpecialTerms")
    )["contracts"]
    staged = one_row(compiled, SpecialTerms="soon")
    assert staged["startDate"] is None
    (error,) = staged["_errors"]
    assert error.startswith("startDate: soon (from SpecialTerms) is not a")


def test_a_field_whose_type_cannot_become_the_target_is_a_compile_error(tmp_path):
    (problem,) = problems_of(
        tmp_path, pricings=PRICING.replace("unitPrice: UnitPrice", "unitPrice: ServiceDate")
    )
    assert problem.endswith(
        "mapping 'OrderItem_Pricing': fields key 'unitPrice': a date field cannot become m3ter "
        "a number"
    )


# --- custom fields --------------------------------------------------------------------------------

ACCOUNT_CUSTOM = """\
- name: A
  object: Account
  fields:
    name: Name
  custom_fields:
    region: Region__c
    revenue: AnnualRevenue
    employees: NumberOfEmployees
"""


def test_custom_fields_are_a_json_object_keeping_numbers_as_numbers(tmp_path):
    compiled = compile_files(tmp_path, accounts=ACCOUNT_CUSTOM)["accounts"]
    staged = one_row(
        compiled,
        Name="Acme",
        Region__c="EMEA",
        AnnualRevenue=1500000.5,
        NumberOfEmployees=12,
    )
    assert json.loads(staged["customFields"]) == {
        "region": "EMEA",
        "revenue": 1500000.5,
        "employees": 12,
    }


def test_custom_fields_whose_value_is_null_are_omitted(tmp_path):
    compiled = compile_files(tmp_path, accounts=ACCOUNT_CUSTOM)["accounts"]
    staged = one_row(compiled, Name="Acme", AnnualRevenue=2.5)
    assert json.loads(staged["customFields"]) == {"revenue": 2.5}


def test_a_mapping_without_custom_fields_stages_an_empty_object(tmp_path):
    compiled = compile_files(tmp_path, accounts="- name: A\n  object: Account\n")["accounts"]
    assert one_row(compiled)["customFields"] == "{}"


def test_date_and_boolean_custom_fields_are_sent_as_text(tmp_path):
    compiled = compile_files(
        tmp_path,
        contracts="""\
        - name: Contracts
          object: Contract
          custom_fields:
            signed: CustomerSignedDate
            archived: Account.IsDeleted
        """,
    )["contracts"]
    staged = one_row(
        compiled, CustomerSignedDate=dt.date(2024, 2, 1), **{"Account.IsDeleted": True}
    )
    assert json.loads(staged["customFields"]) == {"signed": "2024-02-01", "archived": "true"}


def test_a_datetime_custom_field_is_sent_in_rfc_3339(tmp_path):
    compiled = compile_files(
        tmp_path,
        contracts="""\
        - name: Contracts
          object: Contract
          custom_fields:
            activated: ActivatedDate
        """,
    )["contracts"]
    staged = one_row(compiled, ActivatedDate=dt.datetime(2024, 3, 1, 10, 0))
    assert json.loads(staged["customFields"]) == {"activated": "2024-03-01T10:00:00Z"}


def test_custom_fields_on_pricings_are_an_error(tmp_path):
    (problem,) = problems_of(
        tmp_path, pricings=PRICING + "  custom_fields:\n    note: Description\n"
    )
    assert problem == (
        f"{tmp_path / 'pricings.yaml'}:11: mapping 'OrderItem_Pricing': "
        "custom_fields key 'note': m3ter pricings have no custom fields"
    )


def test_an_unresolved_custom_field_names_its_key(tmp_path):
    (problem,) = problems_of(
        tmp_path, accounts=ACCOUNT_CUSTOM.replace("region: Region__c", "region: Credit_Rating__c")
    )
    assert problem.startswith(
        f"{tmp_path / 'accounts.yaml'}:5: mapping 'A': custom_fields key 'region': "
        "'Credit_Rating__c' does not resolve on Account"
    )


# --- segments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "segments",
    [
        '{"region": "Order.Account.Region__c", "tier": "Standard"}',
        "region: Order.Account.Region__c, tier: Standard",
    ],
    ids=["json", "key-value"],
)
def test_segments_are_resolved_from_fields_and_literals(tmp_path, segments):
    staged = one_row(
        segmented(tmp_path, segments),
        **SYNCED,
        **{"Order.Account.Region__c": "EMEA"},
    )
    assert json.loads(staged["segment"]) == {"region": "EMEA", "tier": "Standard"}
    assert staged["_segment_wildcards"] == 0


@pytest.mark.parametrize("region", [None, ""])
def test_a_segment_key_whose_field_is_null_is_the_wildcard_and_counted(tmp_path, region):
    compiled = segmented(tmp_path, "region: Order.Account.Region__c, tier: Standard")
    staged = one_row(compiled, **SYNCED, **{"Order.Account.Region__c": region})
    assert json.loads(staged["segment"]) == {"region": "*", "tier": "Standard"}
    assert staged["_segment_wildcards"] == 1


def test_an_unsegmented_pricing_has_no_segment(tmp_path):
    staged = one_row(pricing(tmp_path), **SYNCED)
    assert (staged["segment"], staged["_segment_wildcards"]) == (None, 0)


def test_a_staged_row_names_the_fields_its_mapping_sets(tmp_path):
    staged = one_row(segmented(tmp_path, "region: Order.Account.Region__c"), **SYNCED)
    assert set(staged["_fields"]) >= {"code", "planCode", "unitPrice", "segment"}
    assert "description" not in staged["_fields"]


def test_an_unknown_segment_field_reference_is_a_compile_error(tmp_path):
    (problem,) = problems_of(
        tmp_path, pricings=PRICING + "  segments: 'region: Order.Account.Regoin__c'\n"
    )
    assert problem.startswith(
        f"{tmp_path / 'pricings.yaml'}:11: mapping 'OrderItem_Pricing': segments: key 'region': "
        "'Order.Account.Regoin__c' does not resolve on OrderItem"
    )


def test_a_segment_field_hidden_by_field_level_security_is_a_compile_error(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        pricings=PRICING + '  segments: \'{"rating": "Order.Account.Credit_Rating__c"}\'\n',
    )
    assert "segments: key 'rating': 'Order.Account.Credit_Rating__c' does not resolve" in problem


# --- tombstones -----------------------------------------------------------------------------------


def test_rows_no_mapping_takes_become_tombstones(tmp_path):
    rows = stage(
        pricing(tmp_path),
        [
            {"Id": "802000000000001AAA", **SYNCED},
            {"Id": "802000000000002AAA", **SYNCED, "Order.Sync_To_M3ter__c": False},
        ],
    )
    assert [(r["_source_id"], r["_tombstone"], r["_mapping"]) for r in rows] == [
        ("802000000000001AAA", False, "OrderItem_Pricing"),
        ("802000000000002AAA", True, None),
    ]


def test_a_tombstone_carries_only_the_source_and_its_version(tmp_path):
    (tombstone,) = stage(
        pricing(tmp_path),
        [{"Id": "802000000000002AAA", **SYNCED, "Order.Sync_To_M3ter__c": False}],
    )
    assert tombstone["_source_object"] == "OrderItem"
    assert tombstone["_version_stamp"] == STAMP
    assert tombstone["_errors"] == []
    assert tombstone["code"] is None
    assert tombstone["startDate"] is None


def test_a_deleted_row_becomes_a_tombstone_even_if_it_matches(tmp_path):
    rows = stage(
        pricing(tmp_path),
        [{"Id": "802000000000001AAA", **SYNCED, "IsDeleted": True}],
    )
    assert [(r["_source_id"], r["_tombstone"]) for r in rows] == [("802000000000001AAA", True)]


def test_a_row_taken_by_any_mapping_of_the_entity_is_not_a_tombstone(tmp_path):
    second = PRICING.replace("OrderItem_Pricing", "OrderItem_Pricing_Unsynced").replace(
        "Order.Sync_To_M3ter__c = true", "Order.Sync_To_M3ter__c = false"
    )
    compiled = compile_files(tmp_path, pricings=PRICING + second)["pricings"]
    rows = stage(
        compiled,
        [
            {"Id": "802000000000001AAA", **SYNCED},
            {"Id": "802000000000002AAA", **SYNCED, "Order.Sync_To_M3ter__c": False},
            {"Id": "802000000000003AAA", **SYNCED, "Order.Sync_To_M3ter__c": None},
        ],
    )
    assert [(r["_source_id"], r["_tombstone"], r["_mapping"]) for r in rows] == [
        ("802000000000001AAA", False, "OrderItem_Pricing"),
        ("802000000000002AAA", False, "OrderItem_Pricing_Unsynced"),
        ("802000000000003AAA", True, None),
    ]


def test_extra_relation_columns_are_passed_through_on_every_row(tmp_path):
    rows = stage(
        pricing(tmp_path),
        [
            {"Id": "802000000000001AAA", **SYNCED, "_partition": "2024-01-01"},
            {"Id": "802000000000002AAA", **SYNCED, "IsDeleted": True, "_partition": "2024-01-01"},
        ],
        columns={"_partition": "VARCHAR"},
        extra=("_partition",),
    )
    assert [r["_partition"] for r in rows] == ["2024-01-01", "2024-01-01"]


# --- fields read ----------------------------------------------------------------------------------


def test_fields_lists_every_path_the_mappings_of_an_object_read(tmp_path):
    compiled = compile_files(
        tmp_path,
        pricings=PRICING + "  segments: 'region: Order.Account.Region__c, tier: Standard'\n",
        plans="""\
        - name: OrderItem_Plans
          object: OrderItem
          where: Quantity > 0
          sync_level: line_item
          fields:
            name: Product2.Name
            planTemplateCode: Product2.M3ter_Plan_Template_Code__c
          custom_fields:
            orderNumber: Order.OrderNumber
        """,
        accounts="- name: A\n  object: Account\n  fields:\n    name: Name\n",
    )
    fields = compiled.fields("OrderItem")
    assert len(fields) == len(set(fields))
    assert set(fields) == {
        # pricing: where, fields, the code's default, segments
        "Order.Sync_To_M3ter__c",
        "OrderId",
        "Product2.M3ter_Aggregation_Code__c",
        "ServiceDate",
        "EndDate",
        "UnitPrice",
        "Id",
        "Order.Account.Region__c",
        # plan: where, fields, custom fields
        "Quantity",
        "Product2.Name",
        "Product2.M3ter_Plan_Template_Code__c",
        "Order.OrderNumber",
    }
    assert compiled.fields("Account") == ("Name", "Id")


def test_fields_are_named_in_their_canonical_case(tmp_path):
    compiled = compile_files(
        tmp_path,
        pricings=PRICING.replace("unitPrice: UnitPrice", "unitPrice: unitprice").replace(
            "Order.Sync_To_M3ter__c = true", "order.sync_to_m3ter__c = true"
        ),
    )
    fields = compiled.fields("OrderItem")
    assert {"UnitPrice", "Order.Sync_To_M3ter__c"} <= set(fields)
    assert not {"unitprice", "order.sync_to_m3ter__c"} & set(fields)


# --- sync level -----------------------------------------------------------------------------------


def test_sync_level_line_item_on_a_header_object_is_an_error(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        pricings="""\
        - name: Order_Pricing
          object: Order
          sync_level: line_item
          fields:
            planCode: Id
        """,
    )
    assert problem == (
        f"{tmp_path / 'pricings.yaml'}:3: mapping 'Order_Pricing': sync_level: 'line_item' needs "
        "a line object (OpportunityLineItem, OrderItem, QuoteLineItem, or any object whose "
        "mapping names its agreement's field in 'agreement'), not Order"
    )


def test_a_mapping_naming_an_agreement_field_makes_any_object_a_line(tmp_path):
    compiled = compile_files(
        tmp_path,
        pricings="""\
        - name: Quote_Pricing
          object: Quote
          sync_level: line_item
          agreement: OpportunityId
          fields:
            planCode: Id
        """,
    )
    (row,) = stage(compiled["pricings"], [{"Id": "0Q0A", "OpportunityId": "006A"}])
    assert row["_agreement"] == "006A"


def test_an_agreement_field_that_is_no_lookup_is_an_error(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        pricings="""\
        - name: Quote_Pricing
          object: Quote
          sync_level: line_item
          agreement: Name
          fields:
            planCode: Id
        """,
    )
    assert problem.endswith(
        "agreement: Name is a string field, not the lookup naming the line's agreement"
    )


def test_sync_level_agreement_on_a_line_object_is_an_error(tmp_path):
    (problem,) = problems_of(
        tmp_path,
        account_plans="""\
        - name: OrderItem_Account_Plans
          object: OrderItem
          sync_level: agreement
          fields:
            accountCode: Order.AccountId
        """,
    )
    assert problem == (
        f"{tmp_path / 'account_plans.yaml'}:3: mapping 'OrderItem_Account_Plans': sync_level: "
        "'agreement' on OrderItem groups an agreement's lines: compute fields key 'code' from "
        "the agreement and the product, e.g. '{OrderId}_{Product2.ProductCode}' (it is the "
        "line's Id), or sync at 'line_item'"
    )


# --- the set as a whole ---------------------------------------------------------------------------


def test_every_problem_of_a_set_is_reported_at_once(tmp_path):
    problems = problems_of(
        tmp_path,
        pricings=PRICING.replace("unitPrice: UnitPrice", "unitPrise: UnitPrice")
        + "  custom_fields:\n    note: Description\n",
        accounts="""\
        - name: A
          object: Account
          where: Nope__c = 1
          fields:
            name: Credit_Rating__c
        - name: B
          object: Account
          hardcoded:
            daysBeforeBillDue: 'thirty'
        """,
    )
    pricings, accounts = tmp_path / "pricings.yaml", tmp_path / "accounts.yaml"
    assert [p.split(": ", 2)[:2] for p in problems] == [
        [f"{accounts}:3", "mapping 'A'"],
        [f"{accounts}:5", "mapping 'A'"],
        [f"{accounts}:9", "mapping 'B'"],
        [f"{pricings}:10", "mapping 'OrderItem_Pricing'"],
        [f"{pricings}:11", "mapping 'OrderItem_Pricing'"],
    ]
    assert str(MappingCompileError(list(problems))) == "\n".join(problems)


def test_inactive_mappings_are_not_compiled(tmp_path):
    compiled = compile_files(
        tmp_path, pricings=PRICING.replace("UnitPrice", "Nope__c") + "  active: false\n"
    )
    assert compiled["pricings"].mappings == ()


def test_the_shipped_mappings_compile_against_the_demo_describe():
    compiled = compile_mappings(load_mappings(SHIPPED), describe)
    unmapped = {entity for entity in compiled.entities if not compiled[entity].mappings}
    assert unmapped == {"plan_groups", "plan_group_links"}  # the plan group example maps them
    assert {"Id", "Order.Sync_To_M3ter__c", "Order.Account.Region__c"} <= set(
        compiled.fields("OrderItem")
    )
    assert compiled.warnings == ()


QUOTE_LINE_PRICING = """
- name: Lines
  object: SBQQ__QuoteLine__c
  sync_level: agreement
  agreement: SBQQ__Quote__c
  fields:
    planCode: '{{SBQQ__Quote__c}}_{{SBQQ__Product__r.M3ter_Product_Code__c}}'
    aggregationCode: SBQQ__Product__r.M3ter_Aggregation_Code__c
    startDate: {start}
    unitPrice: M3ter_Monthly_Unit_Price__c
"""


def test_a_formula_over_a_parent_s_field_is_a_warning_naming_the_refresh(tmp_path):
    cpq = compile_mappings(
        load_mappings(
            write(tmp_path, pricings=QUOTE_LINE_PRICING.format(start="SBQQ__EffectiveStartDate__c"))
        ),
        demo_describe,
    )
    (warning,) = cpq.warnings
    assert (
        "pricings.yaml:2: mapping 'Lines': SBQQ__QuoteLine__c.SBQQ__EffectiveStartDate__c"
        in warning
    )
    assert "SBQQ__QuoteLine__c.SBQQ__EffectiveStartDate__c is calculated" in warning
    assert "m3sync refresh" in warning


def test_a_formula_over_the_record_s_own_fields_is_no_warning(tmp_path):
    cpq = compile_mappings(
        load_mappings(write(tmp_path, pricings=QUOTE_LINE_PRICING.format(start="CreatedDate"))),
        demo_describe,
    )
    assert cpq.warnings == ()


def test_the_plan_group_example_compiles_over_the_shipped_mappings(tmp_path):
    directory = tmp_path / "mappings"
    shutil.copytree(SHIPPED, directory)
    for path in (SHIPPED / "examples" / "plan_groups").glob("*.yaml"):
        shutil.copy(path, directory)
    compiled = compile_mappings(load_mappings(directory), describe)
    assert all(compiled[entity].mappings for entity in compiled.entities)
    assert compiled.warnings == ()
