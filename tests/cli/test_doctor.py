"""`m3sync doctor` as a new user runs it: the sandbox configured through M3SYNC_* variables only."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.m3ter.org import OrgSettings
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import running_sandbox
from tests.processes import M3SYNC


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("doctor")
    salesforce = SalesforceConfig(state_dir=root / "salesforce", accounts=3, history_days=10)
    m3ter = M3terConfig(
        state_dir=root / "m3ter", org=OrgSettings(denied=frozenset({"create:accountplans"}))
    )
    with running_sandbox(root, salesforce=salesforce, m3ter=m3ter):
        yield root


def _env_file(state: Path) -> dict[str, str]:
    done = subprocess.run(
        [M3SYNC, "sandbox", "env", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "written to" in done.stdout
    env_file = state / "sandbox.env"
    assert env_file.stat().st_mode & 0o077 == 0
    lines = env_file.read_text().splitlines()
    return {name: shlex.split(value)[0] for name, value in (ln.split("=", 1) for ln in lines)}


def _doctor(state: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("M3SYNC_")}
    env = {**clean, **_env_file(state), **extra, "COLUMNS": "250"}
    return subprocess.run(
        [M3SYNC, "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=state,
        check=False,
    )


@pytest.mark.operator  # every check of `m3sync doctor` against a sandbox in its own process
def test_the_sandbox_configured_as_a_real_org_is_green_but_for_the_denied_permission(state):
    result = _doctor(state)
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(lines) == 9
    assert [line for line in lines if line.startswith("✗")] == [
        "✗ m3ter permissions: the service user may not create accountplans"
    ]
