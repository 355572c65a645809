"""The token endpoint and the bearer-token gate in front of every org call."""

from __future__ import annotations

import time

import jwt
import m3ter
import pytest

from pipeline.sandbox.m3ter.auth import Credentials, TokenIssuer, TokenState
from pipeline.sandbox.m3ter.org import OrgSettings
from tests.sandbox.m3ter.conftest import RunningM3ter, StartM3ter


def test_a_json_token_request_gets_a_five_hour_bearer_token(sandbox: RunningM3ter):
    answer = sandbox.session().post(
        f"{sandbox.url}/oauth/token", auth=sandbox.basic, json={"grant_type": "client_credentials"}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 18000
    assert body["scope"] is None
    assert body["access_token"].count(".") == 2  # a JWT


def test_a_form_encoded_token_request_is_accepted(sandbox: RunningM3ter):
    answer = sandbox.session().post(
        f"{sandbox.url}/oauth/token", auth=sandbox.basic, data={"grant_type": "client_credentials"}
    )
    assert answer.status_code == 200
    assert answer.json()["access_token"]


def test_wrong_credentials_get_no_token(sandbox: RunningM3ter):
    answer = sandbox.session().post(
        f"{sandbox.url}/oauth/token",
        auth=(sandbox.basic[0], "wrong"),
        json={"grant_type": "client_credentials"},
    )
    assert answer.status_code == 403  # m3ter lists no 401
    assert answer.json() == {"message": "Forbidden or Unauthorized"}


def test_a_grant_other_than_client_credentials_is_refused(sandbox: RunningM3ter):
    answer = sandbox.session().post(
        f"{sandbox.url}/oauth/token", auth=sandbox.basic, json={"grant_type": "password"}
    )
    assert answer.status_code == 400
    assert answer.json() == {"message": "grant_type: must be client_credentials"}


FORBIDDEN = {"message": "Forbidden or Unauthorized"}


def test_a_call_without_a_token_is_forbidden(sandbox: RunningM3ter):
    answer = sandbox.session().get(sandbox.org_url("accounts"))
    assert (answer.status_code, answer.json()) == (403, FORBIDDEN)


def test_an_unknown_token_is_forbidden(sandbox: RunningM3ter):
    answer = sandbox.session().get(
        sandbox.org_url("accounts"), headers={"Authorization": "Bearer not-a-token"}
    )
    assert (answer.status_code, answer.json()) == (403, FORBIDDEN)


def test_an_unknown_org_id_is_forbidden_with_the_same_answer(sandbox: RunningM3ter):
    session = sandbox.authed()
    answer = session.get(
        f"{sandbox.url}/organizations/00000000-0000-4000-8000-000000000000/accounts"
    )
    assert (answer.status_code, answer.json()) == (403, FORBIDDEN)


def test_the_sdk_sees_a_refusal_as_permission_denied(start_m3ter: StartM3ter):
    with start_m3ter(org=OrgSettings(denied=frozenset({"create:products"}))) as sandbox:
        client = sandbox.client()
        with pytest.raises(m3ter.PermissionDeniedError) as failure:
            client.products.create(code="p", name="P")
        assert failure.value.body == FORBIDDEN


def test_a_permission_the_service_user_lacks_refuses_only_that_action(start_m3ter: StartM3ter):
    with start_m3ter(org=OrgSettings(denied=frozenset({"create:products"}))) as sandbox:
        session = sandbox.authed()
        refused = session.post(sandbox.org_url("products"), json={"code": "p", "name": "P"})
        assert (refused.status_code, refused.json()) == (403, FORBIDDEN)
        assert session.get(sandbox.org_url("products")).status_code == 200
        made = session.post(sandbox.org_url("meters"), json={"code": "m"})
        assert made.status_code == 400  # allowed through to validation


def test_the_token_carries_what_the_service_user_may_do(start_m3ter: StartM3ter):
    with start_m3ter(org=OrgSettings(denied=frozenset({"create:products"}))) as sandbox:
        claims = jwt.decode(sandbox.token(), options={"verify_signature": False})
        assert "config:create:products" not in claims["permissions"]
        assert "config:retrieve:products" in claims["permissions"]


def test_a_permission_must_name_an_action_and_a_collection():
    with pytest.raises(ValueError, match="<action>:<collection>"):
        OrgSettings(denied=frozenset({"write:products"}))


def test_an_expired_token_is_forbidden(start_m3ter: StartM3ter):
    with start_m3ter(token_ttl_seconds=0.3, rate_limit_per_second=None) as sandbox:
        session = sandbox.authed()
        assert session.get(sandbox.org_url("products")).status_code == 200
        time.sleep(0.4)
        answer = session.get(sandbox.org_url("products"))
        assert (answer.status_code, answer.json()) == (403, FORBIDDEN)


def test_the_sdk_fetches_a_token_before_every_call_and_is_served(
    sandbox: RunningM3ter, client: m3ter.M3ter
):
    client.products.list()
    client.products.list()
    counts = {(c["method"], c["path"]): c["count"] for c in sandbox.counters()["counters"]}
    assert counts[("POST", "/oauth/token")] == 2
    assert counts[("GET", "/organizations/{orgId}/products")] == 2


def test_a_token_stays_valid_across_a_restart(start_m3ter: StartM3ter):
    with start_m3ter(name="kept") as first:
        token = first.token()
    with start_m3ter(name="kept") as second:
        answer = second.session().get(
            second.org_url("products"), headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200


def test_credentials_are_kept_in_the_state_dir(tmp_path):
    first = Credentials.load_or_create(tmp_path / "credentials.json")
    assert Credentials.load_or_create(tmp_path / "credentials.json") == first
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600


def test_a_token_expired_early_stays_expired(tmp_path):
    issuer = TokenIssuer(Credentials.generate(), ttl_seconds=3600)
    token, _ = issuer.issue()
    issuer.expire(token)
    assert issuer.check(token)[0] is TokenState.EXPIRED


def test_a_token_signed_by_another_org_is_invalid():
    token, _ = TokenIssuer(Credentials.generate(), ttl_seconds=3600).issue()
    assert TokenIssuer(Credentials.generate(), 3600).check(token)[0] is TokenState.INVALID


@pytest.mark.parametrize("header", [None, "Bearer x", "Basic !!!", "Basic dXNlcg=="])
def test_malformed_basic_headers_do_not_match(header):
    assert not Credentials.generate().basic_matches(header)
