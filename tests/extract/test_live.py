"""Salesforce's live Ids against the warehouse: records never extracted, records purged."""

from __future__ import annotations

from pipeline.extract.live import compare_live_ids
from pipeline.extract.run import extract
from pipeline.warehouse import Warehouse
from tests.extract.conftest import HISTORY_DAYS, ORDER_ITEM, REST, client_for, days


def _compare(org):
    return compare_live_ids(client_for(org.sandbox), org.warehouse, ORDER_ITEM, REST)


def test_a_fully_extracted_org_has_nothing_missing_or_gone(org):
    found = _compare(org)
    assert found.live > 0 and (found.missing, found.gone) == (0, 0)


def test_a_purged_record_is_gone_with_its_id(org):
    record = org.live_item()
    org.sql('DELETE FROM org."OrderItem" WHERE "Id" = ?', [record])
    found = _compare(org)
    assert (found.missing, found.gone) == (0, 1) and found.examples["gone"] == [record]


def test_a_record_that_appeared_on_a_day_already_extracted_is_missed_not_a_day_to_extract(org):
    record = org.late_copy(org.live_item())
    found = _compare(org)
    assert (found.missing, found.missed, found.missing_days) == (1, 1, ())
    assert found.examples["missing"] == [record]


def test_records_never_extracted_are_missing_with_the_days_they_fall_on(start_sandbox, tmp_path):
    with start_sandbox(accounts=5, history_days=HISTORY_DAYS) as sandbox:
        warehouse = Warehouse(tmp_path / "warehouse")
        extract(client_for(sandbox), warehouse, ORDER_ITEM, days(1), REST)
        found = compare_live_ids(client_for(sandbox), warehouse, ORDER_ITEM, REST)
    assert found.missing > 0 and (found.missed, found.gone) == (0, 0)
    assert found.missing_days and max(found.missing_days) < days(1)[0]
    assert len(found.examples["missing"]) == 5
