"""Salesforce Id checksums and generated Ids."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.salesforce.ids import duckdb_id_macro_sql, is_valid_id, make_id, to18


def test_the_documented_example_gets_its_documented_checksum():
    assert to18("001D000000IRFma") == "001D000000IRFmaIAH"


def test_an_18_character_id_is_returned_unchanged():
    assert to18("001D000000IRFmaIAH") == "001D000000IRFmaIAH"


@pytest.mark.parametrize("bad", ["001D000000IRFmaAAA", "001D00000", "001D000000IRFm!", ""])
def test_malformed_ids_are_refused(bad):
    assert not is_valid_id(bad)
    with pytest.raises(ValueError):
        to18(bad)


def test_made_ids_carry_the_key_prefix_and_a_valid_checksum():
    record_id = make_id("802", 123_456_789)
    assert record_id.startswith("802") and len(record_id) == 18 and is_valid_id(record_id)


def test_duckdb_makes_the_same_ids_as_python():
    con = duckdb.connect()
    con.execute(duckdb_id_macro_sql())
    rows = con.execute("SELECT n, sf_id('801', n) FROM range(0, 5000000, 99991) t(n)").fetchall()
    assert all(made == make_id("801", n) for n, made in rows)
