"""Formula fields evaluated when they are read, as Salesforce evaluates them.

A formula's value is computed at query time from the record, its parents and the date, so it
changes when a parent's field or the day changes, while no `SystemModstamp` of the record moves
(Salesforce documents both). The sandbox stores the records' own fields in `org` and reads them
through one view per object in `live`, where each calculated field with a formula is that
formula translated to SQL over the record and its parents' `live` views; the stored value of a
formula field is never read.

The translation covers the formula language the schema's formulas use: field names, parent
paths through relationship names (`SBQQ__Quote__r.SBQQ__StartDate__c`, `Account.Name`),
numbers, `+ - * /`, parentheses, `BLANKVALUE`, `ADDMONTHS`, `TODAY()` and `NOW()`. Anything else
is refused when the org starts, naming the object, the field and what is not understood. A
number is rounded to the field's decimal places, as Salesforce rounds a formula's result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.sandbox.salesforce.schema import FIELD_TYPES, Field, OrgSchema, SObject

LIVE = "live"  # the schema of the views queries read
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>[-+*/(),]))"
)
# Decimal places of a number type's formula result where the field does not say.
_DEFAULT_SCALE = {"currency": 2, "percent": 2, "double": 8}


class FormulaError(ValueError):
    """A formula the sandbox cannot evaluate, naming the object, the field and why."""


@dataclass(frozen=True)
class _Join:
    alias: str
    on: str  # the child's lookup column
    sobject: str  # the parent object, read through its own `live` view


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(formula: str) -> list[_Token]:
    found: list[_Token] = []
    at = 0
    while at < len(formula.rstrip()):
        match = _TOKEN.match(formula, at)
        if match is None or match.end() == at:
            raise ValueError(f"cannot read {formula[at:]!r}")
        kind = match.lastgroup
        assert kind is not None
        found.append(_Token(kind, match.group(kind)))
        at = match.end()
    return found


class _Translator:
    """A recursive-descent translation of one formula into SQL over alias `t` and its joins."""

    def __init__(self, schema: OrgSchema, obj: SObject) -> None:
        self._schema = schema
        self._obj = obj
        self.joins: dict[str, _Join] = {}  # lookup path (`.A__c.B__c`) -> its join
        self._tokens: list[_Token] = []
        self._at = 0

    def translate(self, formula: str, depth: int = 0) -> str:
        if depth > 8:
            raise ValueError("formulas refer to each other in a cycle")
        saved = (self._tokens, self._at)
        self._tokens, self._at = _tokens(formula), 0
        try:
            sql = self._sum(depth)
            if self._at != len(self._tokens):
                raise ValueError(f"unexpected {self._tokens[self._at].text!r}")
            return sql
        finally:
            self._tokens, self._at = saved

    def _peek(self) -> _Token | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self, text: str | None = None) -> _Token:
        token = self._peek()
        if token is None or (text is not None and token.text != text):
            raise ValueError(f"expected {text or 'more'}")
        self._at += 1
        return token

    def _sum(self, depth: int) -> str:
        sql = self._product(depth)
        while (token := self._peek()) is not None and token.text in "+-":
            self._take()
            sql = f"({sql} {token.text} {self._product(depth)})"
        return sql

    def _product(self, depth: int) -> str:
        sql = self._unary(depth)
        while (token := self._peek()) is not None and token.text in "*/":
            self._take()
            right = self._unary(depth)
            sql = f"({sql} * {right})" if token.text == "*" else f"({sql} / nullif({right}, 0))"
        return sql

    def _unary(self, depth: int) -> str:
        token = self._peek()
        if token is not None and token.text == "-":
            self._take()
            return f"(- {self._unary(depth)})"
        return self._atom(depth)

    def _atom(self, depth: int) -> str:
        token = self._take()
        if token.kind == "number":
            return token.text
        if token.text == "(":
            sql = self._sum(depth)
            self._take(")")
            return sql
        if token.kind != "name":
            raise ValueError(f"unexpected {token.text!r}")
        following = self._peek()
        if following is not None and following.text == "(":
            return self._call(token.text.upper(), depth)
        return self._field(token.text, depth)

    def _call(self, name: str, depth: int) -> str:
        self._take("(")
        args: list[str] = []
        while (token := self._peek()) is not None and token.text != ")":
            args.append(self._sum(depth))
            if (token := self._peek()) is not None and token.text == ",":
                self._take(",")
        self._take(")")
        if name == "BLANKVALUE" and len(args) == 2:
            return f"coalesce({args[0]}, {args[1]})"
        if name == "ADDMONTHS" and len(args) == 2:
            # The last day of a month stays the last day of the month it moves to.
            day, months = args
            moved = f"CAST({day} + to_months(CAST({months} AS INTEGER)) AS DATE)"
            return f"(CASE WHEN {day} = last_day({day}) THEN last_day({moved}) ELSE {moved} END)"
        if name == "TODAY" and not args:
            return "CAST(current_timestamp AT TIME ZONE 'UTC' AS DATE)"
        if name == "NOW" and not args:
            return "CAST(current_timestamp AT TIME ZONE 'UTC' AS TIMESTAMP)"
        raise ValueError(f"function {name} with {len(args)} arguments is not supported")

    def _field(self, path: str, depth: int) -> str:
        *hops, name = path.split(".")
        obj, alias, walked = self._obj, "t", ""
        for hop in hops:
            lookup = obj.relationship(hop)
            parent = self._schema.sobject(lookup.reference_to[0]) if lookup else None
            if lookup is None or parent is None:
                raise ValueError(f"{obj.name} has no relationship {hop!r}")
            walked += f".{lookup.name}"
            join = self.joins.setdefault(
                walked, _Join(f"p{len(self.joins) + 1}", f'{alias}."{lookup.name}"', parent.name)
            )
            alias, obj = join.alias, parent
        found = obj.field(name)
        if found is None:
            raise ValueError(f"{obj.name} has no field {name!r}")
        if found.calculated and found.formula and not hops:
            return f"({self.translate(found.formula, depth + 1)})"
        return f'{alias}."{found.name}"'


def _typed(sql: str, field: Field) -> str:
    """The formula's SQL as the field's stored type, a number rounded to its decimal places."""
    scale = field.scale if field.scale is not None else _DEFAULT_SCALE.get(field.type)
    if scale is not None:
        sql = f"round({sql}, {scale})"
    return f"CAST({sql} AS {FIELD_TYPES[field.type][1]})"


def formula_fields(obj: SObject) -> list[Field]:
    return [f for f in obj.fields if f.calculated and f.formula]


def view_sql(schema: OrgSchema, obj: SObject, stored: str = "org") -> str:
    """The `live` view of `obj`: its stored row, each formula field computed."""
    translator = _Translator(schema, obj)
    replaced = []
    for f in formula_fields(obj):
        try:
            replaced.append(f'{_typed(translator.translate(f.formula), f)} AS "{f.name}"')
        except ValueError as exc:
            raise FormulaError(f"{obj.name}.{f.name}: {f.formula!r}: {exc}") from exc
    select = "t.*" + (f" REPLACE ({', '.join(replaced)})" if replaced else "")
    joined = "".join(
        f' LEFT JOIN {LIVE}."{j.sobject}" AS {j.alias} ON {j.on} = {j.alias}."Id"'
        for j in translator.joins.values()
    )
    return f'SELECT {select} FROM {stored}."{obj.name}" AS t{joined}'


def _parents(schema: OrgSchema, obj: SObject) -> Iterator[str]:
    """The objects `obj`'s formulas read through relationships."""
    translator = _Translator(schema, obj)
    for f in formula_fields(obj):
        try:
            translator.translate(f.formula)
        except ValueError:
            continue  # `view_sql` names it
    yield from (j.sobject for j in translator.joins.values())


def view_statements(schema: OrgSchema) -> list[str]:
    """`CREATE OR REPLACE VIEW` for every object, parents' views before their children's."""
    done: set[str] = set()
    ordered: list[str] = []

    def visit(obj: SObject, path: tuple[str, ...]) -> None:
        if obj.name in done:
            return
        if obj.name in path:
            raise FormulaError(f"{obj.name}: formulas read through a cycle of objects")
        for parent in _parents(schema, obj):
            found = schema.sobject(parent)
            if found is not None:
                visit(found, (*path, obj.name))
        done.add(obj.name)
        ordered.append(f'CREATE OR REPLACE VIEW {LIVE}."{obj.name}" AS {view_sql(schema, obj)}')

    for obj in schema.objects:
        visit(obj, ())
    return [f"CREATE SCHEMA IF NOT EXISTS {LIVE}", *ordered]
