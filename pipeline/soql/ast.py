"""The parsed form of a SOQL query, before any name is checked against the org's schema.

Every node that an error message can point at carries the `Position` of its first token, because
Salesforce prefixes query errors with the row and column of the offending token.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class FieldRef:
    """A field, or a child-to-parent path ending in one (`Order.Account.Region__c`), as typed."""

    path: tuple[str, ...]
    pos: Position

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class FunctionCall:
    """`COUNT()`, `COUNT(Id)`, `SUM(Amount) total`, `FIELDS(ALL)`: to be counted or refused."""

    name: str
    argument: FieldRef | None
    alias: str | None
    pos: Position


@dataclass(frozen=True)
class SubQuery:
    """A parent-to-child subquery in the SELECT list (`(SELECT Id FROM OrderItems)`)."""

    query: Query
    pos: Position


@dataclass(frozen=True)
class TypeOf:
    """A polymorphic `TYPEOF ... END` select item; kept only so it can be refused by name."""

    field: FieldRef
    pos: Position


SelectItem = FieldRef | FunctionCall | SubQuery | TypeOf


@dataclass(frozen=True)
class StringValue:
    value: str  # escapes decoded
    like_pattern: str  # a DuckDB LIKE pattern with `\` as escape: `\%`, `\_` stay literal
    pos: Position


@dataclass(frozen=True)
class NumberValue:
    value: Decimal
    pos: Position


@dataclass(frozen=True)
class BooleanValue:
    value: bool
    pos: Position


@dataclass(frozen=True)
class NullValue:
    pos: Position


@dataclass(frozen=True)
class DateValue:
    value: dt.date
    pos: Position


@dataclass(frozen=True)
class DateTimeValue:
    value: dt.datetime  # naive, converted to UTC
    pos: Position


@dataclass(frozen=True)
class RelativeDate:
    """A date literal that names a range of days relative to today (`TODAY`, `LAST_N_DAYS:7`)."""

    name: str  # upper-case, without the `:n`
    n: int | None
    pos: Position

    @property
    def text(self) -> str:
        return self.name if self.n is None else f"{self.name}:{self.n}"


Value = (
    StringValue | NumberValue | BooleanValue | NullValue | DateValue | DateTimeValue | RelativeDate
)


@dataclass(frozen=True)
class Comparison:
    """`field <op> value`; `op` is one of = != < <= > >= LIKE (`<>` is read as `!=`)."""

    field: FieldRef
    op: str
    value: Value


@dataclass(frozen=True)
class InList:
    field: FieldRef
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class SemiJoin:
    """`field [NOT] IN (SELECT ...)`: recognised so it can be refused with a clear message."""

    field: FieldRef
    query: Query
    negated: bool


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]


Condition = Comparison | InList | SemiJoin | Not | And | Or


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool = False
    nulls_first: bool | None = None  # None: SOQL's default for the direction


@dataclass(frozen=True)
class Query:
    select: tuple[SelectItem, ...]
    sobject: str
    sobject_pos: Position
    pos: Position  # of SELECT
    where: Condition | None = None
    group_by: tuple[FieldRef, ...] = ()
    group_by_pos: Position | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    offset_pos: Position | None = None
