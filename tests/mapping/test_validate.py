"""Mapping sets checked against the org's describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.mapping.files import load_mappings
from pipeline.mapping.validate import validate
from tests.shipped import MAPPINGS_DIR as SHIPPED
from tests.shipped import describe


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "accounts.yaml").write_text(text)
    return tmp_path


def test_the_shipped_mappings_resolve_against_the_demo_org():
    assert validate(load_mappings(SHIPPED), describe).problems == []


def test_an_unknown_field_names_file_line_mapping_key_and_field(tmp_path):
    mappings = load_mappings(
        _write(tmp_path, "- name: A\n  object: Account\n  fields:\n    code: Id\n    name: Nmae\n")
    )
    (problem,) = validate(mappings, describe).problems
    assert problem.startswith(
        f"{tmp_path / 'accounts.yaml'}:5: mapping 'A': fields key 'name': "
        "'Nmae' does not resolve on Account (Account has no field 'Nmae'"
    )


def test_a_field_hidden_by_field_level_security_is_missing(tmp_path):
    mappings = load_mappings(
        _write(
            tmp_path,
            "- name: A\n  object: Account\n  custom_fields:\n    rating: Credit_Rating__c\n",
        )
    )
    (problem,) = validate(mappings, describe).problems
    assert "custom_fields key 'rating': 'Credit_Rating__c' does not resolve" in problem


def test_an_unknown_source_object_is_a_problem(tmp_path):
    mappings = load_mappings(_write(tmp_path, "- name: A\n  object: Acount\n"))
    (problem,) = validate(mappings, describe).problems
    assert "object: 'Acount' cannot be described" in problem


def test_every_problem_is_reported_at_once(tmp_path):
    mappings = load_mappings(
        _write(
            tmp_path,
            "- name: A\n  object: Account\n  fields:\n"
            "    code: Nope1__c\n    name: Nope2__c\n"
            "- name: B\n  object: Account\n  fields:\n"
            "    code: Order.Id\n",
        )
    )
    assert len(validate(mappings, describe).problems) == 3


@pytest.mark.parametrize(
    "segments", ["region: Order.Account.Regoin__c", '{"tier": "Order.Account.Credit_Rating__c"}']
)
def test_segment_problems_are_reported_with_the_rest(tmp_path, segments):
    (tmp_path / "pricings.yaml").write_text(
        "- name: P\n  object: OrderItem\n  sync_level: line_item\n  fields:\n    planCode: Id\n"
        f"  segments: '{segments}'\n"
    )
    (problem,) = validate(load_mappings(tmp_path), describe).problems
    assert "mapping 'P': segments: key" in problem and "does not resolve on OrderItem" in problem
