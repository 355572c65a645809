"""The m3ter sandbox's HTTP surface: token endpoint, Config API CRUD and lists, measurement ingest,
and admin endpoints for tests and the demo, in m3ter's wire formats.

Every call under `/organizations/{orgId}` passes one gate, in this order: fault injection (as the
network or a gateway would fail), the per-source-IP and per-org rate limits, the bearer token and
org check, the service user's permission, then the handler. The token endpoint meets the faults
and the per-IP limit too. The store's work is in-memory and quick, so handlers run on the event
loop; the only blocking step, making a write durable, happens on the journal's writer thread and
is awaited.

Where m3ter documents an answer the sandbox gives it; where it does not, it gives the least
convenient plausible one (`[assume: pessimistic]`): every refusal of access is the same 403
whatever its cause, a 429 carries no `Retry-After`, and a write may be applied with its answer
lost (`lost_answer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from pipeline.sandbox.faults import TOKENLESS_FAULTS, FaultConfig, FaultPlan, drop
from pipeline.sandbox.m3ter.auth import Credentials, TokenIssuer, TokenState
from pipeline.sandbox.m3ter.counters import DROPPED, UNMATCHED, RequestCounters
from pipeline.sandbox.m3ter.entities import BY_NAME, ENTITIES
from pipeline.sandbox.m3ter.errors import ApiError, bad_request
from pipeline.sandbox.m3ter.listing import page_size
from pipeline.sandbox.m3ter.org import OrgSettings
from pipeline.sandbox.m3ter.ratelimit import RateLimiter, RollingLimiter
from pipeline.sandbox.m3ter.seed import reference_configuration
from pipeline.sandbox.m3ter.store import Store, check_measurement_batch

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ORG_PATH = re.compile(r"^/organizations/(?P<org>[^/]+)(?:/(?P<collection>[^/?]+))?")
INGEST_LIMIT_BYTES = 512_000
# [assume: pessimistic] m3ter's error-code page describes 403 as "Forbidden or Unauthorized" for an
# expired token, an unknown organization and a missing permission alike; the sandbox answers all
# of them (and a missing token, and bad client credentials) with this one body, so a client can
# tell them apart only by what it does next.
FORBIDDEN = "Forbidden or Unauthorized"
FAULT_ANSWERS = {
    "http500": (500, "Internal server error"),
    "http502": (502, "Bad Gateway"),
    "http503": (503, "Service Unavailable"),
    "http504": (504, "Endpoint request timed out"),
}


@dataclass(frozen=True)
class M3terConfig:
    """How one m3ter sandbox starts: where it keeps state, token lifetime, limits, faults, and
    the organization's set-up (currencies, external mapping configuration, permissions)."""

    state_dir: Path
    token_ttl_seconds: float = 5 * 3600
    rate_limit_per_second: float | None = 50  # None switches the limit off
    # m3ter's per-source-IP limits: requests per rolling window (None switches them off)
    ip_limit: int | None = 20_000
    ingest_ip_limit: int | None = 5_000
    ip_window_seconds: float = 300.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    org: OrgSettings = field(default_factory=OrgSettings)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"message": message}, status=status, headers=headers)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body: malformed JSON ({exc})") from exc


class M3terSandbox:
    """One emulated m3ter org: its service user, objects, limit, faults and counters."""

    def __init__(self, config: M3terConfig) -> None:
        self.config = config
        state = config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.creds = Credentials.load_or_create(state / "credentials.json")
        self.tokens = TokenIssuer(self.creds, config.token_ttl_seconds, config.org.permissions())
        # createdBy/lastModifiedBy: the service user, named by its access key id
        self.store = Store(
            state / "state.jsonl",
            actor=self.creds.access_key_id,
            seed=reference_configuration,
            org=config.org,
        )
        self.limiter = (
            RateLimiter(config.rate_limit_per_second)
            if config.rate_limit_per_second is not None
            else None
        )
        self.ip_limiters = {
            api: RollingLimiter(limit, config.ip_window_seconds)
            for api, limit in (("config", config.ip_limit), ("ingest", config.ingest_ip_limit))
            if limit is not None
        }
        self.faults = FaultPlan(config.faults)
        self.counters = RequestCounters()
        self.base_url = ""  # set once the server knows its port

    def info(self, ca_file: Path) -> dict[str, str]:
        """The `m3ter` section of `sandbox.json`."""
        return {
            "url": self.base_url,
            "ca_file": str(ca_file),
            "org_id": self.creds.org_id,
            "access_key_id": self.creds.access_key_id,
            "api_secret": self.creds.api_secret,
        }

    def close(self) -> None:
        self.store.close()

    # ---- app --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        # Bodies up to 16 MB are read so that an oversized ingest gets m3ter's 403, not a 413.
        app = web.Application(middlewares=[self._count, self._gate], client_max_size=16 * 1024**2)
        r = app.router
        r.add_post("/oauth/token", self.oauth_token)
        org = "/organizations/{orgId}"
        for collection in ENTITIES:
            base = f"{org}/{collection}"
            r.add_post(base, self._bind(self.create, collection))
            r.add_get(base, self._bind(self.list, collection))
            r.add_get(base + "/{id}", self._bind(self.retrieve, collection))
            r.add_put(base + "/{id}", self._bind(self.update, collection))
            r.add_delete(base + "/{id}", self._bind(self.delete, collection))
        r.add_get(
            f"{org}/externalmappings/externalid/{{system}}/{{externalTable}}/{{externalId}}",
            self.mappings_by_external_id,
        )
        r.add_get(
            f"{org}/externalmappings/external/{{entity}}/{{m3terId}}", self.mappings_by_m3ter_id
        )
        r.add_get(f"{org}/externalmappingconfiguration", self.external_mapping_configuration)
        r.add_get(f"{org}/picklists/currency", self.currencies)
        r.add_post(f"{org}/measurements", self.measurements)
        r.add_post("/admin/reset", self.admin_reset)
        r.add_get("/admin/export", self.admin_export)
        r.add_get("/admin/counters", self.admin_counters)
        r.add_post("/admin/counters/reset", self.admin_counters_reset)
        return app

    @staticmethod
    def _bind(
        method: Callable[[str, web.Request], Awaitable[web.Response]], collection: str
    ) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            return await method(collection, request)

        return handler

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Counts every call except the admin endpoints', by route pattern and status."""
        if request.path.startswith("/admin/"):
            return await handler(request)
        resource = request.match_info.route.resource
        pattern = resource.canonical if resource is not None else UNMATCHED
        status = DROPPED
        started = time.time()
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.counters.add(request.method, pattern, status, started, time.time())

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Faults, rate limits, token, org and permission checks for every org call."""
        # The org id is the first segment as sent, decoded on its own: an encoded '/' in it
        # must not make `<org>%2F..%2F<org>` pass for `<org>`.
        match = ORG_PATH.match(request.raw_path)
        if match is None:
            if request.path == "/oauth/token":
                # [assume: pessimistic] the token endpoint fails like any other call, and counts
                # against the source IP's limit (it is served by the Config API's host)
                return await self._token_gate(request, handler)
            return await handler(request)
        org_id = unquote(match["org"])
        collection = unquote(match["collection"] or "")
        fault = await self.faults.inject(request, scope=collection)
        if fault in FAULT_ANSWERS:
            return _error(*FAULT_ANSWERS[fault])
        known = org_id == self.creds.org_id
        api = "ingest" if request.path.endswith("/measurements") else "config"
        throttled = self._throttled(request, api, org_id if known else None)
        if throttled is not None:
            return throttled
        token = _bearer(request.headers.get("Authorization"))
        if token is None:
            return _error(403, FORBIDDEN)
        if fault == "expire":
            self.tokens.expire(token)
        state, token_org = self.tokens.check(token)
        if state is not TokenState.VALID or not known or token_org != org_id:
            return _error(403, FORBIDDEN)
        if not self.config.org.allows(request.method, collection):
            return _error(403, FORBIDDEN)
        if fault == "lost_answer":
            with contextlib.suppress(ApiError, web.HTTPException):
                await handler(request)  # a refusal's answer is lost just the same
            drop(request)
        try:
            return await handler(request)
        except ApiError as exc:
            return _error(exc.status, exc.message)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            # [assume: pessimistic] m3ter lists no 405: a method a path does not take is a 404
            return _error(404, f"Not Found: {request.method} {request.path}")

    async def _token_gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = await self.faults.inject(request, scope="oauth", kinds=TOKENLESS_FAULTS)
        if fault in FAULT_ANSWERS:
            return _error(*FAULT_ANSWERS[fault])
        throttled = self._throttled(request, "config", None)
        return throttled if throttled is not None else await handler(request)

    def _throttled(self, request: web.Request, api: str, org_id: str | None) -> web.Response | None:
        """A 429 if the source IP's rolling window or the org's second is full.

        [assume: pessimistic] m3ter documents no `Retry-After`, so none is sent: the org's limit
        frees the rest of the current second, the IP's only once its 5-minute count drops below
        the cap, and a client must back off without being told how long.
        """
        limiter = self.ip_limiters.get(api)
        if limiter is not None and limiter.acquire(request.remote or "") is not None:
            return _error(
                429,
                f"Too Many Requests: this source IP's limit of {limiter.limit:,} requests per "
                f"{limiter.window:g} seconds was exceeded",
            )
        # [assume] kept: token requests do not count against the org's limit (the token path
        # names no org, and m3ter's SDK asks for a token before every call).
        second = self.limiter
        if org_id is not None and second is not None and second.acquire((org_id, api)) is not None:
            return _error(
                429,
                "Too Many Requests: the organization's limit of "
                f"{second.limit} requests per second was exceeded",
            )
        return None

    # ---- token ------------------------------------------------------------------------------

    async def oauth_token(self, request: web.Request) -> web.Response:
        """Client credentials with HTTP Basic; the body as JSON (the SDK) or a form (curl)."""
        if not self.creds.basic_matches(request.headers.get("Authorization")):
            # [assume: pessimistic] m3ter lists no 401: bad client credentials are its 403 too
            return _error(403, FORBIDDEN)
        raw = await request.read()
        form: dict[str, Any]
        try:
            parsed = json.loads(raw) if raw.strip().startswith(b"{") else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, dict):
            form = parsed
        else:
            form = dict((await request.post()).items()) if raw else {}
        if form.get("grant_type") != "client_credentials":
            return _error(400, "grant_type: must be client_credentials")
        token, expires_in = self.tokens.issue()
        return _json(
            {"token_type": "Bearer", "access_token": token, "expires_in": expires_in, "scope": None}
        )

    # ---- entities ---------------------------------------------------------------------------

    async def create(self, collection: str, request: web.Request) -> web.Response:
        obj, durable = self.store.create(collection, await _json_body(request))
        await asyncio.wrap_future(durable)
        return _json(obj)

    async def retrieve(self, collection: str, request: web.Request) -> web.Response:
        return _json(self.store.retrieve(collection, request.match_info["id"]))

    async def update(self, collection: str, request: web.Request) -> web.Response:
        body = await _json_body(request)
        obj, durable = self.store.update(collection, request.match_info["id"], body)
        await asyncio.wrap_future(durable)
        return _json(obj)

    async def delete(self, collection: str, request: web.Request) -> web.Response:
        obj, durable = self.store.delete(collection, request.match_info["id"])
        await asyncio.wrap_future(durable)
        return _json(obj)

    async def list(self, collection: str, request: web.Request) -> web.Response:
        return _json(self.store.list(collection, request.query))

    async def external_mapping_configuration(self, request: web.Request) -> web.Response:
        return _json(self.config.org.external_mapping_configuration())

    async def currencies(self, request: web.Request) -> web.Response:
        return _json({"data": self.config.org.currency_list()})

    async def mappings_by_external_id(self, request: web.Request) -> web.Response:
        info = request.match_info
        return self._mapping_page(
            request,
            lambda m: (
                (m["externalSystem"], m["externalTable"], m["externalId"])
                == (info["system"], info["externalTable"], info["externalId"])
            ),
        )

    async def mappings_by_m3ter_id(self, request: web.Request) -> web.Response:
        info = request.match_info
        if info["entity"] not in BY_NAME:
            raise bad_request(f"entity: must be one of {', '.join(sorted(BY_NAME))}")
        return self._mapping_page(
            request,
            lambda m: (m["m3terEntity"], m["m3terId"]) == (info["entity"], info["m3terId"].lower()),
        )

    def _mapping_page(
        self, request: web.Request, matches: Callable[[dict[str, Any]], bool]
    ) -> web.Response:
        size = page_size(request.query)
        # These lookups return a handful of mappings; one page of up to `pageSize` is enough.
        return _json({"data": self.store.find("externalmappings", matches)[:size]})

    # ---- ingest -----------------------------------------------------------------------------

    async def measurements(self, request: web.Request) -> web.Response:
        """`POST .../measurements`: 1 to 1000 items, under 512,000 bytes (else 403, as m3ter)."""
        declared = request.content_length
        if declared is not None and declared >= INGEST_LIMIT_BYTES:
            return self._too_large(declared)
        raw = await request.read()
        if len(raw) >= INGEST_LIMIT_BYTES:
            return self._too_large(len(raw))
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise bad_request(f"request body: malformed JSON ({exc})") from exc
        items = check_measurement_batch(body)
        await asyncio.wrap_future(self.store.ingest(items))
        return _json({"result": "accepted"})

    @staticmethod
    def _too_large(size: int) -> web.Response:
        return _error(
            403,
            f"Forbidden: the request payload of {size} bytes is over the limit; "
            f"send less than {INGEST_LIMIT_BYTES} bytes per request",
        )

    # ---- admin ------------------------------------------------------------------------------
    # Outside /organizations, never rate-limited, faulted or counted. They need the service
    # user's HTTP Basic credentials (the same as the token endpoint): this is a loopback test
    # server, and holding the org's credentials already allows everything else.

    def _admin(self, request: web.Request) -> None:
        if not self.creds.basic_matches(request.headers.get("Authorization")):
            raise web.HTTPUnauthorized(
                text=json.dumps(
                    {
                        "message": "Unauthorized: admin endpoints need HTTP Basic with "
                        "the access key id and api secret"
                    }
                ),
                content_type="application/json",
                headers={"WWW-Authenticate": 'Basic realm="m3ter sandbox admin"'},
            )

    async def admin_reset(self, request: web.Request) -> web.Response:
        self._admin(request)
        await asyncio.wrap_future(self.store.reset())
        return _json({"result": "reset", "counts": self.store.counts()})

    async def admin_export(self, request: web.Request) -> web.Response:
        self._admin(request)
        return _json({"orgId": self.creds.org_id, **self.store.export()})

    async def admin_counters(self, request: web.Request) -> web.Response:
        self._admin(request)
        return _json(self.counters.snapshot())

    async def admin_counters_reset(self, request: web.Request) -> web.Response:
        self._admin(request)
        self.counters.reset()
        return _json({"result": "reset"})
