"""How the pipeline reaches one Salesforce org: login flow, endpoints, trust, timeouts.

Settings are checked when built, so a missing credential fails at configuration time with the
names of the settings to supply, never at the first API call and never echoing a secret value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import urlsplit

from pipeline.redact import redacted_repr

AuthMode = Literal["client_credentials", "password", "jwt", "session"]

SECRET_FIELDS = frozenset({"password", "security_token", "client_secret", "session_id"})
SALESFORCE_SUFFIX = ".salesforce.com"

_REQUIRED: dict[str, tuple[str, ...]] = {
    "client_credentials": ("client_id", "client_secret"),
    "password": ("username", "password"),
    "jwt": ("username", "client_id", "private_key_file"),
    "session": ("session_id", "instance_url"),
}
_API_VERSION = re.compile(r"^\d+\.\d$")
# The current API version. SOAP `login()` is unavailable from 65.0, off by default in orgs created
# from Winter '26 and retired in Summer '27 (Salesforce's SOAP API `login()` reference).
DEFAULT_API_VERSION = "65.0"
SOAP_LOGIN_LAST_VERSION = 64.0
SOAP_RETIREMENT = (
    "Salesforce's SOAP login() is off by default in orgs created from Winter '26 and retired in "
    "Summer '27: use auth 'client_credentials' or 'jwt'"
)


@dataclass(frozen=True, repr=False)
class SalesforceSettings:
    """One org's connection settings; `repr` shows which secrets are set, never their values.

    The default login is OAuth 2.0 client credentials. `auth='password'` uses the OAuth
    username-password flow when `client_id` and `client_secret` are set, and the SOAP partner
    login otherwise (API 64.0 at the latest); `security_token` is appended to the password in
    both (omit it when the org trusts the caller's IP range).
    """

    auth: AuthMode = "client_credentials"
    login_url: str = "https://login.salesforce.com"
    instance_url: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    private_key_file: str | None = None
    session_id: str | None = None
    ca_file: str | None = None
    api_version: str = DEFAULT_API_VERSION
    connect_timeout: float = 10.0
    read_timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.auth not in get_args(AuthMode):
            raise ValueError(
                f"unknown Salesforce auth mode {self.auth!r}; "
                f"expected one of {', '.join(get_args(AuthMode))}"
            )
        missing = [name for name in _REQUIRED[self.auth] if not getattr(self, name)]
        if self.auth == "password" and bool(self.client_id) != bool(self.client_secret):
            missing.append("client_secret" if self.client_id else "client_id")
        if missing:
            raise ValueError(
                f"Salesforce auth mode {self.auth!r} needs these settings: {', '.join(missing)}"
            )
        for name in ("login_url", "instance_url"):
            url = getattr(self, name)
            if url is not None:
                parts = urlsplit(url)
                if parts.scheme != "https" or not parts.hostname:
                    raise ValueError(f"Salesforce {name} must be an https:// URL, got {url!r}")
        if self.auth == "client_credentials" and self.login_domain in ("login", "test"):
            raise ValueError(
                "Salesforce auth mode 'client_credentials' needs the org's My Domain login_url "
                "(https://<name>.my.salesforce.com), not login/test.salesforce.com"
            )
        if not _API_VERSION.match(self.api_version):
            raise ValueError(
                f"Salesforce api_version must look like '65.0' (no leading 'v'), "
                f"got {self.api_version!r}"
            )
        if self.soap_login and float(self.api_version) > SOAP_LOGIN_LAST_VERSION:
            raise ValueError(
                f"Salesforce's SOAP login() (auth 'password' without client_id and "
                f"client_secret) is unavailable from API 65.0, and api_version is "
                f"{self.api_version}: use auth 'client_credentials' or 'jwt', or set "
                "api_version to 64.0"
            )
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("Salesforce connect_timeout and read_timeout must be positive")

    @property
    def soap_login(self) -> bool:
        return self.auth == "password" and not self.client_id

    @property
    def login_host(self) -> str:
        return (urlsplit(self.login_url).hostname or "").lower()

    @property
    def login_domain(self) -> str | None:
        """`login_url`'s host minus `.salesforce.com` ('login', 'test', 'acme.my'), or None.

        None means the login URL is not a Salesforce host (the sandbox), so logins reach it by
        routing rather than by simple-salesforce's `https://{domain}.salesforce.com` template.
        """
        host = self.login_host
        return host[: -len(SALESFORCE_SUFFIX)] if host.endswith(SALESFORCE_SUFFIX) else None

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def __repr__(self) -> str:
        return redacted_repr(self, SECRET_FIELDS)


def sandbox_settings(info: Mapping[str, str]) -> SalesforceSettings:
    """Settings for the org sandbox, from the `salesforce` section of its `sandbox.json`."""
    return SalesforceSettings(
        auth="client_credentials",
        login_url=info["url"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        ca_file=info["ca_file"],
    )


# The environment variable that sets each setting (credentials only ever come from here or from
# Dagster `EnvVar`s reading the same names).
ENVIRONMENT: dict[str, str] = {
    name: f"M3SYNC_SALESFORCE_{name.upper()}"
    for name in (
        "auth",
        "login_url",
        "instance_url",
        "username",
        "password",
        "security_token",
        "client_id",
        "client_secret",
        "private_key_file",
        "session_id",
        "ca_file",
        "api_version",
    )
}


def settings_from_env(environ: Mapping[str, str] | None = None) -> SalesforceSettings:
    """Settings from `M3SYNC_SALESFORCE_*` variables; unset ones keep their defaults."""
    env = os.environ if environ is None else environ
    values = {name: env[var] for name, var in ENVIRONMENT.items() if env.get(var)}
    return SalesforceSettings(**values)  # type: ignore[arg-type]
