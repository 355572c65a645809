"""Salesforce error answers, each mapped by simple-salesforce to its own exception."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from tests.conftest import StartSandbox
from tests.sandbox.salesforce import clients


@pytest.fixture(scope="module")
def sf(sandbox):
    return clients.soap_client(sandbox)


def _error(failure: pytest.ExceptionInfo) -> dict[str, str]:
    return failure.value.content[0]


def test_a_syntax_error_is_a_malformed_query(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.query("SELECT Id FORM Account")
    assert _error(failure)["errorCode"] == "MALFORMED_QUERY"


def test_an_unknown_object_is_an_invalid_type(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.query("SELECT Id FROM Invoice__c")
    assert _error(failure)["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'Invoice__c' is not supported" in _error(failure)["message"]


def test_an_unknown_field_is_an_invalid_field_naming_field_and_object(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.query("SELECT Id, Regoin__c FROM Account")
    assert _error(failure)["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Regoin__c' on entity 'Account'" in _error(failure)["message"]
    assert "ERROR at Row:1:Column:12" in _error(failure)["message"]


def test_a_stale_query_locator_is_invalid(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.query_more("01g8d0000000001AAA-2000")
    assert _error(failure)["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_an_unknown_resource_is_not_found(sf):
    with pytest.raises(SalesforceResourceNotFound) as failure:
        sf.restful("nothing/here")
    assert _error(failure)["errorCode"] == "NOT_FOUND"


def test_an_unknown_bulk_job_is_not_found(sf):
    with pytest.raises(SalesforceResourceNotFound):
        sf.bulk2.Account._client.get_job("7508d0000000001AAA", True)


def test_an_exhausted_daily_quota_is_refused_with_request_limit_exceeded(
    start_sandbox: StartSandbox,
):
    with start_sandbox(daily_api_requests=3) as sandbox:
        sf = clients.session_client(sandbox, clients.soap_client(sandbox).session_id)
        for _ in range(3):
            sf.query("SELECT Id FROM Account LIMIT 1")
        with pytest.raises(SalesforceRefusedRequest) as failure:
            sf.query("SELECT Id FROM Account LIMIT 1")
        assert failure.value.status == 403
        assert _error(failure) == {
            "message": "TotalRequests Limit exceeded.",
            "errorCode": "REQUEST_LIMIT_EXCEEDED",
        }


def test_a_server_error_is_a_general_error(start_sandbox: StartSandbox):
    with start_sandbox(faults={"http500": 1.0}) as sandbox:
        sf = clients.soap_client(sandbox)
        with pytest.raises(SalesforceGeneralError) as failure:
            sf.query("SELECT Id FROM Account")
        assert failure.value.status == 500
        assert _error(failure)["errorCode"] == "UNKNOWN_EXCEPTION"
