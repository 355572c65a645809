"""Field plans resolved against describe."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.extract.errors import FieldNotFound
from pipeline.extract.objects import SourceObject
from pipeline.extract.plan import plan_fields
from pipeline.sandbox.salesforce.describe import object_describe
from pipeline.sandbox.salesforce.schema import demo_schema

SCHEMA = demo_schema().visible_to_integration_user()


def describe(name: str) -> dict:
    obj = SCHEMA.sobject(name)
    assert obj is not None, name
    return object_describe(SCHEMA, obj, "59.0")


def test_id_stamp_and_is_deleted_always_come_first():
    plan = plan_fields(SourceObject("Account", ("Name",)), describe)
    assert [c.path for c in plan.columns][:3] == ["Id", "SystemModstamp", "IsDeleted"]


def test_relationship_paths_bring_each_parent_s_stamp():
    source = SourceObject(
        "OrderItem", ("Product2.Name", "Order.OrderNumber", "Order.Account.Tier__c")
    )
    plan = plan_fields(source, describe)
    assert plan.parents == ("Product2", "Order", "Order.Account")
    assert plan.stamps == (
        "SystemModstamp",
        "Product2.SystemModstamp",
        "Order.SystemModstamp",
        "Order.Account.SystemModstamp",
    )
    assert plan.column("Order.Account.SystemModstamp").duckdb_type == "TIMESTAMP"


def test_the_stamps_of_written_back_objects_name_the_writer_whose_changes_they_skip():
    source = SourceObject("OrderItem", ("Product2.Name", "Order.Account.Tier__c"))
    plan = plan_fields(
        source,
        describe,
        writer="005000000000001AAA",
        written_back={"OrderItem", "Account"},
        written_since=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )
    assert plan.writer == "005000000000001AAA"
    assert plan.written == ("SystemModstamp", "Order.Account.SystemModstamp")


def test_before_any_write_back_no_stamp_skips_anything():
    plan = plan_fields(
        SourceObject("OrderItem", ("Product2.Name",)),
        describe,
        writer="005000000000001AAA",
        written_back={"OrderItem"},
    )
    assert plan.writer is None and plan.written == ()


def test_without_a_writer_no_stamp_skips_anything():
    plan = plan_fields(
        SourceObject("OrderItem", ("Product2.Name",)), describe, written_back={"OrderItem"}
    )
    assert plan.writer is None and plan.written == ()


def test_paths_are_matched_case_insensitively_and_named_canonically():
    plan = plan_fields(SourceObject("OrderItem", ("order.account.region__c",)), describe)
    assert "Order.Account.Region__c" in [c.path for c in plan.columns]


def test_types_come_from_describe():
    fields = ("Quantity", "ServiceDate", "Order.Sync_To_M3ter__c", "OrderId")
    plan = plan_fields(SourceObject("OrderItem", fields), describe)
    types = {c.path: c.duckdb_type for c in plan.columns}
    assert types["Quantity"] == "DOUBLE"
    assert types["ServiceDate"] == "DATE"
    assert types["Order.Sync_To_M3ter__c"] == "BOOLEAN"
    assert types["OrderId"] == "VARCHAR"


def test_custom_metadata_takes_every_field_and_has_no_is_deleted():
    plan = plan_fields(
        SourceObject("PricingMapping__mdt", partitioned=False, all_fields=True), describe
    )
    paths = [c.path for c in plan.columns]
    assert "Segments__c" in paths and "IsDeleted" not in paths
    assert not plan.soft_delete


def test_an_unknown_field_names_object_and_field():
    with pytest.raises(
        FieldNotFound,
        match=r"OrderItem: cannot select 'Nope__c'.*OrderItem has "
        r"no field 'Nope__c'",
    ):
        plan_fields(SourceObject("OrderItem", ("Nope__c",)), describe)


def test_a_field_hidden_by_field_level_security_is_missing():
    with pytest.raises(FieldNotFound, match=r"Account has no field 'Credit_Rating__c'"):
        plan_fields(SourceObject("OrderItem", ("Order.Account.Credit_Rating__c",)), describe)


def test_an_unknown_relationship_is_named():
    with pytest.raises(FieldNotFound, match=r"Order has no relationship 'Acount'"):
        plan_fields(SourceObject("OrderItem", ("Order.Acount.Name",)), describe)


def test_every_object_the_shipped_mappings_name_resolves_against_the_demo_org():
    from tests.shipped import shipped

    for source in shipped().objects:
        assert plan_fields(source, describe, shipped().fields(source.name)).columns
