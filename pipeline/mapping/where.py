"""A mapping's `where` (a SOQL condition) as a DuckDB condition over the raw table's columns.

The condition is evaluated in the warehouse rather than sent to Salesforce: one extract serves
every mapping of an object, and a record that stops matching must still be seen so that its
m3ter object can be end-dated. The semantics are SOQL's: text compares without regard to case,
`= null` tests for null, and every predicate is true or false, never unknown (`Name != 'x'`
keeps rows whose name is null). Literals are checked against the field's describe type and
written into the SQL as escaped literals; field names only ever appear as quoted identifiers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipeline.extract.errors import FieldNotFound
from pipeline.extract.plan import resolve_path
from pipeline.salesforce.ids import to18
from pipeline.soql.ast import (
    And,
    BooleanValue,
    Comparison,
    Condition,
    DateTimeValue,
    DateValue,
    FieldRef,
    InList,
    Not,
    NullValue,
    NumberValue,
    Or,
    RelativeDate,
    SemiJoin,
    StringValue,
    Value,
)
from pipeline.soql.errors import SoqlError
from pipeline.soql.parser import parse
from pipeline.warehouse.sql import identifier, literal

Describe = Callable[[str], dict[str, Any]]

TEXT_TYPES = frozenset(
    {"string", "picklist", "multipicklist", "textarea", "email", "phone", "url", "combobox"}
)
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
_POSITION = re.compile(r"ERROR at Row:(\d+):Column:(\d+)")


class WhereError(ValueError):
    """The condition cannot be compiled; the message says what and where in the text."""


@dataclass(frozen=True)
class CompiledWhere:
    sql: str  # a BOOLEAN expression, never NULL
    columns: tuple[str, ...]  # canonical raw column paths it reads, in order of appearance


@dataclass(frozen=True)
class _Column:
    path: str
    type: str

    @property
    def sql(self) -> str:
        return identifier(self.path)

    @property
    def case_insensitive(self) -> bool:
        return self.type in TEXT_TYPES


def compile_where(text: str, sobject: str, describe: Describe) -> CompiledWhere:
    """Compile `text` for rows of `sobject`; raises WhereError naming the field or token."""
    # The condition gets a line of its own, so a syntax error's echo shows only the mapping's text.
    try:
        query = parse(f"SELECT Id FROM {sobject} WHERE\n{text}")
    except SoqlError as error:
        raise WhereError(_position_in_condition(error.message)) from None
    assert query.where is not None
    if query.order_by or query.group_by or query.limit is not None or query.offset is not None:
        raise WhereError(
            "a where clause is a condition only: no ORDER BY, GROUP BY, LIMIT or OFFSET"
        )
    return _Compiler(sobject, describe).compile(query.where)


def _position_in_condition(message: str) -> str:
    def shift(match: re.Match[str]) -> str:
        return f"at line {int(match.group(1)) - 1}, column {match.group(2)}"

    return _POSITION.sub(shift, message).strip()


class _Compiler:
    def __init__(self, sobject: str, describe: Describe) -> None:
        self._sobject = sobject
        self._describe = describe
        self._columns: dict[str, None] = {}

    def compile(self, condition: Condition) -> CompiledWhere:
        sql = self._condition(condition)
        return CompiledWhere(sql, tuple(self._columns))

    def _column(self, ref: FieldRef) -> _Column:
        try:
            path, kind, _ = resolve_path(self._sobject, ref.dotted, self._describe)
        except FieldNotFound as error:
            raise WhereError(
                f"{ref.dotted!r} does not resolve on {self._sobject} ({error.reason}; fields "
                "hidden by field-level security count as missing)"
            ) from None
        self._columns.setdefault(path)
        return _Column(path, kind)

    def _condition(self, cond: Condition) -> str:
        if isinstance(cond, And | Or):
            joiner = " AND " if isinstance(cond, And) else " OR "
            return "(" + joiner.join(self._condition(c) for c in cond.operands) + ")"
        if isinstance(cond, Not):
            return f"(NOT {self._condition(cond.operand)})"
        if isinstance(cond, SemiJoin):
            raise WhereError(
                f"{cond.field.dotted}: semi-join subqueries (IN (SELECT ...)) cannot be "
                "evaluated on extracted rows"
            )
        if isinstance(cond, InList):
            return self._in_list(cond)
        return self._comparison(cond)

    def _comparison(self, cond: Comparison) -> str:
        column = self._column(cond.field)
        value = cond.value
        if cond.op == "LIKE":
            if not column.case_insensitive or not isinstance(value, StringValue):
                raise WhereError(f"{column.path}: LIKE needs a text field and a quoted pattern")
            pattern = _text_literal(column, value.like_pattern)
            return f"coalesce({column.sql} ILIKE {pattern} ESCAPE '\\', false)"
        if column.type == "boolean" and cond.op not in ("=", "!="):
            raise WhereError(f"{column.path}: a boolean field only takes = and !=")
        if isinstance(value, NullValue):
            if cond.op in ("=", "!="):
                return f"({column.sql} IS {'' if cond.op == '=' else 'NOT '}NULL)"
            return "false"
        lhs, rhs = self._sides(column, self._literal(column, value))
        if cond.op == "=":
            return f"({lhs} IS NOT DISTINCT FROM {rhs})"
        if cond.op == "!=":
            return f"({lhs} IS DISTINCT FROM {rhs})"
        return f"coalesce({lhs} {cond.op} {rhs}, false)"

    def _in_list(self, cond: InList) -> str:
        column = self._column(cond.field)
        members = [self._literal(column, v) for v in cond.values if not isinstance(v, NullValue)]
        alternatives = []
        if members:
            lhs = self._sides(column, "")[0]
            rhs = ", ".join(self._sides(column, m)[1] for m in members)
            alternatives.append(f"coalesce({lhs} IN ({rhs}), false)")
        if any(isinstance(v, NullValue) for v in cond.values):
            alternatives.append(f"({column.sql} IS NULL)")
        expr = "(" + " OR ".join(alternatives) + ")"
        return f"(NOT {expr})" if cond.negated else expr

    @staticmethod
    def _sides(column: _Column, rhs: str) -> tuple[str, str]:
        if column.case_insensitive:
            return f"lower({column.sql})", f"lower({rhs})"
        return column.sql, rhs

    def _literal(self, column: _Column, value: Value) -> str:
        """The SQL literal for `value` compared with `column`, type-checked as SOQL does."""
        kind = column.type
        if isinstance(value, RelativeDate):
            raise WhereError(
                f"{column.path}: date literal {value.text} depends on the day a run happens; "
                "use a fixed date (2024-01-31) so every run stages the same rows"
            )
        if kind in ID_TYPES and isinstance(value, StringValue):
            try:
                return literal(to18(value.value))
            except ValueError:
                raise WhereError(f"{column.path}: invalid ID {value.value!r}") from None
        if (kind in TEXT_TYPES or kind in ID_TYPES) and isinstance(value, StringValue):
            return _text_literal(column, value.value)
        if kind == "boolean" and isinstance(value, BooleanValue):
            return "true" if value.value else "false"
        if kind in NUMBER_TYPES and isinstance(value, NumberValue):
            return _number(value.value)
        if kind == "date" and isinstance(value, DateValue):
            return f"DATE {literal(value.value.isoformat())}"
        if kind == "datetime" and isinstance(value, DateTimeValue):
            return f"TIMESTAMP {literal(_timestamp(value.value))}"
        raise WhereError(
            f"{column.path}: a {kind} field cannot be compared with {_describe_value(value)}"
        )


def _text_literal(column: _Column, text: str) -> str:
    """A quoted string's SQL literal; SQL text cannot carry a NUL character, so it is refused."""
    if "\x00" in text:
        raise WhereError(f"{column.path}: a quoted string cannot contain a NUL character")
    return literal(text)


def _number(value: Decimal) -> str:
    return f"CAST({literal(str(value))} AS DOUBLE)"


def _timestamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _describe_value(value: Value) -> str:
    names = {
        StringValue: "a quoted string",
        NumberValue: "a number",
        BooleanValue: "true/false",
        DateValue: "a date",
        DateTimeValue: "a date-time",
    }
    return names.get(type(value), "that value")
