"""The pipeline's Salesforce client against the org sandbox, over real HTTPS sockets."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from simple_salesforce.bulk2 import _Bulk2Client

from pipeline.retry import RetryPolicy
from pipeline.salesforce.client import (
    SalesforceClient,
    Spend,
    count_query,
    salesforce_kwargs,
    split_query_page,
)
from pipeline.salesforce.errors import (
    ApiLimitExceeded,
    BulkJobFailed,
    QuotaFloorReached,
    SalesforceAuthError,
    SalesforceExtractError,
    SalesforceRequestError,
    SessionExpiredError,
)
from pipeline.salesforce.settings import SalesforceSettings
from pipeline.sandbox.server import RunningSandbox
from tests.conftest import StartSandbox

FAST = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05)
ORDER_ITEMS = "SELECT Id, OrderId, Order.Account.Region__c, Quantity, IsDeleted FROM OrderItem"
POLL = 0.02


def settings(sandbox: RunningSandbox, auth: str, **overrides: Any) -> SalesforceSettings:
    sf = sandbox.info()["salesforce"]
    by_mode: dict[str, dict[str, Any]] = {
        "client_credentials": {"client_id": sf["client_id"], "client_secret": sf["client_secret"]},
        "password": {
            "username": sf["username"],
            "password": sf["password"],
            "security_token": sf["security_token"],
            "api_version": "64.0",  # SOAP login() is unavailable from 65.0
        },
        "password_oauth": {
            "username": sf["username"],
            "password": sf["password"],
            "security_token": sf["security_token"],
            "client_id": sf["client_id"],
            "client_secret": sf["client_secret"],
        },
        "jwt": {
            "username": sf["username"],
            "client_id": sf["client_id"],
            "private_key_file": sf["jwt_private_key_file"],
        },
        "session": {"instance_url": sf["url"]},
    }
    values = {"login_url": sf["url"], "ca_file": sf["ca_file"], **by_mode[auth], **overrides}
    return SalesforceSettings(auth="password" if auth == "password_oauth" else auth, **values)  # type: ignore[arg-type]


def client(
    sandbox: RunningSandbox, auth: str = "client_credentials", **kw: Any
) -> SalesforceClient:
    retry = kw.pop("retry", FAST)
    return SalesforceClient(settings(sandbox, auth, **kw), retry)


def rest_rows(path: Path) -> set[tuple[str, str | None, bool]]:
    rows = duckdb.sql(
        f"SELECT Id, \"Order\".Account.Region__c, IsDeleted FROM read_json('{path}')"
    ).fetchall()
    return set(rows)


def bulk_rows(files: list[Path]) -> set[tuple[str, str | None, bool]]:
    names = ", ".join(f"'{f}'" for f in files)
    rows = duckdb.sql(
        f"SELECT Id, nullif(\"Order.Account.Region__c\", ''), IsDeleted = 'true' "
        f"FROM read_csv([{names}], all_varchar = true)"
    ).fetchall()
    return set(rows)


@pytest.fixture(scope="module")
def cc(sandbox: RunningSandbox) -> SalesforceClient:
    return client(sandbox)


# ---- pure helpers ---------------------------------------------------------------------------


def test_each_login_flow_gets_exactly_its_constructor_arguments():
    base = {"login_url": "https://acme.my.salesforce.com", "username": "u", "client_id": "c"}
    cc_ = SalesforceSettings(auth="client_credentials", client_secret="s", **base)
    assert salesforce_kwargs(cc_) == {
        "consumer_key": "c",
        "consumer_secret": "s",
        "domain": "acme.my",
    }
    routed = SalesforceSettings(
        auth="client_credentials", client_id="c", client_secret="s", login_url="https://10.0.0.1"
    )
    assert salesforce_kwargs(routed)["domain"].endswith(".my")
    soap = SalesforceSettings(
        auth="password", password="p", api_version="64.0", **{**base, "client_id": None}
    )
    assert salesforce_kwargs(soap) == {
        "username": "u",
        "password": "p",
        "security_token": "",
        "domain": "acme.my",
    }
    oauth = SalesforceSettings(
        auth="password", password="p", security_token="t", client_secret="s", **base
    )
    assert salesforce_kwargs(oauth)["password"] == "pt"
    assert "security_token" not in salesforce_kwargs(oauth)
    jwt = SalesforceSettings(auth="jwt", private_key_file="k.pem", **base)
    assert salesforce_kwargs(jwt)["domain"] == "login"
    assert salesforce_kwargs(jwt)["instance_url"] == "acme.my"
    uat = SalesforceSettings(
        auth="jwt",
        private_key_file="k.pem",
        **{**base, "login_url": "https://acme--uat.sandbox.my.salesforce.com"},
    )
    assert salesforce_kwargs(uat)["domain"] == "test"


def test_count_query_keeps_from_and_where():
    assert count_query("SELECT Id, (SELECT Id FROM OrderItems) FROM Order WHERE X = 1") == (
        "SELECT COUNT() FROM Order WHERE X = 1"
    )
    assert count_query("select count() from Account") == "SELECT COUNT() from Account"
    with pytest.raises(ValueError):
        count_query("DELETE FROM Account")


def test_a_query_page_is_split_into_its_fields_and_the_records_text_as_sent():
    page = (
        '{ "totalSize" : 3, "done" : false,\n "records" : [ {"a": {"records": [1]}}, {"b": "]"} ],'
        ' "nextRecordsUrl" : "/services/data/v59.0/query/01g-2" }'
    )
    head, records, count = split_query_page(page)
    assert head == {
        "totalSize": 3,
        "done": False,
        "nextRecordsUrl": "/services/data/v59.0/query/01g-2",
    }
    assert records == '[ {"a": {"records": [1]}}, {"b": "]"} ]'
    assert count == 2


# ---- against the sandbox --------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["client_credentials", "password", "password_oauth", "jwt"])
def test_each_login_flow_logs_in_and_queries(sandbox: RunningSandbox, auth: str):
    with client(sandbox, auth) as sf:
        assert sf.logins == 1
        assert sf.count("SELECT Id FROM Account WHERE IsDeleted = false") == 146
        assert (sf.api_calls, sf.last_call.api_calls, sf.last_call.logins) == (1, 1, 0)


def test_a_direct_session_queries_without_logging_in(sandbox: RunningSandbox, cc: SalesforceClient):
    with client(sandbox, "session", session_id=cc.salesforce.session_id) as sf:
        assert sf.count("SELECT COUNT() FROM Account") == 146
        assert (sf.logins, sf.api_calls) == (0, 1)


def test_describe_is_fetched_once_per_client(sandbox: RunningSandbox):
    with client(sandbox) as sf:
        first = sf.describe("OrderItem")
        assert sf.describe("OrderItem") is first
        assert sf.api_calls == 1
        assert {"Id", "OrderId", "SystemModstamp"} <= {f["name"] for f in first["fields"]}


def test_rest_and_bulk_give_the_same_records(
    sandbox: RunningSandbox, cc: SalesforceClient, tmp_path: Path
):
    json_file = tmp_path / "order_items.json"
    assert cc.query_all_to_file(ORDER_ITEMS, json_file, include_deleted=False) == 2933
    rest = cc.last_call
    assert rest.api_calls == 2  # 2,933 records: two REST pages of at most 2,000
    assert rest.records == 2933 and rest.bytes_downloaded > json_file.stat().st_size / 2
    types = duckdb.sql(
        f"SELECT DISTINCT attributes.type, \"Order\".attributes.type FROM read_json('{json_file}')"
    )
    assert types.fetchall() == [("OrderItem", "Order")]

    files = cc.bulk_query_to_files(
        ORDER_ITEMS, tmp_path / "bulk", include_deleted=False, page_size=700, poll_seconds=POLL
    )
    bulk = cc.last_call
    assert [f.name for f in files] == [f"part-{i:05d}.csv" for i in range(5)]
    assert all(f.read_text().startswith('"Id","OrderId","Order.Account.Region__c"') for f in files)
    assert (bulk.bulk_jobs, bulk.records, bulk.retries) == (1, 2933, 0)
    assert bulk.bytes_downloaded > sum(f.stat().st_size for f in files)  # + job status JSON
    assert bulk.api_calls >= 1 + 1 + 5  # create, at least one status poll, five pages

    rows = rest_rows(json_file)
    assert len(rows) == 2933 and rows == bulk_rows(files)
    assert {region for _, region, _ in rows} >= {"APAC", "EMEA"}


def test_query_all_includes_deleted_rows(
    sandbox: RunningSandbox, cc: SalesforceClient, tmp_path: Path
):
    assert cc.query_all_to_file(ORDER_ITEMS, tmp_path / "all.json", include_deleted=True) == 3000
    rest = rest_rows(tmp_path / "all.json")
    assert sum(deleted for _, _, deleted in rest) == 67
    files = cc.bulk_query_to_files(
        ORDER_ITEMS + " WHERE IsDeleted = true",
        tmp_path / "deleted",
        include_deleted=True,
        poll_seconds=POLL,
    )
    assert bulk_rows(files) == {row for row in rest if row[2]}


def test_a_new_run_into_the_same_folder_leaves_no_stale_pages(cc: SalesforceClient, tmp_path: Path):
    out = tmp_path / "bulk"
    many = cc.bulk_query_to_files(
        ORDER_ITEMS, out, include_deleted=False, page_size=1000, poll_seconds=POLL
    )
    assert len(many) == 3
    one = cc.bulk_query_to_files(ORDER_ITEMS, out, include_deleted=False, poll_seconds=POLL)
    assert sorted(out.iterdir()) == one


def test_a_malformed_query_is_not_retried_and_says_why(cc: SalesforceClient, tmp_path: Path):
    with pytest.raises(SalesforceRequestError) as failure:
        cc.query_all_to_file(
            "SELECT Nope__c FROM Account", tmp_path / "x.json", include_deleted=False
        )
    assert failure.value.status == 400
    assert failure.value.error_code == "INVALID_FIELD"
    assert "Nope__c" in str(failure.value)
    assert cc.last_call.retries == 0
    assert not list(tmp_path.iterdir())


def test_retries_under_faults_give_the_fault_free_results(
    start_sandbox: StartSandbox, tmp_path: Path
):
    def extract(sandbox: RunningSandbox, name: str) -> tuple[Any, ...]:
        retry = RetryPolicy(attempts=15, base_delay=0.01, max_delay=0.05)
        with client(sandbox, retry=retry) as sf:
            sf.query_all_to_file(ORDER_ITEMS, tmp_path / f"{name}.json", include_deleted=True)
            files = sf.bulk_query_to_files(
                ORDER_ITEMS,
                tmp_path / name,
                include_deleted=True,
                page_size=60,
                poll_seconds=POLL,
            )
            counted = sf.count("SELECT Id FROM OrderItem")
            described = sf.describe("Order")["name"]
            result = (rest_rows(tmp_path / f"{name}.json"), bulk_rows(files), counted, described)
            return result, sf.spent()

    with start_sandbox(accounts=10, name="clean") as clean:
        expected, clean_spend = extract(clean, "clean")
    faults = {"http500": 0.1, "http503": 0.1, "drop": 0.05, "expire": 0.05}
    with start_sandbox(accounts=10, name="faulty", faults=faults, fault_seed=11) as faulty:
        got, spend = extract(faulty, "faulty")
        injected = faulty.salesforce.faults.injected  # type: ignore[union-attr]
    assert got == expected
    assert len(expected[0]) == 200 and expected[0] == expected[1]
    assert clean_spend.retries == 0
    assert spend.retries > 0 and sum(injected.values()) > 0
    assert spend.api_calls > clean_spend.api_calls
    if injected.get("expire"):
        assert spend.logins > 1


def test_a_job_that_always_fails_raises_bulk_job_failed_with_salesforce_s_message(
    start_sandbox: StartSandbox, tmp_path: Path
):
    with start_sandbox(faults={"bulk_fail": 1.0}) as sandbox:
        retry = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
        with client(sandbox, retry=retry) as sf:
            with pytest.raises(BulkJobFailed) as failure:
                sf.bulk_query_to_files(
                    ORDER_ITEMS, tmp_path, include_deleted=False, poll_seconds=POLL
                )
            assert (sf.bulk_jobs, sf.retries) == (3, 2)
    assert "InvalidBatch : Failed to process query" in str(failure.value)
    assert failure.value.attempts == 3 and len(set(failure.value.job_ids)) == 3
    assert failure.value.operation == "query"
    assert not list(tmp_path.glob("*.csv"))


def test_a_failed_job_is_run_again_as_a_new_job(start_sandbox: StartSandbox, tmp_path: Path):
    # With seed 0 the sandbox fails the first job it is given and runs the second.
    with (
        start_sandbox(faults={"bulk_fail": 0.5}, fault_seed=0) as sandbox,
        client(sandbox) as sf,
    ):
        files = sf.bulk_query_to_files(
            ORDER_ITEMS, tmp_path, include_deleted=True, page_size=40, poll_seconds=POLL
        )
        assert (sf.last_call.bulk_jobs, sf.last_call.retries, sf.last_call.records) == (
            2,
            1,
            100,
        )
    assert len(files) == 3 and len(bulk_rows(files)) == 100


def test_the_quota_floor_stops_before_the_org_runs_out(start_sandbox: StartSandbox):
    with start_sandbox(daily_api_requests=12) as sandbox, client(sandbox) as sf:
        assert sf.remaining_api_requests() == (11, 12)
        sf.ensure_quota(floor=5)
        with pytest.raises(QuotaFloorReached) as floor:
            sf.ensure_quota(floor=10)
        assert str(floor.value) == (
            "9 of 12 daily API requests left, below the configured floor 10; "
            "stopping before the org runs out"
        )
        for _ in range(9):
            sf.count("SELECT Id FROM Account")
        with pytest.raises(ApiLimitExceeded, match="REQUEST_LIMIT_EXCEEDED") as limit:
            sf.count("SELECT Id FROM Account")
        assert sf.last_call.retries == 0 and limit.value.status == 403
        with pytest.raises(QuotaFloorReached, match="0 of 12 daily API requests left"):
            sf.ensure_quota(floor=1)


def test_an_expired_direct_session_gives_a_clear_error(sandbox: RunningSandbox, tmp_path: Path):
    token = client(sandbox).salesforce.session_id
    with client(sandbox, "session", session_id=token) as sf:
        assert sf.count("SELECT Id FROM Account") == 146
        sandbox.salesforce.sessions.expire(token)  # type: ignore[union-attr]
        with pytest.raises(SessionExpiredError, match="cannot log in again") as rest:
            sf.count("SELECT Id FROM Account")
        with pytest.raises(SessionExpiredError):
            sf.bulk_query_to_files(ORDER_ITEMS, tmp_path, include_deleted=False, poll_seconds=POLL)
        assert sf.logins == 0 and sf.retries == 0
    assert "session_id" in str(rest.value)


def exception_texts(exc: BaseException) -> str:
    """Everything an exception could show: message, repr and the whole chained traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def test_secrets_never_appear_in_errors_or_reprs(sandbox: RunningSandbox, tmp_path: Path):
    real = sandbox.info()["salesforce"]
    wrong = {
        "password": "Wrong-Password-1f3a",
        "security_token": "Wrong-Token-77b2",
        "client_secret": "Wrong-Secret-c0de",
        "session_id": "00D000000000001!Wrong-Session-9e9e",
    }
    failures: list[BaseException] = []
    attempts = [
        ("password", {"password": wrong["password"], "security_token": wrong["security_token"]}),
        (
            "password_oauth",
            {"password": wrong["password"], "client_secret": wrong["client_secret"]},
        ),
        ("client_credentials", {"client_secret": wrong["client_secret"]}),
    ]
    for auth, overrides in attempts:
        with pytest.raises(SalesforceAuthError) as failure:
            client(sandbox, auth, **overrides)
        failures.append(failure.value)
    assert "INVALID_LOGIN" in str(failures[0]) and "invalid_client" in str(failures[2])

    with client(sandbox, "session", session_id=wrong["session_id"]) as direct:
        with pytest.raises(SessionExpiredError) as expired:
            direct.count("SELECT Id FROM Account")
        failures.append(expired.value)
        assert wrong["session_id"] not in repr(direct)

    with client(sandbox, "password") as good:
        with pytest.raises(SalesforceExtractError) as malformed:
            good.count("SELECT Id FROM Account WHERE Nope__c = 1")
        failures.append(malformed.value)
        secrets = [*wrong.values(), real["password"], real["security_token"]]
        secrets += [real["client_secret"], good.salesforce.session_id]
        shown = [repr(good), repr(good.settings), str(good.settings)]
    shown += [exception_texts(failure) for failure in failures]
    for text in shown:
        for secret in secrets:
            assert secret not in text


def test_spend_snapshots_subtract(cc: SalesforceClient):
    before = cc.spent()
    cc.count("SELECT Id FROM Account")
    assert cc.spent() - before == cc.last_call
    assert (cc.last_call.api_calls, cc.last_call.bulk_jobs) == (1, 0)
    assert (Spend(api_calls=2) + Spend(logins=1)).as_dict()["logins"] == 1


def test_a_page_dropped_mid_download_is_fetched_again_and_leaves_nothing_behind(
    cc: SalesforceClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    real_download = _Bulk2Client.download_job_data
    dropped: list[str] = []

    def drop_second_page_once(
        self: _Bulk2Client, path: str, job_id: str, locator: str = "", *a: Any
    ):
        if locator and not dropped:
            dropped.append(locator)
            Path(path, "half-a-page.csv").write_text('"Id","OrderId"\n"802')
            raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
        return real_download(self, path, job_id, locator, *a)

    monkeypatch.setattr(_Bulk2Client, "download_job_data", drop_second_page_once)
    out = tmp_path / "bulk"
    files = cc.bulk_query_to_files(
        ORDER_ITEMS, out, include_deleted=False, page_size=1000, poll_seconds=POLL
    )
    assert dropped and cc.last_call.retries == 1 and cc.last_call.bulk_jobs == 1
    assert sorted(out.iterdir()) == files  # no partial file, no scratch folder
    assert len(bulk_rows(files)) == 2933


def test_every_request_gets_the_configured_timeout(start_sandbox: StartSandbox):
    with (
        start_sandbox(faults={"slow": 1.0}, slow_seconds=0.5) as sandbox,
        client(sandbox, read_timeout=0.05, retry=RetryPolicy(attempts=2, base_delay=0)) as sf,
    ):
        with pytest.raises(SalesforceRequestError, match="after 2 attempts: ReadTimeout"):
            sf.count("SELECT Id FROM Account")
        assert sf.last_call.retries == 1


def test_small_queries_come_back_as_records(cc: SalesforceClient):
    records = cc.query_records("SELECT Id, Name FROM Account WHERE IsDeleted = false")
    assert len(records) == 146 and records[0]["attributes"]["type"] == "Account"
    assert cc.last_call.records == 146


def test_a_private_key_that_cannot_sign_is_a_login_error(sandbox: RunningSandbox, tmp_path: Path):
    not_a_key = tmp_path / "server.key"
    not_a_key.write_text("not a PEM key")
    with pytest.raises(SalesforceAuthError, match="could not sign the JWT login assertion"):
        client(sandbox, "jwt", private_key_file=str(not_a_key))
