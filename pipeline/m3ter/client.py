"""The pipeline's one m3ter Config API client: token, pacing, retries, spend accounting.

One pooled `requests.Session` is shared by up to `settings.concurrency` threads. Every request
waits for the client's token bucket and rolling window (m3ter's per-org rate and per-IP count),
then goes through one retry loop (429, 5xx, dropped connections, timeouts). The bearer token is
fetched with the service user's credentials, kept until shortly before it expires, and fetched
again early when m3ter answers 401/403 to a call (once per call: a fresh token refused too is
diagnosed, by what still works, as a missing permission or an organization that refuses all).

m3ter has no idempotency key, so a write whose answer never came may have been applied. A create
retried after such a failure first asks its `find` whether the object is there; an update refused
is read back to see whether its version moved (ours or someone else's write), never judged by the
wording of the refusal.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from pipeline.m3ter.errors import (
    M3terAuthError,
    M3terError,
    M3terForbidden,
    M3terRejected,
    M3terStaleVersion,
    M3terUnavailable,
)
from pipeline.m3ter.ratelimit import RollingWindow, TokenBucket
from pipeline.m3ter.settings import TOKEN_PATH, M3terSettings
from pipeline.retry import RetryPolicy
from pipeline.spend import Snapshot, Tally

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # the most m3ter's config lists allow (reference §4)
# Renew a token this long before m3ter says it expires (a tenth of a short lifetime), so a call
# never sets out with a token that lapses in flight.
TOKEN_MARGIN = 60.0
# m3ter documents no Retry-After: a 429 without one waits at least the rest of the org limit's
# second (documented), then backs off exponentially like any other failure.
DEFAULT_THROTTLE_WAIT = 1.0
TRANSIENT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
AUTH_REFUSED = frozenset({401, 403})
# m3ter's permission actions, by the method that needs them.
ACTIONS = {"GET": "retrieve", "POST": "create", "PUT": "update", "DELETE": "delete"}
# A create's way to find what it made, after an answer that never came.
Find = Callable[[], "dict[str, Any] | None"]
_COLLECTION = re.compile(r"^[a-z][a-z0-9]*$")
_MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class M3terSpend(Snapshot):
    """What a client has spent; subtract two snapshots to get what the calls between them spent.

    `calls` counts HTTP requests to `/organizations/...` (retries and dropped ones included), so
    `calls == reads + writes`; `throttled` the 429 answers among them; `retries` the requests
    repeated after a failure or a refused token; `tokens` the requests to the token endpoint.
    """

    calls: int = 0
    reads: int = 0
    writes: int = 0
    throttled: int = 0
    retries: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    renew_at: float  # time.monotonic() after which it is fetched again


@dataclass(frozen=True)
class _Failure:
    """A transient failure: no answer, 429 or 5xx."""

    status: int | None
    message: str
    retry_after: float | None

    @property
    def may_have_applied(self) -> bool:
        """No answer or a server error: the request may have been carried out all the same
        (a 429 is refused before anything is done)."""
        return self.status != 429


@dataclass(frozen=True)
class _Found:
    """An object a create's `find` found after a failure: the create had been applied."""

    obj: dict[str, Any]


def m3ter_session(settings: M3terSettings) -> requests.Session:
    """A session pooling `concurrency` connections and trusting exactly the configured CA.

    `trust_env` is off so `REQUESTS_CA_BUNDLE` and proxy variables cannot silently replace the
    trust the settings name; retries are the client's, so the adapter makes none of its own;
    cookies are refused, keeping the session free of state that threads would share.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = settings.ca_file or True
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.concurrency, max_retries=0)
    session.mount("https://", adapter)
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.headers.update({"Accept": "application/json", "User-Agent": "m3sync"})
    return session


def path_segment(value: object) -> str:
    """`value` as exactly one URL path segment, whatever characters it holds.

    `/`, `?`, `#` and `%` are percent-encoded; `.` and `..` are refused, as URL parsers resolve
    them (even percent-encoded, requests decodes `%2E`) into a different path.
    """
    text = str(value)
    if text in ("", ".", ".."):
        raise ValueError(f"not a usable m3ter id: {text!r}")
    return quote(text, safe="")


def retry_after(response: requests.Response) -> float | None:
    """Seconds the answer asks to wait (`Retry-After` as seconds or an HTTP date), if any."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def answer_message(response: requests.Response) -> str:
    """m3ter's `{"message": ...}` text, else the start of the body, else the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    text = response.text.strip()[:_MESSAGE_LIMIT]
    return text or response.reason or f"HTTP {response.status_code}"


def query_value(value: object) -> str:
    """A filter value as m3ter's lists take it: lists comma-joined, booleans lower-case.

    m3ter splits a list parameter on commas, so a member holding a comma (m3ter's code pattern
    allows one) would ask for other objects than the one named: it is refused instead.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        members = [query_value(v) for v in value]
        for member in members:
            if "," in member:
                raise ValueError(
                    f"cannot filter an m3ter list by {member!r}: m3ter splits list filters "
                    "on commas"
                )
        return ",".join(members)
    return str(value)


class M3terClient:
    """CRUD and lists over `/organizations/{orgId}/<collection>`, safe to share between threads.

    Collections are m3ter's path names (`accounts`, `plans`, `pricings`, `accountplans`,
    `commitments`, `externalmappings`, ...). Answers that retrying cannot fix raise
    `M3terRejected` at once; transient failures raise `M3terUnavailable` once the retry policy's
    attempts are spent.
    """

    def __init__(self, settings: M3terSettings, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._bucket = TokenBucket(settings.rate_limit)
        self._window = (
            RollingWindow(settings.ip_limit, settings.ip_window) if settings.ip_limit else None
        )
        self._session = m3ter_session(settings)
        self._org_url = f"{settings.base_url}/organizations/{path_segment(settings.org_id)}"
        self._tally = Tally(M3terSpend)
        self._token_lock = threading.Lock()
        self._token: _Token | None = None
        # Tokens no message may show (besides the secret): the few most recent are the only
        # ones m3ter could still echo.
        self._recent_tokens: deque[str] = deque(maxlen=4)

    # ---- spend --------------------------------------------------------------------------------

    @property
    def calls(self) -> int:
        return self._tally.snapshot().calls

    @property
    def reads(self) -> int:
        return self._tally.snapshot().reads

    @property
    def writes(self) -> int:
        return self._tally.snapshot().writes

    @property
    def throttled(self) -> int:
        return self._tally.snapshot().throttled

    @property
    def retries(self) -> int:
        return self._tally.snapshot().retries

    @property
    def tokens(self) -> int:
        return self._tally.snapshot().tokens

    def spent(self) -> M3terSpend:
        """Totals since the client was built."""
        return self._tally.snapshot()

    # ---- API ----------------------------------------------------------------------------------

    def list(self, collection: str, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every object the list returns, fetched 100 a page by following `nextToken`.

        Filters are m3ter's query parameters (`codes=[...]`, `accountId=...`); list values are
        sent comma-joined and None values left out. Each page is its own request, retried alone.
        """
        return self.pages(self._collection(collection), **filters)

    def pages(self, *segments: str, **filters: Any) -> Iterator[dict[str, Any]]:
        """The `data` of every page at a path of the org (each segment one path segment), such
        as `externalmappings/externalid/{system}/{table}/{id}`."""
        path = "/" + "/".join(path_segment(segment) for segment in segments)
        params = {"pageSize": str(PAGE_SIZE)}
        params.update({k: query_value(v) for k, v in filters.items() if v is not None})
        while True:
            page = self._call("GET", path, params=params)
            yield from page.get("data") or []
            next_token = page.get("nextToken")
            if not next_token:
                return
            params = {**params, "nextToken": str(next_token)}

    def read(self, *segments: str) -> Any:
        """The answer of a GET at a path of the org, such as `externalmappingconfiguration`."""
        return self._call("GET", "/" + "/".join(path_segment(segment) for segment in segments))

    def get(self, collection: str, object_id: str) -> dict[str, Any]:
        return dict(self._call("GET", self._object_path(collection, object_id)))

    def create(
        self, collection: str, body: Mapping[str, Any], find: Find | None = None
    ) -> dict[str, Any]:
        """POST a new object; m3ter answers it with its `id` and `version` 1.

        After a failure that may have been applied (no answer, 5xx), `find` is asked before the
        create is sent again: the object it finds is the answer. Without a `find`, a create is
        sent again blindly, and m3ter may then hold two.
        """
        answer = self._call("POST", f"/{self._collection(collection)}", body=dict(body), find=find)
        return dict(answer)

    def update(self, collection: str, object_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the whole object (omitted fields are cleared); `body['version']` must be the
        version read.

        A refused PUT is read back: if the object's version is not the one sent, the refusal was
        a stale version (someone wrote since, or this PUT was applied and its answer lost) and
        `M3terStaleVersion` carries the object as it is now.
        """
        version = body.get("version")
        if version is None:
            raise ValueError("an m3ter update needs the object's current 'version' in its body")
        path = self._object_path(collection, object_id)
        try:
            return dict(self._call("PUT", path, body=dict(body)))
        except M3terRejected as refused:
            if refused.status not in (400, 409):
                raise
            current = self.get(collection, object_id)
            if current.get("version") == version:
                raise
            raise M3terStaleVersion(
                f"{refused.message} (the object is at version {current.get('version')}, "
                f"not {version})",
                current=current,
                status=refused.status,
                method="PUT",
                path=refused.path,
            ) from refused

    def delete(self, collection: str, object_id: str) -> dict[str, Any]:
        """DELETE an object; m3ter answers with the object as it was."""
        return dict(self._call("DELETE", self._object_path(collection, object_id)))

    # ---- paths --------------------------------------------------------------------------------

    @staticmethod
    def _collection(collection: str) -> str:
        if not _COLLECTION.match(collection):
            raise ValueError(f"not an m3ter collection name: {collection!r}")
        return collection

    def _object_path(self, collection: str, object_id: str) -> str:
        return f"/{self._collection(collection)}/{path_segment(object_id)}"

    # ---- requests -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        find: Find | None = None,
    ) -> Any:
        """One org request under the retry policy; its JSON answer, or the matching error.

        `find` (creates only) is asked, before each attempt after one that may have been applied,
        for the object that attempt would have made.
        """
        url = self._org_url + path
        refreshed = False
        uncertain = False

        def send() -> requests.Response | _Failure | _Found:
            nonlocal refreshed, uncertain
            while True:
                if uncertain and find is not None:
                    found = find()
                    if found is not None:
                        logger.info("m3ter %s %s: found what the lost answer made", method, path)
                        return _Found(found)
                token = self._bearer()
                kind = "writes" if method in WRITE_METHODS else "reads"
                self._tally.add(calls=1, **{kind: 1})
                outcome = self._send(
                    method,
                    url,
                    path,
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
                if isinstance(outcome, _Failure):
                    uncertain = uncertain or outcome.may_have_applied
                    return outcome
                if outcome.status_code in AUTH_REFUSED and not refreshed:
                    # m3ter answers an expired token with 403 (documented), maybe 401
                    refreshed = True
                    self._forget(token)
                    self._tally.add(retries=1)
                    logger.info("m3ter refused the token; fetching a new one")
                    continue
                return outcome

        outcome = self._retrying(method, path, send)
        if isinstance(outcome, _Found):
            return outcome.obj
        if outcome.status_code in AUTH_REFUSED:
            raise self._forbidden(method, path, outcome)
        if not 200 <= outcome.status_code < 300:
            raise self._refusal(method, path, outcome)
        return self._json(method, path, outcome)

    def _send(
        self, method: str, url: str, path: str, **kwargs: Any
    ) -> requests.Response | _Failure:
        """One HTTP request, paced by the bucket and the window: an answer to act on, or a
        transient failure."""
        self._bucket.acquire()
        if self._window is not None:
            self._window.acquire()
        try:
            response = self._session.request(
                method, url, timeout=self.settings.timeout, allow_redirects=False, **kwargs
            )
        except requests.exceptions.SSLError as exc:
            # Certificate failures are ConnectionErrors to requests but never heal.
            raise self._error(M3terError, f"TLS failed: {exc}", None, method, path) from exc
        except TRANSIENT as exc:
            return _Failure(None, f"{type(exc).__name__}: {exc}", None)
        status = response.status_code
        if status == 429:
            self._tally.add(throttled=1)
            wait = retry_after(response)
            return _Failure(status, answer_message(response), wait or DEFAULT_THROTTLE_WAIT)
        if status >= 500:
            return _Failure(status, answer_message(response), retry_after(response))
        return response

    def _retrying(
        self,
        method: str,
        path: str,
        send: Callable[[], requests.Response | _Failure | _Found],
    ) -> requests.Response | _Found:
        """`send` until it brings an answer to act on or the retry policy's attempts run out.

        Uses `RetryPolicy`'s attempts, full-jitter back-off and sleep; a Retry-After adds its wait
        (capped at the policy's `max_delay`) in front of the back-off, so the server's minimum is
        kept and clients that were refused together do not return together.
        """
        attempt = 1
        while True:
            outcome = send()
            if not isinstance(outcome, _Failure):
                return outcome
            attempts = self.retry.attempts
            if attempt >= attempts:
                raise self._error(
                    M3terUnavailable,
                    f"still failing after {attempts} attempts: {outcome.message}",
                    outcome.status,
                    method,
                    path,
                )
            wait = self.retry.delay(attempt)
            if outcome.retry_after is not None:
                wait += min(outcome.retry_after, self.retry.max_delay)
            self._tally.add(retries=1)
            logger.warning(
                "m3ter %s %s failed (%s: %s); retrying in %.2fs (attempt %d of %d)",
                method,
                self._redact(path),
                outcome.status or "no answer",
                self._redact(outcome.message),
                wait,
                attempt + 1,
                attempts,
            )
            self.retry.sleep(wait)
            attempt += 1

    def _forbidden(self, method: str, path: str, response: requests.Response) -> M3terError:
        """What a fresh token refused means, found out from what the service user can still do.

        m3ter answers an expired token, an unknown organization and a missing permission with
        the same 403 (its error-code page, "Forbidden or Unauthorized"). The token is fresh, so
        it is one of the other two: if a read of the same collection (for a write) or of the
        organization's products (for a read) goes through, the organization is right and one
        permission is missing, named here; if that is refused too, the organization refuses
        this service user everything.
        """
        collection = path.strip("/").split("/", 1)[0]
        action = ACTIONS.get(method, "retrieve")
        entity = collection or "organization"
        probe = f"/{collection}" if method != "GET" else "/products"
        answer = self._send(
            "GET",
            self._org_url + probe,
            probe,
            params={"pageSize": "1"},
            headers={"Authorization": f"Bearer {self._bearer()}"},
        )
        self._tally.add(calls=1, reads=1)
        status = response.status_code
        if isinstance(answer, requests.Response) and 200 <= answer.status_code < 300:
            permission = f"config:{action}"
            return self._error_forbidden(
                f"the m3ter service user (access key id {self.settings.access_key_id}) lacks "
                f"the permission {permission} on {entity}; grant it in m3ter's permission "
                "policies (m3ter recommends Administrator for integrations)",
                f"{permission} {entity}",
                status,
                method,
                path,
            )
        return self._error_forbidden(
            f"m3ter refuses the service user (access key id {self.settings.access_key_id}) "
            f"everything in organization {self.settings.org_id}: the organization id is wrong, "
            "or the service user has no access to it",
            None,
            status,
            method,
            path,
        )

    def _error_forbidden(
        self, message: str, permission: str | None, status: int, method: str, path: str
    ) -> M3terForbidden:
        return M3terForbidden(
            self._redact(message),
            permission=permission,
            status=status,
            method=method,
            path=self._redact(path),
        )

    # ---- token --------------------------------------------------------------------------------

    def _bearer(self) -> str:
        """The current token, fetched first if there is none or it is about to expire.

        Threads wait on one lock while one of them fetches, so an expiry costs one token request.
        """
        with self._token_lock:
            token = self._token
            if token is None or time.monotonic() >= token.renew_at:
                token = self._token = self._fetch_token()
            return token.value

    def _forget(self, value: str) -> None:
        """Drop a refused token, unless another thread has replaced it already."""
        with self._token_lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch_token(self) -> _Token:
        settings = self.settings

        def send() -> requests.Response | _Failure:
            self._tally.add(tokens=1)
            return self._send(
                "POST",
                settings.token_url,
                TOKEN_PATH,
                auth=(settings.access_key_id, settings.api_secret),
                json={"grant_type": "client_credentials"},
            )

        response = self._retrying("POST", TOKEN_PATH, send)
        assert isinstance(response, requests.Response)  # a token request has no `find`
        if not 200 <= response.status_code < 300:
            raise self._error(
                M3terAuthError,
                f"m3ter refused a token for access key id {settings.access_key_id} (the access "
                "key id or api secret is wrong, or the service user is gone): "
                f"{answer_message(response)}",
                response.status_code,
                "POST",
                TOKEN_PATH,
            )
        answer = self._json("POST", TOKEN_PATH, response)
        value = answer.get("access_token") if isinstance(answer, dict) else None
        lifetime = answer.get("expires_in") if isinstance(answer, dict) else None
        if not isinstance(value, str) or not value or not isinstance(lifetime, int | float):
            raise self._error(
                M3terAuthError,
                "the token answer lacks access_token or expires_in",
                response.status_code,
                "POST",
                TOKEN_PATH,
            )
        self._recent_tokens.append(value)
        margin = min(TOKEN_MARGIN, lifetime / 10)
        return _Token(value, time.monotonic() + lifetime - margin)

    # ---- answers and errors -------------------------------------------------------------------

    def _json(self, method: str, path: str, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._error(
                M3terError,
                f"the answer is not JSON: {response.text[:_MESSAGE_LIMIT]!r}",
                response.status_code,
                method,
                path,
            ) from None

    def _refusal(self, method: str, path: str, response: requests.Response) -> M3terError:
        return self._error(
            M3terRejected, answer_message(response), response.status_code, method, path
        )

    def _error(
        self,
        cls: type[M3terError],
        message: str,
        status: int | None,
        method: str,
        path: str,
    ) -> M3terError:
        return cls(self._redact(message), status=status, method=method, path=self._redact(path))

    def _redact(self, text: str) -> str:
        for hidden in (self.settings.api_secret, *self._recent_tokens):
            for form in {hidden, quote(hidden, safe="")}:
                text = text.replace(form, "<redacted>")
        return text

    # ---- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> M3terClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"M3terClient({self.settings!r})"
