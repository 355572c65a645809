"""The HTTP surface beyond CRUD: measurement ingest, admin endpoints, counters, faults, 404s."""

from __future__ import annotations

import time
from typing import Any

import m3ter
import pytest
import requests

from pipeline.sandbox.faults import FaultConfig
from tests.sandbox.m3ter.builders import Builder
from tests.sandbox.m3ter.conftest import RunningM3ter, StartM3ter


def measurement(uid: str, account: str = "acme", meter: str = "messaging") -> dict[str, Any]:
    return {
        "uid": uid,
        "account": account,
        "meter": meter,
        "ts": "2025-03-01T12:00:00Z",
        "where": {"region": "EMEA"},
        "measure": {"messages_sent": 3},
    }


def export(sandbox: RunningM3ter) -> dict[str, Any]:
    answer = sandbox.admin("GET", "export")
    answer.raise_for_status()
    return dict(answer.json())


# ---- ingest -------------------------------------------------------------------------------------


def test_the_sdk_submits_measurements_and_they_are_accepted(
    sandbox: RunningM3ter, client: m3ter.M3ter
):
    Builder(client).account(code="acme")
    answer = client.usage.submit(measurements=[measurement("u1"), measurement("u2")])
    assert answer.result == "accepted"
    assert [m["uid"] for m in export(sandbox)["measurements"]] == ["u1", "u2"]


def test_a_repeated_uid_is_ingested_once(sandbox: RunningM3ter, client: m3ter.M3ter):
    client.usage.submit(measurements=[measurement("u1")])
    client.usage.submit(measurements=[measurement("u1"), measurement("u2")])
    assert [m["uid"] for m in export(sandbox)["measurements"]] == ["u1", "u2"]


def test_a_measurement_for_an_unknown_account_code_creates_a_skeleton_account(client: m3ter.M3ter):
    client.usage.submit(measurements=[measurement("u1", account="newcomer")])
    assert [a.name for a in client.accounts.list(codes=["newcomer"])] == ["newcomer"]


def test_a_measurement_with_bad_content_is_accepted_and_recorded_as_a_failure(
    sandbox: RunningM3ter, client: m3ter.M3ter
):
    client.usage.submit(measurements=[measurement("u1", meter="no_such_meter")])
    data = export(sandbox)
    assert data["measurements"] == []
    assert data["ingestFailures"][0]["reason"] == "meter: no Meter with code 'no_such_meter'"


@pytest.mark.parametrize("count", [0, 1001])
def test_a_batch_must_hold_1_to_1000_measurements(sandbox: RunningM3ter, count: int):
    items = [measurement(f"u{i}") for i in range(count)]
    answer = sandbox.authed().post(sandbox.org_url("measurements"), json={"measurements": items})
    assert answer.status_code == 400
    assert answer.json()["message"] == f"measurements: must hold 1 to 1000 items, not {count}"


def test_a_payload_of_512000_bytes_or_more_is_forbidden(sandbox: RunningM3ter):
    item = measurement("u", account="a" * 600)
    items = [{**item, "uid": f"u{i}"} for i in range(700)]
    answer = sandbox.authed().post(sandbox.org_url("measurements"), json={"measurements": items})
    assert answer.status_code == 403
    assert "over the limit" in answer.json()["message"]


def test_a_payload_just_under_the_limit_is_accepted(sandbox: RunningM3ter):
    session = sandbox.authed()
    body = b'{"measurements":[' + b'{"uid":"u","account":"a","meter":"m","ts":"x"}' + b"]}"
    body = body[:-2] + b" " * (511_999 - len(body)) + b"]}"
    assert len(body) == 511_999
    answer = session.post(
        sandbox.org_url("measurements"), data=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200


# ---- admin and counters -------------------------------------------------------------------------


def test_admin_endpoints_need_the_service_user_credentials(sandbox: RunningM3ter):
    answer = sandbox.session().get(f"{sandbox.url}/admin/export")
    assert answer.status_code == 401
    token = sandbox.token()
    answer = sandbox.session().get(
        f"{sandbox.url}/admin/export", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 401


def test_export_holds_every_object_of_every_entity(sandbox: RunningM3ter, client: m3ter.M3ter):
    account = Builder(client).account()
    data = export(sandbox)
    assert data["orgId"] == sandbox.org_id
    assert [a["id"] for a in data["entities"]["accounts"]] == [account]
    assert len(data["entities"]["aggregations"]) == 10
    assert set(data["entities"]) >= {"pricings", "accountplans", "externalmappings"}


def test_reset_goes_back_to_the_seeded_configuration(sandbox: RunningM3ter, client: m3ter.M3ter):
    seeded = export(sandbox)["entities"]
    Builder(client).account()
    client.products.create(code="extra", name="Extra")
    answer = sandbox.admin("POST", "reset")
    assert answer.status_code == 200
    after = export(sandbox)["entities"]
    assert {c: [o["id"] for o in objs] for c, objs in after.items()} == {
        c: [o["id"] for o in objs] for c, objs in seeded.items()
    }


def test_counters_count_by_method_route_pattern_and_status(
    sandbox: RunningM3ter, client: m3ter.M3ter
):
    product = client.products.create(code="p", name="P")
    client.products.update(product.id, code="p", name="P2", version=1)
    with pytest.raises(m3ter.BadRequestError):
        client.products.update(product.id, code="p", name="P3", version=1)
    counts = {
        (c["method"], c["path"], c["status"]): c["count"] for c in sandbox.counters()["counters"]
    }
    assert counts[("POST", "/organizations/{orgId}/products", 200)] == 1
    assert counts[("PUT", "/organizations/{orgId}/products/{id}", 200)] == 1
    assert counts[("PUT", "/organizations/{orgId}/products/{id}", 400)] == 1


def test_a_read_only_run_counts_zero_writes(sandbox: RunningM3ter, client: m3ter.M3ter):
    list(client.aggregations.list(page_size=3))
    client.products.list()
    summary = sandbox.counters()
    assert summary["writes"] == 0
    assert summary["requests"] > 0  # token calls and reads


def test_counters_can_be_reset(sandbox: RunningM3ter, client: m3ter.M3ter):
    client.products.create(code="p", name="P")
    assert sandbox.admin("POST", "counters/reset").status_code == 200
    assert sandbox.counters() == {"requests": 0, "writes": 0, "counters": []}


def test_an_unknown_route_is_a_json_404(sandbox: RunningM3ter):
    answer = sandbox.authed().get(sandbox.org_url("counters"))
    assert answer.status_code == 404
    assert answer.json()["message"].startswith("Not Found")


def test_an_unknown_id_is_a_404_naming_the_entity(client: m3ter.M3ter):
    with pytest.raises(m3ter.NotFoundError) as failure:
        client.plans.retrieve("00000000-0000-4000-8000-000000000000")
    assert failure.value.body == {
        "message": "Plan not found: no Plan with id '00000000-0000-4000-8000-000000000000'"
    }


# ---- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"), [("http500", 500), ("http502", 502), ("http503", 503), ("http504", 504)]
)
def test_an_http_fault_answers_its_status_with_a_message(
    start_m3ter: StartM3ter, kind: str, status: int
):
    with start_m3ter(**_faults({f"{kind}@products": 1.0})) as sandbox:
        answer = sandbox.authed().get(sandbox.org_url("products"))
        assert answer.status_code == status
        assert set(answer.json()) == {"message"}


def test_a_drop_fault_closes_the_connection_without_an_answer(start_m3ter: StartM3ter):
    with start_m3ter(**_faults({"drop@products": 1.0})) as sandbox:
        with pytest.raises(requests.exceptions.ConnectionError):
            sandbox.authed().get(sandbox.org_url("products"))
        dropped = [c for c in sandbox.counters()["counters"] if c["status"] == 0]
        assert dropped[0]["path"] == "/organizations/{orgId}/products"


def test_a_slow_fault_delays_the_answer(start_m3ter: StartM3ter):
    with start_m3ter(**_faults({"slow@products": 1.0}, slow_seconds=0.3)) as sandbox:
        session = sandbox.authed()
        started = time.monotonic()
        assert session.get(sandbox.org_url("products")).status_code == 200
        assert time.monotonic() - started >= 0.3


def test_an_expire_fault_ends_the_token_early(start_m3ter: StartM3ter):
    with start_m3ter(**_faults({"expire@products": 1.0})) as sandbox:
        session = sandbox.authed()
        answer = session.get(sandbox.org_url("products"))
        assert answer.status_code == 403
        assert answer.json() == {"message": "Forbidden or Unauthorized"}
        assert session.get(sandbox.org_url("meters")).status_code == 403


def test_the_sdk_gets_past_an_expired_token_because_it_fetches_one_per_call(
    start_m3ter: StartM3ter,
):
    with start_m3ter(**_faults({"expire@products": 0.5}, seed=3)) as sandbox:
        client = sandbox.client()
        outcomes = []
        for _ in range(8):
            try:
                client.products.list()
                outcomes.append("ok")
            except m3ter.PermissionDeniedError:
                outcomes.append("403")
        assert {"ok", "403"} == set(outcomes)


def _outcomes(sandbox: RunningM3ter) -> list[str]:
    session = sandbox.authed()
    outcomes = []
    for _ in range(30):
        try:
            outcomes.append(str(session.get(sandbox.org_url("products")).status_code))
        except requests.exceptions.ConnectionError:
            outcomes.append("drop")
            session = sandbox.authed()
    return outcomes


def test_the_same_fault_seed_injects_the_same_faults(start_m3ter: StartM3ter):
    rates = {
        "http500@products": 0.15,
        "http502@products": 0.15,
        "http504@products": 0.15,
        "drop@products": 0.1,
    }
    with start_m3ter(name="a", **_faults(rates, seed=11)) as first:
        a = _outcomes(first)
    with start_m3ter(name="b", **_faults(rates, seed=11)) as second:
        b = _outcomes(second)
    with start_m3ter(name="c", **_faults(rates, seed=12)) as third:
        c = _outcomes(third)
    assert a == b
    assert a != c
    assert {"200", "500", "502", "504", "drop"} <= set(a)


def test_faults_strike_the_token_endpoint_too(start_m3ter: StartM3ter):
    with start_m3ter(**_faults({"http503": 1.0})) as sandbox:
        grant = {"grant_type": "client_credentials"}
        url = f"{sandbox.url}/oauth/token"
        answer = sandbox.session().post(url, auth=sandbox.basic, json=grant)
        assert answer.status_code == 503


def test_a_fault_scoped_to_a_collection_spares_the_token_and_the_others(start_m3ter: StartM3ter):
    with start_m3ter(**_faults({"http500@plans": 1.0})) as sandbox:
        session = sandbox.authed()
        assert session.get(sandbox.org_url("products")).status_code == 200
        assert session.get(sandbox.org_url("plans")).status_code == 500


def test_a_lost_answer_applies_the_write_and_closes_the_connection(start_m3ter: StartM3ter):
    with start_m3ter(**_faults({"lost_answer@products": 1.0})) as sandbox:
        session = sandbox.authed()
        with pytest.raises(requests.exceptions.ConnectionError):
            session.post(sandbox.org_url("products"), json={"code": "p", "name": "P"})
        listed = sandbox.authed().get(sandbox.org_url("products"), params={"pageSize": 100})
        assert [p["code"] for p in listed.json()["data"]].count("p") == 1


def test_a_lost_answer_spares_reads(start_m3ter: StartM3ter):
    with start_m3ter(**_faults({"lost_answer": 1.0})) as sandbox:
        assert sandbox.authed().get(sandbox.org_url("products")).status_code == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_lost_answer_strikes_every_write_method(start_m3ter: StartM3ter, method: str):
    with start_m3ter(name="plain") as clean:
        created = clean.authed().post(clean.org_url("products"), json={"code": "p", "name": "P"})
        product = created.json()
    with start_m3ter(name="plain", **_faults({"lost_answer@products": 1.0})) as sandbox:
        body = {"code": "p", "name": "P2", "version": product["version"]}
        url = sandbox.org_url(f"products/{product['id']}")
        with pytest.raises(requests.exceptions.ConnectionError):
            sandbox.authed().request(method, url, json=body if method == "PUT" else None)
    with start_m3ter(name="plain") as after:
        answer = after.authed().get(after.org_url(f"products/{product['id']}"))
        if method == "PUT":
            assert answer.json()["name"] == "P2"
        else:
            assert answer.status_code == 404


def _faults(rates: dict[str, float], seed: int = 0, slow_seconds: float = 2.0) -> dict[str, Any]:
    """Settings for a sandbox with these faults (and no rate limit in the way)."""
    return {
        "faults": FaultConfig(rates=rates, seed=seed, slow_seconds=slow_seconds),
        "rate_limit_per_second": None,
    }
