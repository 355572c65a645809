"""REST query, queryAll, records and limits, through simple-salesforce."""

from __future__ import annotations

import datetime as dt

import pytest
from simple_salesforce.exceptions import SalesforceResourceNotFound

from pipeline.salesforce.ids import is_valid_id
from tests.sandbox.salesforce import clients


@pytest.fixture(scope="module")
def sf(sandbox):
    return clients.soap_client(sandbox)


def _org_count(sandbox, sql: str) -> int:
    return sandbox.salesforce.org.db.cursor().execute(sql).fetchone()[0]


def test_query_returns_a_page_of_2000_and_a_next_records_url(sf):
    page = sf.query("SELECT Id FROM OrderItem")
    assert len(page["records"]) == 2000
    assert page["done"] is False
    assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert page["totalSize"] > 2000


def test_query_more_follows_the_next_records_url(sf):
    first = sf.query("SELECT Id FROM OrderItem")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["done"] is True
    assert len(first["records"]) + len(second["records"]) == first["totalSize"]
    assert not {r["Id"] for r in first["records"]} & {r["Id"] for r in second["records"]}


def test_query_all_pages_through_every_live_record(sf, sandbox):
    result = sf.query_all("SELECT Id FROM OrderItem")
    expected = _org_count(sandbox, 'SELECT count(*) FROM org."OrderItem" WHERE NOT "IsDeleted"')
    assert result["totalSize"] == expected == len({r["Id"] for r in result["records"]})


def test_deleted_records_come_only_through_query_all(sf, sandbox):
    deleted = _org_count(sandbox, 'SELECT count(*) FROM org."OrderItem" WHERE "IsDeleted"')
    assert deleted > 0
    soql = "SELECT Id FROM OrderItem WHERE IsDeleted = true"
    assert sf.query_all(soql)["totalSize"] == 0
    assert sf.query_all(soql, include_deleted=True)["totalSize"] == deleted


def test_query_all_paging_keeps_the_query_all_locator(sf):
    page = sf.query("SELECT Id FROM OrderItem", include_deleted=True)
    assert "/queryAll/01g" in page["nextRecordsUrl"]


def test_records_carry_attributes_and_nested_parent_records(sf):
    record = sf.query(
        "SELECT Id, Order.Account.Region__c, Quantity FROM OrderItem "
        "WHERE Order.Account.Region__c != null LIMIT 1"
    )["records"][0]
    assert list(record) == ["attributes", "Id", "Order", "Quantity"]
    assert record["attributes"] == {
        "type": "OrderItem",
        "url": f"/services/data/v59.0/sobjects/OrderItem/{record['Id']}",
    }
    account = record["Order"]["Account"]
    assert account["attributes"]["type"] == "Account"
    assert account["Region__c"] in {"NA", "EMEA", "APAC", "LATAM"}
    assert isinstance(record["Quantity"], float)


def test_a_null_lookup_is_null(sf):
    record = sf.query(
        "SELECT Id, Contract.ContractNumber FROM Order WHERE ContractId = null LIMIT 1"
    )["records"][0]
    assert record["Contract"] is None


def test_count_query_returns_the_total_without_records(sf, sandbox):
    result = sf.query("SELECT COUNT() FROM Account")
    assert result["records"] == []
    assert result["totalSize"] == _org_count(
        sandbox, 'SELECT count(*) FROM org."Account" WHERE NOT "IsDeleted"'
    )


def test_datetimes_and_dates_use_the_rest_formats(sf):
    record = sf.query("SELECT SystemModstamp, EffectiveDate FROM Order LIMIT 1")["records"][0]
    assert len(record["SystemModstamp"]) == 28 and record["SystemModstamp"].endswith("+0000")
    assert len(record["EffectiveDate"]) == 10


def test_a_record_is_retrieved_by_id(sf):
    record_id = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    record = sf.Account.get(record_id)
    assert record["Id"] == record_id
    assert record["attributes"]["type"] == "Account"
    assert "Region__c" in record


def test_a_record_is_retrieved_by_its_15_character_id(sf):
    record_id = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    assert sf.Account.get(record_id[:15])["Id"] == record_id


def test_a_missing_record_raises_resource_not_found(sf):
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000000AAA")


def test_ids_are_valid_18_character_ids_with_the_object_prefix(sf):
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Opportunity LIMIT 50")["records"]]
    assert all(is_valid_id(i) and len(i) == 18 and i.startswith("006") for i in ids)


def test_system_modstamp_is_never_before_last_modified_date(sf):
    result = sf.query_all("SELECT LastModifiedDate, SystemModstamp FROM Order")
    assert all(r["SystemModstamp"] >= r["LastModifiedDate"] for r in result["records"])


def test_custom_metadata_records_are_queried_through_rest(sf):
    result = sf.query_all(
        "SELECT DeveloperName, Source_Object__c, Segments__c FROM PricingMapping__mdt"
    )
    assert result["totalSize"] > 0
    assert result["records"][0]["attributes"]["type"] == "PricingMapping__mdt"


def test_limits_report_the_daily_api_requests(sf):
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000
    assert 0 < limits["DailyApiRequests"]["Remaining"] < 100_000


def test_every_rest_answer_reports_api_usage(sf):
    sf.query("SELECT Id FROM Account LIMIT 1")
    usage = sf.api_usage["api-usage"]
    assert usage.total == 100_000 and usage.used > 0


def test_is_sandbox_answers_from_the_organization_record(sf):
    assert sf.is_sandbox() is True


def test_the_org_s_history_ends_yesterday_and_its_first_day_is_published(sf, sandbox):
    today = dt.datetime.now(dt.UTC).date()
    latest = _org_count(sandbox, 'SELECT max("SystemModstamp") FROM org."OrderItem"')
    assert latest < dt.datetime.combine(today, dt.time())
    first = sandbox.salesforce.org.history_from
    assert sandbox.info()["salesforce"]["history_from"] == first.isoformat()
    assert first < latest.date()
