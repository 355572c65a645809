"""Bulk API 2.0 ingest jobs through simple-salesforce's bulk2 handler."""

from __future__ import annotations

import csv
import io
import itertools

import pytest
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceResourceNotFound,
)

WAIT = 0.05  # seconds simple-salesforce waits before its first poll
_accounts = itertools.count()


@pytest.fixture(scope="module")
def account_ids(sf) -> list[str]:
    return [r["Id"] for r in sf.query("SELECT Id FROM Account ORDER BY Id DESC")["records"]]


def _take(account_ids: list[str], count: int) -> list[str]:
    """Live accounts no other test of the module writes."""
    return [account_ids[next(_accounts)] for _ in range(count)]


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _values(sf, ids: list[str], fields: str) -> dict[str, dict]:
    quoted = ", ".join(f"'{i}'" for i in ids)
    soql = f"SELECT Id, {fields} FROM Account WHERE Id IN ({quoted})"
    return {r["Id"]: r for r in sf.query_all(soql, include_deleted=True)["records"]}


def test_a_bulk_update_reports_its_successful_and_failed_records(sf, account_ids, tmp_path):
    good, bad = _take(account_ids, 2)
    upload = tmp_path / "update.csv"
    upload.write_text(
        _csv(
            [
                {"Id": good, "M3ter_Sync_Status__c": "Success", "M3ter_Id__c": "b-1"},
                {"Id": bad, "M3ter_Sync_Status__c": "Bogus", "M3ter_Id__c": "b-2"},
            ]
        )
    )
    (result,) = sf.bulk2.Account.update(csv_file=str(upload), wait=WAIT)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (2, 1)
    (success,) = _rows(sf.bulk2.Account.get_successful_records(result["job_id"]))
    assert (success["sf__Id"], success["sf__Created"], success["M3ter_Id__c"]) == (
        good,
        "false",
        "b-1",
    )
    (failure,) = _rows(sf.bulk2.Account.get_failed_records(result["job_id"]))
    assert failure["Id"] == bad
    assert failure["sf__Error"] == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:m3ter Sync Status: bad value for restricted "
        "picklist field: Bogus:M3ter_Sync_Status__c --"
    )
    values = _values(sf, [good, bad], "M3ter_Id__c")
    assert (values[good]["M3ter_Id__c"], values[bad]["M3ter_Id__c"]) == ("b-1", None)


def test_a_blank_value_keeps_a_field_and_na_empties_it(sf, account_ids):
    (account,) = _take(account_ids, 1)
    sf.bulk2.Account.update(
        records=[{"Id": account, "M3ter_Id__c": "kept", "M3ter_Sync_Message__c": "gone"}],
        wait=WAIT,
    )
    sf.bulk2.Account.update(
        records=[{"Id": account, "M3ter_Id__c": "", "M3ter_Sync_Message__c": "#N/A"}], wait=WAIT
    )
    record = _values(sf, [account], "M3ter_Id__c, M3ter_Sync_Message__c")[account]
    assert (record["M3ter_Id__c"], record["M3ter_Sync_Message__c"]) == ("kept", None)


def test_a_locked_record_fails_in_the_failed_results(sf, org, account_ids):
    (account,) = _take(account_ids, 1)
    org.lock_rows([account])
    (result,) = sf.bulk2.Account.update(records=[{"Id": account, "M3ter_Id__c": "l"}], wait=WAIT)
    (failure,) = _rows(sf.bulk2.Account.get_failed_records(result["job_id"]))
    assert failure["sf__Error"] == (
        "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: "
        f"{account}:--"
    )


def test_an_upsert_job_creates_and_updates_on_the_external_id(sf, account_ids):
    (account,) = _take(account_ids, 1)
    sf.Account.update(account, {"External_Id__c": "BULK-OLD"})
    (result,) = sf.bulk2.Account.upsert(
        records=[
            {"External_Id__c": "BULK-OLD", "Name": "Old Co"},
            {"External_Id__c": "BULK-NEW", "Name": "New Co"},
        ],
        external_id_field="External_Id__c",
        wait=WAIT,
    )
    assert result["numberRecordsFailed"] == 0
    created = {
        r["External_Id__c"]: (r["sf__Id"], r["sf__Created"])
        for r in _rows(sf.bulk2.Account.get_successful_records(result["job_id"]))
    }
    assert created["BULK-OLD"] == (account, "false")
    assert created["BULK-NEW"][1] == "true"
    assert _values(sf, [account], "Name")[account]["Name"] == "Old Co"


def test_an_insert_job_creates_records_and_fails_those_missing_a_required_field(sf, org):
    (result,) = sf.bulk2.Account.insert(
        records=[
            {"Name": "Inserted Co", "M3ter_Sync_Status__c": "Not Synced"},
            {"Name": "", "M3ter_Sync_Status__c": "Not Synced"},
        ],
        wait=WAIT,
    )
    (success,) = _rows(sf.bulk2.Account.get_successful_records(result["job_id"]))
    assert success["sf__Created"] == "true"
    (failure,) = _rows(sf.bulk2.Account.get_failed_records(result["job_id"]))
    assert (
        failure["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    )
    record = _values(sf, [success["sf__Id"]], "Name, CreatedById, IsDeleted")[success["sf__Id"]]
    assert (record["Name"], record["CreatedById"]) == ("Inserted Co", org.integration_user())


def test_an_unknown_column_fails_the_job(sf, account_ids):
    (account,) = _take(account_ids, 1)
    with pytest.raises(SalesforceOperationError) as failure:
        sf.bulk2.Account.update(records=[{"Id": account, "Nope__c": "x"}], wait=WAIT)
    assert "InvalidBatch : Field name not found : Nope__c" in str(failure.value)


def test_an_aborted_job_leaves_every_record_unprocessed(sf, account_ids):
    ids = _take(account_ids, 2)
    client = sf.bulk2.Account._client
    job = client.create_job(Operation.update)
    assert (job["state"], job["jobType"]) == ("Open", "V2Ingest")
    client.upload_job_data(job["id"], _csv([{"Id": i, "M3ter_Id__c": "never"} for i in ids]))
    assert client.abort_job(job["id"], False)["state"] == "Aborted"
    unprocessed = _rows(sf.bulk2.Account.get_unprocessed_records(job["id"]))
    assert sorted(r["Id"] for r in unprocessed) == sorted(ids)
    assert all(v["M3ter_Id__c"] is None for v in _values(sf, ids, "M3ter_Id__c").values())


def test_results_are_refused_until_the_job_completes(sf, account_ids):
    client = sf.bulk2.Account._client
    job = client.create_job(Operation.update)
    client.upload_job_data(job["id"], _csv([{"Id": _take(account_ids, 1)[0], "M3ter_Id__c": "r"}]))
    with pytest.raises(SalesforceGeneralError) as failure:
        sf.bulk2.Account.get_failed_records(job["id"])
    assert failure.value.status == 412
    assert client.close_job(job["id"])["state"] == "UploadComplete"
    assert client.get_job(job["id"], False)["state"] != "JobComplete"  # it takes a moment
    assert client.wait_for_job(job["id"], False, WAIT) == "JobComplete"


def test_a_second_upload_to_a_job_is_refused(sf, account_ids):
    client = sf.bulk2.Account._client
    job = client.create_job(Operation.update)
    data = _csv([{"Id": _take(account_ids, 1)[0], "M3ter_Id__c": "u"}])
    client.upload_job_data(job["id"], data)
    with pytest.raises(SalesforceGeneralError) as failure:
        client.upload_job_data(job["id"], data)
    assert failure.value.content[0]["errorCode"] == "INVALIDJOBSTATE"


def test_hard_delete_removes_a_record_and_delete_keeps_it_in_the_recycle_bin(sf, account_ids):
    binned, gone = _take(account_ids, 2)
    sf.bulk2.Account.delete(records=[{"Id": binned}], wait=WAIT)
    sf.bulk2.Account.hard_delete(records=[{"Id": gone}], wait=WAIT)
    found = _values(sf, [binned, gone], "IsDeleted")
    assert found[binned]["IsDeleted"] is True
    assert gone not in found
    assert sf.query(f"SELECT Id FROM Account WHERE Id = '{binned}'")["totalSize"] == 0


def test_each_ingest_job_spends_a_bulk_api_batch(sf, account_ids):
    before = sf.limits()["DailyBulkApiBatches"]["Remaining"]
    sf.bulk2.Account.update(
        records=[{"Id": _take(account_ids, 1)[0], "M3ter_Id__c": "s"}], wait=WAIT
    )
    assert sf.limits()["DailyBulkApiBatches"]["Remaining"] == before - 1


def test_an_ingest_job_is_refused_when_no_batch_is_left(sf, writable):
    usage = writable.salesforce.usage
    spent = usage.bulk_batches
    usage.bulk_batches = usage.batch_limit
    try:
        with pytest.raises(SalesforceMalformedRequest) as failure:
            sf.bulk2.Account._client.create_job(Operation.update)
    finally:
        usage.bulk_batches = spent
    assert failure.value.content[0]["errorCode"] == "LIMIT_EXCEEDED"


def test_ingest_jobs_are_listed_and_deleted(sf, account_ids):
    (result,) = sf.bulk2.Account.update(
        records=[{"Id": _take(account_ids, 1)[0], "M3ter_Id__c": "d"}], wait=WAIT
    )
    listed = sf.restful("jobs/ingest")["records"]
    assert result["job_id"] in {j["id"] for j in listed}
    assert sf.restful(f"jobs/ingest/{result['job_id']}", method="DELETE") is None
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful(f"jobs/ingest/{result['job_id']}")
