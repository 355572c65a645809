"""The Salesforce DX package `m3sync setup salesforce` writes from the mappings."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as ET

from pipeline.mapping.compiler import compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.mapping.metadata import type_fields
from pipeline.mapping.writeback import STATUSES
from pipeline.sandbox.salesforce.describe import demo_describe, object_describe
from pipeline.sandbox.salesforce.schema import Field, custom_object, demo_schema
from pipeline.setup.package import PERMISSION_SET, fields_table, write_package
from tests.shipped import MAPPINGS_DIR

README = Path(__file__).resolve().parents[2] / "README.md"
NS = {"md": "http://soap.sforce.com/2006/04/metadata"}
DEFAULT = "force-app/main/default"

SUBSCRIPTIONS = custom_object(
    "Subscription__c",
    "a01",
    Field("Account__c", "reference", reference_to=("Account",), relationship_name="Account__r"),
    Field("Unit_Price__c", "currency"),
    Field("SBQQ__Quantity__c", "double"),
)
CUSTOM_PRICING = """
- name: Subscription_Pricing
  object: Subscription__c
  sync_level: line_item
  agreement: Account__c
  where: SBQQ__Quantity__c > 0
  fields:
    planCode: Id
    unitPrice: Unit_Price__c
    startDate: Account__r.CreatedDate
"""


def _org_describe(name: str) -> dict[str, Any]:
    schema = demo_schema().with_objects((SUBSCRIPTIONS,)).visible_to_integration_user()
    obj = schema.sobject(name)
    if obj is None:
        raise KeyError(name)
    return object_describe(schema, obj, "65.0")


def _package(tmp_path: Path, mappings: Path = MAPPINGS_DIR, describe=demo_describe) -> Path:
    out = tmp_path / "package"
    found = load_mappings(mappings)
    write_package(out, compile_mappings(found, describe), describe, writeback=found.writeback)
    return out


def _custom_mappings(tmp_path: Path) -> Path:
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS_DIR, mappings)
    pricings = mappings / "pricings.yaml"
    pricings.write_text(pricings.read_text() + textwrap.dedent(CUSTOM_PRICING))
    return mappings


def _files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}


def _permissions(out: Path) -> ET.Element:
    return ET.parse(
        out / DEFAULT / "permissionsets" / f"{PERMISSION_SET}.permissionset-meta.xml"
    ).getroot()


def test_every_file_is_well_formed_metadata_xml(tmp_path):
    out = _package(tmp_path)
    for path in (out / DEFAULT).rglob("*.xml"):
        assert ET.parse(path).getroot().tag.startswith("{" + NS["md"] + "}")


def test_every_custom_field_the_shipped_mappings_read_is_created(tmp_path):
    out = _package(tmp_path)
    created = {
        p.parent.parent.name + "." + p.name.split(".")[0]
        for p in (out / DEFAULT).glob("objects/*/fields/*.xml")
    }
    assert {
        "Account.Region__c",
        "Order.Sync_To_M3ter__c",
        "Product2.M3ter_Aggregation_Code__c",
    } <= created
    assert "OrderItem.UnitPrice" not in created  # standard fields exist in every org


def test_the_mapping_types_come_with_every_field_the_reader_reads(tmp_path):
    out = _package(tmp_path)
    for type_name, fields in type_fields().items():
        folder = out / DEFAULT / "objects" / type_name
        assert (folder / f"{type_name}.object-meta.xml").is_file()
        assert {p.name.split(".")[0] for p in (folder / "fields").iterdir()} == {
            f.name for f in fields
        }


def _status_fields() -> set[tuple[str, str]]:
    return {
        (row.object, name)
        for row in load_mappings(MAPPINGS_DIR).writeback
        for name in row.fields().values()
    }


def test_the_permission_set_names_only_fields_that_exist_or_are_created(tmp_path):
    out = _package(tmp_path)
    root = _permissions(out)
    created = {
        (p.parent.parent.name, p.name.split(".")[0])
        for p in (out / DEFAULT / "objects").glob("*/fields/*.field-meta.xml")
    }
    for element in root.findall("md:fieldPermissions", NS):
        sobject, name = element.findtext("md:field", namespaces=NS).split(".")
        assert (sobject, name) in created or name in {
            f["name"] for f in demo_describe(sobject)["fields"]
        }


def test_the_integration_user_edits_only_the_status_fields_it_writes_back(tmp_path):
    root = _permissions(_package(tmp_path))
    edited = {
        tuple(e.findtext("md:field", namespaces=NS).split("."))
        for e in root.findall("md:fieldPermissions", NS)
        if e.findtext("md:editable", namespaces=NS) == "true"
    }
    assert edited == _status_fields()


def test_the_status_fields_are_created_as_m3sync_declares_them(tmp_path):
    out = _package(tmp_path)
    status = (
        out / DEFAULT / "objects" / "OrderItem" / "fields" / "M3ter_Sync_Status__c.field-meta.xml"
    )
    root = ET.parse(status).getroot()
    assert root.findtext("md:type", namespaces=NS) == "Picklist"
    values = [v.findtext("md:fullName", namespaces=NS) for v in root.iter(f"{{{NS['md']}}}value")]
    assert values == list(STATUSES)


def test_the_integration_user_reads_and_sees_all_records_and_edits_only_written_objects(tmp_path):
    root = _permissions(_package(tmp_path))
    objects = {
        e.findtext("md:object", namespaces=NS): e for e in root.findall("md:objectPermissions", NS)
    }
    assert {"Account", "Order", "OrderItem", "Product2"} <= set(objects)
    written = {sobject for sobject, _ in _status_fields()}
    for sobject, element in objects.items():
        assert element.findtext("md:allowRead", namespaces=NS) == "true"
        assert element.findtext("md:viewAllRecords", namespaces=NS) == "true"
        assert element.findtext("md:allowEdit", namespaces=NS) == str(sobject in written).lower()
        assert element.findtext("md:allowCreate", namespaces=NS) == "false"


def test_a_new_mapping_on_a_custom_object_adds_the_object_and_its_fields(tmp_path):
    before = _files(_package(tmp_path / "a", describe=_org_describe))
    after = _files(_package(tmp_path / "b", _custom_mappings(tmp_path), describe=_org_describe))
    added = set(after) - set(before)
    assert {
        f"{DEFAULT}/objects/Subscription__c/Subscription__c.object-meta.xml",
        f"{DEFAULT}/objects/Subscription__c/fields/Account__c.field-meta.xml",
        f"{DEFAULT}/objects/Subscription__c/fields/Unit_Price__c.field-meta.xml",
    } == added
    assert (
        "Subscription__c.Unit_Price__c"
        in after[f"{DEFAULT}/permissionsets/{PERMISSION_SET}.permissionset-meta.xml"]
    )


def test_a_managed_package_s_fields_are_granted_but_never_created(tmp_path):
    out = _package(tmp_path, _custom_mappings(tmp_path), describe=_org_describe)
    assert not (
        out / DEFAULT / "objects/Subscription__c/fields/SBQQ__Quantity__c.field-meta.xml"
    ).exists()
    fields = {
        e.findtext("md:field", namespaces=NS)
        for e in _permissions(out).findall("md:fieldPermissions", NS)
    }
    assert "Subscription__c.SBQQ__Quantity__c" in fields


def test_a_lookup_names_its_target_and_relationship(tmp_path):
    out = _package(tmp_path, _custom_mappings(tmp_path), describe=_org_describe)
    root = ET.parse(
        out / DEFAULT / "objects/Subscription__c/fields/Account__c.field-meta.xml"
    ).getroot()
    assert root.findtext("md:type", namespaces=NS) == "Lookup"
    assert root.findtext("md:referenceTo", namespaces=NS) == "Account"
    assert root.findtext("md:relationshipName", namespaces=NS) == "Account"


def test_a_formula_field_the_mappings_read_is_created_with_its_formula(tmp_path):
    out = _package(tmp_path, MAPPINGS_DIR / "examples" / "cpq")
    root = ET.parse(
        out / DEFAULT / "objects/SBQQ__QuoteLine__c/fields/M3ter_Monthly_Amount__c.field-meta.xml"
    ).getroot()
    assert root.findtext("md:type", namespaces=NS) == "Currency"
    assert root.findtext("md:formula", namespaces=NS) == (
        "SBQQ__Quantity__c * SBQQ__NetPrice__c / SBQQ__ProrateMultiplier__c"
    )
    assert root.findtext("md:scale", namespaces=NS) == "6"
    assert root.find("md:required", NS) is None
    assert not (
        out / DEFAULT / "objects/SBQQ__QuoteLine__c/fields/SBQQ__Quantity__c.field-meta.xml"
    ).exists()


def test_the_readme_lists_the_fields_the_shipped_mappings_need():
    table = fields_table(
        compile_mappings(load_mappings(MAPPINGS_DIR), demo_describe), demo_describe
    )
    text = README.read_text()
    match = re.search(r"<!-- setup-fields -->\n(.*?)\n<!-- /setup-fields -->", text, re.S)
    assert match is not None, "README lacks the generated field table"
    assert match.group(1).strip() == table, "regenerate with: m3sync setup salesforce --table"
