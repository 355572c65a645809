"""The `m3sync` command, run as a user runs it: a real process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from simple_salesforce import Salesforce

from pipeline.salesforce.session import salesforce_session

M3SYNC = str(Path(sys.executable).parent / "m3sync")
SUBCOMMANDS = [[], ["sandbox"], ["sandbox", "up"], ["demo"]]


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: " ".join(a) or "m3sync")
def test_every_command_has_help(args):
    result = subprocess.run([M3SYNC, *args, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "Usage: m3sync" in result.stdout


def test_sandbox_up_serves_until_interrupted_and_writes_sandbox_json(tmp_path):
    process = subprocess.Popen(
        [M3SYNC, "sandbox", "up", "--port", "0", "--state-dir", str(tmp_path), "--accounts", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    info_file = tmp_path / "sandbox.json"
    try:
        deadline = time.monotonic() + 60
        while not info_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        info = json.loads(info_file.read_text())["salesforce"]
        assert set(info) >= {
            "url",
            "ca_file",
            "client_id",
            "client_secret",
            "username",
            "password",
            "security_token",
        }
        sf = Salesforce(
            username=info["username"],
            password=info["password"],
            security_token=info["security_token"],
            session=salesforce_session(info["ca_file"], login_url=info["url"]),
        )
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert info["client_secret"] in out


def test_bad_fault_settings_are_a_usage_error(tmp_path):
    result = subprocess.run(
        [M3SYNC, "sandbox", "up", "--state-dir", str(tmp_path), "--faults", "teapot=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown fault kinds" in result.stderr
