"""Quoting for the only things formatted into SQL text: identifiers from code and file paths."""

from __future__ import annotations


def identifier(name: str) -> str:
    """A double-quoted identifier, so any column name (dots, capitals, keywords) stays one name."""
    if "\x00" in name:
        raise ValueError(f"identifier contains NUL: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A single-quoted SQL string literal (DuckDB strings have no backslash escapes)."""
    if "\x00" in text:
        raise ValueError(f"string contains NUL: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def no_rows(columns: str) -> str:
    """A query of no rows with `columns` (`name` or `name TYPE`, VARCHAR by default): what a
    table the warehouse does not hold yet reads as."""
    typed = [[*c.split(), "VARCHAR"][:2] for c in columns.split(",")]
    return "SELECT " + ", ".join(f"NULL::{t} AS {n}" for n, t in typed) + " WHERE false"
