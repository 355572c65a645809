"""Mapping files: loading with file:line:key errors, directory rules, and YAML export."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.mapping.errors import MappingError
from pipeline.mapping.files import (
    ENTITY_FILES,
    dump_mappings,
    load_mapping_file,
    load_mappings,
    to_yaml,
)
from pipeline.mapping.products import PRODUCT_MAPPINGS_FILE
from pipeline.mapping.spec import ENTITIES, Location, MappingRecord, MappingSet, MappingSpecError

PRICINGS = """\
- name: OrderItem_Pricing
  object: OrderItem
  where: Order.Sync_To_M3ter__c = true
  sync_level: line_item
  fields:
    planCode: Id
    aggregationCode: Product2.M3ter_Aggregation_Code__c
    unitPrice: UnitPrice
  hardcoded:
    cumulative: false
  segments: "region: Order.Account.Region__c"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> tuple[str, ...]:
    with pytest.raises(MappingSpecError) as raised:
        load_mapping_file(path)
    return raised.value.problems


def test_a_mapping_file_loads_into_records(tmp_path: Path) -> None:
    path = write(tmp_path, "pricings.yaml", PRICINGS)

    assert load_mapping_file(path) == [
        MappingRecord(
            name="OrderItem_Pricing",
            object="OrderItem",
            where="Order.Sync_To_M3ter__c = true",
            sync_level="line_item",
            fields={
                "planCode": "Id",
                "aggregationCode": "Product2.M3ter_Aggregation_Code__c",
                "unitPrice": "UnitPrice",
            },
            hardcoded={"cumulative": False},
            segments="region: Order.Account.Region__c",
        )
    ]


def test_an_unknown_key_names_file_line_mapping_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "pricings.yaml", PRICINGS.replace("  segments:", "  segmnets:"))

    assert problems_of(path) == (
        f"{path}:11: mapping 'OrderItem_Pricing': unknown key 'segmnets' "
        "(did you mean 'segments'?)",
    )


def test_errors_are_mapping_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.yaml", "- name: A\n")

    with pytest.raises(MappingError, match=rf"^{path}:1: mapping 'A': missing key 'object'$"):
        load_mapping_file(path)


def test_a_problem_with_a_nested_key_points_at_that_keys_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pricings.yaml",
        PRICINGS.replace("unitPrice: UnitPrice", "unitPrice: Unit..Price"),
    )

    assert problems_of(path) == (
        f"{path}:8: mapping 'OrderItem_Pricing': fields key 'unitPrice': 'Unit..Price' is not a "
        "Salesforce field or relationship path (Field__c, Order.Account.Name)",
    )


def test_a_missing_required_key_points_at_the_records_first_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "plans.yaml", "- name: A\n  object: Order\n\n- name: B\n  object: Order\n"
    )

    assert problems_of(path) == (
        f"{path}:1: mapping 'A': missing key 'sync_level' (required in plans mappings: "
        "'agreement' or 'line_item')",
        f"{path}:4: mapping 'B': missing key 'sync_level' (required in plans mappings: "
        "'agreement' or 'line_item')",
    )


def test_malformed_yaml_is_reported_at_the_parsers_line(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.yaml", "- name: A\n  object: Account\n  fields: {code: Id\n")

    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:4: invalid YAML: expected ',' or '}}'")


def test_every_problem_of_a_file_is_reported_one_per_line_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "accounts.yaml",
        """\
        - name: A
          object: Account
          fields:
            Code: Id
          hardcoded:
            name: [x]
        - name: bad name
          object: Account
          wher: IsDeleted = false
        """,
    )

    assert problems_of(path) == (
        f"{path}:4: mapping 'A': fields key 'Code' is not an m3ter field name (camelCase, dots "
        "for nested fields: address.locality)",
        f"{path}:6: mapping 'A': hardcoded key 'name': value must be text, a number, true/false "
        "or null, not a list",
        f"{path}:7: mapping 'bad name': 'name' must be an identifier (a letter, then letters, "
        "digits or underscores), not 'bad name'",
        f"{path}:9: mapping 'bad name': unknown key 'wher' (did you mean 'where'?)",
    )


def test_a_repeated_mapping_name_is_an_error_at_the_repetition(tmp_path: Path) -> None:
    path = write(
        tmp_path, "accounts.yaml", "- name: A\n  object: Account\n- name: A\n  object: Contact\n"
    )

    assert problems_of(path) == (
        f"{path}:3: mapping 'A': duplicate mapping name 'A' (first at line 1)",
    )


def test_a_repeated_yaml_key_is_an_error_rather_than_last_one_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "accounts.yaml",
        "- name: A\n  object: Account\n  fields:\n    code: Id\n    code: Name\n  object: X\n",
    )

    assert problems_of(path) == (
        f"{path}:5: mapping 'A': duplicate fields key 'code' (first at line 4)",
        f"{path}:6: mapping 'A': duplicate key 'object' (first at line 2)",
    )


def test_the_file_must_hold_a_list_of_records(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.yaml", "name: A\nobject: Account\n")

    assert problems_of(path) == (
        f"{path}:1: expected a list of mapping records ('- name: ...'), not a mapping",
    )


def test_a_record_that_is_not_a_mapping_is_numbered(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.yaml", "- name: A\n  object: Account\n- just text\n")

    assert problems_of(path) == (
        f"{path}:3: mapping #2: expected a mapping of keys (name, object, ...), "
        "not the value 'just text'",
    )


def test_an_empty_file_has_no_mappings(tmp_path: Path) -> None:
    assert load_mapping_file(write(tmp_path, "accounts.yaml", "# nothing yet\n")) == []
    assert load_mapping_file(write(tmp_path, "contracts.yaml", "[]\n")) == []


def test_dates_and_yes_no_words_stay_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "accounts.yaml",
        """\
        - name: A
          object: Account
          hardcoded:
            startDate: 2024-01-01
            address.country: NO
            flag: true
            count: 3
            ratio: 0.5
            nothing: null
        """,
    )

    (record,) = load_mapping_file(path)
    assert record.hardcoded == {
        "startDate": "2024-01-01",
        "address.country": "NO",
        "flag": True,
        "count": 3,
        "ratio": 0.5,
        "nothing": None,
    }


def test_python_tags_are_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(
        tmp_path,
        "accounts.yaml",
        f"- name: A\n  object: Account\n  hardcoded:\n"
        f"    x: !!python/object/apply:os.system ['touch {marker}']\n",
    )

    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:4: mapping 'A': invalid value: could not determine")
    assert not marker.exists()


def test_rule_problems_are_reported_beside_yaml_structure_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "accounts.yaml",
        "- name: !!python/name:os.system\n  object: Account\n  object: Contact\n  wher: x\n",
    )

    assert problems_of(path) == (
        f"{path}:1: mapping #1: invalid value: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/name:os.system'",
        f"{path}:3: mapping #1: duplicate key 'object' (first at line 2)",
        f"{path}:4: mapping #1: unknown key 'wher' (did you mean 'where'?)",
    )


def test_a_file_name_that_is_not_an_entity_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "pricing.yaml", PRICINGS)

    with pytest.raises(MappingError, match=r"pricing\.yaml: unknown mapping file 'pricing\.yaml'"):
        load_mapping_file(path)


def test_an_explicit_entity_overrides_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "draft.yaml", PRICINGS)

    assert [r.name for r in load_mapping_file(path, entity="pricings")] == ["OrderItem_Pricing"]


def test_a_directory_holds_one_file_per_entity_and_missing_files_mean_none(tmp_path: Path) -> None:
    write(tmp_path, "pricings.yaml", PRICINGS)
    write(tmp_path, "accounts.yaml", "- name: A\n  object: Account\n")
    write(tmp_path, "README.md", "not a mapping")

    mapping_set = load_mappings(tmp_path)

    assert [r.name for r in mapping_set["pricings"]] == ["OrderItem_Pricing"]
    assert mapping_set["accounts"] == (MappingRecord("A", "Account"),)
    assert mapping_set["plans"] == ()


def test_an_unknown_yaml_file_in_the_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path, "pricing.yml", PRICINGS)

    with pytest.raises(MappingError) as raised:
        load_mappings(tmp_path)

    assert str(raised.value) == (
        f"{tmp_path / 'pricing.yml'}: unknown mapping file 'pricing.yml' (expected one of: "
        f"{', '.join(ENTITY_FILES.values())}, product_mappings.yaml, writeback.yaml)"
    )


def test_problems_of_all_files_in_a_directory_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "accounts.yaml", "- name: A\n")
    write(tmp_path, "plans.yaml", "- name: P\n  object: OrderItem\n")
    write(tmp_path, "typo.yaml", "[]")

    with pytest.raises(MappingSpecError) as raised:
        load_mappings(tmp_path)

    assert raised.value.problems == (
        f"{tmp_path / 'accounts.yaml'}:1: mapping 'A': missing key 'object'",
        f"{tmp_path / 'plans.yaml'}:1: mapping 'P': missing key 'sync_level' (required in plans "
        "mappings: 'agreement' or 'line_item')",
        f"{tmp_path / 'typo.yaml'}: unknown mapping file 'typo.yaml' (expected one of: "
        f"{', '.join(ENTITY_FILES.values())}, product_mappings.yaml, writeback.yaml)",
    )


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="mapping directory not found"):
        load_mappings(tmp_path / "nowhere")


def test_a_loaded_set_remembers_the_file_and_line_of_each_key(tmp_path: Path) -> None:
    path = write(tmp_path, "pricings.yaml", PRICINGS)

    mapping_set = load_mappings(tmp_path)

    assert mapping_set.locate("pricings", "OrderItem_Pricing") == Location(str(path), 1)
    assert mapping_set.locate("pricings", "OrderItem_Pricing", "fields", "unitPrice") == Location(
        str(path), 8
    )
    assert mapping_set.label("pricings", "OrderItem_Pricing", "segments") == (
        f"{path}:11: mapping 'OrderItem_Pricing'"
    )


def test_export_writes_keys_in_a_stable_order_and_leaves_defaults_out() -> None:
    record = MappingRecord(
        "P",
        "OrderItem",
        segments="region: Region__c",
        custom_fields={"region": "Region__c"},
        hardcoded={"cumulative": False},
        fields={"code": "Id"},
        sync_level="line_item",
        where="IsDeleted = false",
    )

    assert to_yaml([record, MappingRecord("A", "Account", active=False)]) == textwrap.dedent(
        """\
        - name: P
          object: OrderItem
          where: IsDeleted = false
          sync_level: line_item
          fields:
            code: Id
          hardcoded:
            cumulative: false
          custom_fields:
            region: Region__c
          segments: 'region: Region__c'

        - name: A
          object: Account
          active: false
        """
    )


def test_export_of_no_records_is_an_empty_list() -> None:
    assert to_yaml([]) == "[]\n"


def test_multi_line_text_is_exported_as_a_block() -> None:
    record = MappingRecord("A", "Account", where="Type = 'Customer'\nAND IsDeleted = false")

    assert "  where: |-\n    Type = 'Customer'\n    AND IsDeleted = false\n" in to_yaml([record])


def test_dump_writes_every_file_with_empty_ones_as_empty_lists(tmp_path: Path) -> None:
    written = dump_mappings(MappingSet({"accounts": [MappingRecord("A", "Account")]}), tmp_path)

    files = sorted([*ENTITY_FILES.values(), PRODUCT_MAPPINGS_FILE])
    assert sorted(p.name for p in written) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    assert (tmp_path / "plans.yaml").read_text().splitlines()[-1] == "[]"
    assert (tmp_path / PRODUCT_MAPPINGS_FILE).read_text().splitlines()[-1] == "[]"


def test_dump_replaces_files_so_stale_mappings_do_not_survive(tmp_path: Path) -> None:
    write(tmp_path, "accounts.yaml", "- name: Old\n  object: Account\n")

    dump_mappings(MappingSet(), tmp_path)

    assert load_mappings(tmp_path) == MappingSet()


def test_loading_a_dump_gives_the_same_set(tmp_path: Path) -> None:
    tricky = {
        "yes": "yes",
        "no": "NO",
        "date": "2024-01-01",
        "nullText": "null",
        "number": "123",
        "colon": "a: b",
        "quote": 'it\'s "x"',
        "unicode": "Zürich ✓",
        "leading": " padded ",
        "int": 7,
        "float": 1e-7,
        "big": 10**20,
        "bool": True,
        "none": None,
    }
    mapping_set = MappingSet(
        {
            "accounts": [
                MappingRecord("A", "Account", where="A = 'x'\n  AND B = 1\n", hardcoded=tricky),
                MappingRecord("Off", "Account", active=False, custom_fields={"a.b": "X.Y"}),
            ],
            "pricings": [
                MappingRecord(
                    "P",
                    "OrderItem",
                    sync_level="agreement",
                    segments='{"region": "Order.Account.Region__c", "tier": "Gold"}',
                )
            ],
        }
    )

    dump_mappings(mapping_set, tmp_path)

    assert load_mappings(tmp_path) == mapping_set
    assert set(ENTITIES) == set(mapping_set.mappings)
