"""Extract fixtures: the pipeline's client pointed at a running org sandbox, and a warehouse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from pipeline.extract.run import ExtractSettings, extract
from pipeline.retry import RetryPolicy
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import sandbox_settings
from pipeline.sandbox.server import RunningSandbox
from pipeline.warehouse import Warehouse
from tests.conftest import StartSandbox
from tests.shipped import mapped

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


# What the shipped mappings read of an OrderItem, and Quantity, which tests change in the org.
ORDER_ITEM = replace(mapped("OrderItem"), fields=(*mapped("OrderItem").fields, "Quantity"))
REST = ExtractSettings(rest_threshold=10**9)
HISTORY_DAYS = 8


def days(n: int) -> list[str]:
    """The last `n` complete days, oldest first."""
    today = dt.datetime.now(dt.UTC).date()
    return [(today - dt.timedelta(days=d)).isoformat() for d in range(n, 0, -1)]


@dataclass
class ExtractedOrg:
    """A sandbox whose every day of OrderItems is extracted into `warehouse`."""

    sandbox: RunningSandbox
    warehouse: Warehouse

    def sql(self, statement: str, params: list[object] | None = None) -> list[tuple]:
        return self.sandbox.salesforce.org.db.cursor().execute(statement, params or []).fetchall()

    def latest(self, record_id: str) -> tuple:
        return (
            self.warehouse.connect()
            .execute(
                'SELECT "UnitPrice", "IsDeleted", _partition FROM raw.order_item WHERE "Id" = ?',
                [record_id],
            )
            .fetchone()
        )

    def live_item(self) -> str:
        return self.sql('SELECT "Id" FROM org."OrderItem" WHERE NOT "IsDeleted" ORDER BY "Id"')[0][
            0
        ]

    def late_copy(self, record_id: str) -> str:
        """A copy of a record under a new Id, its stamps unchanged: a record that appears on a
        day already extracted, as a late commit or a widened sharing rule makes one."""
        copy = record_id[:3] + "LATE" + record_id[7:]
        self.sql(
            'INSERT INTO org."OrderItem" BY NAME SELECT * REPLACE (? AS "Id") '
            'FROM org."OrderItem" WHERE "Id" = ?',
            [copy, record_id],
        )
        return copy

    def extract_all(self) -> None:
        extract(client_for(self.sandbox), self.warehouse, ORDER_ITEM, days(HISTORY_DAYS + 1), REST)


@pytest.fixture
def org(start_sandbox: StartSandbox, tmp_path) -> Iterator[ExtractedOrg]:
    """An 8-day org whose every day is extracted."""
    with start_sandbox(accounts=5, history_days=HISTORY_DAYS) as sandbox:
        extracted = ExtractedOrg(sandbox, Warehouse(tmp_path / "warehouse"))
        extracted.extract_all()
        yield extracted
