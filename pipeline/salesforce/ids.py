"""Salesforce record Ids: 15-character case-sensitive keys and the 18-character checksummed form."""

from __future__ import annotations

import re

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID15 = re.compile(r"^[0-9A-Za-z]{15}$")
_ID18 = re.compile(r"^[0-9A-Za-z]{18}$")


def checksum(id15: str) -> str:
    """The three suffix characters: one per 5-char chunk, a bit per upper-case letter."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def to18(record_id: str) -> str:
    """The 18-character form of a 15- or 18-character Id; raises ValueError for anything else."""
    if _ID18.match(record_id):
        if checksum(record_id[:15]) != record_id[15:]:
            raise ValueError(f"invalid Salesforce Id checksum: {record_id!r}")
        return record_id
    if _ID15.match(record_id):
        return record_id + checksum(record_id)
    raise ValueError(f"not a Salesforce Id: {record_id!r}")


def is_valid_id(record_id: str) -> bool:
    try:
        to18(record_id)
    except ValueError:
        return False
    return True


def make_id(key_prefix: str, sequence: int, pod: str = "8d") -> str:
    """An 18-character Id: key prefix, a two-character pod and a base-62 sequence number."""
    digits = ""
    for _ in range(10):
        sequence, rem = divmod(sequence, 62)
        digits = _BASE62[rem] + digits
    if sequence:
        raise ValueError("sequence does not fit in 10 base-62 digits")
    return to18(key_prefix + pod + digits)


def duckdb_id_macro_sql() -> str:
    """`sf_id(prefix, n)`: the same Ids as `make_id`, computed set-at-a-time inside DuckDB."""
    digits = " || ".join(
        f"substr('{_BASE62}', CAST((n // {62**p}) % 62 AS INTEGER) + 1, 1)"
        for p in range(9, -1, -1)
    )
    chunk_bits = [
        " + ".join(
            f"(CASE WHEN substr(s, {c * 5 + i + 1}, 1) BETWEEN 'A' AND 'Z' "
            f"THEN {1 << i} ELSE 0 END)"
            for i in range(5)
        )
        for c in range(3)
    ]
    suffix = " || ".join(f"substr('{_CHECKSUM_ALPHABET}', ({bits}) + 1, 1)" for bits in chunk_bits)
    return (
        f"CREATE OR REPLACE MACRO sf_id15(prefix, n, pod := '8d') AS prefix || pod || {digits};\n"
        f"CREATE OR REPLACE MACRO sf_checksum(s) AS {suffix};\n"
        "CREATE OR REPLACE MACRO sf_id(prefix, n, pod := '8d') AS "
        "sf_id15(prefix, n, pod := pod) || sf_checksum(sf_id15(prefix, n, pod := pod));"
    )
