"""Global and per-object describe, and field-level security for the integration user."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from tests.sandbox.salesforce import clients


@pytest.fixture(scope="module")
def sf(sandbox):
    return clients.soap_client(sandbox)


def test_global_describe_lists_standard_objects_and_custom_metadata_types(sf):
    names = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert {
        "Account",
        "Order",
        "OrderItem",
        "Opportunity",
        "Quote",
        "Asset",
        "Contract",
        "Product2",
        "PricingMapping__mdt",
    } <= set(names)
    assert names["OrderItem"]["keyPrefix"] == "802"
    assert names["PricingMapping__mdt"]["custom"] is True


def test_object_describe_gives_types_and_relationships(sf):
    fields = {f["name"]: f for f in sf.OrderItem.describe()["fields"]}
    order = fields["OrderId"]
    assert (order["type"], order["referenceTo"], order["relationshipName"]) == (
        "reference",
        ["Order"],
        "Order",
    )
    assert order["nillable"] is False
    assert fields["UnitPrice"]["type"] == "currency"
    assert fields["ServiceDate"]["type"] == "date"
    assert fields["SystemModstamp"]["type"] == "datetime"


def test_custom_fields_are_flagged_custom(sf):
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert fields["Region__c"]["custom"] is True
    assert fields["Region__c"]["picklistValues"][0]["value"] == "NA"
    assert fields["Name"]["custom"] is False


def test_a_field_hidden_by_field_level_security_is_absent_from_describe(sf):
    fields = {f["name"] for f in sf.Account.describe()["fields"]}
    assert "Region__c" in fields
    assert "Credit_Rating__c" not in fields


def test_a_field_hidden_by_field_level_security_is_rejected_in_soql(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.query("SELECT Id, Credit_Rating__c FROM Account")
    assert failure.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert (
        "No such column 'Credit_Rating__c' on entity 'Account'"
        in failure.value.content[0]["message"]
    )


def test_a_hidden_field_in_a_relationship_path_is_rejected(sf):
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id, Order.Account.Credit_Rating__c FROM OrderItem")


def test_describe_of_an_unknown_object_raises_not_found(sf):
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/Nope__c/describe")
