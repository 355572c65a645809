"""Identifiers and paths reach SQL text quoted, so any name stays one name and one string."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.warehouse.sql import identifier, literal


def test_identifier_keeps_dots_and_quotes_inside_one_name():
    con = duckdb.connect()
    name = 'Order.Account."Name"'
    (column,) = con.execute(f"SELECT 1 AS {identifier(name)}").description
    assert column[0] == name


def test_literal_keeps_quotes_and_backslashes_inside_one_string():
    text = "/tmp/it's a \\ path"
    assert duckdb.connect().execute(f"SELECT {literal(text)}").fetchone() == (text,)


@pytest.mark.parametrize("quote", [identifier, literal])
def test_nul_characters_are_refused(quote):
    with pytest.raises(ValueError, match="NUL"):
        quote("a\x00b")
