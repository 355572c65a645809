"""Reading SOQL: what the parser accepts, the values it decodes and how it reports syntax errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pipeline.sandbox.salesforce.soql import SoqlError, parse
from pipeline.soql.ast import (
    And,
    BooleanValue,
    Comparison,
    DateTimeValue,
    DateValue,
    FieldRef,
    FunctionCall,
    InList,
    Not,
    NullValue,
    NumberValue,
    Or,
    Position,
    RelativeDate,
    SemiJoin,
    StringValue,
    SubQuery,
    TypeOf,
)


def _where_value(condition: str):
    where = parse(f"SELECT Id FROM Account WHERE {condition}").where
    assert isinstance(where, Comparison)
    return where.value


def _malformed(text: str) -> str:
    with pytest.raises(SoqlError) as failure:
        parse(text)
    assert failure.value.error_code == "MALFORMED_QUERY"
    return failure.value.message


def test_keywords_are_case_insensitive():
    query = parse("select Id from Account where Name = 'x' order by Name desc limit 5")
    assert query.sobject == "Account"
    assert query.limit == 5
    assert query.order_by[0].descending


def test_select_items_are_fields_and_dotted_parent_paths_with_their_positions():
    query = parse("SELECT Id, Order.Account.Region__c FROM OrderItem")
    assert query.select == (
        FieldRef(("Id",), Position(1, 8)),
        FieldRef(("Order", "Account", "Region__c"), Position(1, 12)),
    )
    assert query.sobject_pos == Position(1, 41)


def test_words_that_are_keywords_elsewhere_are_names_where_a_name_is_expected():
    query = parse("SELECT Order.Name, Limit__c FROM Order WHERE Order.Group__c = 'x' ORDER BY Name")
    assert query.sobject == "Order"
    assert query.select[0] == FieldRef(("Order", "Name"), Position(1, 8))
    assert query.order_by[0].field.path == ("Name",)


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("Name = 'x'", "="),
        ("Name != 'x'", "!="),
        ("Name <> 'x'", "!="),
        ("Amount < 1", "<"),
        ("Amount <= 1", "<="),
        ("Amount > 1", ">"),
        ("Amount >= 1", ">="),
        ("Name LIKE 'x%'", "LIKE"),
    ],
)
def test_comparison_operators_are_read_with_not_equal_normalised(text, op):
    where = parse(f"SELECT Id FROM Account WHERE {text}").where
    assert isinstance(where, Comparison) and where.op == op


def test_in_and_not_in_read_a_list_of_values():
    where = parse("SELECT Id FROM Account WHERE Region__c NOT IN ('NA', null)").where
    assert isinstance(where, InList)
    assert where.negated
    assert [type(v) for v in where.values] == [StringValue, NullValue]


def test_and_or_not_and_parentheses_build_nested_conditions():
    where = parse(
        "SELECT Id FROM Account WHERE NOT Name = 'a' AND (Tier__c = 'b' OR Tier__c = 'c')"
    ).where
    assert isinstance(where, And)
    assert isinstance(where.operands[0], Not)
    assert isinstance(where.operands[1], Or)


def test_and_and_or_side_by_side_need_parentheses():
    message = _malformed("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'")
    assert message.endswith("unexpected token: 'OR'")


def test_string_escapes_are_decoded():
    value = _where_value(r"Name = 'O\'Brien \\ \n\"x\"'")
    assert isinstance(value, StringValue)
    assert value.value == 'O\'Brien \\ \n"x"'


def test_like_patterns_keep_escaped_wildcards_literal():
    value = _where_value(r"Name LIKE '50\%_off%'")
    assert isinstance(value, StringValue)
    assert value.like_pattern == r"50\%_off%"
    assert value.value == "50%_off%"


def test_an_unknown_escape_sequence_is_malformed():
    message = _malformed(r"SELECT Id FROM Account WHERE Name = 'a\q'")
    assert "Illegal character sequence '\\q'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", BooleanValue(True, Position(1, 37))),
        ("FALSE", BooleanValue(False, Position(1, 37))),
        ("null", NullValue(Position(1, 37))),
        ("-12.50", NumberValue(Decimal("-12.50"), Position(1, 37))),
        ("2024-01-31", DateValue(dt.date(2024, 1, 31), Position(1, 37))),
    ],
)
def test_unquoted_literals_are_typed_values(text, expected):
    assert _where_value(f"X__c = {text}") == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-31T12:00:00Z",
        "2024-01-31T12:00:00+00:00",
        "2024-01-31T12:00:00.000+0000",
        "2024-01-31T04:00:00-08:00",
        "2024-01-31T13:30:00.000+0130",
    ],
)
def test_datetime_literals_are_converted_to_naive_utc(text):
    value = _where_value(f"CreatedDate = {text}")
    assert isinstance(value, DateTimeValue)
    assert value.value == dt.datetime(2024, 1, 31, 12, 0)


@pytest.mark.parametrize(
    ("text", "name", "n"),
    [
        ("TODAY", "TODAY", None),
        ("yesterday", "YESTERDAY", None),
        ("LAST_N_DAYS:30", "LAST_N_DAYS", 30),
        ("N_DAYS_AGO:2", "N_DAYS_AGO", 2),
    ],
)
def test_relative_date_literals_are_read_by_name(text, name, n):
    value = _where_value(f"CloseDate = {text}")
    assert isinstance(value, RelativeDate)
    assert (value.name, value.n) == (name, n)


def test_a_date_literal_the_sandbox_does_not_evaluate_is_refused_by_name():
    message = _malformed("SELECT Id FROM Opportunity WHERE CloseDate = THIS_MONTH")
    assert "The sandbox does not support the date literal THIS_MONTH" in message


def test_an_unquoted_word_is_not_a_value():
    assert _malformed("SELECT Id FROM Account WHERE Name = Acme").endswith(
        "unexpected token: 'Acme'"
    )


def test_order_by_reads_direction_and_nulls_placement():
    query = parse("SELECT Id FROM Account ORDER BY Name, Region__c DESC, Tier__c ASC NULLS LAST")
    items = query.order_by
    assert [(i.field.dotted, i.descending, i.nulls_first) for i in items] == [
        ("Name", False, None),
        ("Region__c", True, None),
        ("Tier__c", False, False),
    ]


def test_limit_and_offset_are_read_as_integers():
    query = parse("SELECT Id FROM Account LIMIT 10 OFFSET 20")
    assert (query.limit, query.offset, query.offset_pos) == (10, 20, Position(1, 33))


def test_subqueries_aggregates_semi_joins_and_typeof_parse_so_they_can_be_refused():
    query = parse(
        "SELECT COUNT(Id) n, (SELECT Id FROM Orders), "
        "TYPEOF Owner WHEN User THEN Name END FROM Account "
        "WHERE Id IN (SELECT AccountId FROM Order) GROUP BY Region__c"
    )
    count, subquery, typeof = query.select
    assert isinstance(count, FunctionCall) and (count.name, count.alias) == ("COUNT", "n")
    assert isinstance(subquery, SubQuery) and subquery.query.sobject == "Orders"
    assert isinstance(typeof, TypeOf)
    assert isinstance(query.where, SemiJoin)
    assert query.group_by[0].path == ("Region__c",)


def test_count_without_arguments_is_a_function_call_without_argument():
    (count,) = parse("SELECT COUNT() FROM Account").select
    assert count == FunctionCall("COUNT", None, None, Position(1, 8))


def test_a_syntax_error_echoes_the_query_with_a_caret_under_the_bad_token():
    assert _malformed("SELECT Id FORM Account") == (
        "\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"
    )


def test_a_query_that_stops_early_points_after_its_last_token():
    assert _malformed("SELECT Id FROM Account WHERE") == (
        "\nSELECT Id FROM Account WHERE\n                            ^\n"
        "ERROR at Row:1:Column:29\nunexpected token: <EOF>"
    )


def test_errors_in_multi_line_queries_report_the_row_and_echo_only_that_row():
    message = _malformed("SELECT Id\nFROM Account\nWHERE Name == 'x'")
    assert message.startswith("\nWHERE Name == 'x'\n            ^\nERROR at Row:3:Column:13\n")


def test_double_quoted_strings_are_malformed():
    assert _malformed('SELECT Id FROM Account WHERE Name = "x"').endswith("unexpected token: '\"'")
