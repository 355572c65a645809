"""An org's own objects: defined in a YAML file, described, queried and created through the API."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.salesforce.custom_objects import ObjectDefinitionError, load_objects
from pipeline.sandbox.server import running_sandbox
from tests.sandbox.salesforce import clients

DEFINITIONS = """\
objects:
  - name: Subscription__c
    label: Subscription
    fields:
      - {name: Account__c, type: reference, reference_to: Account, required: true}
      - {name: Quantity__c, type: double}
      - {name: Start_Date__c, type: date}
      - {name: Active__c, type: boolean}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "objects.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom-objects")
    config = SalesforceConfig(
        state_dir=root / "salesforce", accounts=3, seed=3, objects=write(root, DEFINITIONS)
    )
    with running_sandbox(root, salesforce=config) as running:
        yield clients.client_credentials_client(running)


def _account(sf) -> str:
    return sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]


def test_a_defined_object_is_described_with_its_relationship(org):
    described = org.Subscription__c.describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert described["custom"] and described["keyPrefix"] == "a01"
    assert fields["Account__c"]["relationshipName"] == "Account__r"
    assert fields["Account__c"]["referenceTo"] == ["Account"]
    assert {"Id", "Name", "OwnerId", "SystemModstamp", "IsDeleted"} <= set(fields)


def test_a_created_record_is_queried_through_its_relationship(org):
    account = _account(org)
    created = org.Subscription__c.create(
        {"Name": "S-1", "Account__c": account, "Quantity__c": 3, "Start_Date__c": "2024-05-01"}
    )
    assert created["success"] and created["id"].startswith("a01")
    (row,) = org.query(
        "SELECT Account__r.Id, Quantity__c, Start_Date__c, Active__c, SystemModstamp "
        f"FROM Subscription__c WHERE Id = '{created['id']}'"
    )["records"]
    assert row["Account__r"]["Id"] == account
    assert (row["Quantity__c"], row["Start_Date__c"], row["Active__c"]) == (3, "2024-05-01", False)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Name": "S", "Account__c": None}, "REQUIRED_FIELD_MISSING"),
        ({"Name": "S", "Account__c": "001000000000000"}, "INVALID_CROSS_REFERENCE_KEY"),
        ({"Name": "S", "Account__c": "nope"}, "MALFORMED_ID"),
        ({"Name": "S", "Nope__c": 1}, "INVALID_FIELD"),
        (
            {"Name": "S", "SystemModstamp": "2024-01-01T00:00:00Z"},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
    ],
    ids=["required", "unknown-reference", "malformed-id", "unknown-field", "system-field"],
)
def test_an_insert_salesforce_refuses_is_refused_with_its_error_code(org, body, code):
    with pytest.raises(SalesforceMalformedRequest) as info:
        org.Subscription__c.create(body)
    assert info.value.content[0]["errorCode"] == code


def test_a_custom_metadata_record_cannot_be_inserted(org):
    with pytest.raises(SalesforceMalformedRequest) as info:
        org.AccountMapping__mdt.create({"DeveloperName": "X"})
    assert info.value.content[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("objects:\n  - name: Subscription\n", "a custom object's name ends in '__c'"),
        (
            "objects:\n  - name: S__c\n    fields:\n      - {name: X__c, type: blob}\n",
            "field 'X__c': type must be one of",
        ),
        (
            "objects:\n  - name: S__c\n    fields:\n      - {name: X__c, type: reference}\n",
            "field 'X__c': needs 'reference_to'",
        ),
        ("objects: 3\n", "expected a mapping with an 'objects' list"),
    ],
)
def test_a_bad_definition_names_file_object_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ObjectDefinitionError, match=message) as info:
        load_objects(path)
    assert str(path) in str(info.value)
