"""How the pipeline reaches one m3ter organization: host, service-user credentials, trust, pace.

Settings are checked when built, so a missing credential or a bad number fails at configuration
time with the names of the settings to supply, never at the first API call and never echoing the
api secret.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pipeline.redact import redacted_repr

# m3ter's Config API host (reference §1). Its token endpoint lives on the same host, at
# `/oauth/token`, so one base URL serves the real service and the sandbox alike.
DEFAULT_BASE_URL = "https://api.m3ter.com"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a password
SECRET_FIELDS = frozenset({"api_secret"})
REQUIRED = ("org_id", "access_key_id", "api_secret")


@dataclass(frozen=True, repr=False)
class M3terSettings:
    """One org's connection settings; `repr` shows whether the secret is set, never its value.

    `rate_limit` is this client's own pace in requests/s (0: unlimited), kept well under m3ter's
    50 requests/s per org so that other callers of the same org keep some room; `ip_limit` is
    the most requests it sends in any `ip_window` seconds (0: unlimited), under m3ter's 20,000
    per rolling 5 minutes per source IP, which every process on the host shares; `concurrency`
    is how many threads may share the client (and so the size of its connection pool).
    """

    base_url: str
    org_id: str
    access_key_id: str
    api_secret: str
    ca_file: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    rate_limit: float = 20.0  # requests/s, well under m3ter's 50
    ip_limit: int = 18_000  # requests per ip_window, under m3ter's 20,000
    ip_window: float = 300.0
    concurrency: int = 4

    def __post_init__(self) -> None:
        missing = [name for name in REQUIRED if not getattr(self, name)]
        if missing:
            raise ValueError(f"m3ter needs these settings: {', '.join(missing)}")
        parts = urlsplit(self.base_url)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"m3ter base_url must be an https:// URL, got {self.base_url!r}")
        # One spelling of the base, so paths join the same way whether it ended in '/' or not.
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("m3ter connect_timeout and read_timeout must be positive")
        if not math.isfinite(self.rate_limit) or self.rate_limit < 0:
            raise ValueError("m3ter rate_limit must be 0 (unlimited) or a positive requests/s")
        if self.concurrency < 1:
            raise ValueError("m3ter concurrency must be at least 1")
        if self.ip_limit < 0 or not math.isfinite(self.ip_window) or self.ip_window <= 0:
            raise ValueError("m3ter ip_limit must be 0 (unlimited) or more, ip_window positive")

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def __repr__(self) -> str:
        return redacted_repr(self, SECRET_FIELDS)

    __str__ = __repr__


def sandbox_settings(info: Mapping[str, str]) -> M3terSettings:
    """Settings for the m3ter sandbox, from the `m3ter` section of its `sandbox.json`."""
    return M3terSettings(
        base_url=info["url"],
        org_id=info["org_id"],
        access_key_id=info["access_key_id"],
        api_secret=info["api_secret"],
        ca_file=info["ca_file"],
    )


# The environment variable that sets each setting (credentials only ever come from here or from
# Dagster `EnvVar`s reading the same names).
ENVIRONMENT: dict[str, str] = {
    "base_url": "M3SYNC_M3TER_URL",
    "org_id": "M3SYNC_M3TER_ORG_ID",
    "access_key_id": "M3SYNC_M3TER_ACCESS_KEY_ID",
    "api_secret": "M3SYNC_M3TER_API_SECRET",
    "ca_file": "M3SYNC_M3TER_CA_FILE",
    "rate_limit": "M3SYNC_M3TER_RATE_LIMIT",
    "ip_limit": "M3SYNC_M3TER_IP_LIMIT",
    "concurrency": "M3SYNC_M3TER_CONCURRENCY",
}
_NUMBERS: dict[str, type[float] | type[int]] = {
    "rate_limit": float,
    "ip_limit": int,
    "concurrency": int,
}


def settings_from_env(environ: Mapping[str, str] | None = None) -> M3terSettings:
    """Settings from `M3SYNC_M3TER_*` variables; unset ones keep their defaults.

    Without `M3SYNC_M3TER_URL` the client talks to m3ter itself (`https://api.m3ter.com`).
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {"base_url": DEFAULT_BASE_URL}
    for name, var in ENVIRONMENT.items():
        raw = env.get(var)
        if not raw:
            continue
        convert = _NUMBERS.get(name)
        if convert is None:
            values[name] = raw
            continue
        try:
            values[name] = convert(raw)
        except ValueError:
            raise ValueError(f"{var} must be a number, got {raw!r}") from None
    missing = [ENVIRONMENT[name] for name in REQUIRED if name not in values]
    if missing:
        raise ValueError(f"m3ter needs these environment variables: {', '.join(missing)}")
    return M3terSettings(**values)
