"""m3ter sandbox fixtures: real HTTPS servers on loopback, m3ter's SDK and raw `requests` clients.

One sandbox (limit off) serves the whole session and is reset before each test; tests that need
their own settings (limit on, faults, short tokens, restarts) start a dedicated one.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m3ter
import pytest
import requests

from pipeline.sandbox.m3ter import M3terConfig, M3terSandbox
from pipeline.sandbox.server import running_sandbox


def sdk_client(info: dict[str, str], max_retries: int = 0) -> m3ter.M3ter:
    """m3ter's SDK pointed at a sandbox from its `sandbox.json` section.

    The httpx client trusts exactly the sandbox CA (never the environment's trust store:
    `trust_env=False` keeps SSL_CERT_FILE and proxies out); `base_url` also makes the SDK post
    measurements to this server instead of ingest.m3ter.com.
    """
    http_client = m3ter.DefaultHttpxClient(
        verify=ssl.create_default_context(cafile=info["ca_file"]), trust_env=False
    )
    return m3ter.M3ter(
        api_key=info["access_key_id"],
        api_secret=info["api_secret"],
        org_id=info["org_id"],
        base_url=info["url"],
        http_client=http_client,
        max_retries=max_retries,
    )


@dataclass
class RunningM3ter:
    """A started sandbox and ways to call it."""

    sandbox: M3terSandbox
    ca_file: Path

    @property
    def info(self) -> dict[str, str]:
        return self.sandbox.info(self.ca_file)

    @property
    def url(self) -> str:
        return self.sandbox.base_url

    @property
    def org_id(self) -> str:
        return self.sandbox.creds.org_id

    def client(self, max_retries: int = 0) -> m3ter.M3ter:
        return sdk_client(self.info, max_retries)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.verify = str(self.ca_file)
        session.trust_env = False  # else REQUESTS_CA_BUNDLE would replace the sandbox CA
        return session

    @property
    def basic(self) -> tuple[str, str]:
        return self.info["access_key_id"], self.info["api_secret"]

    def token(self, session: requests.Session | None = None) -> str:
        answer = (session or self.session()).post(
            f"{self.url}/oauth/token", auth=self.basic, json={"grant_type": "client_credentials"}
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def org_url(self, path: str) -> str:
        return f"{self.url}/organizations/{self.org_id}/{path.lstrip('/')}"

    def authed(self) -> requests.Session:
        """A raw session that already carries a bearer token."""
        session = self.session()
        session.headers["Authorization"] = f"Bearer {self.token(session)}"
        return session

    def admin(self, method: str, path: str) -> requests.Response:
        return self.session().request(method, f"{self.url}/admin/{path}", auth=self.basic)

    def counters(self) -> dict[str, Any]:
        answer = self.admin("GET", "counters")
        answer.raise_for_status()
        return dict(answer.json())


@contextmanager
def run_m3ter(state_dir: Path, **settings: Any) -> Iterator[RunningM3ter]:
    """Start a sandbox on a free port over HTTPS; stop it and flush its state on exit."""
    config = M3terConfig(state_dir=state_dir / "m3ter", **settings)
    with running_sandbox(state_dir, m3ter=config) as running:
        assert running.m3ter is not None
        yield RunningM3ter(running.m3ter, running.ca_file)


StartM3ter = Callable[..., AbstractContextManager[RunningM3ter]]


@pytest.fixture(scope="session")
def shared_m3ter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningM3ter]:
    with run_m3ter(tmp_path_factory.mktemp("m3ter"), rate_limit_per_second=None) as running:
        yield running


@pytest.fixture
def sandbox(shared_m3ter: RunningM3ter) -> RunningM3ter:
    """The shared sandbox, back in its seeded state with zeroed counters."""
    shared_m3ter.sandbox.store.reset().result()
    shared_m3ter.sandbox.counters.reset()
    return shared_m3ter


@pytest.fixture
def client(sandbox: RunningM3ter) -> Iterator[m3ter.M3ter]:
    sdk = sandbox.client()
    yield sdk
    sdk.close()


@pytest.fixture
def start_m3ter(tmp_path: Path) -> StartM3ter:
    """Starts a dedicated sandbox; the same `name` reuses its state dir (a restart)."""

    def start(name: str = "own", **settings: Any) -> AbstractContextManager[RunningM3ter]:
        return run_m3ter(tmp_path / name, **settings)

    return start
