"""SOQL text to a `Query`: lark does the syntax, this module turns tokens into typed values.

Literal values are decoded here (strings, numbers, dates, datetimes converted to UTC, date
literals) so the translator only ever sees Python values it can bind as parameters.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from pipeline.soql.ast import (
    And,
    BooleanValue,
    Comparison,
    Condition,
    DateTimeValue,
    DateValue,
    FieldRef,
    FunctionCall,
    InList,
    Not,
    NullValue,
    NumberValue,
    Or,
    OrderItem,
    Position,
    Query,
    RelativeDate,
    SemiJoin,
    StringValue,
    SubQuery,
    TypeOf,
    Value,
)
from pipeline.soql.errors import SoqlError, pointed_error

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):?(\d{2}))$",
    re.IGNORECASE,
)
# Date literals the sandbox evaluates: name -> whether it takes `:n`.
RELATIVE_DATES = {
    "TODAY": False,
    "YESTERDAY": False,
    "TOMORROW": False,
    "LAST_N_DAYS": True,
    "N_DAYS_AGO": True,
}
# The rest of Salesforce's date literals: recognised so the refusal says what is missing.
_OTHER_DATE_LITERALS = re.compile(
    r"^(?:(?:THIS|LAST|NEXT)_(?:N_)?(?:FISCAL_)?(?:WEEK|MONTH|QUARTER|YEAR)S?"
    r"|N_(?:FISCAL_)?(?:WEEK|MONTH|QUARTER|YEAR)S_AGO|(?:LAST|NEXT)_(?:90|N)_DAYS)$"
)


@cache
def _lark() -> Lark:
    grammar = files("pipeline.soql").joinpath("grammar.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=True)


def parse(text: str) -> Query:
    """The query's syntax tree; raises `SoqlError('MALFORMED_QUERY')` pointing at the bad token."""
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        return _ToAst(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SoqlError):
            raise exc.orig_exc from None
        raise


def _syntax_error(text: str, exc: UnexpectedInput) -> SoqlError:
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        token = exc.token
        return pointed_error(
            "MALFORMED_QUERY",
            text,
            token.line or 1,
            token.column or 1,
            f"unexpected token: '{token}'",
        )
    if isinstance(exc, UnexpectedCharacters):
        found = re.match(r"\w+|\S", text[exc.pos_in_stream :])
        word = found.group(0) if found else text[exc.pos_in_stream : exc.pos_in_stream + 1]
        return pointed_error(
            "MALFORMED_QUERY", text, exc.line, exc.column, f"unexpected token: '{word}'"
        )
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        line, column = _end_position(text)
        return pointed_error("MALFORMED_QUERY", text, line, column, "unexpected token: <EOF>")
    return SoqlError("MALFORMED_QUERY", str(exc))


def _end_position(text: str) -> tuple[int, int]:
    """Row and column just after the last non-blank character."""
    head = text.rstrip()
    line = head.count("\n") + 1
    return line, len(head) - (head.rfind("\n") + 1) + 1


def _pos(token: Token) -> Position:
    return Position(token.line or 1, token.column or 1)


class _ToAst(Transformer[Token, Any]):
    """Builds `ast` nodes bottom-up; clause rules return tagged tuples that `query` collects."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def _malformed(self, token: Token, detail: str) -> SoqlError:
        return pointed_error(
            "MALFORMED_QUERY", self._text, token.line or 1, token.column or 1, detail
        )

    # ---- query and SELECT list ---------------------------------------------------------------

    def start(self, children: list[Any]) -> Query:
        return children[0]

    def query(self, children: list[Any]) -> Query:
        select_token, from_token, name_token = children[0], None, None
        items: list[Any] = []
        clauses: dict[str, Any] = {}
        for child in children[1:]:
            if isinstance(child, Token) and child.type == "FROM":
                from_token = child
            elif isinstance(child, Token) and from_token is not None:
                name_token = child
            elif isinstance(child, tuple) and child and isinstance(child[0], str):
                clauses[child[0]] = child[1:]
            elif from_token is None:
                items.append(child)
        assert name_token is not None
        group = clauses.get("group")
        offset = clauses.get("offset")
        return Query(
            select=tuple(items),
            sobject=str(name_token),
            sobject_pos=_pos(name_token),
            pos=_pos(select_token),
            where=clauses["where"][0] if "where" in clauses else None,
            group_by=group[0] if group else (),
            group_by_pos=group[1] if group else None,
            order_by=clauses["order"][0] if "order" in clauses else (),
            limit=clauses["limit"][0] if "limit" in clauses else None,
            offset=offset[0] if offset else None,
            offset_pos=offset[1] if offset else None,
        )

    def field_ref(self, children: list[Token]) -> FieldRef:
        return FieldRef(tuple(str(t) for t in children), _pos(children[0]))

    def function_call(self, children: list[Any]) -> FunctionCall:
        name, argument, alias = children
        return FunctionCall(str(name).upper(), argument, str(alias) if alias else None, _pos(name))

    def subquery(self, children: list[Query]) -> SubQuery:
        return SubQuery(children[0], children[0].pos)

    def typeof(self, children: list[Any]) -> TypeOf:
        return TypeOf(children[1], _pos(children[0]))

    def when_branch(self, children: list[Any]) -> None:
        return None

    def field_list(self, children: list[Any]) -> None:
        return None

    # ---- WHERE -------------------------------------------------------------------------------

    def where_clause(self, children: list[Any]) -> tuple[str, Condition]:
        return ("where", children[1])

    def conjunction(self, children: list[Any]) -> And:
        return And(tuple(c for c in children if not isinstance(c, Token)))

    def disjunction(self, children: list[Any]) -> Or:
        return Or(tuple(c for c in children if not isinstance(c, Token)))

    def negation(self, children: list[Any]) -> Not:
        return Not(children[1])

    def comparison(self, children: list[Any]) -> Comparison:
        field, op, value = children
        return Comparison(field, "!=" if str(op) == "<>" else str(op), value)

    def like(self, children: list[Any]) -> Comparison:
        return Comparison(children[0], "LIKE", children[2])

    def in_(self, children: list[Any]) -> InList | SemiJoin:
        return self._membership(children[0], children[-1], negated=False)

    def not_in(self, children: list[Any]) -> InList | SemiJoin:
        return self._membership(children[0], children[-1], negated=True)

    @staticmethod
    def _membership(field: FieldRef, members: Any, *, negated: bool) -> InList | SemiJoin:
        if isinstance(members, Query):
            return SemiJoin(field, members, negated)
        return InList(field, members, negated)

    def values(self, children: list[Value]) -> tuple[Value, ...]:
        return tuple(children)

    def semi_join(self, children: list[Query]) -> Query:
        return children[0]

    def value(self, children: list[Token]) -> Value:
        token = children[0]
        pos = _pos(token)
        kind = token.type
        if kind == "STRING":
            return self._string(token)
        if kind == "NUMBER":
            try:
                return NumberValue(Decimal(str(token)), pos)
            except InvalidOperation:
                raise self._malformed(token, f"unexpected token: '{token}'") from None
        if kind in ("TRUE", "FALSE"):
            return BooleanValue(kind == "TRUE", pos)
        if kind == "NULL":
            return NullValue(pos)
        if kind == "DATE":
            try:
                return DateValue(dt.date.fromisoformat(str(token)), pos)
            except ValueError:
                raise self._malformed(token, f"invalid date: {token}") from None
        if kind == "DATETIME":
            return DateTimeValue(self._datetime(token), pos)
        return self._relative_date(token)

    def _string(self, token: Token) -> StringValue:
        body = str(token)[1:-1]
        value: list[str] = []
        pattern: list[str] = []
        i = 0
        while i < len(body):
            char = body[i]
            if char != "\\":
                value.append(char)
                pattern.append(char)
                i += 1
                continue
            escaped = body[i + 1]
            if escaped in "%_":
                value.append(escaped)
                pattern.append("\\" + escaped)
            else:
                decoded = _ESCAPES.get(escaped.lower())
                if decoded is None:
                    raise self._malformed(
                        token,
                        f"Invalid string literal '{body}'. Illegal character sequence "
                        f"'\\{escaped}' in string literal.",
                    )
                value.append(decoded)
                pattern.append("\\\\" if decoded == "\\" else decoded)
            i += 2
        return StringValue("".join(value), "".join(pattern), _pos(token))

    def _datetime(self, token: Token) -> dt.datetime:
        match = _DATETIME.match(str(token))
        if match is None:
            raise self._malformed(token, f"invalid dateTime: {token}")
        year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        offset = dt.timedelta(0)
        if not zulu:
            offset = dt.timedelta(hours=int(off_h), minutes=int(off_m))
            offset = -offset if sign == "-" else offset
        try:
            local = dt.datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                micro,
                tzinfo=dt.timezone(offset),
            )
        except ValueError:
            raise self._malformed(token, f"invalid dateTime: {token}") from None
        return local.astimezone(dt.UTC).replace(tzinfo=None)

    def _relative_date(self, token: Token) -> RelativeDate:
        name, _, n = str(token).upper().partition(":")
        takes_n = RELATIVE_DATES.get(name)
        if takes_n is not None and takes_n == bool(n):
            return RelativeDate(name, int(n) if n else None, _pos(token))
        if takes_n is None and _OTHER_DATE_LITERALS.match(name):
            raise self._malformed(
                token,
                f"The sandbox does not support the date literal {name}; it supports "
                f"{', '.join(RELATIVE_DATES)}.",
            )
        raise self._malformed(token, f"unexpected token: '{token}'")

    # ---- GROUP BY, ORDER BY, LIMIT, OFFSET ---------------------------------------------------

    def group_clause(self, children: list[Any]) -> tuple[str, tuple[FieldRef, ...], Position]:
        refs = tuple(c for c in children if isinstance(c, FieldRef))
        return ("group", refs, _pos(children[0]))

    def order_clause(self, children: list[Any]) -> tuple[str, tuple[OrderItem, ...]]:
        return ("order", tuple(c for c in children if isinstance(c, OrderItem)))

    def order_item(self, children: list[Any]) -> OrderItem:
        flags = {c for c in children if isinstance(c, str) and not isinstance(c, Token)}
        nulls_first = True if "FIRST" in flags else False if "LAST" in flags else None
        return OrderItem(children[0], descending="DESC" in flags, nulls_first=nulls_first)

    def direction(self, children: list[Token]) -> str:
        return children[0].type

    def nulls(self, children: list[Token]) -> str:
        return children[1].type

    def limit_clause(self, children: list[Token]) -> tuple[str, int]:
        return ("limit", int(children[1]))

    def offset_clause(self, children: list[Token]) -> tuple[str, int, Position]:
        return ("offset", int(children[1]), _pos(children[0]))
