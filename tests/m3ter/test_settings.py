"""Settings: where they come from, what they refuse, and that the secret never shows."""

from __future__ import annotations

import pytest

from pipeline.m3ter.settings import (
    DEFAULT_BASE_URL,
    ENVIRONMENT,
    M3terSettings,
    sandbox_settings,
    settings_from_env,
)

SECRET = "s3cr3t-api-secret-value"
ENV = {
    "M3SYNC_M3TER_ORG_ID": "org-1",
    "M3SYNC_M3TER_ACCESS_KEY_ID": "key-1",
    "M3SYNC_M3TER_API_SECRET": SECRET,
}


def test_every_environment_variable_names_a_setting():
    assert set(ENVIRONMENT) <= {f for f in M3terSettings.__dataclass_fields__}
    assert all(var.startswith("M3SYNC_M3TER_") for var in ENVIRONMENT.values())


def test_settings_from_env_reads_the_m3sync_m3ter_variables():
    env = {
        **ENV,
        "M3SYNC_M3TER_URL": "https://api.eu.m3ter.example/",
        "M3SYNC_M3TER_CA_FILE": "/tmp/ca.pem",
        "M3SYNC_M3TER_RATE_LIMIT": "12.5",
        "M3SYNC_M3TER_CONCURRENCY": "8",
    }
    settings = settings_from_env(env)
    assert settings.base_url == "https://api.eu.m3ter.example"
    assert (settings.org_id, settings.access_key_id, settings.api_secret) == (
        "org-1",
        "key-1",
        SECRET,
    )
    assert (settings.ca_file, settings.rate_limit, settings.concurrency) == ("/tmp/ca.pem", 12.5, 8)


def test_without_a_url_the_client_talks_to_m3ter_itself():
    settings = settings_from_env(ENV)
    assert settings.base_url == DEFAULT_BASE_URL == "https://api.m3ter.com"
    assert settings.token_url == "https://api.m3ter.com/oauth/token"
    assert (settings.rate_limit, settings.concurrency, settings.ca_file) == (20.0, 4, None)


def test_missing_credentials_are_named_by_their_variables():
    with pytest.raises(ValueError, match="M3SYNC_M3TER_ORG_ID, M3SYNC_M3TER_API_SECRET"):
        settings_from_env({"M3SYNC_M3TER_ACCESS_KEY_ID": "key-1"})


def test_a_number_variable_that_is_not_a_number_is_named():
    with pytest.raises(ValueError, match="M3SYNC_M3TER_CONCURRENCY"):
        settings_from_env({**ENV, "M3SYNC_M3TER_CONCURRENCY": "four"})


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "http://api.m3ter.com"},
        {"rate_limit": -1.0},
        {"rate_limit": float("nan")},
        {"concurrency": 0},
        {"read_timeout": 0.0},
        {"api_secret": ""},
    ],
)
def test_unusable_settings_are_refused_when_built(change: dict[str, object]):
    values: dict[str, object] = {
        "base_url": DEFAULT_BASE_URL,
        "org_id": "o",
        "access_key_id": "k",
        "api_secret": SECRET,
        **change,
    }
    with pytest.raises(ValueError):
        M3terSettings(**values)  # type: ignore[arg-type]


def test_the_secret_never_appears_in_repr_or_str_of_settings():
    settings = settings_from_env(ENV)
    for text in (repr(settings), str(settings), f"{settings}", repr([settings])):
        assert SECRET not in text
        assert "api_secret='<redacted>'" in text


def test_sandbox_settings_take_the_token_from_the_sandbox_host():
    info = {
        "url": "https://127.0.0.1:4443",
        "ca_file": "/state/ca.pem",
        "org_id": "org",
        "access_key_id": "key",
        "api_secret": SECRET,
    }
    settings = sandbox_settings(info)
    assert settings.token_url == "https://127.0.0.1:4443/oauth/token"
    assert settings.ca_file == "/state/ca.pem"
