"""Sync statuses written back to the Salesforce sandbox after a load, through simple-salesforce.

One small org synced once; each test then changes what it needs (a lock, a validation rule,
field-level security, a spent quota) and says what the records read and what was journaled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import duckdb
import pytest

from pipeline.extract.run import ExtractSettings, extract, plan_all
from pipeline.extract.window import Window, window_query
from pipeline.load.coverage import coverage, template_products
from pipeline.load.current import Current
from pipeline.load.entities import ORDER
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings as m3ter_settings
from pipeline.mapping.compiler import CompiledSet, compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.mapping.writeback import StatusFields
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import sandbox_settings as salesforce_settings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.salesforce.generator import INTEGRATION_USERNAME
from pipeline.sandbox.server import RunningSandbox, running_sandbox
from pipeline.staging.stage import StageSettings, stage
from pipeline.warehouse import Warehouse
from pipeline.writeback import run as writeback_run
from pipeline.writeback.journal import WRITEBACK, writeback_began
from pipeline.writeback.run import (
    WritebackResult,
    WritebackSettings,
    run_writes_back,
    send_pending,
    write_back,
)
from tests.load.conftest import MAPPINGS

HISTORY_DAYS = 4
EXTRACT = ExtractSettings(rest_threshold=10**9)
STAGE = StageSettings(memory_mb=256)
FAST = WritebackSettings(backoff_seconds=0.05, poll_seconds=0.05)
WRITEBACK_YAML = "".join(
    f"- object: {name}\n  status: M3ter_Sync_Status__c\n  time: M3ter_Last_Synced__c\n"
    "  message: M3ter_Sync_Message__c\n  m3ter_id: M3ter_Id__c\n"
    for name in ("Account", "OrderItem")
)
STATUS_FIELDS = "Id, M3ter_Sync_Status__c, M3ter_Sync_Message__c, M3ter_Id__c, SystemModstamp"


def _days(n: int) -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    return [(today - dt.timedelta(days=d)).isoformat() for d in range(n, 0, -1)]


@dataclass
class World:
    sandbox: RunningSandbox
    salesforce: SalesforceClient
    m3ter: M3terClient
    warehouse: Warehouse
    compiled: CompiledSet

    def extract(self, partitions: list[str]) -> dict[str, int]:
        """Extract `partitions` as the sync job does; rows per object."""
        sources = [o for o in self.compiled.objects.objects if o.partitioned]
        written = {r.object for r in self.compiled.writeback}
        began = writeback_began(self.warehouse)
        plans = plan_all(self.salesforce, sources, self.compiled.fields, written, began)
        return {
            s.name: extract(
                self.salesforce, self.warehouse, s, partitions, EXTRACT, plans[s.name]
            ).rows
            for s in sources
        }

    def sync(self, partitions: list[str]) -> None:
        self.extract(partitions)
        entities = [e for e in ORDER if self.compiled[e].mappings]
        for entity in entities:
            stage(self.warehouse, self.compiled[entity], partitions, STAGE)
        for entity in entities:
            load(self.m3ter, self.warehouse, entity, partitions)
        coverage(self.warehouse, template_products(Current(self.m3ter)))

    def write_back(self, settings: WritebackSettings = FAST) -> WritebackResult:
        return write_back(self.salesforce, self.warehouse, self.compiled, settings)

    def statuses(self, sobject: str) -> dict[str, dict]:
        records = self.salesforce.query_records(f"SELECT {STATUS_FIELDS} FROM {sobject}")
        return {r["Id"]: r for r in records}

    def journal(self) -> list[tuple]:
        con = self.warehouse.connect()
        try:
            return con.execute(
                f'SELECT source_id, status, result, error FROM {WRITEBACK.sql} ORDER BY "at"'
            ).fetchall()
        finally:
            con.close()

    def coverage(self) -> dict[str, tuple[bool, str | None]]:
        con = self.warehouse.connect()
        try:
            rows = con.execute(
                "SELECT source_id, billable, root_entity, root_key, reason FROM load.coverage"
            ).fetchall()
        finally:
            con.close()
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    @property
    def org(self):
        return self.sandbox.salesforce.org


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path = tmp_path_factory.mktemp("writeback")
    directory = tmp_path / "mappings"
    directory.mkdir()
    for entity, text in MAPPINGS.items():
        (directory / f"{entity}.yaml").write_text(text)
    (directory / "writeback.yaml").write_text(WRITEBACK_YAML)
    config = SalesforceConfig(
        state_dir=tmp_path / "sandbox" / "salesforce", accounts=3, history_days=HISTORY_DAYS
    )
    m3ter = M3terConfig(state_dir=tmp_path / "sandbox" / "m3ter")
    with running_sandbox(tmp_path / "sandbox", salesforce=config, m3ter=m3ter) as sandbox:
        info = sandbox.info()
        salesforce = SalesforceClient(salesforce_settings(info["salesforce"]))
        client = M3terClient(replace(m3ter_settings(info["m3ter"]), rate_limit=45.0))
        compiled = compile_mappings(load_mappings(directory), salesforce.describe, writeback=True)
        built = World(sandbox, salesforce, client, Warehouse(tmp_path / "warehouse"), compiled)
        # An account m3ter refuses: every line of it fails through it.
        built.org.db.cursor().execute(
            'UPDATE org."Account" SET "Billing_Email__c" = NULL WHERE "Id" = '
            '(SELECT min("Id") FROM org."Account" WHERE NOT "IsDeleted")'
        )
        built.sync(_days(HISTORY_DAYS + 1))
        yield built


@pytest.fixture(scope="module")
def first(world: World) -> WritebackResult:
    return world.write_back()


def test_every_synced_line_reads_its_outcome_on_the_record(world, first):
    assert first.written > 0 and first.failed == 0
    records = world.statuses("OrderItem")
    measured = world.coverage()
    assert measured
    for line, (billable, _entity, _key, reason) in measured.items():
        record = records[line]
        if billable:
            assert record["M3ter_Sync_Status__c"] == "Success", record
            assert record["M3ter_Id__c"], "the m3ter id of its pricing"
        else:
            assert record["M3ter_Sync_Status__c"] == "Failed", record
            assert reason in record["M3ter_Sync_Message__c"]


def test_a_line_that_fails_through_its_account_names_the_account(world, first):
    records = world.statuses("OrderItem")
    cascades = [(line, c) for line, c in world.coverage().items() if c[1] == "accounts"]
    assert cascades, "the account without an e-mail address explains its lines"
    for line, (_, _, account, reason) in cascades:
        assert records[line]["M3ter_Sync_Status__c"] == "Failed"
        assert records[line]["M3ter_Sync_Message__c"] == f"account {account}: {reason}"


def test_a_second_write_back_with_no_change_writes_nothing(world, first):
    again = world.write_back()
    assert again.written == 0 and again.failed == 0
    assert again.api_calls == 0, "not even a login's worth: nothing to ask Salesforce"


def test_the_next_night_stages_nothing_of_what_was_written_back(world, first):
    today = [dt.datetime.now(dt.UTC).date().isoformat()]
    sources = [o for o in world.compiled.objects.objects if o.partitioned]
    unfiltered = plan_all(world.salesforce, sources, world.compiled.fields)
    window = Window.for_partitions(today)
    moved = {
        s.name: world.salesforce.count(window_query(unfiltered[s.name], window, EXTRACT.overlap))
        for s in sources
    }
    assert moved["OrderItem"] > 0, "the write-back moved the records' stamps into today"
    rows = world.extract(today)
    assert rows == {name: 0 for name in rows}, "the window skips m3sync's own writes"
    staged = [
        stage(world.warehouse, world.compiled[e], today, STAGE)
        for e in ORDER
        if world.compiled[e].mappings
    ]
    assert sum(sum(r.rows_by_partition.values()) + r.tombstones for r in staged) == 0


def test_a_day_read_again_after_the_write_back_keeps_every_record_it_held(world, first):
    def held() -> dict[str, int]:
        con = world.warehouse.connect()
        try:
            return dict(
                con.execute("SELECT _partition, count(*) FROM raw.order_item GROUP BY 1").fetchall()
            )
        finally:
            con.close()

    before = held()
    busiest = max((d for d in before if d[:1].isdigit()), key=before.__getitem__)
    world.extract([busiest])
    assert held() == before, "no window returns a written-back record; its version stays"


def test_a_locked_record_is_written_once_the_lock_is_released(world, first):
    line = next(iter(world.coverage()))
    world.org.lock_rows([line], times=2)
    _forget(world, line)
    result = world.write_back()
    assert result.written == 1 and result.failed == 0
    assert world.statuses("OrderItem")[line]["M3ter_Sync_Status__c"] in ("Success", "Failed")


def test_a_validation_rule_s_refusal_is_journaled_and_tried_again_next_run(world, first):
    line = next(iter(world.coverage()))
    world.org.add_validation_rule("OrderItem", '"M3ter_Sync_Status__c" IS NOT NULL', "Locked deal")
    try:
        _forget(world, line)
        refused = world.write_back()
        assert refused.failed == 1
        assert refused.objects[-1].errors == {"FIELD_CUSTOM_VALIDATION_EXCEPTION": 1}
        assert world.journal()[-1][2:] == (
            "failed",
            "FIELD_CUSTOM_VALIDATION_EXCEPTION: Locked deal",
        )
    finally:
        world.org.clear_validation_rules()
    again = world.write_back()
    assert again.written == 1 and again.failed == 0


def test_a_status_field_the_integration_user_cannot_edit_fails_each_record(world, first):
    line = next(iter(world.coverage()))
    world.org.read_only_fields = frozenset({"OrderItem.M3ter_Sync_Message__c"})
    try:
        _forget(world, line)
        refused = world.write_back()
        assert refused.objects[-1].errors == {"INVALID_FIELD_FOR_INSERT_UPDATE": 1}
    finally:
        world.org.read_only_fields = frozenset()
    assert world.write_back().written == 1


def test_a_spent_daily_quota_fails_the_write_back_and_nothing_else(world, first):
    line = next(iter(world.coverage()))
    _forget(world, line)
    usage = world.sandbox.salesforce.usage
    limit = usage.limit
    usage.limit = usage.used
    try:
        refused = world.write_back()
    finally:
        usage.limit = limit
    assert refused.written == 0 and refused.failed == 1
    assert "REQUEST_LIMIT_EXCEEDED" in refused.objects[-1].errors
    assert world.write_back().written == 1


def test_many_changes_go_through_a_bulk_job_with_the_same_outcome(world, first):
    before = world.statuses("OrderItem")
    lines = list(world.coverage())
    for line in lines:
        _forget(world, line)
    bulk = world.write_back(replace(FAST, composite_max=0))
    assert bulk.bulk_jobs == 1 and bulk.written == len(lines)
    after = world.statuses("OrderItem")
    for line in lines:
        assert after[line]["M3ter_Sync_Status__c"] == before[line]["M3ter_Sync_Status__c"]
        assert after[line]["M3ter_Sync_Message__c"] == before[line]["M3ter_Sync_Message__c"]


def test_a_record_changed_since_the_last_window_is_deferred_not_overwritten(world, first):
    line = next(iter(world.coverage()))
    _forget(world, line)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    world.org.db.cursor().execute(
        'UPDATE org."OrderItem" SET "Quantity" = "Quantity" + 1, "SystemModstamp" = ?, '
        '"LastModifiedById" = (SELECT min("Id") FROM org."User" WHERE "Username" <> ?) '
        'WHERE "Id" = ?',
        [now, INTEGRATION_USERNAME, line],
    )
    deferred = world.write_back()
    assert deferred.objects[-1].deferred == 1 and deferred.written == 0
    today = [dt.datetime.now(dt.UTC).date().isoformat()]
    assert world.extract(today)["OrderItem"] >= 1, "the person's change is read tomorrow"


def test_a_run_that_dies_after_writing_converges_on_the_next(world, first, monkeypatch):
    line = sorted(world.coverage())[-1]
    _forget(world, line)

    def crash(*args, **kwargs):
        raise RuntimeError("killed before the journal")

    with monkeypatch.context() as patched:
        patched.setattr(writeback_run, "write_attempts", crash)
        with pytest.raises(RuntimeError):
            world.write_back()
    again = world.write_back()
    assert again.written == 1 and again.failed == 0
    assert world.write_back().written == 0


def _forget(world: World, line: str) -> None:
    """Make the warehouse forget it wrote `line`'s status, so the next run writes it again."""
    con = world.warehouse.connect()
    try:
        for path in world.warehouse.table_dir(WRITEBACK).glob("*.parquet"):
            kept = path.with_suffix(".kept")
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{path}') WHERE source_id <> ?) "
                f"TO '{kept}' (FORMAT parquet)",
                [line],
            )
            kept.replace(path)
    finally:
        con.close()


def test_an_object_keyed_by_an_external_id_is_upserted_on_it(world, first, tmp_path):
    world.org.db.cursor().execute(
        'UPDATE org."Account" SET "External_Id__c" = \'ERP-\' || "Id" WHERE NOT "IsDeleted"'
    )
    (account,) = world.salesforce.query_records("SELECT Id FROM Account LIMIT 1")
    row = StatusFields(
        "Account", "M3ter_Sync_Status__c", message="M3ter_Sync_Message__c", key="External_Id__c"
    )
    con = duckdb.connect()
    con.execute(
        'CREATE TEMP TABLE _pending AS SELECT 0 AS pos, ? AS source_id, ? AS "key", '
        "'Not Synced' AS status, 'not loaded into m3ter yet' AS message, "
        "NULL::VARCHAR AS m3ter_id, NULL::TIMESTAMP AS synced_at",
        [account["Id"], f"ERP-{account['Id']}"],
    )
    send_pending(world.salesforce, con, row, "bulk", tmp_path, FAST)
    assert con.execute("SELECT ok, code FROM _results").fetchall() == [(True, None)]
    (after,) = world.salesforce.query_records(
        f"SELECT M3ter_Sync_Status__c, M3ter_Sync_Message__c FROM Account "
        f"WHERE Id = '{account['Id']}'"
    )
    assert after["M3ter_Sync_Status__c"] == "Not Synced"
    assert after["M3ter_Sync_Message__c"] == "not loaded into m3ter yet"
    _forget(world, account["Id"])  # the next run writes the account's own outcome again


def test_only_a_run_that_reaches_yesterday_writes_back():
    today = dt.date(2026, 12, 4)
    assert run_writes_back("2026-12-03", today), "the nightly run, a backfill's last chunk"
    assert not run_writes_back("2026-11-20", today), "a backfill's earlier chunk waits"
    assert run_writes_back(None, today), "a run of no partition (reference data) writes back"
