"""The `m3sync` command, run as a user runs it: a real process."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import typer
from simple_salesforce import Salesforce
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.errors import M3terForbidden
from pipeline.m3ter.settings import sandbox_settings
from pipeline.salesforce.session import salesforce_session
from tests.processes import M3SYNC, sandbox_process


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the `m3sync` application, as the words that name it."""
    found = [path]
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):  # a group (Typer's own Click classes)
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_installed_command_starts_and_shows_its_help():
    result = subprocess.run([M3SYNC, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "Usage: m3sync" in result.stdout


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "m3sync")
def test_every_command_has_help(args):
    result = CliRunner().invoke(app, [*args, "--help"], prog_name="m3sync")
    assert result.exit_code == 0, result.output
    assert "Usage: m3sync" in result.output


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


@pytest.mark.operator  # `m3sync sandbox up --only` in its own process
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


def test_a_permission_to_deny_must_name_an_action_and_a_collection(tmp_path):
    command = [M3SYNC, "sandbox", "up", "--state-dir", str(tmp_path), "--only", "m3ter"]
    result = subprocess.run(
        [*command, "--m3ter-deny", "write:plans"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "<action>:<collection>" in result.stderr


@pytest.mark.operator  # `m3sync sandbox up --deny` in its own process
def test_a_sandbox_service_user_can_lack_a_permission(tmp_path):
    with sandbox_process(
        tmp_path / "sandbox", "--only", "m3ter", "--m3ter-deny", "create:commitments"
    ) as (_, info):
        client = M3terClient(sandbox_settings(info["m3ter"]))
        with pytest.raises(M3terForbidden) as refused:
            client.create("commitments", {})
        assert refused.value.permission == "config:create commitments"


@pytest.mark.operator  # `m3sync mappings export` against a sandbox in its own process
def test_mappings_export_writes_the_org_s_records_as_the_shipped_files(tmp_path):
    shipped = Path(__file__).resolve().parents[1] / "mappings"
    with sandbox_process(tmp_path / "sandbox", "--only", "salesforce", "--accounts", "3"):
        sandbox_json = str(tmp_path / "sandbox" / "sandbox.json")
        exported = subprocess.run(
            [M3SYNC, "mappings", "export", "--sandbox", sandbox_json, "--dir", str(tmp_path / "m")],
            capture_output=True,
            text=True,
            check=False,
        )
        validated = subprocess.run(
            [M3SYNC, "mappings", "validate", "--sandbox", sandbox_json, "--dir", str(shipped)],
            capture_output=True,
            text=True,
            check=False,
        )
    assert exported.returncode == 0, exported.stderr
    assert validated.returncode == 0 and "34 mappings valid" in validated.stdout
    for path in sorted((tmp_path / "m").glob("*.yaml")):
        assert path.read_text() == (shipped / path.name).read_text(), path.name


@pytest.mark.operator  # `m3sync mappings validate` against a sandbox in its own process
def test_mappings_validate_fails_with_every_problem_of_the_active_mappings(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "accounts.yaml").write_text(
        "- name: A\n  object: Account\n  fields:\n    code: Nope1__c\n    name: Nope2__c\n"
    )
    with sandbox_process(tmp_path / "sandbox", "--only", "salesforce", "--accounts", "3"):
        result = subprocess.run(
            [
                M3SYNC,
                "mappings",
                "validate",
                "--sandbox",
                str(tmp_path / "sandbox" / "sandbox.json"),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "M3SYNC_MAPPINGS_DIR": str(tmp_path / "m")},
        )
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if "does not resolve" in line]
    assert len(lines) == 2 and "accounts.yaml:4: mapping 'A': fields key 'code'" in lines[0]


def test_a_launched_run_refuses_a_local_sandbox_in_one_line(tmp_path):
    result = subprocess.run(
        [M3SYNC, "--launch", "run", "--sandbox", str(tmp_path / "sandbox.json")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "COLUMNS": "400"},
    )
    assert result.returncode == 1
    assert len(result.stdout.strip().splitlines()) == 1, result.stdout
    assert "--launch" in result.stdout and "--sandbox" in result.stdout
