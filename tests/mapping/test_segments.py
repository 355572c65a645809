"""Segment attributes of pricing mappings (DESIGN §6): parsing, resolution, and the SQL."""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from pipeline.mapping.errors import MappingError, SegmentError
from pipeline.mapping.segments import (
    ResolvedSegment,
    SegmentEntry,
    parse_segments,
    resolve_segments,
    segment_sql,
)
from pipeline.sandbox.salesforce.describe import object_describe
from pipeline.sandbox.salesforce.schema import demo_schema

SCHEMA = demo_schema().visible_to_integration_user()
FILE = "mappings/pricings.yaml"
MAPPING = "OrderItem_Pricing"


def describe(name: str) -> dict:
    obj = SCHEMA.sobject(name)
    assert obj is not None, name
    return object_describe(SCHEMA, obj, "59.0")


def resolve(text: str | None, source_object: str = "OrderItem") -> tuple[ResolvedSegment, ...]:
    return resolve_segments(
        parse_segments(text),
        source_object=source_object,
        describe=describe,
        file=FILE,
        mapping=MAPPING,
    )


def entries(text: str) -> list[tuple[str, str]]:
    return [(e.key, e.value) for e in parse_segments(text).entries]


def run(segments: tuple[ResolvedSegment, ...], rows: list[tuple]) -> list[tuple]:
    """Evaluate segment_sql over a table of raw columns named by path, in one statement."""
    con = duckdb.connect()
    con.execute(
        'CREATE TABLE r (id INTEGER, "Order.Account.Region__c" VARCHAR, "Order.Status" VARCHAR, '
        '"Order.Sync_To_M3ter__c" BOOLEAN)'
    )
    con.executemany("INSERT INTO r VALUES (?, ?, ?, ?)", rows)
    segment, omitted = segment_sql(segments, lambda p: f'r."{p}"')
    return con.sql(f"SELECT {segment}, {omitted} FROM r ORDER BY id").fetchall()


def test_json_form():
    assert entries('{"region": "Order.Account.Region__c", "tier": "Standard"}') == [
        ("region", "Order.Account.Region__c"),
        ("tier", "Standard"),
    ]


def test_key_value_form():
    assert entries("region: Order.Account.Region__c, tier: Standard") == [
        ("region", "Order.Account.Region__c"),
        ("tier", "Standard"),
    ]


def test_whitespace_around_keys_and_values_is_trimmed():
    assert entries("  region :\tOrder.Account.Region__c ,\n tier:Standard  ") == [
        ("region", "Order.Account.Region__c"),
        ("tier", "Standard"),
    ]
    assert entries('{" tier ": "  Standard "}') == [("tier", "Standard")]


def test_an_entry_without_a_colon_is_ignored_with_a_warning():
    parsed = parse_segments("region: EU, Standard, tier: Gold")
    assert [e.key for e in parsed.entries] == ["region", "tier"]
    assert parsed.warnings == ("ignored 'Standard': no colon between key and value",)


def test_an_empty_key_is_ignored_with_a_warning():
    parsed = parse_segments(" : EU, tier: Gold")
    assert [e.key for e in parsed.entries] == ["tier"]
    assert parsed.warnings == ("ignored ': EU': empty key",)


def test_an_empty_value_is_ignored_with_a_warning():
    parsed = parse_segments('region:  , tier: Gold, zone: ""')
    assert [e.key for e in parsed.entries] == ["tier"]
    assert parsed.warnings == (
        "ignored 'region:': empty value",
        "ignored 'zone: \"\"': empty value",
    )


def test_a_trailing_comma_is_not_an_entry():
    parsed = parse_segments("tier: Gold,")
    assert entries("tier: Gold,") == [("tier", "Gold")]
    assert parsed.warnings == ()


def test_a_plain_value_is_a_static_literal():
    assert resolve("tier: Gold", "Order") == (ResolvedSegment("tier", literal="Gold"),)


def test_a_value_naming_a_field_of_the_source_object_takes_its_value():
    assert resolve("status: status", "Order") == (ResolvedSegment("status", field="Status"),)


def test_a_relationship_path_takes_the_related_record_s_value():
    assert resolve("region: order.account.region__C") == (
        ResolvedSegment("region", field="Order.Account.Region__c"),
    )


def test_an_unknown_field_reference_names_file_mapping_key_and_field():
    with pytest.raises(SegmentError) as caught:
        resolve("region: Order.Acount.Region__c")
    assert str(caught.value) == (
        "mappings/pricings.yaml: mapping 'OrderItem_Pricing': segments: key 'region': "
        "'Order.Acount.Region__c' does not resolve on OrderItem (Order has no relationship "
        "'Acount'; fields hidden by field-level security count as missing)"
    )
    assert isinstance(caught.value, MappingError)
    assert isinstance(caught.value, ValueError)


def test_an_unknown_custom_field_name_is_an_error_not_a_literal():
    with pytest.raises(SegmentError, match=r"key 'tier': 'Tier__c' does not resolve on OrderItem"):
        resolve("tier: Tier__c")


def test_every_problem_of_a_mapping_is_reported_one_line_each():
    with pytest.raises(SegmentError) as caught:
        resolve("a: Nope__c, b: Gold, c: Order.Nope, d: Product2.Family")
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{FILE}: mapping {MAPPING!r}: segments: ") for line in lines)
    assert "key 'a': 'Nope__c'" in lines[0] and "OrderItem has no field 'Nope__c'" in lines[0]
    assert "key 'c': 'Order.Nope'" in lines[1] and "Order has no field 'Nope'" in lines[1]


def test_a_field_hidden_by_field_level_security_does_not_resolve():
    with pytest.raises(
        SegmentError,
        match=re.escape(
            "key 'rating': 'Order.Account.Credit_Rating__c' does not resolve on OrderItem "
            "(Account has no field 'Credit_Rating__c'"
        ),
    ):
        resolve("rating: Order.Account.Credit_Rating__c")


def test_a_null_value_is_sent_as_the_wildcard_and_counted():
    segments = resolve("region: Order.Account.Region__c, status: Order.Status, tier: Gold")
    rows = [(1, "EU", "Activated", True), (2, None, "Draft", True), (3, None, None, False)]
    assert run(segments, rows) == [
        ('{"region":"EU","status":"Activated","tier":"Gold"}', 0),
        ('{"region":"*","status":"Draft","tier":"Gold"}', 1),
        ('{"region":"*","status":"*","tier":"Gold"}', 2),
    ]


def test_an_empty_string_counts_as_null():
    segments = (ResolvedSegment("region", field="Order.Account.Region__c"),)
    assert run(segments, [(1, "", "Draft", True)]) == [('{"region":"*"}', 1)]


def test_field_values_are_sent_as_text():
    segments = resolve("sync: Order.Sync_To_M3ter__c")
    assert segments == (ResolvedSegment("sync", field="Order.Sync_To_M3ter__c"),)
    assert run(segments, [(1, None, None, True)]) == [('{"sync":"true"}', 0)]


def test_empty_text_or_none_is_unsegmented():
    for text in (None, "", "  \n "):
        parsed = parse_segments(text)
        assert parsed.entries == () and parsed.warnings == ()
        assert resolve(text) == ()
    assert run((), [(1, "EU", "Draft", True)]) == [(None, 0)]


def test_a_value_is_split_at_the_first_colon_only():
    assert entries("window: 09:00-17:00, url: https://example.com/x") == [
        ("window", "09:00-17:00"),
        ("url", "https://example.com/x"),
    ]
    assert resolve("window: 09:00") == (ResolvedSegment("window", literal="09:00"),)


def test_a_duplicate_key_takes_the_later_value_in_its_first_position_with_a_warning():
    parsed = parse_segments("tier: Gold, region: EU, tier: Silver")
    assert [(e.key, e.value) for e in parsed.entries] == [("tier", "Silver"), ("region", "EU")]
    assert parsed.warnings == (
        "key 'tier' given twice: 'tier: Silver' replaces 'tier: Gold' (the later entry wins)",
    )
    assert [e.value for e in parse_segments('{"t": "a", "t": "b"}').entries] == ["b"]


def test_quoted_values_are_literals_even_when_they_look_like_references():
    parsed = parse_segments('zone: \'eu.west\', name: "a, b: c", code: "X__c"')
    assert parsed.entries == (
        SegmentEntry("zone", "eu.west", quoted=True),
        SegmentEntry("name", "a, b: c", quoted=True),
        SegmentEntry("code", "X__c", quoted=True),
    )
    assert not any(e.looks_like_reference for e in parsed.entries)
    assert resolve("zone: 'eu.west'")[0] == ResolvedSegment("zone", literal="eu.west")


def test_an_apostrophe_inside_an_unquoted_value_is_kept():
    assert entries("owner: O'Brien, tier: it's") == [("owner", "O'Brien"), ("tier", "it's")]


def test_what_looks_like_a_reference():
    looks = {
        v: SegmentEntry("k", v).looks_like_reference
        for v in ("Order.Account.Region__c", "Region__c", "Parent__r", "Gold", "1.5", "Status")
    }
    assert looks == {
        "Order.Account.Region__c": True,
        "Region__c": True,
        "Parent__r": True,
        "Gold": False,
        "1.5": False,
        "Status": False,
    }


def test_json_numbers_and_booleans_are_literals_as_their_json_text():
    assert resolve('{"size": 1.50, "count": 3, "metered": true}') == (
        ResolvedSegment("size", literal="1.50"),
        ResolvedSegment("count", literal="3"),
        ResolvedSegment("metered", literal="true"),
    )


def test_json_null_is_an_empty_value():
    parsed = parse_segments('{"region": null, "tier": "Gold"}')
    assert [e.key for e in parsed.entries] == ["tier"]
    assert parsed.warnings == ("ignored '\"region\": null': empty value",)


def test_nested_json_values_are_errors():
    with pytest.raises(
        SegmentError,
        match=r"^mappings/pricings.yaml: mapping 'OrderItem_Pricing': segments: key 'region': "
        r"nested objects and arrays are not segment values$",
    ):
        resolve('{"region": {"field": "Region__c"}, "tier": "Gold"}')


def test_json_that_is_not_an_object_is_an_error():
    with pytest.raises(SegmentError, match=r"segments: JSON segments must be an object"):
        resolve('["region", "Order.Account.Region__c"]')


def test_invalid_json_is_an_error():
    with pytest.raises(SegmentError, match=r"segments: not valid JSON \(.* line 1 column 2\)"):
        resolve("{region: Region__c}")


def test_keys_keep_the_mapping_order_in_the_json():
    segments = resolve("zeta: Z, alpha: Order.Account.Region__c, mid: M")
    assert run(segments, [(1, "EU", None, None)]) == [('{"zeta":"Z","alpha":"EU","mid":"M"}', 0)]


def test_a_hostile_literal_stays_a_literal_in_the_json():
    text = "tier: x'); DROP TABLE r; -- \\ }"
    segments = resolve(text)
    assert segments == (ResolvedSegment("tier", literal="x'); DROP TABLE r; -- \\ }"),)
    assert run(segments, [(1, "EU", None, None)]) == [
        ('{"tier":"x\'); DROP TABLE r; -- \\\\ }"}', 0)
    ]


def test_hostile_keys_and_literals_are_escaped_in_the_sql():
    hostile = "x'); DROP TABLE r; -- \" \\ }"
    segments = (
        ResolvedSegment("tier", literal=hostile),
        ResolvedSegment("k'); --", literal="v"),
        ResolvedSegment("region", field="Order.Account.Region__c"),
    )
    [(text, omitted)] = run(segments, [(1, "EU", None, None)])
    assert json.loads(text) == {"tier": hostile, "k'); --": "v", "region": "EU"}
    assert omitted == 0


def test_segment_sql_builds_every_row_in_one_statement():
    segments = (
        ResolvedSegment("region", field="Order.Account.Region__c"),
        ResolvedSegment("tier", literal="Gold"),
    )
    segment, omitted = segment_sql(segments, lambda p: f'r."{p}"')
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE r AS SELECT CASE WHEN i % 4 = 0 THEN NULL ELSE 'EU' END AS \"Order.Account."
        'Region__c" FROM range(100000) t(i)'
    )
    [counts] = con.sql(
        f"SELECT count(*), count(DISTINCT seg), sum(omitted), count(*) FILTER (omitted > 0) "
        f"FROM (SELECT {segment} AS seg, {omitted} AS omitted FROM r)"
    ).fetchall()
    assert counts == (100000, 2, 25000, 25000)
