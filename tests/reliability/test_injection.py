"""Hostile values cannot change what a query asks or which resource a request reaches.

SOQL: the extract's queries are built from the field plan (names as describe spells them) and
the partition window (datetime literals) only; a mapping's `where` is never sent to Salesforce
but compiled to SQL over the extracted rows, where a quoted string stays one literal. The queries
are captured where the Salesforce sandbox receives them (the REST query handler; Bulk API jobs
keep their query) and parsed back with the pipeline's SOQL parser.

m3ter: ids and the org id are sent as one percent-encoded path segment, list filters as encoded
query parameters, and codes (Salesforce record Ids, by default) inside JSON bodies. The m3ter
sandbox counts every request by the route it matched, so a test can tell which resource a request
reached, and echoes an unknown id in its 404, so a test can tell which id it read.

Values that are refused count as bad inputs in the reliability ledger.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.extract.errors import FieldNotFound
from pipeline.extract.objects import SourceObject
from pipeline.extract.plan import plan_fields
from pipeline.extract.run import ExtractSettings, extract, plan_all, raw_table
from pipeline.extract.window import Window
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.errors import M3terError, M3terRejected
from pipeline.m3ter.settings import sandbox_settings as m3ter_settings
from pipeline.mapping.compiler import compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.mapping.where import WhereError, compile_where
from pipeline.retry import RetryPolicy
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import sandbox_settings as salesforce_settings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import RunningSandbox, running_sandbox
from pipeline.soql.ast import And, Comparison, DateTimeValue, FieldRef, InList, Or, StringValue
from pipeline.soql.parser import parse
from pipeline.staging.stage import stage
from pipeline.warehouse import Warehouse
from tests.m3ter.conftest import admin_call
from tests.reliability.ledger import LEDGER
from tests.shipped import describe

YESTERDAY = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
REST = ExtractSettings(rest_threshold=10**9)
BULK = ExtractSettings(rest_threshold=0, bulk_page_size=500)

# Strings that would change a condition's meaning if pasted into one unquoted or badly escaped.
HOSTILE = {
    "quote breakout": "x' OR Name != '",
    "backslash": "a\\b",
    "backslash quote": "\\'",
    "trailing backslash": "abc\\",
    "newline": "first line\nsecond' OR '1'='1",
    "carriage return and tab": "a\r\n\tb",
    "LIKE wildcards": "50%_off",
    "unicode quotes": "\u2018x\u2019 OR Name != \u201cy\u201d",
    "SQL comment": "x' -- ",
    "statement break": "x'; DROP TABLE raw.account; --",
    "dollar quoting": "$$ OR true $$",
    "double quotes": '"Name" OR "Id"',
    "very long": "x' OR '" * 20_000,
}
PARAMS = [pytest.param(value, id=name) for name, value in HOSTILE.items()]


def soql_string(value: str) -> str:
    """`value` as a SOQL string literal, escaped as Salesforce documents."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


# ---- a mapping's where: one literal, exactly its rows ----------------------------------------


@pytest.mark.parametrize("value", PARAMS)
def test_a_hostile_string_parses_as_one_literal(value):
    condition = parse(f"SELECT Id FROM Account WHERE Name = {soql_string(value)}").where
    assert isinstance(condition, Comparison)
    assert condition.field.dotted == "Name" and condition.op == "="
    assert isinstance(condition.value, StringValue) and condition.value.value == value


def _matching(where: str, names: list[str | None]) -> list[str | None]:
    """The names a compiled where keeps, evaluated by DuckDB over a raw-shaped table."""
    compiled = compile_where(where, "Account", describe)
    con = duckdb.connect()
    con.execute('CREATE TABLE account ("Name" VARCHAR, n INTEGER)')
    con.executemany("INSERT INTO account VALUES (?, ?)", [[v, i] for i, v in enumerate(names)])
    rows = con.execute(f"SELECT n FROM account WHERE {compiled.sql} ORDER BY n").fetchall()
    return [names[n] for (n,) in rows]


def _others(value: str) -> list[str | None]:
    return ["x", "", "y", "anything else", None, value + " ", value[:-1]]


@pytest.mark.parametrize("value", PARAMS)
def test_equals_a_hostile_string_keeps_exactly_the_rows_holding_it(value):
    names = [value, value.upper(), *_others(value)]
    assert _matching(f"Name = {soql_string(value)}", names) == [value, value.upper()]


@pytest.mark.parametrize("value", PARAMS)
def test_not_equals_a_hostile_string_keeps_every_other_row(value):
    names = [value, *_others(value)]
    assert _matching(f"Name != {soql_string(value)}", names) == _others(value)


def test_a_list_of_hostile_strings_keeps_exactly_their_rows():
    values = [HOSTILE["quote breakout"], HOSTILE["backslash quote"], HOSTILE["newline"]]
    where = f"Name IN ({', '.join(soql_string(v) for v in values)})"
    condition = parse(f"SELECT Id FROM Account WHERE {where}").where
    assert isinstance(condition, InList)
    assert [v.value for v in condition.values] == values  # type: ignore[union-attr]
    assert _matching(where, [*values, "x", None, "a"]) == values


@pytest.mark.parametrize(
    ("pattern", "kept", "dropped"),
    [
        pytest.param("'50\\%'", ["50%"], ["500", "50"], id="escaped percent"),
        pytest.param("'a\\_b'", ["a_b", "A_B"], ["axb", "ab"], id="escaped underscore"),
        pytest.param("'a\\\\%'", ["a\\", "a\\bc"], ["ab", "a"], id="escaped backslash then %"),
        pytest.param(
            "'%x\\' OR Name != \\'%'",
            ["--x' OR Name != '--"],
            ["x", "OR Name"],
            id="quote breakout inside wildcards",
        ),
    ],
)
def test_like_treats_escaped_wildcards_and_quotes_as_plain_text(pattern, kept, dropped):
    assert _matching(f"Name LIKE {pattern}", [*kept, *dropped, None]) == kept


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("Name = 'x' LIMIT 1", id="LIMIT"),
        pytest.param("Name = 'x' ORDER BY Name", id="ORDER BY"),
        pytest.param("Name = 'x'; DROP TABLE raw.account", id="statement break"),
        pytest.param("Name = 'x' -- comment", id="SQL comment"),
        pytest.param("Name = 'x' /* comment */", id="block comment"),
        pytest.param("Name = 'x') OR (Name != 'y'", id="unbalanced parentheses"),
        pytest.param('Name = "x" OR "y" = "y"', id="double-quoted strings"),
        pytest.param("Name = 'x\\' OR Name != 'y'", id="unterminated escaped quote"),
        pytest.param("Name = 'a\\u0027'", id="unicode escape"),
        pytest.param("Name = 'a\x00b'", id="NUL in a string"),
        pytest.param("Id IN (SELECT AccountId FROM Contact)", id="semi-join"),
        pytest.param("Name = 'x' OR 1 = 1", id="tautology on a non-field"),
        pytest.param("Name.x = 'y'", id="path through a text field"),
    ],
)
def test_a_where_that_tries_to_leave_its_condition_is_refused(where, request):
    with pytest.raises(WhereError):
        compile_where(where, "Account", describe)
    LEDGER.record("bad_inputs", request.node.name)


# ---- the extract's SOQL: field plan and window only -----------------------------------------


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(["2024-01-01' OR Name != '"], id="quote breakout"),
        pytest.param(["2024-01-01T00:00:00Z OR Id != null"], id="condition after a datetime"),
        pytest.param(["2024-01-01\n"], id="newline"),
        pytest.param(["TODAY"], id="date literal"),
        pytest.param(["2024-01-01", "2024-01-03"], id="gap between days"),
    ],
)
def test_a_hostile_partition_key_is_refused_before_any_query(keys, request):
    with pytest.raises(ValueError):
        Window.for_partitions(keys)
    LEDGER.record("bad_inputs", request.node.name)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("Name FROM Account WHERE Name != ''", id="whole clause"),
        pytest.param("Name, (SELECT Id FROM Contacts)", id="subquery"),
        pytest.param("Id) FROM Account --", id="closing parenthesis"),
        pytest.param("Name\nFROM Contact", id="newline"),
        pytest.param("Parent.Name' OR", id="quote in a path"),
        pytest.param("Credit_Rating__c", id="field hidden by field-level security"),
    ],
)
def test_a_hostile_field_path_is_refused_before_any_query(path, request):
    with pytest.raises(FieldNotFound):
        plan_fields(SourceObject("Account"), describe, [path])
    LEDGER.record("bad_inputs", request.node.name)


@dataclasses.dataclass
class Org:
    """The org sandbox, with the query text of every REST query it answered."""

    running: RunningSandbox
    client: SalesforceClient
    rest_queries: list[str]

    def sql(self, statement: str, params: list[Any]) -> None:
        assert self.running.salesforce is not None
        self.running.salesforce.org.db.cursor().execute(statement, params)

    def bulk_queries(self) -> list[str]:
        assert self.running.salesforce is not None
        return [job.query for job in self.running.salesforce.org.jobs()]


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    state = tmp_path_factory.mktemp("injection-org")
    config = SalesforceConfig(state_dir=state / "salesforce", accounts=5, seed=11)
    with running_sandbox(state, salesforce=config) as running:
        assert running.salesforce is not None
        sandbox_org = running.salesforce.org
        received: list[str] = []
        answer = sandbox_org.query

        def recording(soql: str, **kwargs: Any) -> str:
            received.append(soql)
            return answer(soql, **kwargs)

        sandbox_org.query = recording  # type: ignore[method-assign]
        settings = salesforce_settings(running.info()["salesforce"])
        client = SalesforceClient(settings, RetryPolicy(attempts=4, base_delay=0.01))
        yield Org(running, client, received)


@pytest.mark.parametrize(
    "sobject",
    [
        pytest.param("Account/../Contact", id="parent directory"),
        pytest.param("Account?fields=Name", id="query string"),
        pytest.param("Account#describe", id="fragment"),
        pytest.param("Account%2F..", id="encoded slash"),
        pytest.param("Account Name", id="space"),
    ],
)
def test_a_hostile_object_name_is_refused_before_any_request(org, sobject, request):
    before = org.client.spent()
    with pytest.raises(ValueError, match="not an sObject API name"):
        org.client.describe(sobject)
    assert org.client.spent() == before
    LEDGER.record("bad_inputs", request.node.name)


def _mappings(directory: Path, where: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "accounts.yaml").write_text(
        "- name: Accounts\n  object: Account\n"
        f"  where: {_yaml_string(where)}\n"
        "  fields:\n    name: Name\n    emailAddress: Billing_Email__c\n"
    )
    return directory


def _yaml_string(text: str) -> str:
    """A double-quoted YAML scalar holding `text` exactly."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped.replace("\r", "\\r").replace("\t", "\\t") + '"'


def _comparisons(condition: Any) -> Iterator[Comparison]:
    if isinstance(condition, And | Or):
        for operand in condition.operands:
            yield from _comparisons(operand)
    else:
        yield condition


@pytest.mark.parametrize("settings", [pytest.param(REST, id="REST"), pytest.param(BULK, id="bulk")])
def test_the_extract_sends_salesforce_only_its_field_plan_and_window(org, tmp_path, settings):
    hostile = HOSTILE["quote breakout"]
    where = f"Name != {soql_string(hostile)} AND Billing_Email__c != {soql_string(hostile)}"
    compiled = compile_mappings(
        load_mappings(_mappings(tmp_path / "m", where)), org.client.describe
    )
    account = SourceObject("Account")
    plan = plan_all(org.client, [account], compiled.fields)["Account"]
    sent_before, jobs_before = len(org.rest_queries), len(org.bulk_queries())
    extract(org.client, Warehouse(tmp_path / "w"), account, [YESTERDAY], settings, plan=plan)
    sent = org.rest_queries[sent_before:] + org.bulk_queries()[jobs_before:]
    window = Window.for_partitions([YESTERDAY])
    low, high = window.start - settings.overlap, window.end
    assert sent and all(hostile not in soql for soql in sent)
    for soql in sent:
        query = parse(soql)
        assert query.sobject == "Account"
        selected = [item.dotted for item in query.select if isinstance(item, FieldRef)]
        assert selected in ([c.path for c in plan.columns], [])  # [] for the COUNT() query
        bounds = list(_comparisons(query.where))
        assert {b.field.dotted for b in bounds} == set(plan.stamps)
        for bound in bounds:
            assert isinstance(bound.value, DateTimeValue)
            assert (bound.op, bound.value.value) in (
                (">=", low.replace(tzinfo=None)),
                ("<", high.replace(tzinfo=None)),
            )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(HOSTILE["quote breakout"], id="quote breakout"),
        pytest.param(HOSTILE["backslash quote"], id="backslash quote"),
        pytest.param(HOSTILE["newline"], id="newline"),
        pytest.param(HOSTILE["unicode quotes"], id="unicode quotes"),
    ],
)
def test_a_hostile_value_in_salesforce_is_staged_only_by_the_where_that_names_it(
    org, tmp_path, value
):
    accounts = [
        row[0]
        for row in org.running.salesforce.org.db.execute(  # type: ignore[union-attr]
            'SELECT "Id" FROM org."Account" ORDER BY "Id" LIMIT 3'
        ).fetchall()
    ]
    stamp = dt.datetime.fromisoformat(YESTERDAY) + dt.timedelta(hours=12)
    for account, name in zip(accounts, [value, value.upper(), "x"], strict=True):
        org.sql(
            'UPDATE org."Account" SET "Name" = ?, "SystemModstamp" = ? WHERE "Id" = ?',
            [name, stamp, account],
        )
    where = f"Name = {soql_string(value)}"
    compiled = compile_mappings(
        load_mappings(_mappings(tmp_path / "m", where)), org.client.describe
    )
    warehouse = Warehouse(tmp_path / "w")
    account = SourceObject("Account")
    plan = plan_all(org.client, [account], compiled.fields)["Account"]
    extract(org.client, warehouse, account, [YESTERDAY], REST, plan=plan)
    stage(warehouse, compiled["accounts"], [YESTERDAY])
    staged = warehouse.connect().execute(
        "SELECT code, name FROM staged.accounts WHERE NOT _tombstone ORDER BY code"
    )
    assert staged.fetchall() == [(accounts[0], value), (accounts[1], value.upper())]


# ---- m3ter paths, query parameters and bodies --------------------------------------------------

HOSTILE_IDS = {
    "parent directory": "../x",
    "parent of the collection": "../accounts",
    "slash": "a/b",
    "query string": "?q=1",
    "query parameter": "x?pageSize=1&codes=y",
    "fragment": "#f",
    "encoded slash": "%2F",
    "encoded dot segment": "%2e%2e",
    "encoded traversal": "..%2F..%2Faccounts",
    "space": "a b",
    "plus": "a+b",
    "semicolon": ";x=1",
    "backslash": "a\\b",
    "unicode": "\u00e9/\u00fc\u2215",
    "three dots": "...",
}
ID_PARAMS = [pytest.param(value, id=name) for name, value in HOSTILE_IDS.items()]


@pytest.fixture(scope="module")
def m3ter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("injection-m3ter")
    config = M3terConfig(state_dir=state / "m3ter", rate_limit_per_second=None)
    with running_sandbox(state, m3ter=config) as running:
        yield running.info()["m3ter"]


def _routes(info: dict[str, str]) -> list[tuple[str, str, int]]:
    """(method, route pattern, status) of every org call since the counters were reset."""
    counters = admin_call(info, "GET", "counters")["counters"]
    return sorted(
        (row["method"], row["path"], row["status"])
        for row in counters
        if row["path"] != "/oauth/token"
    )


@pytest.fixture
def client(m3ter: dict[str, str]) -> Iterator[M3terClient]:
    admin_call(m3ter, "POST", "reset")
    with M3terClient(m3ter_settings(m3ter)) as made:
        made._bearer()  # the token first, so the counters hold only the call under test
        admin_call(m3ter, "POST", "counters/reset")
        yield made


OBJECT_ROUTE = "/organizations/{orgId}/accounts/{id}"
CALLS = {
    "GET": lambda client, object_id: client.get("accounts", object_id),
    "PUT": lambda client, object_id: client.update("accounts", object_id, {"version": 1}),
    "DELETE": lambda client, object_id: client.delete("accounts", object_id),
}


@pytest.mark.parametrize("method", list(CALLS))
@pytest.mark.parametrize("object_id", ID_PARAMS)
def test_a_hostile_id_reaches_the_object_route_as_one_segment(m3ter, client, method, object_id):
    with pytest.raises(M3terRejected) as refused:
        CALLS[method](client, object_id)
    assert refused.value.status == 404
    assert refused.value.message == f"Account not found: no Account with id '{object_id}'"
    assert _routes(m3ter) == [(method, OBJECT_ROUTE, 404)]


@pytest.mark.parametrize("object_id", ["", ".", ".."])
def test_an_id_a_url_parser_would_resolve_away_is_refused_before_any_request(
    m3ter, client, object_id, request
):
    with pytest.raises(ValueError):
        client.get("accounts", object_id)
    assert _routes(m3ter) == []
    LEDGER.record("bad_inputs", request.node.name)


@pytest.mark.parametrize(
    "org_id",
    [
        pytest.param("a/b", id="slash"),
        pytest.param("../x", id="parent directory"),
        pytest.param("x?y=1", id="query string"),
        pytest.param("x#y", id="fragment"),
    ],
)
def test_a_hostile_org_id_reaches_the_org_s_route_as_one_segment(m3ter, client, org_id):
    settings = dataclasses.replace(m3ter_settings(m3ter), org_id=org_id)
    with M3terClient(settings) as foreign, pytest.raises(M3terError) as refused:
        foreign.get("accounts", "x")
    assert refused.value.status == 403
    # the call, and the read that tells a missing permission from an org refusing everything
    probe = OBJECT_ROUTE.rsplit("/", 2)[0] + "/products"
    assert set(_routes(m3ter)) == {("GET", OBJECT_ROUTE, 403), ("GET", probe, 403)}


def test_the_sandbox_refuses_an_org_id_that_only_starts_with_its_own(m3ter, client):
    org_id = f"{m3ter['org_id']}/../{m3ter['org_id']}"
    settings = dataclasses.replace(m3ter_settings(m3ter), org_id=org_id)
    with M3terClient(settings) as foreign, pytest.raises(M3terError) as refused:
        list(foreign.list("accounts"))
    assert refused.value.status == 403


HOSTILE_CODES = {
    "parameter injection": "a&codes=b",
    "page size injection": "a&pageSize=1",
    "fragment": "a#b",
    "query string": "a?b",
    "equals": "a=b",
    "encoded comma": "a%2Cb",
    "plus": "a+b",
    "inner space": "a b",
    "quotes": "a'\"b",
    "unicode": "\u00e9\u00df\u2215",
}


@pytest.mark.parametrize("code", [pytest.param(v, id=k) for k, v in HOSTILE_CODES.items()])
def test_a_hostile_code_in_a_codes_filter_matches_only_that_code(client, code):
    for each in (code, "a", "b"):
        client.create("accounts", {"code": each, "name": each, "emailAddress": "x@example.com"})
    assert [a["code"] for a in client.list("accounts", codes=[code])] == [code]


def test_a_code_holding_a_comma_is_refused_in_a_list_filter(m3ter, client, request):
    for each in ("a", "b"):
        client.create("accounts", {"code": each, "name": each, "emailAddress": "x@example.com"})
    admin_call(m3ter, "POST", "counters/reset")
    with pytest.raises(ValueError, match="splits list filters on commas"):
        list(client.list("accounts", codes=["a,b"]))
    assert _routes(m3ter) == []
    LEDGER.record("bad_inputs", request.node.name)


HOSTILE_RECORD_IDS = [
    "001' OR 'x'='x",
    "a/../b",
    "../accounts",
    "?codes=x&pageSize=1",
    "#frag",
    "%2F%2e%2e",
    '"}, {"code": "evil',
    "\u00e9 \u00fc/\u00df",
    "a\\b",
    "a,b",
    "x;y=1",
]


def test_hostile_record_ids_become_m3ter_codes_verbatim_and_a_second_load_writes_nothing(
    client, tmp_path
):
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "accounts.yaml").write_text(
        "- name: Accounts\n  object: Account\n"
        "  fields:\n    name: Name\n    emailAddress: Billing_Email__c\n"
    )
    compiled = compile_mappings(load_mappings(mappings), describe)
    warehouse = Warehouse(tmp_path / "warehouse")
    con = duckdb.connect()
    con.execute(
        'CREATE TABLE a ("Id" VARCHAR, "IsDeleted" BOOLEAN, "Name" VARCHAR, '
        '"Billing_Email__c" VARCHAR, _version_stamp TIMESTAMP, _partition VARCHAR, '
        "_extracted_at TIMESTAMP)"
    )
    con.executemany(
        "INSERT INTO a VALUES (?, false, ?, 'billing@example.com', "
        "TIMESTAMP '2024-03-01 10:00:00', '2024-03-01', now()::TIMESTAMP)",
        [[record, f"Account {record}"] for record in HOSTILE_RECORD_IDS],
    )
    warehouse.write_partition(con, raw_table(SourceObject("Account")), "2024-03-01", "FROM a")
    stage(warehouse, compiled["accounts"], ["2024-03-01"])
    first = load(client, warehouse, "accounts", ["2024-03-01"])
    assert first.outcomes == {"create:applied": len(HOSTILE_RECORD_IDS)}
    created = {a["code"]: a["name"] for a in client.list("accounts")}
    assert created == {record: f"Account {record}" for record in HOSTILE_RECORD_IDS}
    writes = client.writes
    again = load(client, warehouse, "accounts", ["2024-03-01"])
    assert again.outcomes == {"unchanged:unchanged": len(HOSTILE_RECORD_IDS)}
    assert client.writes == writes
