"""simple-salesforce clients for each login flow, pointed at a running sandbox."""

from __future__ import annotations

from simple_salesforce import Salesforce

from pipeline.salesforce.session import salesforce_session
from pipeline.sandbox.server import RunningSandbox


def info(sandbox: RunningSandbox) -> dict[str, str]:
    return sandbox.info()["salesforce"]


def soap_client(sandbox: RunningSandbox, password: str | None = None) -> Salesforce:
    sf = info(sandbox)
    return Salesforce(
        username=sf["username"],
        password=password or sf["password"],
        security_token=sf["security_token"],
        session=salesforce_session(sf["ca_file"], login_url=sf["url"]),
    )


def password_oauth_client(sandbox: RunningSandbox, client_secret: str | None = None) -> Salesforce:
    sf = info(sandbox)
    return Salesforce(
        username=sf["username"],
        password=sf["password"] + sf["security_token"],
        consumer_key=sf["client_id"],
        consumer_secret=client_secret or sf["client_secret"],
        session=salesforce_session(sf["ca_file"], login_url=sf["url"]),
    )


def client_credentials_client(sandbox: RunningSandbox) -> Salesforce:
    sf = info(sandbox)
    return Salesforce(
        consumer_key=sf["client_id"],
        consumer_secret=sf["client_secret"],
        domain="m3sync.my",
        session=salesforce_session(sf["ca_file"], login_url=sf["url"]),
    )


def jwt_client(sandbox: RunningSandbox, privatekey_file: str | None = None) -> Salesforce:
    sf = info(sandbox)
    return Salesforce(
        username=sf["username"],
        consumer_key=sf["client_id"],
        privatekey_file=privatekey_file or sf["jwt_private_key_file"],
        session=salesforce_session(sf["ca_file"], login_url=sf["url"]),
    )


def session_client(sandbox: RunningSandbox, session_id: str) -> Salesforce:
    sf = info(sandbox)
    return Salesforce(
        instance_url=sf["url"], session_id=session_id, session=salesforce_session(sf["ca_file"])
    )
