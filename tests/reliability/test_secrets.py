"""Secrets never leak: not in the CLI's output, Dagster's run history, the warehouse or exceptions.

The sandbox runs as a process of its own and generates the credentials it writes to
`sandbox.json`. The `m3sync` commands then run as an operator's shell runs them: a backfill that
succeeds, and commands that fail on a wrong m3ter api secret and on wrong Salesforce credentials
(with `--verbose`, so tracebacks are printed and recorded). Afterwards every artifact they left is
searched for every secret, right and wrong, in the forms a secret travels in (as is, URL-encoded,
base64, inside an HTTP Basic header), and for any access token the servers issued: m3ter bearer
tokens are JWTs, recognised by verifying them with the sandbox's signing key, and Salesforce
session ids start with the org id's first 15 characters and `!`.

The sandbox's own state directory and output print the credentials on purpose; they are the
sandbox's, not the pipeline's, and are not searched.

The commands and the searches of what they left take most of a minute: they run in the
reliability suite (`M3SYNC_RELIABILITY=full`). The default run keeps the check that the search
finds planted secrets, and the settings' and resources' own redaction.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import secrets
import sqlite3
import subprocess
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote, quote_plus

import dagster as dg
import duckdb
import jwt
import pytest
import requests

from assets.resources import M3terResource, SalesforceResource
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.errors import M3terAuthError
from pipeline.m3ter.settings import M3terSettings
from pipeline.m3ter.settings import sandbox_settings as m3ter_settings
from pipeline.redact import redacted_repr
from pipeline.retry import RetryPolicy
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.errors import SalesforceAuthError
from pipeline.salesforce.settings import SalesforceSettings
from pipeline.salesforce.settings import sandbox_settings as salesforce_settings
from pipeline.sandbox.environment import sandbox_environment
from tests.processes import M3SYNC, sandbox_process

FIRST = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)).isoformat()
LAST = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
# Wrong credentials are secrets too: an operator's typo is usually one character off the real one.
WRONG_M3TER_SECRET = "wrong-m3ter-" + secrets.token_urlsafe(24)
WRONG_SALESFORCE_PASSWORD = "wrong-password-" + secrets.token_urlsafe(18)
WRONG_CLIENT_SECRET = "WRONG" + secrets.token_hex(24).upper()
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Secrets:
    """What must never show up, and how to recognise it in any text."""

    values: dict[str, str]  # name -> secret
    basic: dict[str, tuple[str, str]]  # name -> (user, secret) as sent in an HTTP Basic header
    signing_key: str  # the m3ter sandbox's token key: a JWT it verifies was issued to us
    session_prefix: str  # every Salesforce session id of the org starts with this

    @classmethod
    def of(cls, sandbox_dir: Path, info: dict[str, Any]) -> Secrets:
        sf, m3 = info["salesforce"], info["m3ter"]
        key = json.loads((sandbox_dir / "m3ter" / "credentials.json").read_text())["signing_key"]
        return cls(
            values={
                "salesforce client_secret": sf["client_secret"],
                "salesforce password": sf["password"],
                "salesforce security_token": sf["security_token"],
                "m3ter api_secret": m3["api_secret"],
                "m3ter token signing key": key,
                "wrong m3ter api_secret": WRONG_M3TER_SECRET,
                "wrong salesforce password": WRONG_SALESFORCE_PASSWORD,
                "wrong salesforce client_secret": WRONG_CLIENT_SECRET,
            },
            basic={
                "m3ter": (m3["access_key_id"], m3["api_secret"]),
                "wrong m3ter": (m3["access_key_id"], WRONG_M3TER_SECRET),
                "salesforce": (sf["client_id"], sf["client_secret"]),
                "wrong salesforce": (sf["client_id"], WRONG_CLIENT_SECRET),
            },
            signing_key=key,
            session_prefix=sf["org_id"][:15] + "!",
        )

    @property
    def forms(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, value in self.values.items():
            found[name] = value
            found[f"{name}, URL-encoded"] = quote(value, safe="")
            found[f"{name}, form-encoded"] = quote_plus(value)
            found[f"{name}, base64"] = _b64(value)
        for name, (user, secret) in self.basic.items():
            found[f"{name} HTTP Basic credentials"] = _b64(f"{user}:{secret}")
        return found

    def find(self, text: str) -> list[str]:
        """Labels of every secret form and issued token in `text`."""
        hits = [label for label, form in self.forms.items() if form in text]
        hits += [f"m3ter access token {t[:16]}..." for t in JWT.findall(text) if self._issued(t)]
        for match in re.finditer(re.escape(self.session_prefix) + r"[A-Za-z0-9_-]{16,}", text):
            hits.append(f"Salesforce session id {match.group(0)[:20]}...")
        return hits

    def _issued(self, token: str) -> bool:
        try:
            jwt.decode(
                token,
                self.signing_key,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iss": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            return False
        return True


# ---- what gets searched -------------------------------------------------------------------------


@dataclass
class Scanned:
    """Where each searched text came from, and what the search found there."""

    counts: dict[str, int] = field(default_factory=dict)
    leaks: list[str] = field(default_factory=list)

    def search(self, kind: str, texts: Iterable[tuple[str, str]], found: Secrets) -> Scanned:
        for where, text in texts:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.leaks += [f"{where}: {hit}" for hit in found.find(text)]
        return self


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


def file_texts(root: Path) -> Iterator[tuple[str, str]]:
    """Every file's bytes (as latin-1, so any byte sequence is searched as written)."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes().decode("latin-1")


def _is(path: Path, magic: bytes) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(magic)) == magic


def sqlite_texts(root: Path) -> Iterator[tuple[str, str]]:
    """Every row of every table of every SQLite file under `root`, decoded by SQLite itself
    (a value spilling over several pages is whole again)."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if not _is(path, b"SQLite format 3\x00"):
            continue
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                for number, row in enumerate(con.execute(f'SELECT * FROM "{table}"')):
                    yield f"{path} {table} row {number}", " ".join(_text(v) for v in row)
        finally:
            con.close()


def parquet_texts(root: Path) -> Iterator[tuple[str, str]]:
    """Every Parquet file's values (decompressed, decoded) and its schema and key-value
    metadata."""
    con = duckdb.connect()
    try:
        for path in sorted(root.rglob("*.parquet")):
            rows = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
            for number, row in enumerate(rows):
                yield f"{path} row {number}", " ".join(_text(v) for v in row)
            meta = [
                *con.execute("SELECT * FROM parquet_kv_metadata(?)", [str(path)]).fetchall(),
                *con.execute("SELECT * FROM parquet_schema(?)", [str(path)]).fetchall(),
            ]
            yield f"{path} metadata", " ".join(_text(v) for row in meta for v in row)
    finally:
        con.close()


def duckdb_texts(path: Path) -> Iterator[tuple[str, str]]:
    """Every row of every table and view of a DuckDB catalog, as an analyst would query it."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        relations = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL"
        ).fetchall()
        for schema, name in relations:
            rows = con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()
            for number, row in enumerate(rows):
                yield f"{path} {schema}.{name} row {number}", " ".join(_text(v) for v in row)
        views = con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()
        yield f"{path} view definitions", " ".join(str(v[0]) for v in views)
    finally:
        con.close()


@dataclass
class History:
    """Dagster's records of the runs, decoded through its own API."""

    texts: list[tuple[str, str]]
    failures: list[str]  # every step and run failure's error, causes included


def dagster_history(home: Path) -> History:
    texts: list[tuple[str, str]] = []
    failures: list[str] = []
    with (
        mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}),
        dg.DagsterInstance.get() as instance,
    ):
        for run in instance.get_runs():
            texts.append((f"run {run.run_id}", dg.serialize_value(run)))
            for entry in instance.all_logs(run.run_id):
                where = f"run {run.run_id} event {entry.timestamp}"
                texts.append((where, dg.serialize_value(entry)))
                event = entry.dagster_event
                if event is None:
                    texts.append((where, entry.user_message))
                    continue
                error = None
                if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                    error = event.step_failure_data.error
                elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
                    error = getattr(event.event_specific_data, "error", None)
                if error is not None:
                    failures.append(error.to_string())
                    texts.append((f"{where} error", failures[-1]))
    return History(texts, failures)


# ---- the scenario ------------------------------------------------------------------------------


@dataclass
class Scenario:
    root: Path  # the operator's working directory tree: everything the commands wrote
    sandbox_dir: Path
    info: dict[str, Any]
    found: Secrets
    commands: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "dagster"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"


def _password_login(info: dict[str, Any]) -> dict[str, str]:
    """The OAuth username-password login, with a wrong password."""
    sf = info["salesforce"]
    return {
        "M3SYNC_SALESFORCE_AUTH": "password",
        "M3SYNC_SALESFORCE_USERNAME": sf["username"],
        "M3SYNC_SALESFORCE_PASSWORD": WRONG_SALESFORCE_PASSWORD,
        "M3SYNC_SALESFORCE_SECURITY_TOKEN": sf["security_token"],
    }


def _environment(root: Path) -> dict[str, str]:
    """A clean shell: no M3SYNC_* or DAGSTER_HOME of the test process leaks into the commands."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("M3SYNC_") and k != "DAGSTER_HOME"
    }
    return {
        **env,
        "DAGSTER_HOME": str(root / "dagster"),
        "M3SYNC_WAREHOUSE": str(root / "warehouse"),
        "M3SYNC_START_DATE": FIRST,
        "COLUMNS": "200",
    }


def _m3sync(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [M3SYNC, *args], capture_output=True, text=True, env=env, cwd=root, check=False
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The sandbox in its own process, with the credentials it generated."""
    directory = tmp_path_factory.mktemp("secrets") / "sandbox"
    with sandbox_process(directory, "--accounts", "3") as (_, info):
        yield directory, info


@pytest.fixture(scope="module")
def scenario(
    sandbox: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Scenario:
    """A backfill, then three refused commands (in parallel): a run against m3ter with a wrong
    api secret, and Salesforce logins with a wrong password and a wrong client secret."""
    sandbox_dir, info = sandbox
    root = tmp_path_factory.mktemp("operator")
    ran = Scenario(root, sandbox_dir, info, Secrets.of(sandbox_dir, info))
    env = _environment(root)
    ran.commands["backfill"] = _m3sync(
        root,
        env,
        "-v",
        "backfill",
        "--from",
        FIRST,
        "--to",
        LAST,
        "--sandbox",
        str(sandbox_dir / "sandbox.json"),
    )
    # Without --sandbox: credentials come from the environment, as in production.
    configured = {**env, **sandbox_environment(info)}
    refused = {
        "reconcile with a wrong m3ter secret": (
            {"M3SYNC_M3TER_API_SECRET": WRONG_M3TER_SECRET},
            ("-v", "reconcile"),
        ),
        "Salesforce login with a wrong password": (
            _password_login(info),
            ("-v", "mappings", "validate", "--from-org"),
        ),
        "Salesforce login with a wrong client secret": (
            {"M3SYNC_SALESFORCE_CLIENT_SECRET": WRONG_CLIENT_SECRET},
            ("-v", "mappings", "validate", "--from-org"),
        ),
    }
    with ThreadPoolExecutor(len(refused)) as pool:
        futures = {
            name: pool.submit(_m3sync, root, {**configured, **extra}, *args)
            for name, (extra, args) in refused.items()
        }
        ran.commands.update({name: future.result() for name, future in futures.items()})
    return ran


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


# ---- the scan finds what it looks for -----------------------------------------------------------


def _issued_tokens(info: dict[str, Any]) -> tuple[str, str]:
    """A fresh m3ter bearer token and Salesforce session id, as the servers issue them."""
    m3, sf = info["m3ter"], info["salesforce"]
    with requests.Session() as session:
        session.trust_env = False
        token = session.post(
            m3["url"] + "/oauth/token",
            auth=(m3["access_key_id"], m3["api_secret"]),
            json={"grant_type": "client_credentials"},
            verify=m3["ca_file"],
            timeout=30,
        )
        login = session.post(
            sf["url"] + "/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": sf["client_id"],
                "client_secret": sf["client_secret"],
                "username": sf["username"],
                "password": sf["password"] + sf["security_token"],
            },
            verify=sf["ca_file"],
            timeout=30,
        )
    token.raise_for_status()
    login.raise_for_status()
    return token.json()["access_token"], login.json()["access_token"]


def test_the_scan_finds_planted_secrets_and_issued_tokens_in_every_kind_of_file(sandbox, tmp_path):
    sandbox_dir, info = sandbox
    found = Secrets.of(sandbox_dir, info)
    m3ter_token, session_id = _issued_tokens(info)
    planted = {
        "m3ter HTTP Basic credentials": found.forms["m3ter HTTP Basic credentials"],
        "salesforce client_secret, URL-encoded": quote(info["salesforce"]["client_secret"]),
        "m3ter access token": m3ter_token,
        "Salesforce session id": session_id,
    }
    for label, value in planted.items():
        name = re.sub(r"\W+", "_", label)
        (tmp_path / f"{name}.log").write_text(f"Authorization: {value}\n")
        con = sqlite3.connect(tmp_path / f"{name}.db")
        con.execute("CREATE TABLE event_logs (event TEXT)")
        con.execute(
            "INSERT INTO event_logs VALUES (?)", [json.dumps({"message": " ".join([value] * 500)})]
        )
        con.commit()
        con.close()
        with duckdb.connect() as db:
            db.execute("CREATE TABLE t AS SELECT {'k': ?::VARCHAR} AS nested", [value])
            db.execute(f"COPY t TO '{tmp_path / name}.parquet' (FORMAT parquet, COMPRESSION zstd)")
    scans = {
        "files": Scanned().search("files", file_texts(tmp_path), found),
        "sqlite": Scanned().search("rows", sqlite_texts(tmp_path), found),
        "parquet": Scanned().search("rows", parquet_texts(tmp_path), found),
    }
    for kind, scan in scans.items():
        for label in planted:
            assert any(label in leak for leak in scan.leaks), (kind, label, scan.leaks)


# ---- the end-to-end run leaves no secret behind -----------------------------------------------


@pytest.mark.full
def test_the_commands_ran_and_were_refused_as_intended(scenario):
    backfill = scenario.commands["backfill"]
    assert backfill.returncode == 0, _output(backfill)
    assert "Load into m3ter" in backfill.stdout
    m3ter = scenario.commands["reconcile with a wrong m3ter secret"]
    assert m3ter.returncode == 1
    assert "m3ter refused a token" in m3ter.stdout and "Stack Trace" in m3ter.stdout
    for name in ("wrong password", "wrong client secret"):
        salesforce = scenario.commands[f"Salesforce login with a {name}"]
        assert salesforce.returncode == 1
        assert "was refused" in _output(salesforce)


@pytest.mark.full
def test_the_cli_output_shows_no_secret(scenario):
    outputs = [(name, _output(result)) for name, result in scenario.commands.items()]
    scan = Scanned().search("outputs", outputs, scenario.found)
    assert scan.counts["outputs"] == 4
    assert scan.leaks == []


@pytest.mark.full
def test_no_file_under_dagster_home_holds_a_secret(scenario):
    scan = Scanned().search("files", file_texts(scenario.home), scenario.found)
    compute_logs = list((scenario.home / "storage").rglob("*.err"))
    assert len(compute_logs) >= 2 and scan.counts["files"] > 5
    assert scan.leaks == []


@pytest.mark.full
def test_no_row_of_dagster_s_sqlite_storage_holds_a_secret(scenario):
    scan = Scanned().search("rows", sqlite_texts(scenario.home), scenario.found)
    assert scan.counts["rows"] > 200
    assert scan.leaks == []


@pytest.fixture(scope="module")
def history(scenario: Scenario) -> History:
    return dagster_history(scenario.home)


@pytest.mark.full
def test_no_dagster_run_config_event_or_metadata_holds_a_secret(scenario, history):
    scan = Scanned().search("records", history.texts, scenario.found)
    assert scan.counts["records"] > 100
    assert scan.leaks == []


@pytest.mark.full
def test_the_failed_run_s_exceptions_hold_no_secret(scenario, history):
    failures = history.failures
    assert any("m3ter refused a token" in failure for failure in failures), failures
    errors = [(f"failure {number}", text) for number, text in enumerate(failures)]
    scan = Scanned().search("errors", errors, scenario.found)
    assert scan.leaks == []


@pytest.mark.full
def test_no_warehouse_file_holds_a_secret(scenario):
    scan = Scanned().search("files", file_texts(scenario.warehouse), scenario.found)
    assert len(list(scenario.warehouse.rglob("*.parquet"))) > 20
    assert scan.leaks == []


@pytest.mark.full
def test_no_value_in_the_warehouse_s_parquet_files_holds_a_secret(scenario):
    scan = Scanned().search("rows", parquet_texts(scenario.warehouse), scenario.found)
    assert scan.counts["rows"] > 300
    assert scan.leaks == []


@pytest.mark.full
def test_no_table_an_analyst_can_query_holds_a_secret(scenario):
    catalog = scenario.warehouse / "warehouse.duckdb"
    scan = Scanned().search("rows", duckdb_texts(catalog), scenario.found)
    assert scan.counts["rows"] > 300
    assert scan.leaks == []


@pytest.mark.full
def test_nothing_the_commands_wrote_anywhere_holds_a_secret(scenario):
    scan = Scanned().search("files", file_texts(scenario.root), scenario.found)
    assert scan.leaks == []


@pytest.mark.full
def test_a_run_refused_by_salesforce_leaks_no_secret(scenario, tmp_path):
    env = {
        **_environment(tmp_path),
        **sandbox_environment(scenario.info),
        **_password_login(scenario.info),
    }
    result = _m3sync(tmp_path, env, "-v", "run", "--partition", LAST)
    assert result.returncode == 1 and "was refused" in result.stdout
    history = dagster_history(tmp_path / "dagster")
    assert any("was refused" in failure for failure in history.failures)
    scan = Scanned()
    scan.search("output", [("run", _output(result))], scenario.found)
    scan.search("files", file_texts(tmp_path), scenario.found)
    scan.search("rows", sqlite_texts(tmp_path / "dagster"), scenario.found)
    scan.search("records", history.texts, scenario.found)
    assert scan.leaks == []


# ---- settings and errors, unit by unit ----------------------------------------------------------


SECRET = "s3cr3t-" + secrets.token_urlsafe(16)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(
            M3terSettings("https://api.m3ter.test", "org", "key", SECRET), id="m3ter settings"
        ),
        pytest.param(
            SalesforceSettings(
                "password",
                username="u@example.com",
                password=SECRET,
                security_token=SECRET + "-token",
                client_id="id",
                client_secret=SECRET + "-client",
            ),
            id="salesforce password settings",
        ),
        pytest.param(
            SalesforceSettings(
                "session", session_id=SECRET, instance_url="https://acme.my.salesforce.com"
            ),
            id="salesforce session settings",
        ),
    ],
)
def test_settings_print_without_their_secrets(settings):
    for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}", repr([settings])):
        assert SECRET not in text and "<redacted>" in text


def test_redacted_repr_hides_set_secrets_and_shows_unset_ones_as_unset():
    @dataclass
    class Login:
        user: str
        password: str | None
        token: str | None

    text = redacted_repr(Login("me", SECRET, None), {"password", "token"})
    assert text == "Login(user='me', password='<redacted>', token=None)"


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(
            M3terResource(org_id="org", access_key_id="key", api_secret=SECRET), id="m3ter"
        ),
        pytest.param(SalesforceResource(password=SECRET, client_secret=SECRET), id="salesforce"),
    ],
)
def test_the_dagster_resources_print_without_their_secrets(resource):
    assert SECRET not in repr(resource) and SECRET not in str(resource)


def _everything_about(error: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """The error as a log line, a repr and a traceback with its causes, and every log record."""
    chained = "".join(traceback.format_exception(error))
    parts = [str(error), repr(error), chained, *map(str, getattr(error, "args", ()))]
    parts += [f"{record.getMessage()} {record.args!r}" for record in caplog.records]
    return "\n".join(parts)


def test_a_refused_m3ter_token_request_raises_an_error_without_the_secret(sandbox, caplog):
    sandbox_dir, info = sandbox
    caplog.set_level(logging.DEBUG)
    settings = dataclasses.replace(m3ter_settings(info["m3ter"]), api_secret=WRONG_M3TER_SECRET)
    with M3terClient(settings, FAST_RETRY) as client, pytest.raises(M3terAuthError) as refused:
        client.get("accounts", "any")
    assert refused.value.status == 403  # m3ter lists no 401
    assert Secrets.of(sandbox_dir, info).find(_everything_about(refused.value, caplog)) == []


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param({"password": WRONG_SALESFORCE_PASSWORD}, id="wrong password"),
        pytest.param({"client_secret": WRONG_CLIENT_SECRET}, id="wrong client secret"),
        pytest.param(
            {"client_id": None, "client_secret": None, "password": WRONG_SALESFORCE_PASSWORD},
            id="SOAP login with a wrong password",
        ),
    ],
)
def test_a_refused_salesforce_login_raises_an_error_without_the_secret(sandbox, caplog, wrong):
    sandbox_dir, info = sandbox
    caplog.set_level(logging.DEBUG)
    sf = info["salesforce"]
    if "password" in wrong:
        user = {"username": sf["username"], "security_token": sf["security_token"]}
        wrong = {"auth": "password", **user, **wrong}
    if "client_id" in wrong:
        wrong["api_version"] = "64.0"  # SOAP login() is unavailable from 65.0
    settings = dataclasses.replace(salesforce_settings(sf), **wrong)
    with pytest.raises(SalesforceAuthError) as refused:
        SalesforceClient(settings, FAST_RETRY)
    assert "was refused" in str(refused.value)
    assert Secrets.of(sandbox_dir, info).find(_everything_about(refused.value, caplog)) == []
