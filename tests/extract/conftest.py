"""Extract fixtures: the pipeline's client pointed at a running org sandbox, and a warehouse."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.retry import RetryPolicy
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import sandbox_settings
from pipeline.sandbox.server import RunningSandbox
from pipeline.warehouse import Warehouse

YESTERDAY = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def client_for(sandbox: RunningSandbox) -> SalesforceClient:
    settings = sandbox_settings(sandbox.info()["salesforce"])
    return SalesforceClient(settings, RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05))


@pytest.fixture
def client(sandbox: RunningSandbox) -> SalesforceClient:
    return client_for(sandbox)


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse")
