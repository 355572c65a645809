"""The code location: its assets follow the mappings it loads with."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from assets.definitions import defs
from assets.staging import REJECT_CHECK
from pipeline.mapping.spec import ENTITIES
from tests.shipped import MAPPINGS_DIR, shipped

CUSTOM_PRICING = """
- name: Subscription_Pricing
  object: Subscription__c
  sync_level: line_item
  fields:
    planCode: Plan_Code__c
    aggregationCode: Aggregation_Code__c
    startDate: Start_Date__c
    unitPrice: Unit_Price__c
"""


def _graph(definitions: dg.Definitions):  # type: ignore[no-untyped-def]
    dg.Definitions.validate_loadable(definitions)
    return definitions.resolve_asset_graph()


def _raw_keys(definitions: dg.Definitions) -> set[str]:
    keys = _graph(definitions).get_all_asset_keys()
    return {key.to_user_string() for key in keys if key.path[0] == "raw"}


@pytest.fixture
def custom_mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped mappings plus a pricing mapping on a custom object no code names."""
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS_DIR, mappings)
    pricings = mappings / "pricings.yaml"
    pricings.write_text(pricings.read_text() + CUSTOM_PRICING)
    monkeypatch.setenv("M3SYNC_MAPPINGS_DIR", str(mappings))
    return mappings


def test_the_code_location_has_a_raw_asset_per_object_the_mappings_name():
    assert _raw_keys(defs()) == {f"raw/{obj.table}" for obj in shipped().objects}


def test_objects_only_reference_entities_map_are_read_whole():
    graph = _graph(defs())
    assert graph.get(dg.AssetKey(["raw", "product2"])).partitions_def is None
    assert graph.get(dg.AssetKey(["raw", "order_item"])).partitions_def is not None


def test_a_mapping_on_a_custom_object_adds_its_extract_and_feeds_its_entity(custom_mappings):
    definitions = defs()
    assert "raw/subscription_c" in _raw_keys(definitions)
    staged = _graph(definitions).get(dg.AssetKey(["staged", "pricings"]))
    assert dg.AssetKey(["raw", "subscription_c"]) in staged.parent_keys


def test_a_staged_asset_reads_only_the_objects_its_mappings_name():
    staged = _graph(defs()).get(dg.AssetKey(["staged", "accounts"]))
    assert staged.parent_keys == {dg.AssetKey(["raw", "account"])}


def test_the_code_location_has_a_staged_asset_with_a_blocking_check_per_entity():
    graph = _graph(defs())
    staged = {key.path[1] for key in graph.get_all_asset_keys() if key.path[0] == "staged"}
    assert staged == set(ENTITIES)
    checks = [c for c in graph.asset_check_keys if c.name == REJECT_CHECK]
    assert len(checks) == len(staged)


def test_the_write_back_asset_exists_only_when_runs_write_back(monkeypatch):
    writeback = dg.AssetKey(["salesforce", "writeback"])
    monkeypatch.delenv("M3SYNC_WRITEBACK", raising=False)
    assert writeback not in _graph(defs()).get_all_asset_keys()
    monkeypatch.setenv("M3SYNC_WRITEBACK", "1")
    node = _graph(defs()).get(writeback)
    assert node.parent_keys == {dg.AssetKey(["m3ter", entity]) for entity in ENTITIES}
    assert node.partitions_def is None, "it writes whatever changed, whichever partitions ran"
