"""The recycle bin: deleted records come back from queryAll until they are purged."""

from __future__ import annotations

import datetime as dt

from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.salesforce.org import RECYCLE_BIN_DAYS
from pipeline.sandbox.server import running_sandbox
from tests.sandbox.salesforce import clients

DELETED = "SELECT Id, SystemModstamp FROM OrderItem WHERE IsDeleted = true"


def test_salesforce_keeps_deleted_records_fifteen_days():
    assert RECYCLE_BIN_DAYS == 15
    assert SalesforceConfig(state_dir=None).recycle_bin_days == 15  # type: ignore[arg-type]


def _deleted(tmp_path, name: str, days: int | None) -> list[dt.datetime]:
    """The delete stamps queryAll returns from a 30-day org whose bin keeps `days` days."""
    config = SalesforceConfig(
        state_dir=tmp_path / name / "salesforce",
        accounts=50,
        history_days=30,
        recycle_bin_days=days,
    )
    with running_sandbox(tmp_path / name, salesforce=config) as sandbox:
        found = clients.soap_client(sandbox).query_all(DELETED, include_deleted=True)
    return [dt.datetime.fromisoformat(r["SystemModstamp"]) for r in found["records"]]


def test_records_deleted_longer_ago_than_the_bin_keeps_them_are_purged_at_start(tmp_path):
    kept = _deleted(tmp_path, "kept", None)
    binned = _deleted(tmp_path, "binned", 10)
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    assert any(stamp <= cutoff for stamp in kept)
    assert binned and all(stamp > cutoff for stamp in binned)
    assert len(binned) < len(kept)


def test_emptying_the_bin_purges_every_deleted_record(tmp_path):
    config = SalesforceConfig(state_dir=tmp_path / "salesforce", accounts=50, history_days=30)
    with running_sandbox(tmp_path, salesforce=config) as sandbox:
        sf = clients.soap_client(sandbox)
        assert sf.query_all(DELETED, include_deleted=True)["totalSize"] > 0
        assert sandbox.salesforce.org.empty_recycle_bin() > 0
        assert sf.query_all(DELETED, include_deleted=True)["totalSize"] == 0
