"""Bulk API 2.0 query jobs through simple-salesforce's bulk2 handler."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.sandbox.salesforce import clients

SOQL = "SELECT Id, Order.Account.Region__c, Product2.ProductCode, Quantity FROM OrderItem"


@pytest.fixture(scope="module")
def sf(sandbox):
    return clients.soap_client(sandbox)


def _rows(pages: list[str], delimiter: str = ",") -> list[dict[str, str]]:
    return [row for page in pages for row in csv.DictReader(io.StringIO(page), delimiter=delimiter)]


def test_a_query_is_served_over_several_pages_each_with_a_header(sf):
    pages = list(sf.bulk2.OrderItem.query(SOQL, max_records=1000, wait=0))
    assert len(pages) >= 3
    assert all(
        page.startswith('"Id","Order.Account.Region__c","Product2.ProductCode","Quantity"\n')
        for page in pages
    )


def test_bulk_rows_equal_rest_rows(sf):
    rows = _rows(list(sf.bulk2.OrderItem.query(SOQL, max_records=1000, wait=0)))
    rest = sf.query_all(SOQL)["records"]
    assert len(rows) == len(rest)
    by_id = {r["Id"]: r for r in rows}
    for record in rest[:200]:
        row = by_id[record["Id"]]
        region = (record["Order"]["Account"] or {}).get("Region__c") if record["Order"] else None
        assert row["Order.Account.Region__c"] == (region or "")
        assert float(row["Quantity"]) == record["Quantity"]


def test_every_value_is_quoted_and_a_null_is_an_empty_quoted_value(sf):
    page = next(
        iter(
            sf.bulk2.Account.query(
                "SELECT Id, Region__c FROM Account WHERE Region__c = null", wait=0
            )
        )
    )
    lines = page.splitlines()
    assert len(lines) > 1
    assert all(line.startswith('"') and line.endswith('""') for line in lines[1:])


def test_query_all_brings_deleted_rows_and_query_does_not(sf):
    soql = "SELECT Id, IsDeleted FROM OrderItem"
    live = _rows(list(sf.bulk2.OrderItem.query(soql, wait=0)))
    every = _rows(list(sf.bulk2.OrderItem.query_all(soql, wait=0)))
    assert {r["IsDeleted"] for r in live} == {"false"}
    assert {r["IsDeleted"] for r in every} == {"false", "true"}
    assert len(every) > len(live)


def test_download_writes_one_file_per_page(sf, tmp_path):
    results = sf.bulk2.OrderItem.download(SOQL, path=str(tmp_path), max_records=1000, wait=0)
    assert len(results) >= 3
    assert sum(r["number_of_records"] for r in results) == sum(
        len(_rows([Path(r["file"]).read_text()])) for r in results
    )
    assert results[-1]["locator"] == ""


def test_column_delimiter_and_line_ending_are_honoured(sf):
    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name FROM Account LIMIT 5",
            column_delimiter=ColumnDelimiter.PIPE,
            line_ending=LineEnding.CRLF,
            wait=0,
        )
    )
    assert pages[0].startswith('"Id"|"Name"\r\n')
    assert len(_rows(pages, delimiter="|")) == 5


def test_custom_metadata_is_refused_by_the_bulk_api(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        list(sf.bulk2.PricingMapping__mdt.query("SELECT Id FROM PricingMapping__mdt", wait=0))
    assert failure.value.content[0]["errorCode"] == "INVALIDENTITY"


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT COUNT() FROM Account",
        "SELECT Id FROM Account LIMIT 5 OFFSET 5",
        "SELECT Id, (SELECT Id FROM Orders) FROM Account",
        "SELECT Region__c, COUNT(Id) FROM Account GROUP BY Region__c",
    ],
)
def test_soql_the_bulk_api_does_not_support_is_refused(sf, soql):
    with pytest.raises(SalesforceMalformedRequest):
        list(sf.bulk2.Account.query(soql, wait=0))


def test_an_unknown_field_is_refused_when_the_job_is_created(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        list(sf.bulk2.Account.query("SELECT Id, Nope__c FROM Account", wait=0))
    assert failure.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_job_info_reports_the_processed_record_count(sf):
    job = sf.bulk2.Account._client.create_job("query", "SELECT Id FROM Account", "COMMA", "LF")
    final = sf.bulk2.Account._client.wait_for_job(job["id"], True, 0)
    assert final == "JobComplete"
    info = sf.bulk2.Account._client.get_job(job["id"], True)
    assert info["object"] == "Account" and info["numberRecordsProcessed"] > 0
