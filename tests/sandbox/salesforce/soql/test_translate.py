"""SOQL compiled to DuckDB and run on a small hand-made org: results, wire formats, refusals."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from pipeline.salesforce.ids import make_id
from pipeline.sandbox.salesforce.schema import create_table_sql, demo_schema
from pipeline.sandbox.salesforce.soql import CompiledQuery, SoqlError, compile_query

SCHEMA = demo_schema()
VISIBLE = SCHEMA.visible_to_integration_user()
TODAY = dt.date(2024, 1, 31)

ACME, GLOBEX, INITECH, OBRIEN = (make_id("001", n) for n in (1, 2, 3, 4))
CHAIN = [make_id("001", 10 + level) for level in range(7)]  # CHAIN[i] is the parent of CHAIN[i+1]
ORDER_1, ORDER_2 = make_id("801", 1), make_id("801", 2)
ITEM_1, ITEM_2, ITEM_3, ITEM_DELETED = (make_id("802", n) for n in (1, 2, 3, 4))
MAPPING = make_id("m04", 1)

ACCOUNTS = [
    # Id, Name, Region__c, Tier__c, AnnualRevenue, NumberOfEmployees, ParentId, IsDeleted,
    # Credit_Rating__c (hidden from the integration user)
    (ACME, "acme corp", "EMEA", "Premium", 1500.0, 10, None, False, "A"),
    (GLOBEX, "Globex", "NA", None, None, 250, None, False, "B"),
    (INITECH, "Initech", "NA", "Standard", 10.0, 5, None, True, "C"),
    (OBRIEN, "O'Brien -- Ltd", None, "Standard", 20.5, None, None, False, None),
    *[
        (
            CHAIN[level],
            f"Level {level}",
            "APAC",
            None,
            None,
            None,
            CHAIN[level - 1] if level else None,
            False,
            None,
        )
        for level in range(7)
    ],
]
ORDERS = [
    # Id, AccountId, Name, EffectiveDate, ActivatedDate, ContractId, Sync_To_M3ter__c
    (
        ORDER_1,
        GLOBEX,
        "First",
        dt.date(2024, 1, 31),
        dt.datetime(2024, 1, 31, 12, 34, 56, 789000),
        None,
        True,
    ),
    (ORDER_2, ACME, None, dt.date(2024, 1, 20), None, None, False),
]
ORDER_ITEMS = [
    # Id, OrderId, Quantity, UnitPrice, ServiceDate, Description, CreatedDate, IsDeleted
    (
        ITEM_1,
        ORDER_1,
        2.0,
        1500.0,
        dt.date(2024, 1, 31),
        "Gold plan",
        dt.datetime(2024, 1, 31, 12, 0),
        False,
    ),
    (
        ITEM_2,
        ORDER_2,
        1.0,
        10.5,
        dt.date(2024, 1, 30),
        "50% off",
        dt.datetime(2024, 1, 30, 23, 59, 59),
        False,
    ),
    (ITEM_3, None, 3.0, 7.0, None, None, dt.datetime(2024, 1, 29), False),
    (ITEM_DELETED, ORDER_1, 4.0, 1.0, None, "deleted", dt.datetime(2024, 1, 1), True),
]


@pytest.fixture(scope="module")
def org() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA org")
    for obj in SCHEMA.objects:
        con.execute(create_table_sql(obj))
    con.executemany(
        'INSERT INTO org."Account" ("Id", "Name", "Region__c", "Tier__c", "AnnualRevenue", '
        '"NumberOfEmployees", "ParentId", "IsDeleted", "Credit_Rating__c") '
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ACCOUNTS,
    )
    con.executemany(
        'INSERT INTO org."Order" ("Id", "AccountId", "Name", "EffectiveDate", "ActivatedDate", '
        '"ContractId", "Sync_To_M3ter__c", "IsDeleted") VALUES (?, ?, ?, ?, ?, ?, ?, false)',
        ORDERS,
    )
    con.executemany(
        'INSERT INTO org."OrderItem" ("Id", "OrderId", "Quantity", "UnitPrice", "ServiceDate", '
        '"Description", "CreatedDate", "IsDeleted") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        ORDER_ITEMS,
    )
    con.execute(
        'INSERT INTO org."PricingMapping__mdt" ("Id", "DeveloperName", "Active__c") '
        "VALUES (?, 'Usage', true)",
        [MAPPING],
    )
    yield con
    con.close()


def _compile(
    soql: str, api: str = "rest", include_deleted: bool = False, **options: Any
) -> CompiledQuery:
    return compile_query(
        soql,
        VISIBLE,
        api=api,
        include_deleted=include_deleted,  # type: ignore[arg-type]
        today=TODAY,
        **options,
    )


def _records(org: duckdb.DuckDBPyConnection, soql: str, **options: Any) -> list[dict[str, Any]]:
    compiled = _compile(soql, **options)
    rows = org.execute(compiled.sql, compiled.params).fetchall()
    return [json.loads(record) for _, record in rows]


def _bulk_rows(
    org: duckdb.DuckDBPyConnection, soql: str, **options: Any
) -> tuple[list[str], list[tuple[Any, ...]]]:
    compiled = _compile(soql, api="bulk", **options)
    result = org.execute(compiled.sql, compiled.params)
    return [d[0] for d in result.description], result.fetchall()


def _ids(org: duckdb.DuckDBPyConnection, where: str, sobject: str = "OrderItem") -> set[str]:
    return {r["Id"] for r in _records(org, f"SELECT Id FROM {sobject} WHERE {where}")}


def _refusal(soql: str, api: str = "rest") -> SoqlError:
    with pytest.raises(SoqlError) as failure:
        _compile(soql, api=api)
    return failure.value


# ---- REST record JSON ----------------------------------------------------------------------


def test_rest_records_have_attributes_then_fields_in_select_order_with_parents_nested(org):
    (record,) = _records(
        org,
        "SELECT Id, Order.Account.Region__c, Quantity, Order.Name "
        f"FROM OrderItem WHERE Id = '{ITEM_1}'",
    )
    assert record == {
        "attributes": {
            "type": "OrderItem",
            "url": f"/services/data/v59.0/sobjects/OrderItem/{ITEM_1}",
        },
        "Id": ITEM_1,
        "Order": {
            "attributes": {
                "type": "Order",
                "url": f"/services/data/v59.0/sobjects/Order/{ORDER_1}",
            },
            "Account": {
                "attributes": {
                    "type": "Account",
                    "url": f"/services/data/v59.0/sobjects/Account/{GLOBEX}",
                },
                "Region__c": "NA",
            },
            "Name": "First",
        },
        "Quantity": 2.0,
    }
    assert list(record) == ["attributes", "Id", "Order", "Quantity"]
    assert list(record["Order"]) == ["attributes", "Account", "Name"]


def test_a_null_lookup_renders_the_whole_parent_as_null(org):
    (record,) = _records(org, f"SELECT Id, Order.Account.Name FROM OrderItem WHERE Id = '{ITEM_3}'")
    assert record["Order"] is None


def test_a_null_lookup_further_up_the_path_nulls_only_that_parent(org):
    (record,) = _records(
        org, f"SELECT Contract.ContractNumber, Name FROM Order WHERE Id = '{ORDER_1}'"
    )
    assert record["Contract"] is None
    assert record["Name"] == "First"


def test_values_use_the_rest_json_types_and_formats(org):
    (record,) = _records(
        org,
        "SELECT Sync_To_M3ter__c, EffectiveDate, ActivatedDate, "
        "Account.NumberOfEmployees, Account.AnnualRevenue, Account.Tier__c "
        f"FROM Order WHERE Id = '{ORDER_1}'",
    )
    assert record["Sync_To_M3ter__c"] is True
    assert record["EffectiveDate"] == "2024-01-31"
    assert record["ActivatedDate"] == "2024-01-31T12:34:56.789+0000"
    assert record["Account"]["NumberOfEmployees"] == 250
    assert record["Account"]["AnnualRevenue"] is None
    assert record["Account"]["Tier__c"] is None


def test_doubles_keep_their_decimal_point_in_json(org):
    compiled = _compile(f"SELECT UnitPrice FROM OrderItem WHERE Id = '{ITEM_1}'")
    (row,) = org.execute(compiled.sql, compiled.params).fetchall()
    assert '"UnitPrice":1500.0' in row[1]


def test_the_api_version_goes_into_attribute_urls(org):
    (record,) = _records(org, f"SELECT Id FROM Account WHERE Id = '{ACME}'", api_version="62.0")
    assert record["attributes"]["url"] == f"/services/data/v62.0/sobjects/Account/{ACME}"


def test_names_are_case_insensitive_and_come_back_in_schema_casing(org):
    compiled = _compile("select id, order.account.region__c from orderitem")
    assert compiled.sobject == "OrderItem"
    assert compiled.columns == ("Id", "Order.Account.Region__c")
    (record,) = _records(
        org, f"select ORDER.account.REGION__C from ORDERITEM where ID = '{ITEM_2}'"
    )
    assert record["Order"]["Account"]["Region__c"] == "EMEA"


def test_a_five_level_parent_path_is_followed(org):
    (record,) = _records(
        org, f"SELECT Parent.Parent.Parent.Parent.Parent.Name FROM Account WHERE Id = '{CHAIN[6]}'"
    )
    level = record
    for _ in range(5):
        level = level["Parent"]
    assert level["Name"] == "Level 1"


def test_relationship_paths_with_a_shared_prefix_share_one_join():
    sql = _compile(
        "SELECT Order.Name, Order.Account.Name, Order.Account.Region__c "
        "FROM OrderItem WHERE Order.Account.Tier__c = 'x' ORDER BY Order.Name"
    ).sql
    assert sql.count("LEFT JOIN") == 2


def test_custom_metadata_records_are_queried_without_a_deleted_filter(org):
    (record,) = _records(org, "SELECT DeveloperName, Active__c FROM PricingMapping__mdt")
    assert record["attributes"]["type"] == "PricingMapping__mdt"
    assert (record["DeveloperName"], record["Active__c"]) == ("Usage", True)


# ---- WHERE ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Quantity = 2", {ITEM_1}),
        ("Quantity != 2", {ITEM_2, ITEM_3}),
        ("Quantity <> 2", {ITEM_2, ITEM_3}),
        ("Quantity < 2", {ITEM_2}),
        ("Quantity <= 2", {ITEM_1, ITEM_2}),
        ("Quantity > 2", {ITEM_3}),
        ("Quantity >= 2", {ITEM_1, ITEM_3}),
        ("Quantity IN (1, 3)", {ITEM_2, ITEM_3}),
        ("Quantity NOT IN (1, 3)", {ITEM_1}),
        ("UnitPrice = 10.5", {ITEM_2}),
        ("Quantity > 1 AND Quantity < 3", {ITEM_1}),
        ("Quantity = 1 OR Quantity = 3", {ITEM_2, ITEM_3}),
        ("NOT Quantity = 2", {ITEM_2, ITEM_3}),
        ("NOT (Quantity = 1 OR Quantity = 3)", {ITEM_1}),
    ],
)
def test_where_operators_and_logic(org, condition, expected):
    assert _ids(org, condition) == expected


def test_not_equal_keeps_records_whose_field_is_null(org):
    assert _ids(org, "Description != 'Gold plan'") == {ITEM_2, ITEM_3}


def test_not_of_a_comparison_on_a_null_field_is_true(org):
    assert _ids(org, "NOT Description = 'Gold plan'") == {ITEM_2, ITEM_3}


def test_null_is_compared_with_equals_and_not_equals(org):
    assert _ids(org, "Description = null") == {ITEM_3}
    assert _ids(org, "Order.Account.Region__c != null") == {ITEM_1, ITEM_2}


def test_in_list_may_include_null(org):
    assert _ids(org, "Description IN ('gold plan', null)") == {ITEM_1, ITEM_3}


def test_text_equality_and_in_ignore_case(org):
    assert _ids(org, "Description = 'GOLD PLAN'") == {ITEM_1}
    assert _ids(org, "Order.Account.Name IN ('ACME CORP', 'globex')") == {ITEM_1, ITEM_2}


def test_like_matches_wildcards_ignoring_case(org):
    assert _ids(org, "Description LIKE 'gold%'") == {ITEM_1}
    assert _ids(org, "Description LIKE '_OLD PLA_'") == {ITEM_1}


def test_like_with_an_escaped_percent_matches_it_literally(org):
    assert _ids(org, r"Description LIKE '50\%%'") == {ITEM_2}
    assert _ids(org, r"Description LIKE 'Gold\%'") == set()


def test_relationship_paths_filter(org):
    assert _ids(org, "Order.Account.Region__c = 'emea'") == {ITEM_2}


def test_ids_match_their_15_and_18_character_forms(org):
    assert _ids(org, f"Id = '{ITEM_2[:15]}'") == {ITEM_2}
    assert _ids(org, f"OrderId IN ('{ORDER_1[:15]}', '{ORDER_2}')") == {ITEM_1, ITEM_2}


def test_id_comparison_is_case_sensitive(org):
    assert _ids(org, f"Id = '{ITEM_2[:15].swapcase()}'") == set()


def test_boolean_literals_filter_boolean_fields(org):
    assert _ids(org, "Sync_To_M3ter__c = true", "Order") == {ORDER_1}
    assert _ids(org, "Sync_To_M3ter__c != TRUE", "Order") == {ORDER_2}


def test_date_literals_compare_with_date_fields(org):
    assert _ids(org, "ServiceDate = 2024-01-31") == {ITEM_1}
    assert _ids(org, "ServiceDate < 2024-01-31") == {ITEM_2}


@pytest.mark.parametrize(
    "literal",
    [
        "2024-01-30T23:59:59Z",
        "2024-01-30T23:59:59+00:00",
        "2024-01-30T23:59:59.000+0000",
        "2024-01-30T15:59:59-08:00",
        "2024-01-31T01:29:59.000+0130",
    ],
)
def test_datetime_literals_with_any_offset_compare_in_utc(org, literal):
    assert _ids(org, f"CreatedDate = {literal}") == {ITEM_2}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("ServiceDate = TODAY", {ITEM_1}),
        ("ServiceDate = YESTERDAY", {ITEM_2}),
        ("ServiceDate < TODAY", {ITEM_2}),
        ("ServiceDate > YESTERDAY", {ITEM_1}),
        ("ServiceDate = LAST_N_DAYS:1", {ITEM_1, ITEM_2}),
        ("ServiceDate = N_DAYS_AGO:1", {ITEM_2}),
        ("CreatedDate = TODAY", {ITEM_1}),
        ("CreatedDate = LAST_N_DAYS:1", {ITEM_1, ITEM_2}),
        ("CreatedDate < YESTERDAY", {ITEM_3}),
        ("CreatedDate >= N_DAYS_AGO:2", {ITEM_1, ITEM_2, ITEM_3}),
        ("ServiceDate != TODAY", {ITEM_2, ITEM_3}),
    ],
)
def test_relative_date_literals_are_whole_utc_days_on_date_and_datetime_fields(
    org, condition, expected
):
    assert _ids(org, condition) == expected


def test_values_are_bound_as_parameters_and_cannot_change_the_query(org):
    hostile = r"x\' OR Name != \'y\' --"
    compiled = _compile(f"SELECT Id FROM Account WHERE Name = '{hostile}'")
    assert "OR Name" not in compiled.sql and "--" not in compiled.sql
    assert "x' OR Name != 'y' --" in compiled.params
    assert _ids(org, f"Name = '{hostile}'", "Account") == set()
    assert _ids(org, r"Name = 'o\'brien -- ltd'", "Account") == {OBRIEN}


# ---- deleted records -----------------------------------------------------------------------


def test_deleted_records_are_left_out_unless_deleted_records_are_included(org):
    live = {r["Id"] for r in _records(org, "SELECT Id FROM OrderItem")}
    every = {r["Id"] for r in _records(org, "SELECT Id FROM OrderItem", include_deleted=True)}
    assert live == {ITEM_1, ITEM_2, ITEM_3}
    assert every == live | {ITEM_DELETED}


def test_deleted_records_can_be_selected_by_is_deleted_when_included(org):
    records = _records(org, "SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert [r["Id"] for r in records] == [INITECH]


# ---- ORDER BY, LIMIT, OFFSET and _rn -------------------------------------------------------


def _numbered(org: duckdb.DuckDBPyConnection, soql: str) -> list[tuple[int, Any]]:
    compiled = _compile(soql)
    rows = org.execute(compiled.sql, compiled.params).fetchall()
    return [(rn, json.loads(record)["Name"]) for rn, record in rows]


def test_rows_are_numbered_from_zero_in_order_by_order(org):
    rows = _numbered(org, "SELECT Name FROM Account WHERE Region__c != 'APAC' ORDER BY Name DESC")
    assert rows == [(0, "O'Brien -- Ltd"), (1, "Globex"), (2, "acme corp")]


def test_text_sorts_ignoring_case(org):
    rows = _numbered(org, "SELECT Name FROM Account WHERE Region__c != 'APAC' ORDER BY Name")
    assert [name for _, name in rows] == ["acme corp", "Globex", "O'Brien -- Ltd"]


def test_limit_and_offset_page_and_numbering_restarts_at_zero(org):
    rows = _numbered(org, "SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1")
    assert rows == [(0, "Globex"), (1, "Level 0")]


def test_without_order_by_rows_come_in_id_order(org):
    compiled = _compile("SELECT Id FROM OrderItem")
    rows = org.execute(compiled.sql, compiled.params).fetchall()
    assert [(rn, json.loads(r)["Id"]) for rn, r in rows] == [(0, ITEM_1), (1, ITEM_2), (2, ITEM_3)]


def test_nulls_sort_first_ascending_and_last_descending_by_default(org):
    ascending = _records(org, "SELECT Id FROM OrderItem ORDER BY Description")
    descending = _records(org, "SELECT Id FROM OrderItem ORDER BY Description DESC")
    assert ascending[0]["Id"] == ITEM_3
    assert descending[-1]["Id"] == ITEM_3


def test_nulls_placement_can_be_chosen(org):
    records = _records(org, "SELECT Id FROM OrderItem ORDER BY Description ASC NULLS LAST")
    assert [r["Id"] for r in records] == [ITEM_2, ITEM_1, ITEM_3]


def test_order_by_follows_relationship_paths(org):
    records = _records(
        org, "SELECT Id FROM OrderItem WHERE OrderId != null ORDER BY Order.Account.Name DESC"
    )
    assert [r["Id"] for r in records] == [ITEM_1, ITEM_2]


# ---- COUNT() -------------------------------------------------------------------------------


def test_count_returns_one_bigint_count_of_live_records(org):
    compiled = _compile("SELECT COUNT() FROM Account WHERE Region__c = 'NA'")
    assert compiled.count_only and compiled.columns == ()
    result = org.execute(compiled.sql, compiled.params)
    assert [d[0] for d in result.description] == ["count"]
    assert result.fetchall() == [(1,)]


def test_count_with_limit_counts_at_most_the_limit(org):
    compiled = _compile("SELECT COUNT() FROM Account LIMIT 2")
    assert org.execute(compiled.sql, compiled.params).fetchall() == [(2,)]


# ---- Bulk API 2.0 CSV text -----------------------------------------------------------------


def test_bulk_output_is_rn_then_one_text_column_per_select_item(org):
    columns, rows = _bulk_rows(
        org,
        "SELECT Id, Order.Account.Region__c, Quantity, ServiceDate, "
        "CreatedDate, Order.Sync_To_M3ter__c, Description "
        "FROM OrderItem",
    )
    assert columns == [
        "_rn",
        "Id",
        "Order.Account.Region__c",
        "Quantity",
        "ServiceDate",
        "CreatedDate",
        "Order.Sync_To_M3ter__c",
        "Description",
    ]
    assert rows[0] == (
        0,
        ITEM_1,
        "NA",
        "2.0",
        "2024-01-31",
        "2024-01-31T12:00:00.000Z",
        "true",
        "Gold plan",
    )
    assert rows[2] == (2, ITEM_3, "", "3.0", "", "2024-01-29T00:00:00.000Z", "", "")


def test_bulk_columns_are_the_select_items_in_schema_casing():
    compiled = _compile("SELECT id, order.account.region__c FROM orderitem", api="bulk")
    assert compiled.columns == ("Id", "Order.Account.Region__c")


def test_bulk_query_all_includes_deleted_records(org):
    _, rows = _bulk_rows(org, "SELECT Id FROM OrderItem", include_deleted=True)
    assert {row[1] for row in rows} == {ITEM_1, ITEM_2, ITEM_3, ITEM_DELETED}


# ---- errors --------------------------------------------------------------------------------


def test_an_unknown_object_is_an_invalid_type_pointing_at_the_name():
    error = _refusal("SELECT Id FROM Invoice")
    assert error.error_code == "INVALID_TYPE"
    assert error.message == (
        "\nSELECT Id FROM Invoice\n               ^\nERROR at Row:1:Column:16\n"
        "sObject type 'Invoice' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names."
    )
    assert str(error) == error.message


def test_an_unknown_field_is_an_invalid_field_pointing_at_the_field():
    error = _refusal("SELECT Id, Regoin__c FROM Account")
    assert error.error_code == "INVALID_FIELD"
    assert error.message == (
        "\nSELECT Id, Regoin__c FROM Account\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Regoin__c' on entity 'Account'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )


def test_a_field_hidden_from_the_integration_user_is_unknown():
    error = _refusal("SELECT Id FROM Account WHERE Credit_Rating__c = 'A'")
    assert error.error_code == "INVALID_FIELD"
    assert "No such column 'Credit_Rating__c' on entity 'Account'" in error.message


def test_an_unknown_field_at_the_end_of_a_path_names_the_parent_entity():
    error = _refusal("SELECT Order.Account.Nope__c FROM OrderItem")
    assert error.message.endswith(
        "No such column 'Nope__c' on entity 'Account'. If you are "
        "attempting to use a custom field, be sure to append the '__c' "
        "after the custom field name. Please reference your WSDL or the "
        "describe call for the appropriate names."
    )


def test_an_unknown_relationship_is_an_invalid_field():
    error = _refusal("SELECT Id FROM OrderItem ORDER BY Ordr.Name")
    assert error.error_code == "INVALID_FIELD"
    assert error.message == (
        "\nSELECT Id FROM OrderItem ORDER BY Ordr.Name\n                                  ^\n"
        "ERROR at Row:1:Column:35\nDidn't understand relationship 'Ordr' in field path. If you "
        "are attempting to use a custom relationship, be sure to append the '__r' after the "
        "custom relationship name. Please reference your WSDL or the describe call for the "
        "appropriate names."
    )


def test_a_lookup_field_name_is_not_a_relationship_name():
    assert (
        "Didn't understand relationship 'OrderId'"
        in _refusal("SELECT OrderId.Name FROM OrderItem").message
    )


def test_more_than_five_parent_levels_are_refused():
    error = _refusal("SELECT Parent.Parent.Parent.Parent.Parent.Parent.Name FROM Account")
    assert error.error_code == "MALFORMED_QUERY"


def test_a_field_selected_twice_is_malformed():
    error = _refusal("SELECT Id, Order.Name, order.NAME FROM OrderItem")
    assert error.error_code == "MALFORMED_QUERY"
    assert error.message.endswith("ERROR at Row:1:Column:24\nduplicate field selected: Order.Name")


@pytest.mark.parametrize(
    ("condition", "type_name"),
    [
        ("ServiceDate = '2024-01-31'", "date and should not"),
        ("CreatedDate = 2024-01-31", "dateTime and should not"),
        ("ServiceDate = 2024-01-31T00:00:00Z", "date and should not"),
        ("Quantity = '2'", "double and should not"),
        ("Order.Sync_To_M3ter__c = 'true'", "boolean and should not"),
        ("Description = 5", "string and should"),
        ("OrderId = 5", "id and should"),
        ("Description = TODAY", "string and should"),
    ],
)
def test_a_value_of_the_wrong_type_is_an_invalid_field(condition, type_name):
    error = _refusal(f"SELECT Id FROM OrderItem WHERE {condition}")
    assert error.error_code == "INVALID_FIELD"
    field = condition.split(" ")[0].split(".")[-1]
    assert error.message.endswith(
        f"value of filter criterion for field '{field}' must be of type "
        f"{type_name} be enclosed in quotes"
    )


def test_the_type_error_message_matches_salesforce_wording():
    error = _refusal("SELECT Id FROM Opportunity WHERE CloseDate > '2024-01-01'")
    assert error.message.endswith(
        "\nvalue of filter criterion for field 'CloseDate' must be of "
        "type date and should not be enclosed in quotes"
    )
    assert "ERROR at Row:1:Column:46" in error.message


def test_an_invalid_id_literal_is_an_invalid_query_filter_operator():
    error = _refusal("SELECT Id FROM Account WHERE Id = 'xyz'")
    assert error.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    assert error.message.endswith("\ninvalid ID field: xyz")


@pytest.mark.parametrize(
    ("condition", "kind"),
    [
        ("Quantity LIKE '2%'", "double"),
        ("Id LIKE '802%'", "id"),
        ("OrderId LIKE '801%'", "reference"),
        ("Order.Sync_To_M3ter__c > true", "boolean"),
    ],
)
def test_an_operator_the_field_type_does_not_support_is_refused(condition, kind):
    error = _refusal(f"SELECT Id FROM OrderItem WHERE {condition}")
    assert error.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    assert error.message.endswith(f"invalid operator on {kind} field")


def test_a_long_query_echoes_a_window_around_the_error():
    soql = (
        "SELECT "
        + ", ".join(
            [
                "Id",
                "Name",
                "Region__c",
                "Tier__c",
                "AnnualRevenue",
                "NumberOfEmployees",
                "Bogus__c",
                "Website",
                "Phone",
                "BillingCity",
                "BillingCountry",
            ]
        )
        + " FROM Account"
    )
    message = _refusal(soql).message
    _, echo, caret, position, _ = message.split("\n", 4)
    assert len(echo) < len(soql)
    assert echo[caret.index("^") :].startswith("Bogus__c")
    assert position == f"ERROR at Row:1:Column:{soql.index('Bogus__c') + 1}"


# ---- what each API refuses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("soql", "message"),
    [
        ("SELECT COUNT() FROM Account", "Aggregate Relationships not supported in Bulk Query"),
        (
            "SELECT Region__c, COUNT(Id) FROM Account GROUP BY Region__c",
            "Aggregate Relationships not supported in Bulk Query",
        ),
        (
            "SELECT Region__c FROM Account GROUP BY Region__c",
            "Aggregate Relationships not supported in Bulk Query",
        ),
        (
            "SELECT Id, (SELECT Id FROM Orders) FROM Account",
            "Aggregate Relationships not supported in Bulk V2 Query with CSV content type",
        ),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 5", "OFFSET clause not supported in Bulk V2 Query"),
        (
            "SELECT TYPEOF Owner WHEN User THEN Name END FROM Account",
            "TYPEOF clause not supported in Bulk V2 Query",
        ),
    ],
)
def test_bulk_refuses_what_bulk_api_2_does_not_support(soql, message):
    error = _refusal(soql, api="bulk")
    assert (error.error_code, error.message) == ("API_ERROR", message)


@pytest.mark.parametrize("sobject", ["PricingMapping__mdt", "Organization"])
def test_bulk_refuses_objects_the_bulk_api_does_not_serve(sobject):
    error = _refusal(f"SELECT Id FROM {sobject}", api="bulk")
    assert error.error_code == "INVALIDENTITY"
    assert error.message == f"Entity '{sobject}' is not supported by the Bulk API."


def test_bulk_accepts_limit_and_order_by(org):
    _, rows = _bulk_rows(org, "SELECT Id FROM OrderItem ORDER BY Quantity DESC LIMIT 1")
    assert rows == [(0, ITEM_3)]


@pytest.mark.parametrize(
    ("soql", "what"),
    [
        ("SELECT Id, (SELECT Id FROM Orders) FROM Account", "parent-to-child subqueries"),
        (
            "SELECT Region__c, COUNT(Id) FROM Account GROUP BY Region__c",
            "aggregate functions other than COUNT()",
        ),
        ("SELECT SUM(AnnualRevenue) FROM Account", "aggregate functions other than COUNT()"),
        ("SELECT Region__c FROM Account GROUP BY Region__c", "GROUP BY"),
        (
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Order)",
            "semi-join subqueries",
        ),
        ("SELECT TYPEOF Owner WHEN User THEN Name END FROM Account", "TYPEOF"),
        ("SELECT FIELDS(ALL) FROM Account", "the FIELDS() function"),
    ],
)
def test_rest_refuses_what_the_sandbox_does_not_support_as_malformed(soql, what):
    error = _refusal(soql)
    assert error.error_code == "MALFORMED_QUERY"
    assert f"The sandbox does not support {what}" in error.message
    assert "ERROR at Row:1:Column:" in error.message


def test_count_must_be_the_only_select_item():
    error = _refusal("SELECT Id, COUNT() FROM Account")
    assert error.error_code == "MALFORMED_QUERY"
    assert error.message.endswith("COUNT() must be the only element in the SELECT list")
