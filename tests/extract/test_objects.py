"""The extracted objects are those the mappings name, custom and managed-package ones included."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from pipeline.extract.objects import source_objects
from pipeline.extract.run import ExtractSettings, extract, plan_all
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings as m3ter_settings
from pipeline.mapping.compiler import compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.mapping.spec import MappingRecord, MappingSet
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import sandbox_settings
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import running_sandbox
from pipeline.staging.stage import stage
from pipeline.warehouse import Warehouse


def _set(**records: list[tuple[str, str]]) -> MappingSet:
    """entity -> [(mapping name, object)]"""
    return MappingSet(
        {
            entity: [
                MappingRecord(
                    name,
                    obj,
                    sync_level="line_item" if entity not in ("accounts", "contracts") else None,
                    fields={},
                )
                if entity not in ("accounts", "contracts", "compound_aggregations")
                else MappingRecord(name, obj)
                for name, obj in items
            ]
            for entity, items in records.items()
        }
    )


def test_every_object_an_active_mapping_names_is_extracted_once():
    objects = source_objects(
        _set(
            accounts=[("A", "Account")],
            pricings=[("Q", "SBQQ__Subscription__c"), ("R", "Subscription__c")],
            plans=[("Q", "SBQQ__Subscription__c")],
        )
    )
    assert [o.name for o in objects] == ["Account", "SBQQ__Subscription__c", "Subscription__c"]
    assert [o.table for o in objects] == ["account", "sbqq_subscription_c", "subscription_c"]


def test_an_object_only_reference_entities_map_is_read_whole():
    objects = source_objects(
        _set(compound_aggregations=[("C", "Product2")], pricings=[("P", "OrderItem")])
    )
    assert not objects["Product2"].partitioned and objects["OrderItem"].partitioned
    assert not objects.partitioned("compound_aggregations") and objects.partitioned("pricings")


def test_an_object_a_partitioned_entity_also_maps_is_read_by_partition():
    objects = source_objects(
        _set(compound_aggregations=[("C", "Product2")], plans=[("P", "Product2")])
    )
    assert objects["Product2"].partitioned and objects.partitioned("compound_aggregations")


def test_mapping_types_the_mappings_came_from_are_read_whole_with_every_field():
    objects = source_objects(_set(accounts=[("A", "Account")]), ["AccountMapping__mdt"])
    mdt = objects["AccountMapping__mdt"]
    assert (mdt.partitioned, mdt.all_fields, mdt.table) == (False, True, "account_mapping_mdt")


def test_an_inactive_mapping_s_object_is_not_extracted():
    mappings = MappingSet({"accounts": [MappingRecord("A", "Account", active=False)]})
    assert len(source_objects(mappings)) == 0


OBJECTS = """\
objects:
  - name: Subscription__c
    fields:
      - {name: Account__c, type: reference, reference_to: Account, required: true}
      - {name: Product__c, type: reference, reference_to: Product2}
      - {name: Start_Date__c, type: date}
      - {name: Unit_Price__c, type: currency}
"""
MAPPINGS = {
    "accounts": """\
- name: Subscription_Accounts
  object: Subscription__c
  fields:
    code: Account__c
    name: Account__r.Name
    emailAddress: Account__r.Billing_Email__c
""",
    "plans": """\
- name: Subscriptions
  object: Subscription__c
  sync_level: line_item
  agreement: Account__c
  fields:
    name: Product__r.Name
    planTemplateCode: Product__r.M3ter_Plan_Template_Code__c
""",
    "pricings": """\
- name: Subscriptions
  object: Subscription__c
  sync_level: line_item
  agreement: Account__c
  fields:
    planCode: Id
    aggregationCode: Product__r.M3ter_Aggregation_Code__c
    startDate: Start_Date__c
    unitPrice: Unit_Price__c
""",
    "account_plans": """\
- name: Subscriptions
  object: Subscription__c
  sync_level: line_item
  agreement: Account__c
  fields:
    accountCode: Account__c
    planCode: Id
    startDate: Start_Date__c
""",
}


def test_a_custom_object_only_a_test_org_has_extracts_stages_and_loads(tmp_path: Path):
    (tmp_path / "objects.yaml").write_text(OBJECTS)
    directory = tmp_path / "mappings"
    directory.mkdir()
    for entity, text in MAPPINGS.items():
        (directory / f"{entity}.yaml").write_text(textwrap.dedent(text))
    salesforce = SalesforceConfig(
        state_dir=tmp_path / "salesforce", accounts=3, seed=3, objects=tmp_path / "objects.yaml"
    )
    m3ter = M3terConfig(state_dir=tmp_path / "m3ter")
    with running_sandbox(tmp_path, salesforce=salesforce, m3ter=m3ter) as running:
        info = running.info()
        sf = SalesforceClient(sandbox_settings(info["salesforce"]))
        accounts = sf.query_records(
            "SELECT Id FROM Account WHERE Billing_Email__c != null ORDER BY Id LIMIT 2"
        )
        (product,) = sf.query_records(
            "SELECT Id FROM Product2 WHERE M3ter_Aggregation_Code__c = 'transfer_gb' LIMIT 1"
        )
        for n, account in enumerate(accounts, start=1):
            sf.salesforce.Subscription__c.create(
                {
                    "Name": f"S-{n}",
                    "Account__c": account["Id"],
                    "Product__c": product["Id"],
                    "Start_Date__c": "2024-01-01",
                    "Unit_Price__c": 0.5 * n,
                }
            )
        today = dt.datetime.now(dt.UTC).date().isoformat()
        warehouse = Warehouse(tmp_path / "warehouse")
        compiled = compile_mappings(load_mappings(directory), sf.describe)
        assert [o.name for o in compiled.objects] == ["Subscription__c"]
        plans = plan_all(sf, compiled.objects, compiled.fields)
        for obj in compiled.objects:
            extract(sf, warehouse, obj, [today], ExtractSettings(), plan=plans[obj.name])
        m3ter_client = M3terClient(m3ter_settings(info["m3ter"]))
        outcomes = {}
        for entity in ("accounts", "plans", "pricings", "account_plans"):
            stage(warehouse, compiled[entity], [today])
            outcomes[entity] = load(m3ter_client, warehouse, entity, [today]).outcomes
        assert outcomes == {entity: {"create:applied": 2} for entity in outcomes}
        prices = sorted(p["pricingBands"][0]["unitPrice"] for p in m3ter_client.list("pricings"))
        assert prices == pytest.approx([0.5, 1.0])
