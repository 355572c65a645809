"""The write-back table: where each object's sync status goes, as written and against the org."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.mapping.compiler import MappingCompileError, compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.mapping.spec import MappingSpecError
from pipeline.mapping.writeback import StatusFields
from pipeline.sandbox.salesforce.describe import object_describe
from pipeline.sandbox.salesforce.schema import org_schema
from tests.mapping.test_compiler import write
from tests.shipped import MAPPINGS_DIR

ACCOUNTS = """\
- name: Account_Default
  object: Account
  fields:
    code: Id
    name: Name
    emailAddress: Billing_Email__c
    currency: CurrencyIsoCode
"""
STATUS = "  status: M3ter_Sync_Status__c\n"
# The demo org as set-up leaves it: with the status fields.
SCHEMA = org_schema().visible_to_integration_user()


def describe(name: str) -> dict:
    obj = SCHEMA.sobject(name)
    if obj is None:
        raise KeyError(f"sObject type '{name}' is not supported")
    return object_describe(SCHEMA, obj, "65.0")


def _problems(tmp_path: Path, writeback: str) -> tuple[str, ...]:
    write(tmp_path, **{"accounts": ACCOUNTS, "writeback": writeback})
    with pytest.raises((MappingSpecError, MappingCompileError)) as raised:
        compile_mappings(load_mappings(tmp_path), describe, writeback=True)
    return raised.value.problems


def test_the_shipped_write_back_compiles_against_the_demo_org():
    compiled = compile_mappings(load_mappings(MAPPINGS_DIR), describe, writeback=True)
    assert {row.object for row in compiled.writeback} >= {"Account", "Order", "OrderItem"}
    assert all(row.key == "Id" for row in compiled.writeback)


def test_the_write_back_is_not_compiled_unless_the_run_writes_back(tmp_path):
    write(
        tmp_path,
        **{"accounts": ACCOUNTS, "writeback": "- object: Account\n  status: Nope__c\n"},
    )
    assert compile_mappings(load_mappings(tmp_path), describe).writeback == ()


def test_a_row_is_read_with_its_fields_by_role(tmp_path):
    write(
        tmp_path,
        **{
            "accounts": ACCOUNTS,
            "writeback": "- object: Account\n" + STATUS + "  m3ter_id: M3ter_Id__c\n",
        },
    )
    (row,) = load_mappings(tmp_path).writeback
    assert row == StatusFields("Account", "M3ter_Sync_Status__c", m3ter_id="M3ter_Id__c")
    assert row.fields() == {"status": "M3ter_Sync_Status__c", "m3ter_id": "M3ter_Id__c"}


def test_a_bad_row_names_the_file_line_object_and_key(tmp_path):
    problems = _problems(tmp_path, "- object: Account\n  colour: blue\n")
    path = tmp_path / "writeback.yaml"
    assert sorted(problems) == [
        f"{path}:1: write-back of 'Account': colour: unknown key 'colour'",
        f"{path}:1: write-back of 'Account': status: missing key 'status'",
    ]


def test_one_field_cannot_hold_two_roles(tmp_path):
    (problem,) = _problems(
        tmp_path, "- object: Account\n" + STATUS + "  message: M3ter_Sync_Status__c\n"
    )
    assert "one field cannot hold two roles ('M3ter_Sync_Status__c')" in problem


def test_two_rows_for_one_object_are_an_error(tmp_path):
    (problem,) = _problems(tmp_path, ("- object: Account\n" + STATUS) * 2)
    assert "Account has another write-back row; keep one" in problem


def test_an_object_no_mapping_takes_is_an_error(tmp_path):
    (problem,) = _problems(tmp_path, "- object: Order\n" + STATUS)
    assert problem.endswith("write-back of 'Order': object: no active mapping takes Order")


def test_a_field_the_org_lacks_is_named_with_its_role(tmp_path):
    (problem,) = _problems(tmp_path, "- object: Account\n  status: Sync_Status__c\n")
    assert problem.endswith(
        "write-back of 'Account': status: Account has no field 'Sync_Status__c'"
    )


def test_a_field_the_integration_user_cannot_write_is_an_error(tmp_path):
    (problem,) = _problems(tmp_path, "- object: Account\n  status: Name\n  time: CreatedDate\n")
    assert "time: Account.CreatedDate is not writable by the integration user" in problem


def test_a_field_of_the_wrong_type_for_its_role_is_an_error(tmp_path):
    (problem,) = _problems(tmp_path, "- object: Account\n" + STATUS + "  time: Region__c\n")
    assert "time: Account.Region__c is a picklist field; the time needs datetime" in problem


def test_a_key_that_is_neither_the_id_nor_an_external_id_is_an_error(tmp_path):
    (problem,) = _problems(tmp_path, "- object: Account\n" + STATUS + "  key: Name\n")
    assert "key: Account.Name is neither Id nor an external id" in problem
