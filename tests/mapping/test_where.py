"""A mapping's `where` compiled to a DuckDB condition with SOQL's semantics (DESIGN §5).

Each behaviour is checked by running the compiled SQL over a small in-memory table whose
columns are named by dotted paths, as the raw tables are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import duckdb
import pytest

from pipeline.mapping.where import WhereError, compile_where
from pipeline.sandbox.salesforce.describe import object_describe
from pipeline.sandbox.salesforce.schema import demo_schema
from pipeline.warehouse.sql import identifier

SCHEMA = demo_schema().visible_to_integration_user()


def describe(name: str) -> dict:
    obj = SCHEMA.sobject(name)
    if obj is None:
        raise KeyError(f"sObject type '{name}' is not supported")
    return object_describe(SCHEMA, obj, "59.0")


def kept(
    condition: str,
    columns: dict[str, str],
    rows: Sequence[tuple[Any, ...]],
    sobject: str = "OrderItem",
) -> list[tuple[Any, ...]]:
    """The rows (of a table with `columns`: path -> DuckDB type) the compiled condition keeps."""
    con = duckdb.connect()
    declared = ", ".join(f"{identifier(path)} {kind}" for path, kind in columns.items())
    con.execute(f"CREATE TABLE src (_n INTEGER, {declared})")
    placeholders = ", ".join("?" for _ in range(len(columns) + 1))
    con.executemany(
        f"INSERT INTO src VALUES ({placeholders})",
        [(n, *row) for n, row in enumerate(rows)],
    )
    selected = ", ".join(identifier(path) for path in columns)
    sql = compile_where(condition, sobject, describe).sql
    return con.execute(f"SELECT {selected} FROM src WHERE {sql} ORDER BY _n").fetchall()


def kept_values(
    condition: str, path: str, kind: str, values: Sequence[Any], sobject: str = "OrderItem"
) -> list[Any]:
    """The values of one column whose rows the compiled condition keeps, in input order."""
    return [row[0] for row in kept(condition, {path: kind}, [(v,) for v in values], sobject)]


def where_error(condition: str, sobject: str = "OrderItem") -> str:
    with pytest.raises(WhereError) as info:
        compile_where(condition, sobject, describe)
    return str(info.value)


# --- text ---------------------------------------------------------------------------------------


def test_text_comparisons_ignore_case():
    values = ["ACME", "Acme", "acme", "Acme Corp", None]
    assert kept_values("Name = 'acme'", "Name", "VARCHAR", values, "Account") == [
        "ACME",
        "Acme",
        "acme",
    ]


def test_text_ordering_comparisons_ignore_case():
    values = ["apple", "Banana", "cherry", "DATE", None]
    assert kept_values("Name >= 'BANANA'", "Name", "VARCHAR", values, "Account") == [
        "Banana",
        "cherry",
        "DATE",
    ]


def test_picklist_comparisons_ignore_case():
    values = ["Activated", "ACTIVATED", "Draft", None]
    assert kept_values("Order.Status = 'activated'", "Order.Status", "VARCHAR", values) == [
        "Activated",
        "ACTIVATED",
    ]


def test_not_equal_keeps_rows_whose_field_is_null():
    values = ["Prospect", "Partner", None]
    assert kept_values("Type != 'prospect'", "Type", "VARCHAR", values, "Account") == [
        "Partner",
        None,
    ]


def test_equals_null_keeps_only_rows_whose_field_is_null():
    values = ["Activated", None, "Draft"]
    assert kept_values("Order.Status = null", "Order.Status", "VARCHAR", values) == [None]


def test_not_equal_null_keeps_only_rows_whose_field_is_set():
    values = ["Activated", None, "Draft"]
    assert kept_values("Order.Status != null", "Order.Status", "VARCHAR", values) == [
        "Activated",
        "Draft",
    ]


def test_an_ordering_comparison_with_null_keeps_no_row():
    assert kept_values("Quantity > null", "Quantity", "DOUBLE", [1.0, None]) == []


# --- IN / NOT IN ----------------------------------------------------------------------------------


def test_in_keeps_rows_whose_field_is_one_of_the_values_ignoring_case():
    values = ["Draft", "ACTIVATED", "Cancelled", None]
    condition = "Order.StatusCode IN ('draft', 'Activated')"
    assert kept_values(condition, "Order.StatusCode", "VARCHAR", values) == ["Draft", "ACTIVATED"]


def test_in_with_null_also_keeps_rows_whose_field_is_null():
    values = ["Draft", "Activated", None]
    condition = "Order.Status IN ('Draft', null)"
    assert kept_values(condition, "Order.Status", "VARCHAR", values) == ["Draft", None]


def test_not_in_keeps_rows_whose_field_is_null():
    values = ["Draft", "Activated", None]
    condition = "Order.Status NOT IN ('draft')"
    assert kept_values(condition, "Order.Status", "VARCHAR", values) == ["Activated", None]


def test_not_in_with_null_drops_rows_whose_field_is_null():
    values = ["Draft", "Activated", None]
    condition = "Order.Status NOT IN ('Draft', null)"
    assert kept_values(condition, "Order.Status", "VARCHAR", values) == ["Activated"]


def test_in_compares_numbers_as_numbers():
    assert kept_values("Quantity IN (1, 2.5)", "Quantity", "DOUBLE", [1.0, 2.0, 2.5, None]) == [
        1.0,
        2.5,
    ]


# --- LIKE -----------------------------------------------------------------------------------------


def test_like_matches_a_pattern_ignoring_case():
    values = ["ACME Corp", "acme", "The Acme Co", None]
    assert kept_values("Name LIKE 'acme%'", "Name", "VARCHAR", values, "Account") == [
        "ACME Corp",
        "acme",
    ]


def test_like_underscore_matches_exactly_one_character():
    values = ["A1", "A12", "A", None]
    assert kept_values("Name LIKE 'a_'", "Name", "VARCHAR", values, "Account") == ["A1"]


def test_like_escaped_percent_matches_a_literal_percent_sign():
    values = ["50% off", "500 off", None]
    assert kept_values("Name LIKE '50\\%%'", "Name", "VARCHAR", values, "Account") == ["50% off"]


def test_not_like_keeps_rows_whose_field_is_null():
    values = ["ACME Corp", "Globex", None]
    assert kept_values("NOT Name LIKE 'acme%'", "Name", "VARCHAR", values, "Account") == [
        "Globex",
        None,
    ]


def test_like_on_a_field_that_is_not_text_is_an_error():
    assert where_error("Quantity LIKE '1%'") == (
        "Quantity: LIKE needs a text field and a quoted pattern"
    )


# --- booleans -------------------------------------------------------------------------------------


def test_a_boolean_field_compares_with_true_and_false():
    path = "Order.Sync_To_M3ter__c"
    assert kept_values(f"{path} = true", path, "BOOLEAN", [True, False, None]) == [True]
    assert kept_values(f"{path} = false", path, "BOOLEAN", [True, False, None]) == [False]


def test_not_equal_true_keeps_false_and_null():
    path = "Order.Sync_To_M3ter__c"
    assert kept_values(f"{path} != true", path, "BOOLEAN", [True, False, None]) == [False, None]


def test_a_boolean_field_only_takes_equals_and_not_equals():
    assert where_error("Order.Sync_To_M3ter__c > false") == (
        "Order.Sync_To_M3ter__c: a boolean field only takes = and !="
    )


# --- numbers --------------------------------------------------------------------------------------


def test_numbers_compare_numerically():
    values = [2.0, 2.5, 10.0, None]
    assert kept_values("Quantity > 2", "Quantity", "DOUBLE", values) == [2.5, 10.0]


def test_a_whole_number_literal_equals_the_same_decimal_value():
    assert kept_values("Quantity = 3", "Quantity", "DOUBLE", [3.0, 3.5, None]) == [3.0]


def test_negative_decimal_literals_are_numbers():
    values = [-2.0, -1.5, 0.0, None]
    assert kept_values("Quantity >= -1.5", "Quantity", "DOUBLE", values) == [-1.5, 0.0]


def test_an_integer_field_compares_with_a_decimal_literal():
    values = [1, 2, 3, None]
    assert kept_values(
        "NumberOfEmployees < 2.5", "NumberOfEmployees", "BIGINT", values, "Account"
    ) == [
        1,
        2,
    ]


# --- dates and date-times -------------------------------------------------------------------------


def test_a_date_field_compares_with_a_date_literal():
    values = [dt.date(2024, 1, 31), dt.date(2024, 2, 1), dt.date(2024, 3, 1), None]
    assert kept_values("ServiceDate >= 2024-02-01", "ServiceDate", "DATE", values) == [
        dt.date(2024, 2, 1),
        dt.date(2024, 3, 1),
    ]


def test_a_date_field_equals_a_date_literal():
    values = [dt.date(2024, 1, 31), dt.date(2024, 2, 1), None]
    assert kept_values("ServiceDate = 2024-02-01", "ServiceDate", "DATE", values) == [
        dt.date(2024, 2, 1)
    ]


def test_a_datetime_field_compares_with_a_utc_datetime_literal():
    path = "Order.ActivatedDate"
    values = [
        dt.datetime(2024, 3, 1, 8, 59, 59),
        dt.datetime(2024, 3, 1, 9, 0, 0),
        dt.datetime(2024, 3, 1, 9, 0, 1),
        None,
    ]
    assert kept_values(f"{path} > 2024-03-01T09:00:00Z", path, "TIMESTAMP", values) == [
        dt.datetime(2024, 3, 1, 9, 0, 1)
    ]


def test_a_datetime_literal_with_an_offset_is_compared_in_utc():
    path = "Order.ActivatedDate"
    values = [dt.datetime(2024, 3, 1, 9, 0, 0), dt.datetime(2024, 3, 1, 11, 0, 0)]
    assert kept_values(f"{path} = 2024-03-01T11:00:00+02:00", path, "TIMESTAMP", values) == [
        dt.datetime(2024, 3, 1, 9, 0, 0)
    ]


@pytest.mark.parametrize(
    "condition", ["ServiceDate = TODAY", "ServiceDate > LAST_N_DAYS:7", "ServiceDate IN (TODAY)"]
)
def test_a_relative_date_literal_is_refused_because_runs_would_disagree(condition):
    message = where_error(condition)
    assert message.startswith("ServiceDate: date literal ")
    assert "depends on the day a run happens; use a fixed date" in message


# --- Ids ------------------------------------------------------------------------------------------


def test_a_15_character_id_literal_matches_the_18_character_id():
    values = ["801Ab00000XyZ01IAF", "801Ab00000XyZ02IAF", None]
    assert kept_values("OrderId = '801Ab00000XyZ01'", "OrderId", "VARCHAR", values) == [
        "801Ab00000XyZ01IAF"
    ]


def test_15_character_ids_in_an_in_list_are_normalized_to_18():
    values = ["801Ab00000XyZ01IAF", "802Qr00000aBc12IAC", "801000000000003AAA"]
    condition = "Id IN ('801Ab00000XyZ01', '802Qr00000aBc12IAC')"
    assert kept_values(condition, "Id", "VARCHAR", values) == [
        "801Ab00000XyZ01IAF",
        "802Qr00000aBc12IAC",
    ]


def test_id_comparisons_are_case_sensitive():
    # 15-character Ids that differ only in case name different records.
    values = ["801Ab00000XyZ01IAF", "801AB00000XYZ01IAF"]
    assert kept_values("Id = '801Ab00000XyZ01'", "Id", "VARCHAR", values) == ["801Ab00000XyZ01IAF"]


def test_an_invalid_id_literal_is_an_error():
    assert where_error("OrderId = '8010000'") == "OrderId: invalid ID '8010000'"


# --- type checks and names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("Quantity = 'three'", "Quantity: a double field cannot be compared with a quoted string"),
        (
            "Order.Sync_To_M3ter__c = 'true'",
            "Order.Sync_To_M3ter__c: a boolean field cannot be compared with a quoted string",
        ),
        ("Description = 5", "Description: a textarea field cannot be compared with a number"),
        (
            "ServiceDate > 2024-03-01T00:00:00Z",
            "ServiceDate: a date field cannot be compared with a date-time",
        ),
        (
            "Order.ActivatedDate > 2024-03-01",
            "Order.ActivatedDate: a datetime field cannot be compared with a date",
        ),
        (
            "Quantity IN (1, 'two')",
            "Quantity: a double field cannot be compared with a quoted string",
        ),
    ],
)
def test_a_literal_of_the_wrong_type_for_the_field_is_an_error(condition, message):
    assert where_error(condition) == message


def test_an_unknown_field_is_an_error_naming_field_and_object():
    assert where_error("Quantiy > 1") == (
        "'Quantiy' does not resolve on OrderItem (OrderItem has no field 'Quantiy'; fields "
        "hidden by field-level security count as missing)"
    )


def test_an_unknown_relationship_is_an_error():
    assert where_error("Ordr.Status = 'Draft'").startswith(
        "'Ordr.Status' does not resolve on OrderItem (OrderItem has no relationship 'Ordr'"
    )


def test_a_field_hidden_by_field_level_security_is_an_unknown_field():
    message = where_error("Internal_Margin__c > 0.2")
    assert message.startswith(
        "'Internal_Margin__c' does not resolve on OrderItem "
        "(OrderItem has no field 'Internal_Margin__c'"
    )
    assert "hidden by field-level security count as missing" in message


def test_a_field_hidden_on_a_parent_is_an_unknown_field():
    message = where_error("Order.Account.Credit_Rating__c = 'A'")
    assert message.startswith("'Order.Account.Credit_Rating__c' does not resolve on OrderItem")


def test_a_semi_join_is_refused():
    assert where_error("OrderId IN (SELECT Id FROM Order WHERE Status = 'Activated')") == (
        "OrderId: semi-join subqueries (IN (SELECT ...)) cannot be evaluated on extracted rows"
    )


def test_the_columns_read_are_listed_once_in_canonical_case_in_order_of_appearance():
    compiled = compile_where(
        "order.sync_to_m3ter__c = true AND quantity > 1 AND Order.Sync_To_M3ter__c != null",
        "OrderItem",
        describe,
    )
    assert compiled.columns == ("Order.Sync_To_M3ter__c", "Quantity")


def test_field_names_match_case_insensitively():
    assert kept_values("quantity > 1", "Quantity", "DOUBLE", [1.0, 2.0]) == [2.0]


# --- boolean logic --------------------------------------------------------------------------------


def test_and_or_and_parentheses_combine_conditions():
    columns = {"Order.Status": "VARCHAR", "Quantity": "DOUBLE"}
    rows = [("Draft", 1.0), ("Draft", 5.0), ("Activated", 1.0), (None, 5.0)]
    condition = "Order.Status = 'Activated' OR (Order.Status = 'Draft' AND Quantity > 2)"
    assert kept(condition, columns, rows) == [("Draft", 5.0), ("Activated", 1.0)]


def test_not_of_a_comparison_keeps_rows_whose_field_is_null():
    assert kept_values("NOT Quantity > 2", "Quantity", "DOUBLE", [1.0, 5.0, None]) == [1.0, None]


@pytest.mark.parametrize(
    "condition",
    [
        "Order.Status = 'Draft'",
        "Order.Status != 'Draft'",
        "Order.Status < 'm'",
        "Order.Status IN ('Draft')",
        "Order.Status NOT IN ('Draft')",
        "Order.Status LIKE 'D%'",
        "Quantity > 1",
        "NOT (Quantity > 1 OR Order.Status = 'Draft')",
    ],
)
def test_every_condition_is_true_or_false_even_on_null_fields(condition):
    con = duckdb.connect()
    con.execute('CREATE TABLE src ("Order.Status" VARCHAR, "Quantity" DOUBLE)')
    con.execute("INSERT INTO src VALUES (NULL, NULL)")
    sql = compile_where(condition, "OrderItem", describe).sql
    (value,) = con.execute(f"SELECT {sql} FROM src").fetchone()
    assert value is not None


# --- quoting --------------------------------------------------------------------------------------


def test_an_escaped_quote_in_a_literal_cannot_break_out_of_the_sql_string():
    values = ["x' OR 1=1 --", "x", "other", None]
    assert kept_values("Name = 'x\\' OR 1=1 --'", "Name", "VARCHAR", values, "Account") == [
        "x' OR 1=1 --"
    ]


def test_a_doubled_quote_is_not_a_soql_escape_and_is_a_syntax_error():
    # SOQL escapes quotes with a backslash; `''` ends the literal and leaves a stray token.
    message = where_error("Name = 'x'' OR 1=1 --'", "Account")
    assert "at line 1, column 11" in message


def test_a_backslash_in_a_literal_matches_a_literal_backslash():
    values = ["a\\b", "ab", "a\\\\b"]
    assert kept_values("Name = 'a\\\\b'", "Name", "VARCHAR", values, "Account") == ["a\\b"]


def test_a_hostile_like_pattern_matches_only_its_text():
    values = ["x' OR 'a' LIKE 'a", "x", None]
    condition = "Name LIKE 'x\\' OR \\'a\\' LIKE \\'a'"
    assert kept_values(condition, "Name", "VARCHAR", values, "Account") == ["x' OR 'a' LIKE 'a"]


# --- syntax errors --------------------------------------------------------------------------------


def test_a_syntax_error_points_into_the_condition_on_line_1():
    message = where_error("Quantity = = 1")
    assert message.splitlines() == [
        "Quantity = = 1",
        "           ^",
        "at line 1, column 12",
        "unexpected token: '='",
    ]


def test_a_syntax_error_does_not_show_the_wrapping_query():
    message = where_error("Quantity > 1 AND")
    assert "SELECT" not in message
    assert "Row:" not in message
    assert "at line 1, column 17" in message


def test_a_syntax_error_in_a_multi_line_condition_names_its_line():
    message = where_error("Quantity > 1\nAND Quantity <")
    assert message.splitlines()[0] == "AND Quantity <"
    assert "at line 2, column 15" in message


@pytest.mark.parametrize("condition", ["Quantity > 1 LIMIT 5", "Quantity > 1 ORDER BY Quantity"])
def test_text_after_the_condition_is_an_error_rather_than_ignored(condition):
    with pytest.raises(WhereError):
        compile_where(condition, "OrderItem", describe)
