"""Runs the sandbox servers on 127.0.0.1 over HTTPS, in the foreground or on a background thread.

A background thread lets a test fixture start a real server on a real socket in the same process;
the CLI uses the same class and simply waits until it is told to stop.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from pipeline.sandbox.files import write_private
from pipeline.sandbox.m3ter import M3terConfig, M3terSandbox
from pipeline.sandbox.salesforce.app import SalesforceConfig, SalesforceSandbox
from pipeline.sandbox.tls import server_context

HOST = "127.0.0.1"


class ServerThread:
    """One aiohttp application served over TLS on its own event loop and thread."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext, port: int = 0) -> None:
        self._app = app
        self._ssl = ssl_context
        self._requested_port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="sandbox-server"
        )
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> int:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self.port = future.result(timeout=30)
        return self.port

    async def _serve(self) -> int:
        self._runner = web.AppRunner(self._app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, HOST, self._requested_port, ssl_context=self._ssl, backlog=512
        )
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        return int(server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


@dataclass
class RunningSandbox:
    """The servers started (one or both) and what a client needs to reach them."""

    state_dir: Path
    ca_file: Path
    salesforce: SalesforceSandbox | None = None
    m3ter: M3terSandbox | None = None

    @property
    def salesforce_url(self) -> str:
        assert self.salesforce is not None, "the Salesforce org sandbox is not running"
        return self.salesforce.base_url

    def info(self) -> dict[str, Any]:
        """The contents of `sandbox.json`: one section per running server."""
        info: dict[str, Any] = {}
        if self.salesforce is not None:
            creds = self.salesforce.creds
            info["salesforce"] = {
                "url": self.salesforce.base_url,
                "ca_file": str(self.ca_file),
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "username": creds.username,
                "password": creds.password,
                "security_token": creds.security_token,
                "jwt_private_key_file": str(self.salesforce.jwt_key.path),
                "org_id": creds.org_id,
                "history_from": self.salesforce.org.history_from.isoformat(),
                "org": self.salesforce.config.org,
            }
        if self.m3ter is not None:
            info["m3ter"] = self.m3ter.info(self.ca_file)
        return info

    def write_info(self) -> Path:
        path = self.state_dir / "sandbox.json"
        write_private(path, json.dumps(self.info(), indent=2) + "\n")
        return path


@contextmanager
def running_sandbox(
    state_dir: Path,
    *,
    salesforce: SalesforceConfig | None = None,
    m3ter: M3terConfig | None = None,
    salesforce_port: int = 0,
    m3ter_port: int = 0,
) -> Iterator[RunningSandbox]:
    """Start the configured servers (one or both), write `sandbox.json`, stop all on exit.

    Both share one CA, generated at start; each keeps its state under `state_dir`.
    """
    if salesforce is None and m3ter is None:
        raise ValueError("configure at least one of the salesforce and m3ter sandboxes")
    state_dir = state_dir.resolve()
    ssl_context, ca_file = server_context(state_dir)
    running = RunningSandbox(state_dir, ca_file)
    with ExitStack() as stack:
        if salesforce is not None:
            running.salesforce = SalesforceSandbox(salesforce)
            stack.callback(running.salesforce.close)
            running.salesforce.base_url = _serve(
                stack, running.salesforce.app(), ssl_context, salesforce_port
            )
        if m3ter is not None:
            running.m3ter = M3terSandbox(m3ter)
            stack.callback(running.m3ter.close)
            running.m3ter.base_url = _serve(stack, running.m3ter.app(), ssl_context, m3ter_port)
        running.write_info()
        yield running


def _serve(stack: ExitStack, app: web.Application, ssl_context: ssl.SSLContext, port: int) -> str:
    server = ServerThread(app, ssl_context, port)
    bound = server.start()
    stack.callback(server.stop)
    return f"https://{HOST}:{bound}"


def wait_for_shutdown() -> None:
    """Block the main thread until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
