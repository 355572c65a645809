"""The org sandbox's HTTP surface: login, REST and Bulk API 2.0, in Salesforce's wire formats.

Blocking work (DuckDB) runs on a small thread pool so that one long query never stalls the event
loop that answers status polls, logins and faults.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from aiohttp import web

from pipeline.sandbox.faults import FaultConfig, FaultPlan
from pipeline.sandbox.salesforce.auth import (
    Authenticator,
    AuthError,
    Credentials,
    JwtKey,
    SessionStore,
)
from pipeline.sandbox.salesforce.custom_objects import load_objects
from pipeline.sandbox.salesforce.describe import global_describe, object_describe
from pipeline.sandbox.salesforce.generator import INTEGRATION_USERNAME
from pipeline.sandbox.salesforce.org import (
    DEFAULT_BULK_PAGE,
    RECYCLE_BIN_DAYS,
    REST_PAGE_SIZE,
    Access,
    ApiError,
    Org,
)
from pipeline.sandbox.salesforce.schema import OrgKind, org_schema
from pipeline.sandbox.salesforce.soql import SoqlError
from pipeline.sandbox.salesforce.write_routes import WriteRoutes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_VERSIONS = ("58.0", "59.0", "60.0", "61.0", "62.0", "63.0", "64.0", "65.0", "66.0")
# SOAP `login()` is unavailable from API 65.0 (Salesforce's SOAP API `login()` reference).
SOAP_LOGIN_LAST_VERSION = "64.0"
DATA_PREFIX = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/")
BATCH_SIZE = re.compile(r"batchSize=(\d+)")


@dataclass(frozen=True)
class SalesforceConfig:
    """How one org sandbox starts: where it keeps state, how big the demo org is, what fails."""

    state_dir: Path
    org: OrgKind = "demo"  # the demo org, or the demo org with Salesforce CPQ and CPQ's deals
    accounts: int = 200
    seed: int = 1
    history_days: int | None = None  # None: three years
    quiet_days: int = 0  # the history's first days hold only the catalogue
    session_ttl_seconds: float = 2 * 60 * 60
    daily_api_requests: int = 100_000
    faults: FaultConfig = field(default_factory=FaultConfig)
    objects: Path | None = None  # a YAML file of the org's own objects (`custom_objects.py`)
    # What the integration user's profile grants: View All Data, View All on each object, or
    # Read alone (then sharing decides which rows it would see in a real org).
    access: Access = "view_all_data"
    hidden_objects: frozenset[str] = frozenset()  # objects it has no Read on
    # A non-selective REST query matching more rows than this answers 400 QUERY_TIMEOUT.
    query_timeout_rows: int | None = None
    # Deleted records are purged this many days after their delete (None: kept).
    recycle_bin_days: int | None = RECYCLE_BIN_DAYS
    # `Object.Field` names the integration user can read but not edit (field-level security).
    read_only_fields: frozenset[str] = frozenset()
    daily_bulk_api_batches: int = 15_000  # Bulk API batches a day (ingest jobs spend them)


class ApiUsage:
    """Counts API requests against the org's daily allowance, as `Sforce-Limit-Info` reports it,
    and the bulk query jobs and ingest batches the org's other daily limits count."""

    def __init__(self, limit: int, batch_limit: int = 15_000) -> None:
        self.limit = limit
        self.used = 0
        self.bulk_jobs = 0
        self.batch_limit = batch_limit
        self.bulk_batches = 0
        self._lock = threading.Lock()

    def spend_batches(self, count: int) -> None:
        with self._lock:
            self.bulk_batches += count

    def spend(self) -> bool:
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def header(self) -> str:
        return f"api-usage={self.used}/{self.limit}"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return web.Response(
        text=text, status=status, content_type="application/json", charset="UTF-8", headers=headers
    )


def _api_error(error: ApiError | SoqlError) -> web.Response:
    if isinstance(error, SoqlError):
        error = ApiError(400, error.error_code, error.message)
    return _json(error.body(), status=error.status)


class SalesforceSandbox:
    """One emulated org: records, users, sessions, usage and fault plan, behind one aiohttp app."""

    def __init__(self, config: SalesforceConfig) -> None:
        self.config = config
        state = config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.creds = Credentials.load_or_create(state / "credentials.json", INTEGRATION_USERNAME)
        self.jwt_key = JwtKey(state / "jwt_private_key.pem")
        self.sessions = SessionStore(self.creds.org_id, config.session_ttl_seconds)
        self.auth = Authenticator(self.creds, self.sessions, self.jwt_key)
        schema = org_schema(config.org)
        if config.objects is not None:
            schema = schema.with_objects(load_objects(config.objects))
        schema = replace(schema, hidden_objects=config.hidden_objects)
        self.org = Org(
            state,
            schema,
            access=config.access,
            kind=config.org,
            query_timeout_rows=config.query_timeout_rows,
            recycle_bin_days=config.recycle_bin_days,
            read_only_fields=config.read_only_fields,
            accounts=config.accounts,
            seed=config.seed,
            history_days=config.history_days,
            quiet_days=config.quiet_days,
        )
        self.usage = ApiUsage(config.daily_api_requests, config.daily_bulk_api_batches)
        self.faults = FaultPlan(config.faults)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sf-sandbox")
        self.base_url = ""  # set once the server knows its port

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.org.close()

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    run_blocking = _blocking  # for the write routes

    async def stream_file(
        self, request: web.Request, path: Path, headers: dict[str, str]
    ) -> web.StreamResponse:
        """A file rendered by DuckDB, sent in chunks read on the worker threads."""
        response = web.StreamResponse(headers={**headers, "Sforce-Limit-Info": self.usage.header()})
        response.content_length = path.stat().st_size
        await response.prepare(request)
        with path.open("rb") as page:
            while chunk := await self._blocking(page.read, 1 << 20):
                await response.write(chunk)
        await response.write_eof()
        return response

    # ---- app --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._data_api_gate], client_max_size=16 * 1024**2)
        r = app.router
        r.add_post("/services/oauth2/token", self.oauth_token)
        r.add_get("/services/oauth2/userinfo", self.userinfo)
        r.add_post(r"/services/Soap/u/{version:\d+\.\d}", self.soap_login)
        r.add_post(r"/services/Soap/u/{version:\d+\.\d}/", self.soap_login)
        r.add_get("/services/data", self.versions)
        r.add_get("/services/data/", self.versions)
        v = r"/services/data/v{version:\d+\.\d}"
        for kind in ("query", "queryAll"):
            r.add_get(f"{v}/{kind}", self.query)
            r.add_get(f"{v}/{kind}/", self.query)
            r.add_get(
                f"{v}/{kind}/{{locator:01g[0-9A-Za-z]{{15}}}}-{{offset:\\d+}}", self.query_more
            )
        r.add_get(f"{v}/sobjects", self.describe_global)
        r.add_get(f"{v}/sobjects/", self.describe_global)
        r.add_get(f"{v}/sobjects/{{object}}/describe", self.describe_object)
        r.add_get(f"{v}/sobjects/{{object}}/describe/", self.describe_object)
        r.add_get(f"{v}/sobjects/{{object}}", self.object_metadata)
        r.add_get(f"{v}/sobjects/{{object}}/", self.object_metadata)
        r.add_get(f"{v}/sobjects/{{object}}/{{id}}", self.get_record)
        r.add_post(f"{v}/sobjects/{{object}}", self.create_record)
        r.add_post(f"{v}/sobjects/{{object}}/", self.create_record)
        r.add_get(f"{v}/limits", self.limits)
        r.add_get(f"{v}/limits/", self.limits)
        r.add_post(f"{v}/jobs/query", self.create_job)
        r.add_post(f"{v}/jobs/query/", self.create_job)
        r.add_get(f"{v}/jobs/query", self.list_jobs)
        r.add_get(f"{v}/jobs/query/{{job}}", self.job_info)
        r.add_patch(f"{v}/jobs/query/{{job}}", self.abort_job)
        r.add_delete(f"{v}/jobs/query/{{job}}", self.delete_job)
        r.add_get(f"{v}/jobs/query/{{job}}/results", self.job_results)
        WriteRoutes(self).add_to(r, v)
        return app

    @web.middleware
    async def _data_api_gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Faults, session check and API quota for every data API call, in that order."""
        match = DATA_PREFIX.match(request.path)
        if match is None:
            return await handler(request)
        fault = await self.faults.inject(request)
        if fault == "http500":
            return _json(
                [
                    {
                        "message": "An unexpected error occurred. Please include this ErrorId "
                        "if you contact support: 1876541234-56789 (-1082374211)",
                        "errorCode": "UNKNOWN_EXCEPTION",
                    }
                ],
                status=500,
            )
        if fault == "http503":
            return _json(
                [
                    {
                        "message": "Server temporarily unavailable. Please try again later.",
                        "errorCode": "SERVER_UNAVAILABLE",
                    }
                ],
                status=503,
            )
        token = _bearer(request.headers.get("Authorization"))
        if fault == "expire" and token:
            self.sessions.expire(token)
        if not token or not self.sessions.is_valid(token):
            return _json(
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                status=401,
                headers={"WWW-Authenticate": 'Token realm="Salesforce"'},
            )
        if not self.usage.spend():
            return _json(
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
                status=403,
                headers={"Sforce-Limit-Info": self.usage.header()},
            )
        if match["version"] not in API_VERSIONS:
            response: web.StreamResponse = _json(
                [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}],
                status=404,
            )
        else:
            try:
                response = await handler(request)
            except (ApiError, SoqlError) as error:
                response = _api_error(error)
            except web.HTTPNotFound:
                response = _json(
                    [
                        {
                            "message": "The requested resource does not exist",
                            "errorCode": "NOT_FOUND",
                        }
                    ],
                    status=404,
                )
            except web.HTTPMethodNotAllowed:
                response = _json(
                    [
                        {
                            "message": f"HTTP Method '{request.method}' not allowed.",
                            "errorCode": "METHOD_NOT_ALLOWED",
                        }
                    ],
                    status=405,
                )
        if not response.prepared:
            response.headers["Sforce-Limit-Info"] = self.usage.header()
        return response

    # ---- login ------------------------------------------------------------------------------

    def _token_body(self, token: str, scope: str | None) -> dict[str, str]:
        issued = str(int(time.time() * 1000))
        ident = f"{self.base_url}/id/{self.creds.org_id}/{self.creds.user_id}"
        signature = hmac.new(
            self.creds.client_secret.encode(), (ident + issued).encode(), hashlib.sha256
        ).digest()
        body = {
            "access_token": token,
            "instance_url": self.base_url,
            "id": ident,
            "token_type": "Bearer",
            "issued_at": issued,
            "signature": base64.b64encode(signature).decode(),
        }
        if scope:
            body["scope"] = scope
        return body

    async def oauth_token(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            form = {k: str(v) for k, v in (await request.json()).items()}
        else:
            form = {k: str(v) for k, v in (await request.post()).items()}
        try:
            token = self.auth.oauth_token(form, request.headers.get("Authorization"))
        except AuthError as exc:
            status = 401 if exc.error == "invalid_client" else 400
            return _json({"error": exc.error, "error_description": exc.description}, status=status)
        scope = "api" if form.get("grant_type") == "client_credentials" else None
        return _json(self._token_body(token, scope))

    async def userinfo(self, request: web.Request) -> web.Response:
        """OpenID Connect's UserInfo: who the bearer token's session belongs to."""
        token = _bearer(request.headers.get("Authorization"))
        if not token or not self.sessions.is_valid(token):
            return web.Response(status=403, text="Bad_OAuth_Token")
        user = self.org.integration_user()
        return _json(
            {
                "sub": f"{self.base_url}/id/{self.creds.org_id}/{user}",
                "user_id": user,
                "organization_id": self.creds.org_id,
                "preferred_username": self.creds.username,
            }
        )

    async def soap_login(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        if float(version) > float(SOAP_LOGIN_LAST_VERSION):
            return web.Response(
                status=500, text=_SOAP_RETIRED, content_type="text/xml", charset="utf-8"
            )
        try:
            root = SafeET.fromstring(await request.read())
            values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
            token = self.auth.soap_login(values.get("username"), values.get("password"))
        except AuthError:
            return web.Response(
                status=500, text=_SOAP_FAULT, content_type="text/xml", charset="utf-8"
            )
        except SafeET.ParseError:
            return web.Response(
                status=500, text=_SOAP_MALFORMED, content_type="text/xml", charset="utf-8"
            )
        body = _SOAP_LOGIN.format(
            server_url=escape(f"{self.base_url}/services/Soap/u/{version}/{self.creds.org_id}"),
            metadata_url=escape(f"{self.base_url}/services/Soap/m/{version}/{self.creds.org_id}"),
            session_id=escape(token),
            user_id=self.creds.user_id,
            org_id=self.creds.org_id,
            username=escape(self.creds.username),
            ttl=int(self.config.session_ttl_seconds),
        )
        return web.Response(text=body, content_type="text/xml", charset="utf-8")

    # ---- REST -------------------------------------------------------------------------------

    async def versions(self, request: web.Request) -> web.Response:
        return _json(
            [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS]
        )

    async def query(self, request: web.Request) -> web.Response:
        soql = request.query.get("q")
        if not soql:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        include_deleted = request.path.rstrip("/").endswith("queryAll")
        body = await self._blocking(self._run_query, soql, include_deleted, request)
        return _json(body)

    def _run_query(self, soql: str, include_deleted: bool, request: web.Request) -> str:
        return self.org.query(
            soql,
            include_deleted=include_deleted,
            version=request.match_info["version"],
            page_size=_page_size(request),
        )

    async def query_more(self, request: web.Request) -> web.Response:
        info = request.match_info
        body = await self._blocking(
            lambda: self.org.query_more(
                info["locator"],
                int(info["offset"]),
                version=info["version"],
                page_size=_page_size(request),
            )
        )
        return _json(body)

    async def describe_global(self, request: web.Request) -> web.Response:
        return _json(global_describe(self.org.visible, request.match_info["version"]))

    async def describe_object(self, request: web.Request) -> web.Response:
        obj = self.org.sobject(request.match_info["object"])
        version = request.match_info["version"]
        return _json(object_describe(self.org.visible, obj, version, self.org.read_only_fields))

    async def object_metadata(self, request: web.Request) -> web.Response:
        obj = self.org.sobject(request.match_info["object"])
        described = global_describe(self.org.visible, request.match_info["version"])
        entry = next(o for o in described["sobjects"] if o["name"] == obj.name)
        return _json({"objectDescribe": entry, "recentItems": []})

    async def get_record(self, request: web.Request) -> web.Response:
        info = request.match_info
        fields = [f for f in request.query.get("fields", "").split(",") if f.strip()] or None
        body = await self._blocking(
            self.org.record, info["object"], info["id"], fields, info["version"]
        )
        return _json(body)

    async def create_record(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not JSON") from None
        record_id = await self._blocking(self.org.create_record, request.match_info["object"], body)
        return _json({"id": record_id, "success": True, "errors": []}, status=201)

    async def limits(self, request: web.Request) -> web.Response:
        used, limit = self.usage.used, self.usage.limit
        return _json(
            {
                "DailyApiRequests": {"Max": limit, "Remaining": max(limit - used, 0)},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - self.usage.bulk_jobs},
                "DailyBulkV2QueryFileStorageMB": {"Max": 1048576, "Remaining": 1048576},
                "DailyBulkApiBatches": {
                    "Max": self.usage.batch_limit,
                    "Remaining": max(self.usage.batch_limit - self.usage.bulk_batches, 0),
                },
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            }
        )

    # ---- Bulk API 2.0 -----------------------------------------------------------------------

    async def create_job(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc.msg}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        if self.usage.bulk_jobs >= 10000:
            raise ApiError(
                400, "LIMIT_EXCEEDED", "Max bulk v2 query jobs (10000) per 24 hrs has been reached"
            )
        fail = self.faults.next_job_fails() if self.faults.config.enabled else False
        job = await self._blocking(self.org.create_job, body, request.match_info["version"], fail)
        self.usage.bulk_jobs += 1
        asyncio.get_running_loop().run_in_executor(self.executor, self.org.run_job, job)
        return _json(job.info(self.creds.user_id))

    async def list_jobs(self, request: web.Request) -> web.Response:
        records = [job.info(self.creds.user_id) for job in self.org.jobs()]
        return _json({"done": True, "records": records, "nextRecordsUrl": None})

    async def job_info(self, request: web.Request) -> web.Response:
        return _json(self.org.job(request.match_info["job"]).info(self.creds.user_id))

    async def abort_job(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("state") != "Aborted":
            raise ApiError(400, "INVALIDJOBSTATE", "Only state Aborted can be set on a query job")
        return _json(self.org.abort_job(request.match_info["job"]).info(self.creds.user_id))

    async def delete_job(self, request: web.Request) -> web.Response:
        await self._blocking(self.org.delete_job, request.match_info["job"])
        return web.Response(status=204)

    async def job_results(self, request: web.Request) -> web.StreamResponse:
        raw = request.query.get("maxRecords", str(DEFAULT_BULK_PAGE))
        if not raw.isdigit() or int(raw) < 1:
            raise ApiError(400, "INVALIDMAXRECORDS", f"Invalid maxRecords value: {raw}")
        path, count, locator = await self._blocking(
            self.org.write_results_page,
            request.match_info["job"],
            request.query.get("locator") or None,
            int(raw),
            request.match_info["version"],
        )
        headers = {
            "Content-Type": "text/csv",
            "Sforce-NumberOfRecords": str(count),
            "Sforce-Locator": locator,
        }
        try:
            return await self.stream_file(request, path, headers)
        finally:
            path.unlink(missing_ok=True)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") and token.strip() else None


def _page_size(request: web.Request) -> int:
    """`Sforce-Query-Options: batchSize=N` (200..2000) or the default 2000."""
    match = BATCH_SIZE.search(request.headers.get("Sforce-Query-Options", ""))
    return min(max(int(match[1]), 200), REST_PAGE_SIZE) if match else REST_PAGE_SIZE


_SOAP_LOGIN = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope \
xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>\
<metadataServerUrl>{metadata_url}</metadataServerUrl><passwordExpired>false</passwordExpired>\
<sandbox>true</sandbox><serverUrl>{server_url}</serverUrl><sessionId>{session_id}</sessionId>\
<userId>{user_id}</userId><userInfo><organizationId>{org_id}</organizationId>\
<sessionSecondsValid>{ttl}</sessionSecondsValid><userId>{user_id}</userId>\
<userName>{username}</userName></userInfo></result></loginResponse></soapenv:Body>\
</soapenv:Envelope>"""

_SOAP_FAULT_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope \
xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>\
<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail>\
<sf:{fault} xsi:type="sf:{fault}"><sf:exceptionCode>{code}</sf:exceptionCode>\
<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:{fault}></detail></soapenv:Fault>\
</soapenv:Body></soapenv:Envelope>"""

_SOAP_FAULT = _SOAP_FAULT_TEMPLATE.format(
    code="INVALID_LOGIN",
    fault="LoginFault",
    message="Invalid username, password, security token; or user locked out.",
)
# [assume] Salesforce documents that login() is unavailable from 65.0 but not the fault it
# answers; the generic unsupported-version fault is the one its SOAP API uses for other calls.
_SOAP_RETIRED = _SOAP_FAULT_TEMPLATE.format(
    code="UNSUPPORTED_API_VERSION",
    fault="UnexpectedErrorFault",
    message="login() is not available in API version 65.0 and later; use OAuth 2.0.",
)
_SOAP_MALFORMED = _SOAP_FAULT_TEMPLATE.format(
    code="INVALID_XML", fault="UnexpectedErrorFault", message="The request is not valid XML."
)
