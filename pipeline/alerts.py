"""A short notice to a chat webhook when a run fails, so nobody has to watch the Dagster UI.

Webhook URLs are credentials (Slack's carries its secret in the path, others in the query or
userinfo): no error raised here shows more of the URL than its scheme, host and port, and
nothing from requests' own exceptions (which quote the URL) is chained or repeated unredacted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests

REASON_CHARS = 300
ANSWER_CHARS = 200
ANSWER_BYTES = 4096
_TRACEBACK = "Traceback (most recent call last):"
_WHITESPACE = re.compile(r"\s+")


class AlertError(RuntimeError):
    """The notice was not delivered; the message names the webhook by host only."""


@dataclass(frozen=True)
class FailureSummary:
    """What a failed run's notice says: which run, of which job, over which partitions, and why.

    `reason` may be long or span lines (an error with its traceback); the notice shortens it.
    """

    run_id: str
    job: str
    reason: str
    partitions: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", tuple(self.partitions))

    def text(self) -> str:
        """The one line a chat shows: `m3sync run <run_id> (<job>[, partitions]) failed: ...`."""
        scope = self.job
        keys = list(self.partitions)
        if len(keys) == 1:
            scope += f", partition {keys[0]}"
        elif keys:
            ordered = sorted(keys)
            scope += f", {len(keys)} partitions {ordered[0]}..{ordered[-1]}"
        return f"m3sync run {self.run_id} ({scope}) failed: {one_line(self.reason)}"

    def payload(self) -> dict[str, Any]:
        """The JSON body: Slack-compatible `text`, and the fields for other receivers."""
        return {
            "text": self.text(),
            "run_id": self.run_id,
            "job": self.job,
            "partitions": list(self.partitions),
            "reason": one_line(self.reason),
        }


def one_line(reason: str, limit: int = REASON_CHARS) -> str:
    """`reason` as one line of at most `limit` characters, for a chat message.

    A traceback becomes its last line (the exception itself); other text has its whitespace
    runs, newlines included, collapsed to single spaces. Longer text is cut and ends with `…`.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive: {limit!r}")
    text = reason
    if _TRACEBACK in text:
        lines = [line for line in text.splitlines() if line.strip()]
        text = lines[-1] if lines else ""
    text = _WHITESPACE.sub(" ", text).strip() or "no reason given"
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def post_failure(
    url: str,
    summary: FailureSummary,
    timeout: float = 10,
    ca_file: str | None = None,
) -> None:
    """POST `summary` as JSON to the webhook at `url`; raise AlertError unless it answers 2xx.

    The session ignores the environment (`trust_env` off), so `REQUESTS_CA_BUNDLE` and proxy
    variables cannot replace the trust or the route: the webhook is verified against `ca_file`
    when given, otherwise requests' default certifi bundle. Redirects are not followed (the
    body would go to a host nobody configured), and `timeout` bounds connecting and each read.
    """
    shown = safe_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlertError(f"failure alert webhook must be an http(s) URL with a host: {shown}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive: {timeout!r}")
    with requests.Session() as session:
        session.trust_env = False
        session.verify = ca_file or True
        try:
            response = session.post(
                url,
                json=summary.payload(),
                timeout=timeout,
                allow_redirects=False,
                headers={"User-Agent": "m3sync"},
                stream=True,
            )
            with response:
                status = response.status_code
                body = b"" if 200 <= status < 300 else _answer_start(response)
        except requests.RequestException as error:
            detail = _redact(f"{type(error).__name__}: {error}", url)
            raise AlertError(f"failure alert to {shown} not delivered: {detail}") from None
        if not 200 <= status < 300:
            answer = _redact(one_line(body.decode("utf-8", "replace"), ANSWER_CHARS), url)
            raise AlertError(f"failure alert to {shown} not delivered: HTTP {status}: {answer}")


def _answer_start(response: requests.Response) -> bytes:
    """Enough of an error answer to say why, without reading a large error page whole."""
    try:
        return next(response.iter_content(ANSWER_BYTES), b"")
    except requests.RequestException:
        return b""


def safe_url(url: str) -> str:
    """`url` as `scheme://host[:port]`, with `/…` standing for any path, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    hidden = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}{hidden}" if parts.scheme else "<URL without scheme>"


def _redact(text: str, url: str) -> str:
    """`text` without any secret-bearing part of `url` (userinfo, path, query, fragment).

    Each part is removed as written, percent-decoded and percent-encoded, longest first, so a
    part that contains another is removed whole.
    """
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return text.replace(url, "<redacted>")
    pieces = {url, parts.netloc.rpartition("@")[0], username or "", password or ""}
    if parts.path not in ("", "/"):
        pieces |= {parts.path, *parts.path.strip("/").split("/")}
    pieces |= {parts.query, parts.fragment, *(q.partition("=")[2] for q in parts.query.split("&"))}
    forms = {
        form
        for piece in pieces
        if piece
        for form in (piece, unquote(piece), quote(piece), quote(piece, safe=""))
    }
    for form in sorted((f for f in forms if len(f) > 1), key=len, reverse=True):
        text = text.replace(form, "<redacted>")
    return text
