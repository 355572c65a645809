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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

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
    """What a client needs to reach the running sandbox, as written to `sandbox.json`."""

    state_dir: Path
    salesforce: SalesforceSandbox
    ca_file: Path
    salesforce_url: str

    def info(self) -> dict[str, Any]:
        creds = self.salesforce.creds
        return {
            "salesforce": {
                "url": self.salesforce_url,
                "ca_file": str(self.ca_file),
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "username": creds.username,
                "password": creds.password,
                "security_token": creds.security_token,
                "jwt_private_key_file": str(self.salesforce.jwt_key.path),
                "org_id": creds.org_id,
            }
        }

    def write_info(self) -> Path:
        path = self.state_dir / "sandbox.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.info(), indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
        return path


@contextmanager
def running_sandbox(
    state_dir: Path, *, port: int = 0, salesforce: SalesforceConfig | None = None
) -> Iterator[RunningSandbox]:
    """Start the sandbox, write `sandbox.json`, and stop everything on exit."""
    state_dir = state_dir.resolve()
    ssl_context, ca_file = server_context(state_dir)
    config = salesforce or SalesforceConfig(state_dir=state_dir / "salesforce")
    sf = SalesforceSandbox(config)
    server = ServerThread(sf.app(), ssl_context, port)
    try:
        bound = server.start()
        sf.base_url = f"https://{HOST}:{bound}"
        sandbox = RunningSandbox(state_dir, sf, ca_file, sf.base_url)
        sandbox.write_info()
        yield sandbox
    finally:
        server.stop()
        sf.close()


def wait_for_shutdown() -> None:
    """Block the main thread until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
