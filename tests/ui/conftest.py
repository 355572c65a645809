"""A Dagster webserver over a real instance with a materialized partition, and Chromium to view it.

The suite is left out of the default run (`norecursedirs`); it needs Debian's `chromium` and the
`ui` dependency group, and fails, never skips, when either is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import requests

try:
    from playwright.sync_api import BrowserContext, Error, Page, expect, sync_playwright
except ImportError as missing:
    raise ImportError(
        "Playwright is in the `ui` dependency group: uv run --frozen --group ui pytest tests/ui"
    ) from missing

from assets.definitions import daily_partitions
from assets.extract import extract_asset
from assets.resources import (
    ExtractResource,
    MappingsResource,
    SalesforceResource,
    StageResource,
    WarehouseResource,
)
from assets.staging import staged_asset
from pipeline.extract.objects import SourceObject
from pipeline.salesforce.settings import sandbox_settings
from pipeline.sandbox.server import RunningSandbox
from tests.shipped import MAPPINGS_DIR, shipped

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
WEBSERVER = Path(sys.executable).parent / "dagster-webserver"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 15.0
UI_TIMEOUT_MS = 30_000
SCREENSHOTS = pytest.StashKey[list[Path]]()
CALL_FAILED = pytest.StashKey[bool]()


@dataclass(frozen=True)
class Materialized:
    """What the instance behind the UI holds: one run over one partition."""

    home: Path
    partition: str
    partition_count: int
    run_id: str


@dataclass(frozen=True)
class Webserver:
    url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="package")
def materialized(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    """Materializes the latest partition of raw/account and staged/accounts into a real
    DAGSTER_HOME, so that the partitions view has something to show."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    partitions = daily_partitions()
    partition = partitions.get_last_partition_key()
    assert partition is not None
    assets = [
        extract_asset(SourceObject("Account"), partitions),
        staged_asset("accounts", partitions, shipped().objects),
    ]
    resources = {
        "salesforce": SalesforceResource.from_settings(
            sandbox_settings(sandbox.info()["salesforce"])
        ),
        "warehouse": WarehouseResource(root=str(tmp_path_factory.mktemp("warehouse"))),
        "extract_settings": ExtractResource(),
        "mappings": MappingsResource(directory=str(MAPPINGS_DIR)),
        "stage_settings": StageResource(),
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize(
            assets, partition_key=partition, instance=instance, resources=resources
        )
    assert result.success
    return Materialized(
        home=home,
        partition=partition,
        partition_count=len(partitions.get_partition_keys()),
        run_id=result.run_id,
    )


@pytest.fixture(scope="package")
def webserver(
    materialized: Materialized, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webserver]:
    """`dagster-webserver -w workspace.yaml` over the materialized instance, in a process group
    of its own that is terminated as a whole (the code server is a child)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    env = {**os.environ, "DAGSTER_HOME": str(materialized.home)}
    command = [str(WEBSERVER), "-w", "workspace.yaml", "-p", str(port), "-h", "127.0.0.1"]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(process, f"{url}/server_info", log)
        yield Webserver(url=url, log=log)
    finally:
        _stop(process)


def _wait_for(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    session = requests.Session()
    session.trust_env = False
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"dagster-webserver exited with {process.returncode} before answering {url}:\n"
                f"{_tail(log)}",
                pytrace=False,
            )
        try:
            if session.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"dagster-webserver did not answer {url} within {STARTUP_SECONDS:.0f} s:\n"
                f"{_tail(log)}",
                pytrace=False,
            )
        time.sleep(0.25)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait()


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile, no proxy and no background traffic;
    the first-visit community dialog is marked as seen so that it covers no page."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        failure = ""
        try:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1600, "height": 1000},
            )
        except Error as error:
            failure = str(error)
        if failure:
            pytest.fail(f"Chromium ({CHROMIUM}) failed to start: {failure}", pytrace=False)
        context.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
        context.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """`test-artifacts/ui/` at the project root, emptied of the previous run's screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def page(
    browser: BrowserContext, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A tab; when the test fails, what it showed is kept as `<test>-failure.png`."""
    page = browser.new_page()
    try:
        yield page
        if request.node.stash.get(CALL_FAILED, False):
            _keep(request, page, f"{request.node.name}-failure")
    finally:
        page.close()


Screenshot = Callable[[str], Path]


@pytest.fixture
def screenshot(page: Page, artifacts: Path, request: pytest.FixtureRequest) -> Screenshot:
    """Saves the page in full as `test-artifacts/ui/<name>.png` and attaches the path to the
    test's report (a `screenshot` property, and the run's closing summary)."""

    def save(name: str) -> Path:
        return _keep(request, page, name)

    return save


def _keep(request: pytest.FixtureRequest, page: Page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    request.node.user_properties.append(("screenshot", str(path)))
    request.config.stash.setdefault(SCREENSHOTS, []).append(path)
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    paths = terminalreporter.config.stash.get(SCREENSHOTS, [])
    if paths:
        terminalreporter.section("UI screenshots")
        for path in paths:
            terminalreporter.write_line(str(path))
