"""The `m3sync` command, run as a user runs it: a real process."""

from __future__ import annotations

import signal
import subprocess

import pytest
import requests
from simple_salesforce import Salesforce

from pipeline.salesforce.session import salesforce_session
from tests.processes import M3SYNC, sandbox_process

SUBCOMMANDS = [[], ["sandbox"], ["sandbox", "up"], ["demo"]]


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: " ".join(a) or "m3sync")
def test_every_command_has_help(args):
    result = subprocess.run([M3SYNC, *args, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "Usage: m3sync" in result.stdout


def test_sandbox_up_serves_both_apis_until_interrupted(tmp_path):
    with sandbox_process(tmp_path, "--accounts", "3") as (process, info):
        sf_info, m3_info = info["salesforce"], info["m3ter"]
        assert set(sf_info) >= {
            "url",
            "ca_file",
            "client_id",
            "client_secret",
            "username",
            "password",
            "security_token",
        }
        assert set(m3_info) >= {"url", "ca_file", "org_id", "access_key_id", "api_secret"}
        sf = Salesforce(
            username=sf_info["username"],
            password=sf_info["password"],
            security_token=sf_info["security_token"],
            session=salesforce_session(sf_info["ca_file"], login_url=sf_info["url"]),
        )
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0
        token = requests.post(
            f"{m3_info['url']}/oauth/token",
            auth=(m3_info["access_key_id"], m3_info["api_secret"]),
            json={"grant_type": "client_credentials"},
            verify=m3_info["ca_file"],
            timeout=10,
        )
        assert token.status_code == 200
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0, (tmp_path / "sandbox.err").read_text()
    out = (tmp_path / "sandbox.out").read_text()
    assert sf_info["client_secret"] in out and m3_info["api_secret"] in out


def test_only_starts_one_server(tmp_path):
    with sandbox_process(tmp_path, "--only", "m3ter") as (_, info):
        assert set(info) == {"m3ter"}


def test_bad_fault_settings_are_a_usage_error(tmp_path):
    result = subprocess.run(
        [M3SYNC, "sandbox", "up", "--state-dir", str(tmp_path), "--faults", "teapot=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown fault kinds" in result.stderr
