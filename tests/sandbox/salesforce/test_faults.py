"""Fault injection: each kind alone, and the same seed giving the same faults."""

from __future__ import annotations

import time

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceOperationError,
)

from pipeline.sandbox.faults import FaultConfig
from tests.conftest import StartSandbox
from tests.sandbox.salesforce import clients

QUERY = "SELECT Id FROM Account LIMIT 1"


def test_http503_answers_server_unavailable(start_sandbox: StartSandbox):
    with start_sandbox(faults={"http503": 1.0}) as sandbox:
        with pytest.raises(SalesforceGeneralError) as failure:
            clients.soap_client(sandbox).query(QUERY)
        assert failure.value.status == 503


def test_drop_closes_the_connection_without_an_answer(start_sandbox: StartSandbox):
    with start_sandbox(faults={"drop": 1.0}) as sandbox:
        sf = clients.soap_client(sandbox)
        with pytest.raises(requests.exceptions.ConnectionError):
            sf.query(QUERY)


def test_slow_delays_the_answer(start_sandbox: StartSandbox):
    with start_sandbox(faults={"slow": 1.0}, slow_seconds=0.4) as sandbox:
        sf = clients.soap_client(sandbox)
        started = time.monotonic()
        assert sf.query(QUERY)["totalSize"] == 1
        assert time.monotonic() - started >= 0.4


def test_expire_ends_the_session_and_a_login_flow_logs_in_again(start_sandbox: StartSandbox):
    with start_sandbox(faults={"expire": 0.3}, fault_seed=4) as sandbox:
        sf = clients.password_oauth_client(sandbox)
        sessions = set()
        for _ in range(5):
            assert sf.query(QUERY)["totalSize"] == 1
            sessions.add(sf.session_id)
        assert len(sessions) > 1
        assert sandbox.salesforce.faults.injected["expire"] > 0


def test_an_always_expiring_session_gives_up_after_three_logins(start_sandbox: StartSandbox):
    with start_sandbox(faults={"expire": 1.0}) as sandbox:
        sf = clients.password_oauth_client(sandbox)
        with pytest.raises(SalesforceExpiredSession):
            sf.query(QUERY)


def test_bulk_fail_fails_the_job_with_salesforce_s_message(start_sandbox: StartSandbox):
    with start_sandbox(faults={"bulk_fail": 1.0}) as sandbox:
        sf = clients.soap_client(sandbox)
        with pytest.raises(SalesforceOperationError, match="Failed to process query"):
            list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))


def _outcomes(sandbox) -> list[str]:
    sf = clients.soap_client(sandbox)
    outcomes = []
    for _ in range(30):
        try:
            sf.query(QUERY)
            outcomes.append("ok")
        except SalesforceGeneralError as exc:
            outcomes.append(str(exc.status))
        except requests.exceptions.ConnectionError:
            outcomes.append("drop")
    return outcomes


def test_the_same_seed_injects_the_same_faults(start_sandbox: StartSandbox):
    rates = {"http500": 0.2, "http503": 0.2, "drop": 0.1}
    with start_sandbox(faults=rates, fault_seed=11, name="a") as first:
        a = _outcomes(first)
    with start_sandbox(faults=rates, fault_seed=11, name="b") as second:
        b = _outcomes(second)
    with start_sandbox(faults=rates, fault_seed=12, name="c") as third:
        c = _outcomes(third)
    assert a == b
    assert a != c
    assert {"ok", "500", "503", "drop"} <= set(a)


def test_fault_rates_are_parsed_from_the_command_line_form():
    config = FaultConfig.parse("http500=0.05, drop=0.1", seed=3)
    assert config.rates == {"http500": 0.05, "drop": 0.1}
    assert config.seed == 3


@pytest.mark.parametrize("text", ["teapot=0.1", "http500", "http500=2", "http500=0.6,drop=0.6"])
def test_bad_fault_settings_are_refused(text):
    with pytest.raises(ValueError):
        FaultConfig.parse(text)
