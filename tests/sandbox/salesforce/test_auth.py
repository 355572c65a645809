"""Each login flow simple-salesforce knows, against the org sandbox over HTTPS."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import SalesforceLogin
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

from pipeline.salesforce.session import salesforce_session
from tests.conftest import StartSandbox
from tests.sandbox.salesforce import clients

WHO_AM_I = "SELECT Id, Username FROM User WHERE Username = 'integration@m3sync.example'"


def _logged_in_as_integration_user(sf) -> bool:
    return sf.query(WHO_AM_I)["totalSize"] == 1


def test_soap_login_with_security_token(sandbox):
    sf = clients.soap_client(sandbox)
    assert sf.sf_instance == sandbox.salesforce_url.removeprefix("https://")
    assert _logged_in_as_integration_user(sf)


def test_soap_login_through_a_custom_login_url(sandbox):
    info = clients.info(sandbox)
    session_id, instance = SalesforceLogin(
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        scratch_url=info["url"],
        session=salesforce_session(info["ca_file"]),
    )
    assert session_id and instance == info["url"].removeprefix("https://")


def test_soap_login_with_a_wrong_password_raises_invalid_login(sandbox):
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        clients.soap_client(sandbox, password="wrong")
    assert failure.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in failure.value.auth_message


@pytest.mark.parametrize("version", ["65.0", "66.0"])
def test_soap_login_from_api_65_is_refused_as_salesforce_retires_it(sandbox, version):
    info = clients.info(sandbox)
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        SalesforceLogin(
            username=info["username"],
            password=info["password"],
            security_token=info["security_token"],
            scratch_url=info["url"],
            sf_version=version,
            session=salesforce_session(info["ca_file"]),
        )
    assert failure.value.code == "UNSUPPORTED_API_VERSION"


def test_the_org_serves_api_versions_up_to_66(sandbox):
    sf = clients.client_credentials_client(sandbox)
    versions = [
        v["version"] for v in sf.session.get(f"{sandbox.salesforce_url}/services/data/").json()
    ]
    assert versions[-1] == "66.0" and "65.0" in versions


def test_oauth_password_flow(sandbox):
    assert _logged_in_as_integration_user(clients.password_oauth_client(sandbox))


def test_oauth_password_flow_with_a_wrong_secret_is_refused(sandbox):
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        clients.password_oauth_client(sandbox, client_secret="0" * 64)
    assert failure.value.code == "invalid_client"


def test_oauth_client_credentials_flow(sandbox):
    assert _logged_in_as_integration_user(clients.client_credentials_client(sandbox))


def test_jwt_bearer_flow(sandbox):
    assert _logged_in_as_integration_user(clients.jwt_client(sandbox))


def test_jwt_signed_with_another_key_is_refused(sandbox, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = tmp_path / "other.pem"
    other.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        clients.jwt_client(sandbox, privatekey_file=str(other))
    assert failure.value.code == "invalid_grant"


def test_an_existing_session_id_is_used_directly(sandbox):
    token = clients.soap_client(sandbox).session_id
    assert _logged_in_as_integration_user(clients.session_client(sandbox, token))


def test_an_unknown_session_id_raises_expired_session(sandbox):
    sf = clients.session_client(sandbox, "00D000000000001!not-a-token")
    with pytest.raises(SalesforceExpiredSession) as failure:
        sf.query(WHO_AM_I)
    assert failure.value.status == 401
    assert failure.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_an_expired_session_is_refreshed_by_logging_in_again(start_sandbox: StartSandbox):
    with start_sandbox(session_ttl_seconds=0.5) as sandbox:
        sf = clients.password_oauth_client(sandbox)
        first = sf.session_id
        time.sleep(0.7)
        assert _logged_in_as_integration_user(sf)
        assert sf.session_id != first


def test_an_expired_direct_session_is_not_refreshed(start_sandbox: StartSandbox):
    with start_sandbox(session_ttl_seconds=0.5) as sandbox:
        sf = clients.session_client(sandbox, clients.soap_client(sandbox).session_id)
        time.sleep(0.7)
        with pytest.raises(SalesforceExpiredSession):
            sf.query(WHO_AM_I)


def test_tls_is_verified_against_the_sandbox_ca(sandbox):
    import requests

    info = clients.info(sandbox)
    with pytest.raises(requests.exceptions.SSLError):
        requests.Session().get(info["url"] + "/services/data/", verify=True, timeout=10)
    response = salesforce_session(info["ca_file"]).get(info["url"] + "/services/data/", timeout=10)
    assert response.status_code == 200
