"""Formula fields are evaluated when read: they follow their parents and the date, unstamped."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipeline.sandbox.salesforce.formulas import FormulaError, view_statements
from pipeline.sandbox.salesforce.schema import (
    Field,
    OrgSchema,
    SObject,
    create_table_sql,
)
from tests.sandbox.salesforce import clients


def _schema(*child_formulas: tuple[str, str, str]) -> OrgSchema:
    """A parent and a child object; `child_formulas` are (name, type, formula) of the child."""
    parent = SObject(
        "Parent__c",
        "a01",
        (
            Field("Id", "id"),
            Field("Start__c", "date"),
            Field("Price__c", "currency"),
            Field("SystemModstamp", "datetime"),
        ),
    )
    child = SObject(
        "Child__c",
        "a02",
        (
            Field("Id", "id"),
            Field(
                "Parent__c", "reference", reference_to=("Parent__c",), relationship_name="Parent__r"
            ),
            Field("Own_Start__c", "date"),
            Field("Quantity__c", "double"),
            *(Field(n, t, calculated=True, formula=f) for n, t, f in child_formulas),
            Field("SystemModstamp", "datetime"),
        ),
    )
    return OrgSchema(objects=(parent, child), hidden_fields={})


def _org(schema: OrgSchema) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA org")
    for obj in schema.objects:
        con.execute(create_table_sql(obj))
    for statement in view_statements(schema):
        con.execute(statement)
    con.execute("INSERT INTO org.Parent__c VALUES ('p1', DATE '2026-01-31', 10.5, NULL)")
    con.execute(
        "INSERT INTO org.Child__c BY NAME SELECT 'c1' AS Id, 'p1' AS Parent__c, 3 AS Quantity__c"
    )
    return con


def _value(con: duckdb.DuckDBPyConnection, field: str) -> object:
    (value,) = con.execute(f'SELECT "{field}" FROM live.Child__c').fetchone() or (None,)
    return value


def test_a_formula_over_a_parent_follows_the_parent_s_change():
    con = _org(_schema(("Start__c", "date", "BLANKVALUE(Own_Start__c, Parent__r.Start__c)")))
    assert _value(con, "Start__c") == dt.date(2026, 1, 31)
    con.execute("UPDATE org.Parent__c SET Start__c = DATE '2026-03-01'")
    assert _value(con, "Start__c") == dt.date(2026, 3, 1)
    con.execute("UPDATE org.Child__c SET Own_Start__c = DATE '2026-02-02'")
    assert _value(con, "Start__c") == dt.date(2026, 2, 2)


def test_a_formula_over_today_changes_with_the_date():
    con = _org(_schema(("Age__c", "double", "TODAY() - Parent__r.Start__c")))
    today = dt.datetime.now(dt.UTC).date()
    assert _value(con, "Age__c") == (today - dt.date(2026, 1, 31)).days


def test_a_number_formula_is_rounded_to_the_field_s_places():
    con = _org(_schema(("Amount__c", "currency", "Quantity__c * Parent__r.Price__c / 7")))
    assert _value(con, "Amount__c") == round(3 * 10.5 / 7, 2)


def test_addmonths_keeps_the_last_day_of_a_month_the_last_day():
    con = _org(_schema(("End__c", "date", "ADDMONTHS(Parent__r.Start__c, 1) - 1")))
    assert _value(con, "End__c") == dt.date(2026, 2, 27)
    con.execute("UPDATE org.Parent__c SET Start__c = DATE '2026-02-28'")
    assert _value(con, "End__c") == dt.date(2026, 3, 30)


def test_a_formula_may_use_another_formula_of_its_record():
    con = _org(
        _schema(
            ("Twice__c", "double", "Quantity__c * 2"),
            ("Four_Times__c", "double", "Twice__c * 2"),
        )
    )
    assert _value(con, "Four_Times__c") == 12


def test_a_function_the_sandbox_cannot_evaluate_is_refused_naming_object_and_field():
    with pytest.raises(FormulaError, match=r"Child__c\.Label__c: .*function TEXT"):
        view_statements(_schema(("Label__c", "string", "TEXT(Quantity__c)")))


def test_a_record_read_over_rest_shows_its_formula_as_of_now_with_its_stamp_unmoved(sandbox):
    sf = clients.soap_client(sandbox)
    soql = "SELECT Id, EndDate, SystemModstamp FROM Contract ORDER BY Id LIMIT 1"
    (before,) = sf.query(soql)["records"]
    org = sandbox.salesforce.org
    org.db.cursor().execute(
        'UPDATE org."Contract" SET "ContractTerm" = "ContractTerm" + 12 WHERE "Id" = ?',
        [before["Id"]],
    )
    try:
        (after,) = sf.query(soql)["records"]
    finally:
        org.db.cursor().execute(
            'UPDATE org."Contract" SET "ContractTerm" = "ContractTerm" - 12 WHERE "Id" = ?',
            [before["Id"]],
        )
    assert after["SystemModstamp"] == before["SystemModstamp"]
    start = dt.date.fromisoformat(before["EndDate"])
    assert dt.date.fromisoformat(after["EndDate"]).year == start.year + 1
