"""`m3sync doctor`'s checks against the sandboxes: green as set up, red for each broken
precondition with its one-line reason."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.m3ter.settings import sandbox_settings as m3ter_settings
from pipeline.mapping.source import MappingSource
from pipeline.preflight import Check, run_checks
from pipeline.salesforce.settings import sandbox_settings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.m3ter.org import OrgSettings
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import running_sandbox
from tests.shipped import MAPPINGS_DIR


@contextmanager
def _org(root: Path, org: OrgSettings | None = None, **salesforce: Any) -> Iterator[dict]:
    config = SalesforceConfig(
        state_dir=root / "salesforce", accounts=3, seed=5, history_days=10, **salesforce
    )
    m3ter = M3terConfig(state_dir=root / "m3ter", org=org or OrgSettings())
    with running_sandbox(root, salesforce=config, m3ter=m3ter) as running:
        yield running.info()


@pytest.fixture(scope="module")
def standard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The sandboxes as `m3sync sandbox up` sets them up."""
    with _org(tmp_path_factory.mktemp("standard")) as info:
        yield info


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The red checks of an integration user with Read alone, a small quota, an m3ter service
    user without two permissions and an m3ter organization without GBP."""
    org = OrgSettings(
        currencies=("USD", "EUR"), denied=frozenset({"create:commitments", "delete:pricings"})
    )
    root = tmp_path_factory.mktemp("restricted")
    with _org(root, org, access="read_only", daily_api_requests=900) as info:
        yield _red(_checks(info))


def _checks(info: dict, mappings: Path = MAPPINGS_DIR, **salesforce: Any) -> dict[str, Check]:
    checks = run_checks(
        lambda: replace(sandbox_settings(info["salesforce"]), **salesforce),
        lambda: m3ter_settings(info["m3ter"]),
        MappingSource("files", mappings),
    )
    return {check.name: check for check in checks}


def _mappings(tmp_path: Path, entity: str, old: str, new: str) -> Path:
    directory = tmp_path / "mappings"
    shutil.copytree(MAPPINGS_DIR, directory)
    path = directory / f"{entity}.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    return directory


def _red(checks: dict[str, Check]) -> dict[str, str]:
    return {name: check.detail for name, check in checks.items() if not check.ok}


def test_the_sandboxes_as_set_up_pass_every_check(standard):
    checks = _checks(standard)
    assert _red(checks) == {}
    assert set(checks) == {
        "Salesforce login",
        "API version",
        "mapped objects and fields visible",
        "integration user sees every record",
        "API quota",
        "m3ter login",
        "m3ter permissions",
        "m3ter codes exist",
        "currencies",
    }


def test_a_refused_login_is_red_and_the_checks_needing_it_are_left_out(standard):
    wrong = secrets.token_urlsafe(16)
    checks = _checks(standard, client_secret=wrong)
    red = _red(checks)
    assert list(red) == ["Salesforce login"] and "invalid_client" in red["Salesforce login"]
    assert "API version" not in checks and wrong not in red["Salesforce login"]


def test_an_api_version_the_org_does_not_serve_is_red(standard):
    red = _red(_checks(standard, api_version="67.0"))
    assert red == {
        "API version": "67.0 is not served; the org serves 58.0-66.0: set "
        "M3SYNC_SALESFORCE_API_VERSION"
    }


def test_an_object_the_integration_user_cannot_read_names_its_mappings(tmp_path):
    with _org(tmp_path, hidden_objects=frozenset({"Asset"})) as info:
        red = _red(_checks(info))
    assert list(red) == ["mapped objects visible"]
    assert (
        "mapping 'Asset_Pricing_Compound': object: 'Asset' cannot be described"
        in (red["mapped objects visible"])
    )


def test_a_field_hidden_by_field_level_security_is_red(standard, tmp_path):
    mappings = _mappings(tmp_path, "accounts", "    name: Name\n", "    name: Credit_Rating__c\n")
    red = _red(_checks(standard, mappings))
    assert "Credit_Rating__c" in red["mapped fields visible (field-level security)"]


def test_without_view_all_the_objects_sharing_could_hide_are_named(restricted):
    detail = restricted["integration user sees every record"]
    assert detail.startswith("neither View All Data nor View All on Account, Asset,")


def test_view_all_on_each_mapped_object_is_enough(tmp_path):
    with _org(tmp_path, access="view_all_objects") as info:
        checks = _checks(info)
    assert checks["integration user sees every record"].detail.startswith("View All on each")


def test_a_daily_quota_under_the_extract_s_floor_is_red(restricted):
    assert "under the extract's floor of 1,000" in restricted["API quota"]


def test_a_permission_the_m3ter_service_user_lacks_is_named(restricted):
    assert restricted["m3ter permissions"] == (
        "the service user may not create commitments, delete pricings"
    )


def test_a_hard_coded_code_m3ter_lacks_is_named_with_its_mapping(standard, tmp_path):
    mappings = _mappings(
        tmp_path,
        "pricings",
        "  hardcoded:\n    cumulative: false\n",
        "  hardcoded:\n    cumulative: false\n    planTemplateCode: no_such_template\n",
    )
    red = _red(_checks(standard, mappings))
    assert red["m3ter codes exist"] == (
        "1 missing: plantemplates 'no_such_template' (pricings mapping 'Asset_Pricing_Compound')"
    )


def test_a_currency_the_m3ter_organization_lacks_is_red(restricted):
    assert restricted["currencies"].startswith("the m3ter organization lacks GBP (")
