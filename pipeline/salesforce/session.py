"""HTTP sessions for simple-salesforce: explicit CA trust and, for other hosts, login routing.

simple-salesforce builds every login URL as `https://{domain}.salesforce.com/...`; an org served
elsewhere (the sandbox on 127.0.0.1) is reached by routing those login hosts to its base URL at the
transport level, leaving the client itself unmodified.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class LoginHostAdapter(HTTPAdapter):
    """Sends requests for `*.salesforce.com` to `login_url` instead (path and query kept)."""

    def __init__(self, login_url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        target = urlsplit(login_url)
        self._scheme, self._netloc = target.scheme, target.netloc

    def route(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith(".salesforce.com"):
            return urlunsplit((self._scheme, self._netloc, parts.path, parts.query, ""))
        return url

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
        request.url = self.route(request.url or "")
        return super().send(request, **kwargs)  # type: ignore[arg-type]


def salesforce_session(
    ca_file: str | None = None, login_url: str | None = None
) -> requests.Session:
    """A pooled session trusting `ca_file` and routing logins to `login_url` (each if given).

    With a CA file, `trust_env` is switched off: otherwise `REQUESTS_CA_BUNDLE` from the
    environment would silently replace the CA this session was told to trust.
    """
    session = requests.Session()
    if ca_file:
        session.verify = ca_file
        session.trust_env = False
    if login_url:
        session.mount("https://", LoginHostAdapter(login_url))
    return session
