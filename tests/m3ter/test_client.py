"""The m3ter client against the sandbox over HTTPS: CRUD and paging, errors, tokens, retries,
pacing, and what it never lets out (the secret, a path outside the one it was asked for)."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pipeline.m3ter.client import M3terClient, M3terSpend
from pipeline.m3ter.errors import (
    M3terAuthError,
    M3terError,
    M3terForbidden,
    M3terRejected,
    M3terStaleVersion,
    M3terUnavailable,
)
from pipeline.retry import RetryPolicy
from pipeline.sandbox.m3ter.org import OrgSettings
from pipeline.sandbox.m3ter.seed import seed_id
from pipeline.sandbox.server import RunningSandbox
from tests.m3ter.conftest import MakeClient, StartSandbox, m3ter_info, statuses

MESSAGING = seed_id("products", "messaging")
_serial = itertools.count(1)


def account(**extra: Any) -> dict[str, Any]:
    return {
        "code": f"acct-{next(_serial)}",
        "name": "Acme Ltd",
        "emailAddress": "billing@acme.test",
        **extra,
    }


# ---- CRUD and lists ---------------------------------------------------------------------------


def test_create_get_and_update_carry_the_version(client: M3terClient):
    created = client.create("accounts", account(name="Acme"))
    assert created["version"] == 1
    assert client.get("accounts", created["id"])["name"] == "Acme"
    updated = client.update("accounts", created["id"], {**created, "name": "Acme Group"})
    assert (updated["version"], updated["name"]) == (2, "Acme Group")
    assert client.get("accounts", created["id"]) == updated


def test_list_follows_next_token_over_more_than_100_objects(client: M3terClient):
    bodies = [account() for _ in range(230)]
    with ThreadPoolExecutor(client.settings.concurrency) as pool:
        created = list(pool.map(lambda body: client.create("accounts", body), bodies))
    before = client.spent()
    listed = list(client.list("accounts"))
    assert len(listed) == 230
    assert {a["id"] for a in listed} == {a["id"] for a in created}
    assert (client.spent() - before).reads == 3  # pages of 100, 100 and 30


def test_list_valued_filters_are_sent_comma_joined(client: M3terClient):
    codes = [client.create("accounts", account())["code"] for _ in range(3)]
    found = list(client.list("accounts", codes=codes[:2]))
    assert sorted(a["code"] for a in found) == sorted(codes[:2])


def test_delete_answers_the_object_and_it_is_gone(client: M3terClient):
    created = client.create("accounts", account())
    assert client.delete("accounts", created["id"])["id"] == created["id"]
    with pytest.raises(M3terRejected) as caught:
        client.get("accounts", created["id"])
    assert caught.value.status == 404


def test_an_update_without_a_version_is_refused_before_sending(client: M3terClient):
    created = client.create("accounts", account())
    calls = client.calls
    with pytest.raises(ValueError, match="version"):
        client.update("accounts", created["id"], {"name": "no version"})
    assert client.calls == calls


# ---- m3ter's refusals -------------------------------------------------------------------------


def test_a_stale_version_is_told_by_reading_the_object_back(client: M3terClient):
    created = client.create("accounts", account())
    client.update("accounts", created["id"], {**created, "name": "First"})
    reads = client.reads
    with pytest.raises(M3terStaleVersion) as caught:
        client.update("accounts", created["id"], {**created, "name": "Second"})
    assert caught.value.status == 400
    assert (caught.value.current["version"], caught.value.current["name"]) == (2, "First")
    assert client.reads == reads + 1  # the read back; m3ter's message names no version
    assert client.retries == 0


def test_a_refusal_of_an_update_at_the_current_version_is_a_plain_rejection(
    client: M3terClient,
):
    created = client.create("accounts", account())
    with pytest.raises(M3terRejected) as caught:
        client.update("accounts", created["id"], {**created, "emailAddress": "not an address"})
    assert not isinstance(caught.value, M3terStaleVersion)
    assert caught.value.message == "emailAddress: must be an e-mail address"


def test_a_validation_error_raises_m3ter_rejected_with_m3ters_message(client: M3terClient):
    with pytest.raises(M3terRejected) as caught:
        client.create("accounts", {"code": "acct-x", "name": "No e-mail"})
    assert not isinstance(caught.value, M3terStaleVersion)
    assert caught.value.status == 400
    assert caught.value.message == "emailAddress: is required"
    assert "POST /accounts: 400: emailAddress: is required" in str(caught.value)
    assert client.retries == 0


def test_a_hostile_id_does_not_change_the_path(client: M3terClient):
    client.create("accounts", account())
    with pytest.raises(M3terRejected) as caught:
        client.get("accounts", "../accounts")
    assert caught.value.status == 404
    assert "no Account with id '../accounts'" in caught.value.message


@pytest.mark.parametrize("object_id", ["", ".", ".."])
def test_dot_ids_are_refused_before_any_request(client: M3terClient, object_id: str):
    with pytest.raises(ValueError):
        client.get("accounts", object_id)
    assert client.calls == 0


def test_a_collection_name_cannot_carry_a_path(client: M3terClient):
    with pytest.raises(ValueError):
        list(client.list("accounts/../plans"))


# ---- tokens -----------------------------------------------------------------------------------


def test_an_expired_token_is_fetched_again_before_the_call(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox(token_ttl_seconds=1) as running:
        client = make_client(running)
        client.get("products", MESSAGING)
        time.sleep(1.1)
        client.get("products", MESSAGING)
        assert client.tokens == 2
        assert statuses(running).get(403, 0) == 0  # renewed before m3ter had to refuse it


def test_a_refused_token_is_fetched_again_and_the_call_retried(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    # Seed 1 ends a token early on several of these calls, never twice in a row.
    with start_sandbox(faults={"expire@products": 0.2}, fault_seed=1) as running:
        client = make_client(running)
        for _ in range(20):
            client.get("products", MESSAGING)
        refused = statuses(running)[403]
        assert refused >= 3
        assert client.tokens == 1 + refused
        assert client.calls == 20 + refused


def test_the_secret_stays_redacted_after_many_token_renewals(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox(faults={"expire@products": 0.2}, fault_seed=1) as running:
        client = make_client(running)
        for _ in range(20):
            client.get("products", MESSAGING)
        assert client.tokens > 4  # more than the client keeps to redact
        secret = m3ter_info(running)["api_secret"]
        with pytest.raises(M3terRejected) as caught:
            client.get("accounts", secret)
        assert secret not in str(caught.value)


def test_a_fresh_token_refused_everywhere_is_an_organization_that_refuses_everything(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox(faults={"expire@products": 1.0}) as running:
        client = make_client(running)
        with pytest.raises(M3terForbidden) as caught:
            client.get("products", MESSAGING)
        assert caught.value.status == 403 and caught.value.permission is None
        assert "refuses the service user" in caught.value.message
        assert (client.tokens, client.calls) == (2, 3)  # the call, once more, and one probe


def test_a_write_refused_while_reads_work_names_the_missing_permission(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    org = OrgSettings(denied=frozenset({"create:accounts"}))
    with start_sandbox(org=org) as running:
        client = make_client(running)
        with pytest.raises(M3terForbidden) as caught:
            client.create("accounts", account())
        assert caught.value.permission == "config:create accounts"
        assert "lacks the permission config:create on accounts" in str(caught.value)
        assert client.get("products", MESSAGING)["id"] == MESSAGING


def test_an_unknown_organization_is_named(sandbox: RunningSandbox, make_client: MakeClient):
    client = make_client(sandbox, org_id="00000000-0000-4000-8000-000000000000")
    with pytest.raises(M3terForbidden) as caught:
        client.get("products", MESSAGING)
    assert caught.value.permission is None
    assert "organization 00000000-0000-4000-8000-000000000000" in caught.value.message


def test_wrong_credentials_raise_m3ter_auth_error(sandbox: RunningSandbox, make_client: MakeClient):
    client = make_client(sandbox, api_secret="not-the-secret")
    with pytest.raises(M3terAuthError) as caught:
        client.get("products", MESSAGING)
    assert caught.value.status == 403  # m3ter lists no 401
    assert "api secret is wrong" in caught.value.message
    assert client.calls == 0


# ---- retries and pacing -----------------------------------------------------------------------


def test_with_ten_percent_faults_every_create_succeeds_exactly_once(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    faults = {"http500": 0.03, "http502": 0.01, "http503": 0.02, "http504": 0.01, "drop": 0.03}
    with start_sandbox(faults=faults, fault_seed=11) as running:
        client = make_client(running)
        codes = [client.create("accounts", account())["code"] for _ in range(60)]
        listed = [a["code"] for a in client.list("accounts")]
        assert sorted(listed) == sorted(codes)
        assert running.m3ter is not None
        injected = running.m3ter.faults.injected
        assert injected.get("drop", 0) >= 1
        assert sum(injected.get(k, 0) for k in ("http500", "http502", "http503", "http504")) >= 1
        assert client.retries == sum(injected.values())


def test_a_read_that_times_out_is_sent_again(start_sandbox: StartSandbox, make_client: MakeClient):
    # Slow answers take 0.1 s, twice the read timeout.
    with start_sandbox(faults={"slow": 0.3}, fault_seed=4) as running:
        client = make_client(running, read_timeout=0.05)
        for _ in range(10):
            assert client.get("products", MESSAGING)["id"] == MESSAGING
        assert running.m3ter is not None
        assert client.retries == running.m3ter.faults.injected["slow"] >= 1


def test_failures_that_outlast_the_retries_raise_m3ter_unavailable(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox(faults={"http503@products": 1.0}) as running:
        retry = RetryPolicy(attempts=3, base_delay=0.01)
        client = make_client(running, retry=retry)
        with pytest.raises(M3terUnavailable) as caught:
            client.get("products", MESSAGING)
        assert caught.value.status == 503
        assert "still failing after 3 attempts" in str(caught.value)
        assert (client.calls, client.retries) == (3, 2)


def test_429s_without_retry_after_wait_out_the_second(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    retry = RetryPolicy(attempts=4, base_delay=0.01, sleep=sleep)
    with start_sandbox(rate_limit_per_second=5) as running:
        client = make_client(running, retry=retry)
        # Twelve calls at the client's 20/s span at most two of the sandbox's seconds: one of
        # them meets more than its five.
        for _ in range(12):
            client.get("products", MESSAGING)
        counts = statuses(running)
        assert counts[200] == 1 + 12  # the token and the twelve calls
        assert client.throttled == counts[429] == len(waits) >= 1
        assert all(wait >= 1.0 for wait in waits)  # the rest of the org limit's second, at least


def test_a_bucket_at_48_per_second_meets_no_429_in_a_burst_of_150(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox(rate_limit_per_second=50) as running:
        client = make_client(running, rate_limit=48.0)
        started = time.monotonic()
        with ThreadPoolExecutor(client.settings.concurrency) as pool:
            list(pool.map(lambda _: client.get("products", MESSAGING), range(150)))
        assert time.monotonic() - started >= 149 / 48 - 0.05
        assert statuses(running) == {200: 151}
        assert client.throttled == 0


# ---- accounting and secrets -------------------------------------------------------------------


def test_counters_agree_with_the_sandboxs_own(client: M3terClient, sandbox: RunningSandbox):
    created = client.create("accounts", account())
    client.update("accounts", created["id"], {**created, "name": "Renamed"})
    client.get("accounts", created["id"])
    list(client.list("accounts"))
    client.delete("accounts", created["id"])
    spent = client.spent()
    assert spent == M3terSpend(calls=5, reads=2, writes=3, tokens=1)
    counters = statuses(sandbox)
    assert sum(counters.values()) == spent.calls + spent.tokens


def test_spend_snapshots_subtract_to_what_the_calls_between_spent(client: M3terClient):
    client.get("products", MESSAGING)
    before = client.spent()
    client.create("accounts", account())
    assert client.spent() - before == M3terSpend(calls=1, writes=1)


def test_the_secret_never_appears_in_errors_or_the_clients_repr(
    sandbox: RunningSandbox, make_client: MakeClient
):
    secret = m3ter_info(sandbox)["api_secret"]
    client = make_client(sandbox)
    # m3ter echoes an unknown id in its 404 message: a secret sent as one must not come back.
    with pytest.raises(M3terRejected) as caught:
        client.get("accounts", secret)
    errors: list[M3terError] = [caught.value]
    wrong = make_client(sandbox, api_secret=secret + "-wrong")
    with pytest.raises(M3terAuthError) as refused:
        wrong.get("accounts", "x")
    errors.append(refused.value)
    for text in [repr(client), str(client), repr(wrong)]:
        assert secret not in text
    for error in errors:
        for text in (str(error), repr(error), error.message, error.path or ""):
            assert secret not in text
    assert "<redacted>" in caught.value.message


# ---- answers lost after m3ter applied the write ---------------------------------------------


def test_a_create_whose_answer_is_lost_is_found_before_it_is_sent_again(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox(faults={"lost_answer@accounts": 1.0}) as running:
        client = make_client(running)
        body = account()
        found = client.create(
            "accounts", body, find=lambda: next(client.list("accounts", codes=[body["code"]]), None)
        )
        assert found["code"] == body["code"]
        assert [a["code"] for a in client.list("accounts")] == [body["code"]]
        assert client.writes == 1


def test_a_create_sent_again_blindly_after_a_lost_answer_may_make_two(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    # Contracts' codes are not unique in m3ter: nothing refuses the second one.
    # Seed 3 loses the first create's answer and not the second's.
    with start_sandbox(faults={"lost_answer@contracts": 0.5}, fault_seed=3) as running:
        client = make_client(running)
        owner = client.create("accounts", account())
        body = {
            "accountId": owner["id"],
            "name": "C",
            "code": "C-1",
            "startDate": "2025-01-01",
            "endDate": "2026-01-01",
        }
        client.create("contracts", body)
        assert len(list(client.list("contracts", codes=["C-1"]))) == 2


def test_an_update_whose_answer_is_lost_reads_back_as_a_version_moved_on(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox() as running:
        created = make_client(running).create("accounts", account())
    # Seed 7 loses the first answer and not the second's.
    with start_sandbox(faults={"lost_answer@accounts": 0.5}, fault_seed=7) as running:
        client = make_client(running)
        with pytest.raises(M3terStaleVersion) as caught:
            client.update("accounts", created["id"], {**created, "name": "Renamed"})
        assert caught.value.current["name"] == "Renamed"  # the lost PUT was applied


def test_a_delete_whose_answer_is_lost_is_then_not_found(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox() as running:
        created = make_client(running).create("accounts", account())
    with start_sandbox(faults={"lost_answer@accounts": 0.5}, fault_seed=7) as running:
        with pytest.raises(M3terRejected) as caught:
            make_client(running).delete("accounts", created["id"])
        assert caught.value.status == 404


# ---- m3ter's per-IP limit -----------------------------------------------------------------------


def test_the_client_keeps_under_the_source_ip_limit_without_meeting_it(
    start_sandbox: StartSandbox, make_client: MakeClient
):
    with start_sandbox(ip_limit=12, ip_window_seconds=2) as running:
        client = make_client(running, ip_limit=10, ip_window=2.0, rate_limit=0.0)
        started = time.monotonic()
        for _ in range(20):
            client.get("products", MESSAGING)
        assert time.monotonic() - started >= 2.0
        assert statuses(running) == {200: 21}  # the token and the twenty calls
        assert client.throttled == 0
