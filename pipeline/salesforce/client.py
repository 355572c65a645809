"""The pipeline's one Salesforce client: login, retries, spend accounting, results straight to disk.

It wraps a single simple-salesforce `Salesforce` object. REST query pages are written to a JSON
array file as the page text arrives and Bulk API 2.0 result pages are streamed to CSV files, so
records never become Python objects on the way to DuckDB beyond the JSON parse of a REST page.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation, _Bulk2Client
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

from pipeline.retry import Failure, RetryPolicy
from pipeline.salesforce.errors import (
    ApiLimitExceeded,
    BulkJobFailed,
    QueryTimeout,
    QuotaFloorReached,
    SalesforceAuthError,
    SalesforceExtractError,
    SalesforceRequestError,
    SessionExpiredError,
)
from pipeline.salesforce.retry import classify
from pipeline.salesforce.session import salesforce_session
from pipeline.salesforce.settings import SOAP_RETIREMENT, SalesforceSettings
from pipeline.spend import Snapshot, Tally

logger = logging.getLogger(__name__)

T = TypeVar("T")

DOWNLOAD_CHUNK = 1 << 20
LOGIN_PATHS = ("/services/oauth2/token", "/services/Soap/u/")
DATA_PATH = "/services/data/"
# Any non-login/test domain satisfies simple-salesforce's client-credentials branch; for a login
# URL outside salesforce.com the session routes the resulting host to the login URL anyway.
ROUTED_MY_DOMAIN = "m3sync.my"
# Dropping pretty-printing shrinks every REST page; requests removes a header whose value is None.
NO_PRETTY_PRINT: dict[str, str | None] = {"X-PrettyPrint": None}
_SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SELECT = re.compile(r"\s*select\s", re.IGNORECASE)
_FROM_OR_PAREN = re.compile(r"[()]|\bfrom\b", re.IGNORECASE)
_FROM_OBJECT = re.compile(r"\bfrom\s+([A-Za-z][A-Za-z0-9_]*)", re.IGNORECASE)
_JSON = json.JSONDecoder()


@dataclass(frozen=True)
class Spend(Snapshot):
    """What a client has spent; subtract two snapshots to get what the calls between them spent.

    `api_calls` counts answers from the data API (`/services/data/`, REST and Bulk API 2.0 alike,
    error answers included), `logins` answers from the OAuth token and SOAP login endpoints. A
    request whose connection dropped got no answer and is not counted (it shows up in `retries`).
    `bytes_downloaded` is response bodies as received after transfer decoding; `records` what the
    REST pages and bulk result pages held.
    """

    api_calls: int = 0
    logins: int = 0
    bulk_jobs: int = 0
    bytes_downloaded: int = 0
    records: int = 0
    retries: int = 0


@dataclass(frozen=True)
class IngestResult:
    """What a Bulk API 2.0 ingest job did, and where its failed and unprocessed records are."""

    job_id: str
    processed: int
    failed: int
    failed_file: Path
    unprocessed_file: Path


class TimeoutSession(requests.Session):
    """A session that gives every request a default (connect, read) timeout.

    simple-salesforce never passes a timeout, so without this a silent server hangs a run forever.
    """

    def __init__(self, base: requests.Session, timeout: tuple[float, float]) -> None:
        super().__init__()
        for name in self.__attrs__:
            setattr(self, name, getattr(base, name))
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def salesforce_kwargs(settings: SalesforceSettings) -> dict[str, Any]:
    """The `Salesforce(...)` constructor arguments that select the settings' login flow.

    simple-salesforce picks the flow from which arguments are present (reference §2), so each
    mode passes exactly its own and nothing that would select an earlier branch.
    """
    domain = settings.login_domain
    if settings.auth == "session":
        return {"instance_url": settings.instance_url, "session_id": settings.session_id}
    if settings.auth == "client_credentials":
        return {
            "consumer_key": settings.client_id,
            "consumer_secret": settings.client_secret,
            "domain": domain or ROUTED_MY_DOMAIN,
        }
    if settings.auth == "password":
        assert settings.password is not None
        if settings.client_id:
            return {
                "username": settings.username,
                "password": settings.password + (settings.security_token or ""),
                "consumer_key": settings.client_id,
                "consumer_secret": settings.client_secret,
                "domain": domain or "login",
            }
        # An empty token still selects the SOAP login, for orgs that trust the caller's IP.
        return {
            "username": settings.username,
            "password": settings.password,
            "security_token": settings.security_token or "",
            "domain": domain or "login",
        }
    # JWT: the assertion's audience is login/test.salesforce.com (the hosts Salesforce documents
    # for `aud`); a My Domain login URL only changes where the token request goes, which
    # simple-salesforce takes from `instance_url` in this flow.
    sandbox_org = domain is not None and (domain == "test" or domain.endswith(".sandbox.my"))
    my_domain = domain is not None and domain not in ("login", "test")
    return {
        "username": settings.username,
        "consumer_key": settings.client_id,
        "privatekey_file": settings.private_key_file,
        "domain": "test" if sandbox_org else "login",
        "instance_url": domain if my_domain else None,
    }


def count_query(soql: str) -> str:
    """`SELECT COUNT() FROM …` for a query, keeping its FROM/WHERE; COUNT() queries pass as is."""
    select = _SELECT.match(soql)
    if select is None:
        raise ValueError("not a SOQL SELECT query")
    depth = 0
    for match in _FROM_OR_PAREN.finditer(soql, select.end()):
        piece = match.group()
        if piece == "(":
            depth += 1
        elif piece == ")":
            depth -= 1
        elif depth == 0:
            return f"SELECT COUNT() {soql[match.start() :]}"
    raise ValueError("SOQL query has no FROM clause")


def split_query_page(text: str) -> tuple[dict[str, Any], str, int]:
    """A REST query page's top-level fields, its `records` array as sent, and the record count.

    The page is parsed once, key by key, so the exact text of the records array can be written
    through unchanged, whatever the key order or whitespace Salesforce used.
    """

    def skip(pos: int) -> int:
        match = _WHITESPACE.match(text, pos)
        assert match is not None
        return match.end()

    head: dict[str, Any] = {}
    records_text, count = "[]", 0
    pos = skip(0)
    if text[pos : pos + 1] != "{":
        raise ValueError("a query page is not a JSON object")
    pos = skip(pos + 1)
    if text[pos : pos + 1] == "}":
        return head, records_text, count
    while True:
        key, pos = _JSON.raw_decode(text, pos)
        pos = skip(pos)
        if text[pos : pos + 1] != ":":
            raise ValueError("malformed query page")
        start = skip(pos + 1)
        value, end = _JSON.raw_decode(text, start)
        if key == "records":
            records_text, count = text[start:end], len(value)
        else:
            head[key] = value
        pos = skip(end)
        if text[pos : pos + 1] == "}":
            return head, records_text, count
        if text[pos : pos + 1] != ",":
            raise ValueError("malformed query page")
        pos = skip(pos + 1)


def _salesforce_detail(exc: BaseException) -> tuple[str, int | None, str | None]:
    """A one-line description of a failure, with its HTTP status and Salesforce error code."""
    if isinstance(exc, SalesforceAuthenticationFailed):
        return f"{exc.code}: {exc.auth_message}", None, str(exc.code)
    if isinstance(exc, SalesforceError):
        content = exc.content
        if isinstance(content, list) and content and isinstance(content[0], dict):
            code = content[0].get("errorCode")
            messages = "; ".join(str(item.get("message", "")) for item in content)
            return f"{exc.status} {code}: {messages}", exc.status, code
        text = content.decode(errors="replace") if isinstance(content, bytes) else str(content)
        return f"{exc.status}: {text[:500]}", exc.status, None
    return f"{type(exc).__name__}: {exc}", None, None


# A query job that failed on time: Salesforce documents QUERY_TIMEOUT for a query that runs past
# its limit and "Retried more than fifteen (or thirty) times" for results it could not retrieve
# in time; it does not document the errorMessage of a Bulk API 2.0 job that timed out, so both
# wordings count.
_JOB_TIMED_OUT = re.compile(r"QUERY_TIMEOUT|Retried more than", re.IGNORECASE)


def _job_message(exc: SalesforceOperationError) -> str:
    """Salesforce's own errorMessage from simple-salesforce's job-failure text."""
    return re.sub(r"^Job failure\. Response content: ", "", str(exc))


class SalesforceClient:
    """Logs in once, retries what is worth retrying, counts what it spends, writes results to disk.

    Not meant to be shared between threads while a call is running: a re-login replaces the
    session on the one `Salesforce` object. Spend counters are safe to read from any thread.
    """

    def __init__(self, settings: SalesforceSettings, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._tally = Tally(Spend)
        self._api_usage: tuple[int, int] | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        self._sobjects: frozenset[str] | None = None
        self.last_call = Spend()
        # Logins to a Salesforce host need no routing; routing them would also send the data
        # calls of a *.my.salesforce.com instance to the login host.
        routed = settings.login_url if settings.login_domain is None else None
        session = TimeoutSession(salesforce_session(settings.ca_file, routed), settings.timeout)
        session.hooks["response"].append(self._on_response)
        self._session = session
        if settings.soap_login:
            logger.warning(SOAP_RETIREMENT)
        with self._call("login"):
            self._sf: Salesforce = self._request(self._connect)

    # ---- spend --------------------------------------------------------------------------------

    @property
    def api_calls(self) -> int:
        return self._tally.snapshot().api_calls

    @property
    def logins(self) -> int:
        return self._tally.snapshot().logins

    @property
    def bulk_jobs(self) -> int:
        return self._tally.snapshot().bulk_jobs

    @property
    def bytes_downloaded(self) -> int:
        return self._tally.snapshot().bytes_downloaded

    @property
    def retries(self) -> int:
        return self._tally.snapshot().retries

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, max) daily API requests as the last data API answer's `Sforce-Limit-Info` said."""
        return self._api_usage

    def spent(self) -> Spend:
        """Totals since the client was built (logins included)."""
        return self._tally.snapshot()

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = urlsplit(response.url).path
        if path.startswith(DATA_PATH):
            self._tally.add(api_calls=1)
            usage = _API_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
            if usage:
                self._api_usage = (int(usage[1]), int(usage[2]))
        elif path.startswith(LOGIN_PATHS):
            self._tally.add(logins=1)
        if not kwargs.get("stream"):
            self._tally.add(bytes_downloaded=len(response.content))

    # ---- login, retries, errors ---------------------------------------------------------------

    def _connect(self) -> Salesforce:
        kwargs = salesforce_kwargs(self.settings)
        try:
            return Salesforce(version=self.settings.api_version, session=self._session, **kwargs)
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            if self.settings.auth != "jwt" or isinstance(exc, requests.RequestException):
                raise
            raise SalesforceAuthError(
                f"could not sign the JWT login assertion with private_key_file "
                f"{self.settings.private_key_file!r}: {type(exc).__name__}: {exc}"
            ) from exc

    def _relogin(self) -> None:
        if self.settings.auth == "session":
            raise SessionExpiredError(
                "the Salesforce session given in settings (auth='session') has expired or is "
                "invalid, and a direct session cannot log in again: supply a new session_id, "
                "or use a login flow (client_credentials, password or jwt)"
            )
        logger.info("Salesforce session expired; logging in again")
        self._request(self._sf._refresh_session, relogin=False)

    def _note_retry(self, exc: BaseException, attempt: int) -> None:
        self._tally.add(retries=1)
        logger.warning(
            "Salesforce call failed (%s), retrying (attempt %d of %d)",
            _salesforce_detail(exc)[0],
            attempt + 1,
            self.retry.attempts,
        )

    def _request(self, operation: Callable[[], T], *, relogin: bool = True) -> T:
        """One API request (or a login) under the retry policy."""
        return self.retry.run(
            operation,
            classify=classify,
            on_retry=self._note_retry,
            on_expired=self._relogin if relogin else None,
        )

    @contextmanager
    def _call(self, action: str) -> Iterator[None]:
        """Records what the call spent in `last_call`; turns library failures into our errors."""
        before = self._tally.snapshot()
        try:
            yield
        except SalesforceExtractError:
            raise
        except (SalesforceError, SalesforceOperationError, requests.RequestException) as exc:
            raise self._translate(action, exc) from exc
        finally:
            self.last_call = self._tally.snapshot() - before

    def _translate(self, action: str, exc: BaseException) -> SalesforceExtractError:
        detail, status, code = _salesforce_detail(exc)
        if isinstance(exc, SalesforceAuthenticationFailed):
            return SalesforceAuthError(
                f"Salesforce login (auth={self.settings.auth!r}) at {self.settings.login_url} "
                f"was refused: {detail}"
            )
        if isinstance(exc, SalesforceExpiredSession):
            return SalesforceAuthError(
                f"{action}: the Salesforce session kept expiring after "
                f"{self.retry.attempts} logins: {detail}"
            )
        if isinstance(exc, SalesforceRefusedRequest) and code == "REQUEST_LIMIT_EXCEEDED":
            return ApiLimitExceeded(
                f"{action}: the org's daily API request limit is used up: {detail}",
                status=status,
                error_code=code,
            )
        if code == "QUERY_TIMEOUT":
            return QueryTimeout(f"{action} timed out: {detail}", status=status, error_code=code)
        if classify(exc) is Failure.TRANSIENT:
            detail = f"still failing after {self.retry.attempts} attempts: {detail}"
        return SalesforceRequestError(f"{action} failed: {detail}", status=status, error_code=code)

    # ---- REST -------------------------------------------------------------------------------

    def _get(self, url: str, params: dict[str, str] | None = None) -> requests.Response:
        return self._request(
            lambda: self._sf._call_salesforce(
                "GET", url, name="rest", params=params, headers=NO_PRETTY_PRINT
            )
        )

    def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self._get(self._sf.base_url + path, params).json()

    def describe(self, sobject: str) -> dict[str, Any]:
        """The object's describe, fetched once per client: it does not change during a run."""
        if not _SOBJECT_NAME.match(sobject):
            raise ValueError(f"not an sObject API name: {sobject!r}")
        cached = self._describes.get(sobject)
        if cached is None:
            with self._call(f"describe {sobject}"):
                cached = self._get_json(f"sobjects/{sobject}/describe")
            self._describes[sobject] = cached
        return cached

    def api_versions(self) -> tuple[str, ...]:
        """The REST API versions the org serves (`GET /services/data/`), oldest first."""
        with self._call("versions"):
            listed = self._get(f"https://{self._sf.sf_instance}/services/data/").json()
        return tuple(v["version"] for v in listed)

    def user_id(self) -> str:
        """The integration user's Id, from OpenID Connect's UserInfo endpoint: a client
        credentials or JWT login names no user."""
        with self._call("userinfo"):
            url = f"https://{self._sf.sf_instance}/services/oauth2/userinfo"
            return str(self._get(url).json()["user_id"])

    def sobject_names(self) -> frozenset[str]:
        """The objects the integration user can see (global describe), fetched once."""
        if self._sobjects is None:
            with self._call("describe global"):
                described = self._get_json("sobjects/")
            self._sobjects = frozenset(o["name"] for o in described["sobjects"])
        return self._sobjects

    def count(self, soql_where_query: str) -> int:
        """How many records a query matches (`totalSize` of its `SELECT COUNT()` form)."""
        soql = count_query(soql_where_query)
        with self._call("count"):
            return int(self._get_json("query/", {"q": soql})["totalSize"])

    def limits(self) -> dict[str, Any]:
        with self._call("limits"):
            return dict(self._get_json("limits/"))

    def remaining_api_requests(self) -> tuple[int, int]:
        """(remaining, max) daily API requests, from the org's `limits/` resource."""
        daily = self.limits()["DailyApiRequests"]
        return int(daily["Remaining"]), int(daily["Max"])

    def ensure_quota(self, floor: int) -> None:
        """Stops before the org runs out: QuotaFloorReached when fewer than `floor` are left."""
        try:
            remaining, maximum = self.remaining_api_requests()
        except ApiLimitExceeded as exc:
            maximum = self.api_usage[1] if self.api_usage else 0
            raise QuotaFloorReached(0, maximum, floor) from exc
        if remaining < floor:
            raise QuotaFloorReached(remaining, maximum, floor)

    def _query_pages(self, soql: str, include_deleted: bool) -> Iterator[tuple[str, int]]:
        """Each page's records array text and count, following `nextRecordsUrl`; each page
        request is retried on its own (a locator can be fetched again)."""
        url = self._sf.base_url + ("queryAll/" if include_deleted else "query/")
        params: dict[str, str] | None = {"q": soql}
        while True:
            response = self._get(url, params)
            head, records_text, count = split_query_page(response.content.decode("utf-8"))
            yield records_text, count
            if head.get("done", True) or not head.get("nextRecordsUrl"):
                return
            url, params = f"https://{self._sf.sf_instance}{head['nextRecordsUrl']}", None

    def query_all_to_file(self, soql: str, path: Path, *, include_deleted: bool) -> int:
        """Runs a REST query/queryAll over all its pages into one JSON array file at `path`.

        Each page's records are copied as Salesforce sent them (`attributes` and nested parent
        objects included), so `read_json(path)` in DuckDB sees exactly the API's records. The
        file appears only when complete. Returns the number of records.
        """
        path = Path(path)
        unfinished = path.with_name(path.name + ".part")
        total = 0
        with self._call(f"{'queryAll' if include_deleted else 'query'} to {path.name}"):
            try:
                with unfinished.open("wb") as out:
                    out.write(b"[")
                    for records_text, count in self._query_pages(soql, include_deleted):
                        inner = records_text.strip()[1:-1].strip()
                        if inner:
                            out.write(b",\n" if total else b"\n")
                            out.write(inner.encode("utf-8"))
                            total += count
                    out.write(b"\n]\n")
                unfinished.replace(path)
            finally:
                unfinished.unlink(missing_ok=True)
            self._tally.add(records=total)
        return total

    def query_records(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """All records of a small REST query as dicts (mapping records, reference data)."""
        records: list[dict[str, Any]] = []
        with self._call("query"):
            for records_text, _count in self._query_pages(soql, include_deleted):
                records.extend(json.loads(records_text))
            self._tally.add(records=len(records))
        return records

    # ---- Bulk API 2.0 -----------------------------------------------------------------------

    def _bulk(self, soql: str) -> _Bulk2Client:
        """A Bulk API 2.0 client carrying the current session: simple-salesforce builds the
        handler with the token of the moment, so it is fetched again after every re-login."""
        sobject = _FROM_OBJECT.search(soql)
        handler = getattr(self._sf.bulk2, sobject[1] if sobject else "SObject")
        return handler._client

    def _download_page(
        self, soql: str, job_id: str, locator: str, page_size: int, target: Path
    ) -> tuple[str, int]:
        """One results page into `target`; returns the next locator and the page's record count.

        The page is streamed into a scratch folder and moved into place only when complete, so a
        connection dropped mid-page leaves nothing behind and the retry overwrites nothing partial.
        """
        scratch = Path(tempfile.mkdtemp(prefix=".page-", dir=target.parent))
        try:
            result = self._bulk(soql).download_job_data(
                str(scratch), job_id, locator, page_size, DOWNLOAD_CHUNK
            )
            Path(result["file"]).replace(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._tally.add(bytes_downloaded=target.stat().st_size)
        return result["locator"], int(result["number_of_records"])

    def bulk_query_to_files(
        self,
        soql: str,
        out_dir: Path,
        *,
        include_deleted: bool,
        page_size: int = 100_000,
        poll_seconds: float = 0.5,
        on_page: Callable[[Path], None] | None = None,
    ) -> list[Path]:
        """Runs a Bulk API 2.0 query (or queryAll) job; each results page becomes its own CSV file
        (`part-00000.csv`, … each with its header row) in `out_dir`, returned in order.

        Earlier `part-*.csv` files in `out_dir` are removed first. A zero-row result gives one
        page file as Salesforce sent it (header only, or empty). A job that ends Failed/Aborted is
        run again as a new job, up to the retry policy's attempts, then BulkJobFailed; one that
        failed on time raises QueryTimeout at once, as a REST query that timed out does.

        `on_page` is called with each page file as soon as it is complete, so the caller can work
        on it while the next one downloads; a job that runs again delivers its pages again, from
        the first, under the same names (the earlier files are gone by then).
        """
        operation = Operation.query_all if include_deleted else Operation.query
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        job_ids: list[str] = []

        def one_job() -> list[Path]:
            for stale in out_dir.glob("part-*.csv"):
                stale.unlink()
            # A create request that dropped after Salesforce accepted it leaves an orphan job
            # behind when retried; it costs one of the daily bulk jobs and nothing else.
            job = self._request(lambda: self._bulk(soql).create_job(operation, soql))
            job_id = str(job["id"])
            job_ids.append(job_id)
            self._tally.add(bulk_jobs=1)
            try:
                self._request(lambda: self._bulk(soql).wait_for_job(job_id, True, poll_seconds))
            except SalesforceOperationError as exc:
                message = _job_message(exc)
                if _JOB_TIMED_OUT.search(message):
                    # The same query would time out again: no new job, a narrower query.
                    raise QueryTimeout(
                        f"bulk {operation.value} job {job_id} timed out: {message}",
                        status=None,
                        error_code="QUERY_TIMEOUT",
                    ) from exc
                raise
            files: list[Path] = []
            locator = ""
            while True:
                target = out_dir / f"part-{len(files):05d}.csv"
                locator, count = self._request(
                    partial(self._download_page, soql, job_id, locator, page_size, target)
                )
                self._tally.add(records=count)
                files.append(target)
                if on_page is not None:
                    on_page(target)
                if not locator:
                    return files

        with self._call(f"bulk {operation.value} to {out_dir.name}"):
            try:
                return self.retry.run(
                    one_job,
                    classify=classify,
                    on_retry=self._note_retry,
                    retry_on={Failure.JOB_FAILED},
                )
            except SalesforceOperationError as exc:
                raise BulkJobFailed(
                    operation.value, len(job_ids), job_ids, _job_message(exc)
                ) from exc

    # ---- writes -----------------------------------------------------------------------------

    def composite_update(self, body: str) -> str:
        """One `PATCH composite/sobjects` (`body`: its JSON, at most 200 records); returns the
        per-record results as Salesforce sent them, a JSON array in the records' order.

        A retry after an answer that never came sends the same values again, which changes
        nothing more than the first attempt did."""
        url = self._sf.base_url + "composite/sobjects"
        with self._call("composite update"):
            response = self._request(
                lambda: self._sf._call_salesforce(
                    "PATCH", url, name="composite", data=body.encode(), headers=NO_PRETTY_PRINT
                )
            )
        return response.text

    def bulk_ingest(
        self,
        sobject: str,
        csv_path: Path,
        results_dir: Path,
        *,
        external_id: str | None = None,
        poll_seconds: float = 0.5,
    ) -> IngestResult:
        """One Bulk API 2.0 ingest job: `update` on Id, or `upsert` on `external_id`, of the
        records in `csv_path` (a header row, then at most 100 MB); its failed and unprocessed
        records are downloaded as CSV files into `results_dir`.

        A job that ends Failed fails all its records: BulkJobFailed, not run again (a write
        that partly applied is journaled per record by the caller, from what the next run sees).
        """
        operation = Operation.upsert if external_id else Operation.update
        results_dir.mkdir(parents=True, exist_ok=True)

        def bulk() -> _Bulk2Client:
            return getattr(self._sf.bulk2, sobject)._client  # the session of the moment

        with self._call(f"bulk {operation.value} of {sobject}"):
            job = self._request(lambda: bulk().create_job(operation, external_id_field=external_id))
            job_id = str(job["id"])
            self._tally.add(bulk_jobs=1)
            data = csv_path.read_text(encoding="utf-8")
            self._request(lambda: bulk().upload_job_data(job_id, data))
            self._request(lambda: bulk().close_job(job_id))
            try:
                self._request(lambda: bulk().wait_for_job(job_id, False, poll_seconds))
            except SalesforceOperationError as exc:
                raise BulkJobFailed(operation.value, 1, [job_id], _job_message(exc)) from exc
            info = self._request(lambda: bulk().get_job(job_id, False))
            files = {}
            for kind in ("failedResults", "unprocessedrecords"):
                target = results_dir / f"{job_id}-{kind}.csv"
                self._request(partial(bulk().download_ingest_results, str(target), job_id, kind))
                files[kind] = target
        return IngestResult(
            job_id,
            int(info.get("numberRecordsProcessed") or 0),
            int(info.get("numberRecordsFailed") or 0),
            files["failedResults"],
            files["unprocessedrecords"],
        )

    # ---- lifecycle --------------------------------------------------------------------------

    @property
    def salesforce(self) -> Salesforce:
        """The underlying simple-salesforce object, for calls this client does not wrap."""
        return self._sf

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SalesforceClient({self.settings!r})"
