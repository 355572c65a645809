"""QUERY_TIMEOUT: a non-selective query over too many rows fails as Salesforce answers it, over
REST and as a Bulk API 2.0 job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceOperationError

from tests.sandbox.salesforce import clients

# Matches every OrderItem (an OR through the Order relationship: no index serves it).
SCAN = (
    "SELECT Id FROM OrderItem WHERE (SystemModstamp >= 2000-01-01T00:00:00Z) "
    "OR (Order.SystemModstamp >= 2000-01-01T00:00:00Z)"
)


@pytest.fixture
def sf(sandbox) -> Iterator[object]:
    """The session's sandbox, timing out past 100 rows for the test's length."""
    org = sandbox.salesforce.org
    org.query_timeout_rows = 100
    try:
        yield clients.soap_client(sandbox)
    finally:
        org.query_timeout_rows = None


def test_a_query_oring_a_parent_s_field_over_the_limit_answers_400_query_timeout(sf):
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query(SCAN)
    assert raised.value.status == 400
    assert raised.value.content[0]["errorCode"] == "QUERY_TIMEOUT"


def test_its_count_answers_though_its_rows_time_out(sf):
    counted = sf.query("SELECT COUNT() " + SCAN[SCAN.index("FROM") :])
    assert counted["totalSize"] > 100


def test_as_a_bulk_job_it_ends_failed_naming_query_timeout(sf):
    with pytest.raises(SalesforceOperationError, match="QUERY_TIMEOUT"):
        list(sf.bulk2.OrderItem.query(SCAN, wait=0))


def test_a_filter_on_the_object_s_own_fields_never_times_out(sf):
    rows = sf.query_all("SELECT Id FROM OrderItem WHERE SystemModstamp >= 2000-01-01T00:00:00Z")
    assert rows["totalSize"] > 100


def test_the_same_filter_narrowed_by_id_range_under_the_limit_answers(sf):
    first = sf.query("SELECT Id FROM OrderItem ORDER BY Id LIMIT 1")["records"][0]["Id"]
    narrowed = SCAN.replace("WHERE ", f"WHERE Id >= '{first[:15]}' AND Id < '{first[:14]}z' AND (")
    rows = sf.query_all(narrowed + ")")
    assert 0 < rows["totalSize"] <= 100
    assert all(first[:14] <= r["Id"][:15] < first[:14] + "z" for r in rows["records"])
