"""The requests session simple-salesforce is given."""

from __future__ import annotations

from pipeline.salesforce.session import LoginHostAdapter, salesforce_session


def test_a_ca_file_is_trusted_even_when_the_environment_names_another_bundle(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    session = salesforce_session("/tmp/sandbox-ca.pem")
    settings = session.merge_environment_settings("https://127.0.0.1:1/", {}, None, None, None)
    assert settings["verify"] == "/tmp/sandbox-ca.pem"


def test_without_a_ca_file_the_default_trust_applies():
    assert salesforce_session().verify is True


def test_login_hosts_are_routed_to_the_login_url():
    session = salesforce_session(login_url="https://127.0.0.1:8443")
    adapter = session.get_adapter("https://login.salesforce.com/services/oauth2/token")
    assert isinstance(adapter, LoginHostAdapter)
    assert adapter.route("https://acme.my.salesforce.com/services/oauth2/token?a=1") == (
        "https://127.0.0.1:8443/services/oauth2/token?a=1"
    )


def test_instance_urls_are_left_alone():
    adapter = LoginHostAdapter("https://127.0.0.1:8443")
    assert adapter.route("https://127.0.0.1:9000/services/data/") == (
        "https://127.0.0.1:9000/services/data/"
    )
