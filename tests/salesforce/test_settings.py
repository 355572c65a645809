"""Salesforce connection settings: what each login flow needs, and secrets kept out of sight."""

from __future__ import annotations

import logging

import pytest

from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import SECRET_FIELDS, SalesforceSettings

MY_DOMAIN = "https://acme.my.salesforce.com"

SECRETS = {
    "password": "pw-Secret-0001",
    "security_token": "tok-Secret-0002",
    "client_secret": "cs-Secret-0003",
    "session_id": "00D!sid-Secret-0004",
}


def everything(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "login_url": "https://acme.my.salesforce.com",
        "instance_url": "https://acme.my.salesforce.com",
        "username": "integration@acme.example",
        "client_id": "3MVG9-client",
        "private_key_file": "/keys/server.key",
        **SECRETS,
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    ("auth", "required"),
    [
        ("client_credentials", {"client_id", "client_secret"}),
        ("password", {"username", "password"}),
        ("jwt", {"username", "client_id", "private_key_file"}),
        ("session", {"session_id", "instance_url"}),
    ],
)
def test_each_auth_mode_names_the_settings_it_is_missing(auth: str, required: set[str]):
    SalesforceSettings(auth=auth, **everything())  # type: ignore[arg-type]
    for name in required:
        with pytest.raises(ValueError, match=name) as failure:
            SalesforceSettings(auth=auth, **everything(**{name: None}))  # type: ignore[arg-type]
        assert f"{auth!r}" in str(failure.value)
        assert not any(secret in str(failure.value) for secret in SECRETS.values())


def test_every_missing_setting_is_named_at_once():
    with pytest.raises(ValueError) as failure:
        SalesforceSettings(auth="jwt")
    assert "username, client_id, private_key_file" in str(failure.value)


def test_password_oauth_needs_both_halves_of_the_connected_app():
    with pytest.raises(ValueError, match="client_secret"):
        SalesforceSettings(auth="password", username="u", password="p", client_id="c")
    with pytest.raises(ValueError, match="client_id"):
        SalesforceSettings(auth="password", username="u", password="p", client_secret="s")


def test_client_credentials_needs_a_my_domain_login_url():
    with pytest.raises(ValueError, match="My Domain"):
        SalesforceSettings(auth="client_credentials", client_id="c", client_secret="s")
    SalesforceSettings(
        auth="client_credentials",
        client_id="c",
        client_secret="s",
        login_url="https://127.0.0.1:8443",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("auth", "oauth", "unknown Salesforce auth mode"),
        ("login_url", "http://login.salesforce.com", "https://"),
        ("api_version", "v59.0", "no leading 'v'"),
        ("read_timeout", 0, "positive"),
    ],
)
def test_bad_values_are_rejected(field: str, value: object, message: str):
    values: dict[str, object] = {
        "auth": "password",
        "username": "u",
        "password": "p",
        "api_version": "64.0",
    }
    values[field] = value
    with pytest.raises(ValueError, match=message):
        SalesforceSettings(**values)  # type: ignore[arg-type]


def test_repr_says_which_secrets_are_set_without_showing_them():
    settings = SalesforceSettings(auth="password", **everything())
    for text in (repr(settings), str(settings), f"{settings}"):
        assert not any(secret in text for secret in SECRETS.values())
        for name in SECRET_FIELDS:
            assert f"{name}='<redacted>'" in text
        assert "username='integration@acme.example'" in text
    unset = SalesforceSettings(auth="password", username="u", password="p", api_version="64.0")
    assert "security_token=None" in repr(unset)


@pytest.mark.parametrize(
    ("login_url", "domain"),
    [
        ("https://login.salesforce.com", "login"),
        ("https://test.salesforce.com", "test"),
        ("https://Acme.my.salesforce.com/", "acme.my"),
        ("https://acme--uat.sandbox.my.salesforce.com", "acme--uat.sandbox.my"),
        ("https://127.0.0.1:8443", None),
    ],
)
def test_the_login_domain_comes_from_the_login_url(login_url: str, domain: str | None):
    settings = SalesforceSettings(
        auth="password", username="u", password="p", api_version="64.0", login_url=login_url
    )
    assert settings.login_domain == domain


def test_timeouts_are_a_connect_read_pair():
    settings = SalesforceSettings(
        auth="password",
        username="u",
        password="p",
        api_version="64.0",
        connect_timeout=3,
        read_timeout=30,
    )
    assert settings.timeout == (3, 30)


def test_settings_come_from_m3sync_salesforce_variables():
    from pipeline.salesforce.settings import settings_from_env

    settings = settings_from_env(
        {
            "M3SYNC_SALESFORCE_AUTH": "client_credentials",
            "M3SYNC_SALESFORCE_LOGIN_URL": "https://acme.my.salesforce.com",
            "M3SYNC_SALESFORCE_CLIENT_ID": "id",
            "M3SYNC_SALESFORCE_CLIENT_SECRET": "s3cret",
        }
    )
    assert (settings.auth, settings.client_id, settings.client_secret) == (
        "client_credentials",
        "id",
        "s3cret",
    )
    assert "s3cret" not in repr(settings)


def test_unset_variables_keep_the_defaults_and_missing_credentials_are_named():
    from pipeline.salesforce.settings import settings_from_env

    with pytest.raises(ValueError, match=r"client_credentials.*client_id") as failure:
        settings_from_env({"M3SYNC_SALESFORCE_CLIENT_SECRET": "hunter2"})
    assert "hunter2" not in str(failure.value)


def test_the_default_login_is_oauth_client_credentials_at_a_current_api_version():
    settings = SalesforceSettings(client_id="c", client_secret="s", login_url=MY_DOMAIN)
    assert settings.auth == "client_credentials" and float(settings.api_version) >= 65.0


def test_soap_login_past_api_64_is_refused_naming_the_way_out():
    with pytest.raises(ValueError, match=r"unavailable from API 65\.0.*client_credentials"):
        SalesforceSettings(auth="password", username="u", password="p", api_version="65.0")


def test_a_soap_login_warns_of_its_retirement_in_one_line(sandbox, caplog):
    from tests.salesforce.test_client import settings as sandbox_login

    with caplog.at_level(logging.WARNING, logger="pipeline.salesforce.client"):
        SalesforceClient(sandbox_login(sandbox, "password"))
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "retired in Summer '27" in warning and "\n" not in warning
