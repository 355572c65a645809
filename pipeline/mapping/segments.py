"""Segment attributes of a pricing mapping (DESIGN §6): parse, resolve, and build as SQL.

The `segments` text is read in one of two forms:

- **JSON** when it starts with `{` or `[`: it must then be a valid JSON object. String values
  follow the same rules as the other form. Numbers and booleans are literals, sent as their JSON
  text (`1.50`, `true`). `null` counts as an empty value (ignored with a warning). Nested objects
  and arrays, an invalid document or a top-level array are errors.
- **`key: value, key: value`** otherwise: entries are split at commas, each entry at its *first*
  colon (`window: 09:00` is key `window`, value `09:00`), and whitespace around keys and values
  is trimmed. An entry that is only whitespace (`a: b,`) is skipped silently.

In both forms a value wrapped in matching quotes (`'...'` or `"..."`) is a literal with the
quotes removed, never a field reference: `zone: 'eu.west'` sends `eu.west` instead of failing as
an unknown relationship path. In the `key: value` form a quoted key or value may contain commas
and colons, and whitespace inside the quotes is kept. There are no escapes inside quotes: a
literal containing `'` is written in `"` quotes, and the other way round.

An entry with no colon, an empty key or an empty value is ignored with a warning (rule 2). A key
given twice keeps its first position and takes the later value, with a warning, as JSON parsers
do; keys are case-sensitive, as in m3ter.

A value is a field when it looks like a reference (relationship notation `A.B.C`, or a name
ending `__c` / `__r`) or when it names a field of the source object, matched case-insensitively;
a reference that does not resolve for the integration user is a compile-time error. Anything else
is a literal, sent as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pipeline.extract.errors import FieldNotFound
from pipeline.extract.plan import resolve_path
from pipeline.mapping.errors import SegmentError

# m3ter's wildcard segment value: any value of the field.
WILDCARD = "*"

Describe = Callable[[str], dict[str, Any]]

_IDENTIFIER = r"[A-Za-z][A-Za-z0-9_]*"
_RELATIONSHIP = re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})+")
_CUSTOM = re.compile(rf"{_IDENTIFIER}__[cr]", re.IGNORECASE)
_QUOTES = "\"'"


def _quoted(terminators: str) -> re.Pattern[str]:
    # The closing quote must be followed by a terminator (or the end), so `'O'Brien'` is one
    # value and an apostrophe inside an unquoted value never opens a quoted span.
    return re.compile(rf"""\s*(["'])(.*?)\1\s*(?=[{terminators}]|\Z)""", re.DOTALL)


_QUOTED_KEY = _quoted(",:")
_QUOTED_VALUE = _quoted(",")
_BARE_KEY = re.compile(r"[^,:]*")
_BARE_VALUE = re.compile(r"[^,]*")


@dataclass(frozen=True)
class SegmentEntry:
    """One parsed `key: value` segment, not yet resolved against describe."""

    key: str
    value: str
    quoted: bool = False  # written in quotes (or a JSON number/boolean): always a literal

    @property
    def looks_like_reference(self) -> bool:
        """Relationship notation or a custom name: such a value must resolve or fail (rule 4)."""
        if self.quoted:
            return False
        return bool(_RELATIONSHIP.fullmatch(self.value) or _CUSTOM.fullmatch(self.value))


@dataclass(frozen=True)
class ParsedSegments:
    """The entries of a segments text, in the mapping's order, with what was dropped or wrong.

    `errors` are syntax problems (invalid JSON, nested values); they carry no file or mapping
    name, so `resolve_segments` raises them together with the resolution problems.
    """

    entries: tuple[SegmentEntry, ...]
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedSegment:
    """A segment key with its source: a canonical field path or a static literal."""

    key: str
    field: str | None = None
    literal: str | None = None

    def __post_init__(self) -> None:
        if (self.field is None) == (self.literal is None):
            raise ValueError(f"segment {self.key!r} needs exactly one of field and literal")


class _Raw(NamedTuple):
    text: str  # the entry as written, for warnings
    key: str
    value: str
    quoted: bool
    colon: bool


def _unquote(value: str) -> tuple[str, bool]:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        return value[1:-1], True
    return value, False


def _token(
    text: str, pos: int, quoted: re.Pattern[str], bare: re.Pattern[str]
) -> tuple[str, int, bool]:
    match = quoted.match(text, pos)
    if match:
        return match.group(2), match.end(), True
    match = bare.match(text, pos)
    assert match is not None
    return match.group().strip(), match.end(), False


def _split_key_values(text: str) -> list[_Raw]:
    raws: list[_Raw] = []
    pos = 0
    while True:
        start = pos
        key, pos, _ = _token(text, pos, _QUOTED_KEY, _BARE_KEY)
        colon = pos < len(text) and text[pos] == ":"
        value, quoted = "", False
        if colon:
            value, pos, quoted = _token(text, pos + 1, _QUOTED_VALUE, _BARE_VALUE)
        written = text[start:pos].strip()
        if written:
            raws.append(_Raw(written, key, value, quoted, colon))
        if pos >= len(text):
            return raws
        pos += 1  # the comma


class _Scalar(str):
    """A JSON number, boolean or null kept as its JSON text."""


class _Object(list):
    """A JSON object as its ordered (key, value) pairs, duplicates kept."""


def _split_json(text: str) -> tuple[list[_Raw], list[str]]:
    try:
        document = json.loads(
            text,
            object_pairs_hook=_Object,
            parse_int=_Scalar,
            parse_float=_Scalar,
            parse_constant=_Scalar,
        )
    except json.JSONDecodeError as error:
        return [], [f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"]
    if not isinstance(document, _Object):
        kind = "an array" if isinstance(document, list) else "a scalar"
        return [], [f"JSON segments must be an object of key: value pairs, not {kind}"]
    raws: list[_Raw] = []
    errors: list[str] = []
    for key, value in document:
        shown = str(value) if isinstance(value, _Scalar) else json.dumps(value)
        written = f"{json.dumps(key)}: {shown}"
        if isinstance(value, list):
            errors.append(f"key {key!r}: nested objects and arrays are not segment values")
        elif value is None:
            raws.append(_Raw(written, key.strip(), "", True, True))
        elif isinstance(value, bool):
            raws.append(_Raw(written, key.strip(), json.dumps(value), True, True))
        elif isinstance(value, _Scalar):
            raws.append(_Raw(written, key.strip(), str(value), True, True))
        else:
            raws.append(_Raw(written, key.strip(), *_unquote(value.strip()), True))
    return raws, errors


def _collect(raws: Iterable[_Raw]) -> tuple[tuple[SegmentEntry, ...], tuple[str, ...]]:
    kept: dict[str, tuple[SegmentEntry, str]] = {}
    warnings: list[str] = []
    for raw in raws:
        if not raw.colon:
            warnings.append(f"ignored {raw.text!r}: no colon between key and value")
        elif not raw.key:
            warnings.append(f"ignored {raw.text!r}: empty key")
        elif not raw.value:
            warnings.append(f"ignored {raw.text!r}: empty value")
        else:
            if raw.key in kept:
                warnings.append(
                    f"key {raw.key!r} given twice: {raw.text!r} replaces "
                    f"{kept[raw.key][1]!r} (the later entry wins)"
                )
            kept[raw.key] = (SegmentEntry(raw.key, raw.value, raw.quoted), raw.text)
    return tuple(entry for entry, _ in kept.values()), tuple(warnings)


def parse_segments(text: str | None) -> ParsedSegments:
    """Parse a segments text; None or blank text is an unsegmented pricing (rule 7).

    Never raises: dropped entries become warnings and syntax problems become `errors`, so that
    `resolve_segments` can report every problem of a mapping in one message.
    """
    stripped = (text or "").strip()
    if not stripped:
        return ParsedSegments(())
    if stripped[0] in "{[":
        raws, errors = _split_json(stripped)
    else:
        raws, errors = _split_key_values(stripped), []
    entries, warnings = _collect(raws)
    return ParsedSegments(entries, warnings, tuple(errors))


def resolve_segments(
    parsed: ParsedSegments,
    *,
    source_object: str,
    describe: Describe,
    file: str,
    mapping: str,
) -> tuple[ResolvedSegment, ...]:
    """Resolve each value to a field of `source_object` (or a related record) or a literal.

    `describe` is the integration user's view, so fields hidden by field-level security do not
    resolve (rule 6). Raises SegmentError listing every problem of the mapping, one per line.
    """
    problems = list(parsed.errors)
    resolved: list[ResolvedSegment] = []
    names: set[str] = set()
    if parsed.entries:
        names = {f["name"].lower() for f in describe(source_object)["fields"]}
    for entry in parsed.entries:
        is_field = not entry.quoted and (entry.looks_like_reference or entry.value.lower() in names)
        if not is_field:
            resolved.append(ResolvedSegment(entry.key, literal=entry.value))
            continue
        try:
            path, _, _ = resolve_path(source_object, entry.value, describe)
        except FieldNotFound as error:
            problems.append(
                f"key {entry.key!r}: {entry.value!r} does not resolve on {source_object} "
                f"({error.reason}; fields hidden by field-level security count as missing)"
            )
            continue
        resolved.append(ResolvedSegment(entry.key, field=path))
    if problems:
        raise SegmentError(file, mapping, problems)
    return tuple(resolved)


def sql_string(text: str) -> str:
    """A SQL string literal for `text`: doubling quotes is all DuckDB's standard strings need."""
    return "'" + text.replace("'", "''") + "'"


def segment_sql(
    segments: Sequence[ResolvedSegment], column: Callable[[str], str]
) -> tuple[str, str]:
    """Two DuckDB expressions over one row: the segment object and how many keys are wildcards.

    The first is the segment object as JSON text (VARCHAR), keys in the mapping's order; NULL
    when there are no segments. A key whose field is null gets m3ter's wildcard `*` (rule 8): m3ter
    documents no meaning for a key left out, so the wildcard is sent explicitly and the pricing
    prices the aggregation's wildcard segment (which the aggregation must define). The second
    counts the wildcarded keys on that row (INTEGER). Field values are sent as text, and an empty
    string counts as null, as Salesforce stores no empty text. `column(path)` returns the SQL
    reference of a raw column; keys and literals come from mapping files and are emitted as
    escaped string literals. Pure SQL, so the whole table is built in one statement.
    """
    if not segments:
        return "CAST(NULL AS VARCHAR)", "CAST(0 AS INTEGER)"
    keys = [segment.key for segment in segments]
    if len(set(keys)) != len(keys):
        raise ValueError(f"segment keys must be unique: {keys}")
    entries: list[str] = []
    nulls: list[str] = []
    for segment in segments:
        if segment.field is not None:
            value = f"NULLIF(CAST({column(segment.field)} AS VARCHAR), '')"
            nulls.append(f"CAST({value} IS NULL AS INTEGER)")
            value = f"coalesce({value}, {sql_string(WILDCARD)})"
        else:
            value = sql_string(segment.literal or "")
        entries.append(f"{{'k': {sql_string(segment.key)}, 'v': {value}}}")
    obj = f"CAST(to_json(map_from_entries([{', '.join(entries)}])) AS VARCHAR)"
    wildcards = f"CAST({' + '.join(nulls) or '0'} AS INTEGER)"
    return obj, wildcards
