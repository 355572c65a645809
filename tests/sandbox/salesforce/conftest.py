"""A small org of each write test module's own: writes never disturb the shared org's counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simple_salesforce import Salesforce

from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.salesforce.org import Org
from pipeline.sandbox.server import RunningSandbox, running_sandbox
from tests.sandbox.salesforce import clients


@pytest.fixture(scope="module")
def writable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    state = tmp_path_factory.mktemp("writable")
    config = SalesforceConfig(
        state_dir=state / "salesforce", accounts=40, seed=11, recycle_bin_days=None
    )
    with running_sandbox(state, salesforce=config) as running:
        yield running


@pytest.fixture(scope="module")
def sf(writable: RunningSandbox) -> Salesforce:
    """simple-salesforce, unmodified, logged in to the writable org."""
    return clients.soap_client(writable)


@pytest.fixture
def org(writable: RunningSandbox) -> Iterator[Org]:
    """The writable org, its write rules (read-only fields, validation rules) reset after."""
    assert writable.salesforce is not None
    org = writable.salesforce.org
    yield org
    org.read_only_fields = frozenset()
    org.clear_validation_rules()
