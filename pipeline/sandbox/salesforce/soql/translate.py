"""A parsed SOQL query checked against the org's schema and rewritten as one DuckDB SELECT.

The SELECT does all the per-row work inside DuckDB: it numbers the rows (`_rn`, so result sets can
be paged without re-running the query) and renders each row the way the API in question puts it
on the wire, as REST record JSON or as Bulk API 2.0 CSV cell text. Every value that comes from
the query text is bound as a `?` parameter; only schema names are ever written into the SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from pipeline.salesforce.ids import to18
from pipeline.sandbox.salesforce.schema import NUMBER_TYPES, Field, OrgSchema, SObject
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
from pipeline.soql.parser import parse

Api = Literal["rest", "bulk"]

MAX_RELATIONSHIP_DEPTH = 5
AGGREGATE_FUNCTIONS = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})
REST_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%g+0000"
BULK_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%gZ"
DATE_FORMAT = "%Y-%m-%d"

# Bulk API 2.0 refusals happen when the job is created, as plain `[{errorCode, message}]` bodies
# with no caret. The subquery text is what real orgs answer; the others follow the same pattern.
BULK_SUBQUERY = "Aggregate Relationships not supported in Bulk V2 Query with CSV content type"
BULK_AGGREGATE = "Aggregate Relationships not supported in Bulk Query"
BULK_OFFSET = "OFFSET clause not supported in Bulk V2 Query"
BULK_TYPEOF = "TYPEOF clause not supported in Bulk V2 Query"

_API_VERSION = re.compile(r"^\d+\.\d+$")
_CUSTOM_OBJECT_HINT = (
    "If you are attempting to use a custom object, be sure to append the '__c' after the entity "
    "name. Please reference your WSDL or the describe call for the appropriate names."
)
_CUSTOM_FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom "
    "field name. Please reference your WSDL or the describe call for the appropriate names."
)
_CUSTOM_RELATIONSHIP_HINT = (
    "If you are attempting to use a custom relationship, be sure to append the '__r' after the "
    "custom relationship name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)
# How filter type errors name a field's type: the local part of its soapType.
_VALUE_TYPE_NAMES = {
    "tns:ID": "id",
    "xsd:string": "string",
    "xsd:boolean": "boolean",
    "xsd:int": "int",
    "xsd:double": "double",
    "xsd:date": "date",
    "xsd:dateTime": "dateTime",
}


@dataclass(frozen=True)
class CompiledQuery:
    sobject: str  # canonical object name
    columns: tuple[str, ...]  # select items, canonical casing, dotted parent paths; () for COUNT()
    count_only: bool  # SELECT COUNT() (REST only): sql yields one BIGINT column `count`
    sql: str  # `_rn` then `record` (REST JSON) or one VARCHAR per column (Bulk CSV text)
    params: tuple[object, ...]  # values for the `?` placeholders, in order
    # False when the filter ORs terms on other objects' fields (`Order.SystemModstamp`), which
    # no single index serves: such a query scans, and can time out (`Org.query`).
    selective: bool = True


def compile_query(
    text: str,
    schema: OrgSchema,
    *,
    api: Api,
    include_deleted: bool,
    api_version: str = "59.0",
    table_schema: str = "org",
    today: dt.date | None = None,
) -> CompiledQuery:
    """Checks `text` as the org would for `api` and translates it; raises `SoqlError` if refused.

    `schema` is the integration user's view, so a field hidden from that user is unknown here.
    `today` (UTC by default) anchors the relative date literals such as `LAST_N_DAYS:n`.
    """
    if not _API_VERSION.match(api_version):
        raise ValueError(f"not an API version: {api_version!r}")
    query = parse(text)
    return _Compiler(
        text, schema, api, api_version, table_schema, today or dt.datetime.now(dt.UTC).date()
    ).compile(query, include_deleted)


def _crosses_objects(condition: Condition) -> bool:
    """Whether a condition filters on a field of another object (a relationship path)."""
    if isinstance(condition, Comparison | InList | SemiJoin):
        return len(condition.field.path) > 1
    if isinstance(condition, Not):
        return _crosses_objects(condition.operand)
    return any(_crosses_objects(c) for c in condition.operands)


def _selective(condition: Condition | None) -> bool:
    """False when some OR has a term on another object's field: the optimizer cannot use the
    object's own indexes for it (Salesforce's query plan reports such filters as a TableScan)."""
    if condition is None or isinstance(condition, Comparison | InList | SemiJoin):
        return True
    if isinstance(condition, Not):
        return _selective(condition.operand)
    if isinstance(condition, Or) and any(_crosses_objects(c) for c in condition.operands):
        return False
    return all(_selective(c) for c in condition.operands)


@dataclass(frozen=True)
class _Column:
    """A select, filter or sort item resolved to a table column behind its joins."""

    keys: tuple[str, ...]  # relationship names then the field name, canonical casing
    field: Field
    alias: str  # the table alias holding the column
    hops: tuple[tuple[str, SObject, str], ...]  # (relationship name, parent object, alias)

    @property
    def dotted(self) -> str:
        return ".".join(self.keys)

    @property
    def sql(self) -> str:
        return f"{self.alias}.{_ident(self.field.name)}"

    @property
    def case_insensitive(self) -> bool:
        """SOQL compares and sorts text without regard to case, Ids excepted."""
        return self.field.is_text and self.field.type not in ("id", "reference")


@dataclass
class _Node:
    """One object of a REST record: the root or a parent, with its keys in first-selected order."""

    sobject: SObject
    alias: str
    entries: dict[str, _Node | _Column] = field(default_factory=dict)


class _Compiler:
    def __init__(
        self,
        text: str,
        schema: OrgSchema,
        api: Api,
        api_version: str,
        table_schema: str,
        today: dt.date,
    ) -> None:
        self._text = text
        self._schema = schema
        self._api = api
        self._api_version = api_version
        self._table_schema = table_schema
        self._today = today
        self._root: SObject | None = None
        self._joins: dict[tuple[str, ...], str] = {}
        self._join_sql: list[str] = []

    # ---- errors ------------------------------------------------------------------------------

    def _error(self, error_code: str, pos: Position, detail: str) -> SoqlError:
        return pointed_error(error_code, self._text, pos.line, pos.column, detail)

    def _unsupported(self, pos: Position, what: str) -> SoqlError:
        return self._error("MALFORMED_QUERY", pos, f"The sandbox does not support {what}.")

    # ---- the query as a whole ----------------------------------------------------------------

    def compile(self, query: Query, include_deleted: bool) -> CompiledQuery:
        root = self._resolve_root(query)
        self._refuse_unsupported(query)
        count_only = any(isinstance(item, FunctionCall) for item in query.select)
        columns = [] if count_only else self._select_columns(query)
        where_params: list[object] = []
        filters = [self._condition(query.where, where_params)] if query.where else []
        if root.soft_delete and not include_deleted:
            filters.append('t0."IsDeleted" = false')
        order_keys = self._order_keys(query)

        source = f"FROM {self._table(root)} AS t0"
        source += "".join(f"\n{join}" for join in self._join_sql)
        if filters:
            source += "\nWHERE " + " AND ".join(filters)
        paging, paging_params = "", []
        if query.limit is not None:
            paging += "\nLIMIT ?"
            paging_params.append(query.limit)
        if query.offset is not None:
            paging += "\nOFFSET ?"
            paging_params.append(query.offset)

        if count_only:
            sql = (
                f'SELECT CAST(count(*) AS BIGINT) AS "count" FROM (\n'
                f"SELECT 1 {source}{paging}\n) AS q"
            )
            return CompiledQuery(
                root.name,
                (),
                True,
                sql,
                (*where_params, *paging_params),
                selective=_selective(query.where),
            )

        row_number = f"row_number() OVER (ORDER BY {', '.join(order_keys)}) - 1"
        select_params: list[object] = []
        if query.offset is not None:
            row_number += " - ?"
            select_params.append(query.offset)
        outputs = [f'CAST({row_number} AS BIGINT) AS "_rn"']
        if self._api == "rest":
            outputs.append(f'CAST({self._record_json(root, columns)} AS VARCHAR) AS "record"')
        else:
            outputs.extend(f"{_bulk_text(c)} AS {_ident(c.dotted)}" for c in columns)
        select_list = ",\n  ".join(outputs)
        sql = f'SELECT {select_list}\n{source}\nORDER BY "_rn"{paging}'
        return CompiledQuery(
            root.name,
            tuple(c.dotted for c in columns),
            False,
            sql,
            (*select_params, *where_params, *paging_params),
            selective=_selective(query.where),
        )

    def _resolve_root(self, query: Query) -> SObject:
        root = self._schema.sobject(query.sobject)
        if root is None:
            raise self._error(
                "INVALID_TYPE",
                query.sobject_pos,
                f"sObject type '{query.sobject}' is not supported. " + _CUSTOM_OBJECT_HINT,
            )
        if self._api == "bulk" and not root.bulk_queryable:
            raise SoqlError(
                "INVALIDENTITY", f"Entity '{root.name}' is not supported by the Bulk API."
            )
        self._root = root
        return root

    def _refuse_unsupported(self, query: Query) -> None:
        """Refuses what the API in question, or the sandbox, does not run, before checking names."""
        if self._api == "bulk":
            self._refuse_for_bulk(query)
        for item in query.select:
            if isinstance(item, SubQuery):
                raise self._unsupported(
                    item.pos,
                    "parent-to-child subqueries; query the child "
                    "object and filter on its lookup instead",
                )
            if isinstance(item, TypeOf):
                raise self._unsupported(item.pos, "TYPEOF")
            if isinstance(item, FunctionCall):
                if item.name not in AGGREGATE_FUNCTIONS:
                    raise self._unsupported(item.pos, f"the {item.name}() function")
                if item.name != "COUNT" or item.argument is not None or item.alias is not None:
                    raise self._unsupported(item.pos, "aggregate functions other than COUNT()")
                if len(query.select) > 1:
                    raise self._error(
                        "MALFORMED_QUERY",
                        item.pos,
                        "COUNT() must be the only element in the SELECT list",
                    )
        if query.group_by_pos is not None:
            raise self._unsupported(query.group_by_pos, "GROUP BY")

    def _refuse_for_bulk(self, query: Query) -> None:
        if any(isinstance(item, SubQuery) for item in query.select):
            raise SoqlError("API_ERROR", BULK_SUBQUERY)
        aggregates = [
            i for i in query.select if isinstance(i, FunctionCall) and i.name in AGGREGATE_FUNCTIONS
        ]
        if aggregates or query.group_by_pos is not None:
            raise SoqlError("API_ERROR", BULK_AGGREGATE)
        if any(isinstance(item, TypeOf) for item in query.select):
            raise SoqlError("API_ERROR", BULK_TYPEOF)
        if query.offset is not None:
            raise SoqlError("API_ERROR", BULK_OFFSET)

    def _select_columns(self, query: Query) -> list[_Column]:
        columns: list[_Column] = []
        seen: set[str] = set()
        for item in query.select:
            assert isinstance(item, FieldRef)
            column = self._resolve(item)
            if column.dotted in seen:
                raise self._error(
                    "MALFORMED_QUERY", item.pos, f"duplicate field selected: {column.dotted}"
                )
            seen.add(column.dotted)
            columns.append(column)
        return columns

    # ---- names -------------------------------------------------------------------------------

    def _resolve(self, ref: FieldRef) -> _Column:
        """Walks a child-to-parent path, adding one LEFT JOIN per distinct relationship prefix."""
        assert self._root is not None
        if len(ref.path) - 1 > MAX_RELATIONSHIP_DEPTH:
            raise self._error(
                "MALFORMED_QUERY",
                ref.pos,
                f"SOQL statements cannot query more than {MAX_RELATIONSHIP_DEPTH} "
                f"levels of child-to-parent relationships: {ref.dotted}",
            )
        obj, alias = self._root, "t0"
        lookups: tuple[str, ...] = ()
        keys: list[str] = []
        hops: list[tuple[str, SObject, str]] = []
        for name in ref.path[:-1]:
            lookup = obj.relationship(name)
            parent = self._schema.sobject(lookup.reference_to[0]) if lookup else None
            if lookup is None or lookup.relationship_name is None or parent is None:
                raise self._error(
                    "INVALID_FIELD",
                    ref.pos,
                    f"Didn't understand relationship '{name}' in field path. "
                    + _CUSTOM_RELATIONSHIP_HINT,
                )
            lookups += (lookup.name,)
            alias = self._join(lookups, alias, lookup, parent)
            keys.append(lookup.relationship_name)
            hops.append((lookup.relationship_name, parent, alias))
            obj = parent
        found = obj.field(ref.path[-1])
        if found is None:
            raise self._error(
                "INVALID_FIELD",
                ref.pos,
                f"No such column '{ref.path[-1]}' on entity '{obj.name}'. " + _CUSTOM_FIELD_HINT,
            )
        return _Column((*keys, found.name), found, alias, tuple(hops))

    def _join(
        self, lookups: tuple[str, ...], child_alias: str, lookup: Field, parent: SObject
    ) -> str:
        alias = self._joins.get(lookups)
        if alias is None:
            alias = f"t{len(self._joins) + 1}"
            self._joins[lookups] = alias
            self._join_sql.append(
                f"LEFT JOIN {self._table(parent)} AS {alias} "
                f'ON {child_alias}.{_ident(lookup.name)} = {alias}."Id"'
            )
        return alias

    def _table(self, obj: SObject) -> str:
        return f"{_ident(self._table_schema)}.{_ident(obj.name)}"

    # ---- WHERE -------------------------------------------------------------------------------
    # Every predicate is two-valued (never NULL), as in SOQL: `Name != 'x'` keeps null names and
    # NOT flips a predicate on a null field instead of leaving it unknown.

    def _condition(self, cond: Condition, params: list[object]) -> str:
        if isinstance(cond, And | Or):
            joiner = " AND " if isinstance(cond, And) else " OR "
            return "(" + joiner.join(self._condition(c, params) for c in cond.operands) + ")"
        if isinstance(cond, Not):
            return f"(NOT {self._condition(cond.operand, params)})"
        if isinstance(cond, SemiJoin):
            raise self._unsupported(cond.field.pos, "semi-join subqueries (IN (SELECT ...))")
        if isinstance(cond, InList):
            return self._in_list(cond, params)
        return self._comparison(cond, params)

    def _comparison(self, cond: Comparison, params: list[object]) -> str:
        column = self._resolve(cond.field)
        value = cond.value
        if cond.op == "LIKE":
            if not column.case_insensitive:
                raise self._operator_error(cond.field, column)
            if not isinstance(value, StringValue):
                raise self._value_type_error(column, value)
            params.append(value.like_pattern)
            return f"coalesce({column.sql} ILIKE ? ESCAPE '\\', false)"
        if column.field.type == "boolean" and cond.op not in ("=", "!="):
            raise self._operator_error(cond.field, column)
        if isinstance(value, NullValue):
            if cond.op in ("=", "!="):
                return f"({column.sql} IS {'' if cond.op == '=' else 'NOT '}NULL)"
            return "false"
        if isinstance(value, RelativeDate):
            return self._date_range(column, cond.op, value, params)
        params.append(self._bind(column, value))
        lhs, rhs = (
            (f"lower({column.sql})", "lower(?)") if column.case_insensitive else (column.sql, "?")
        )
        if cond.op == "=":
            return f"({lhs} IS NOT DISTINCT FROM {rhs})"
        if cond.op == "!=":
            return f"({lhs} IS DISTINCT FROM {rhs})"
        return f"coalesce({lhs} {cond.op} {rhs}, false)"

    def _in_list(self, cond: InList, params: list[object]) -> str:
        column = self._resolve(cond.field)
        bound = [
            self._bind(column, v)
            for v in cond.values
            if not isinstance(v, NullValue | RelativeDate)
        ]
        alternatives: list[str] = []
        if bound:
            lhs, rhs = (
                (f"lower({column.sql})", "lower(?)")
                if column.case_insensitive
                else (column.sql, "?")
            )
            alternatives.append(f"coalesce({lhs} IN ({', '.join([rhs] * len(bound))}), false)")
            params.extend(bound)
        if any(isinstance(v, NullValue) for v in cond.values):
            alternatives.append(f"{column.sql} IS NULL")
        for value in cond.values:
            if isinstance(value, RelativeDate):
                alternatives.append(self._date_range(column, "=", value, params))
        expr = "(" + " OR ".join(alternatives) + ")"
        return f"(NOT {expr})" if cond.negated else expr

    def _date_range(
        self, column: _Column, op: str, value: RelativeDate, params: list[object]
    ) -> str:
        """A date literal is a range of whole UTC days; each operator compares with its bounds."""
        if column.field.type not in ("date", "datetime"):
            raise self._value_type_error(column, value)
        start, end = self._days(value)
        bounds: tuple[dt.date, ...]
        if op in ("=", "!="):
            expr, bounds = f"coalesce({column.sql} >= ? AND {column.sql} < ?, false)", (start, end)
            expr = expr if op == "=" else f"(NOT {expr})"
        else:
            operator, bound = {
                "<": ("<", start),
                "<=": ("<", end),
                ">": (">=", end),
                ">=": (">=", start),
            }[op]
            expr, bounds = f"coalesce({column.sql} {operator} ?, false)", (bound,)
        if column.field.type == "datetime":
            params.extend(dt.datetime.combine(b, dt.time()) for b in bounds)
        else:
            params.extend(bounds)
        return expr

    def _days(self, value: RelativeDate) -> tuple[dt.date, dt.date]:
        """First day in and first day after the literal's range (LAST_N_DAYS:n includes today)."""
        today, day, n = self._today, dt.timedelta(days=1), value.n or 0
        ranges = {
            "TODAY": (today, today + day),
            "YESTERDAY": (today - day, today),
            "TOMORROW": (today + day, today + 2 * day),
            "LAST_N_DAYS": (today - n * day, today + day),
            "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
        }
        return ranges[value.name]

    def _bind(self, column: _Column, value: Value) -> object:
        """The Python value to bind for a literal compared with `column`, checked like SOQL does."""
        kind = column.field.type
        if kind in ("id", "reference"):
            if not isinstance(value, StringValue):
                raise self._value_type_error(column, value)
            try:
                return to18(value.value)
            except ValueError:
                raise self._error(
                    "INVALID_QUERY_FILTER_OPERATOR", value.pos, f"invalid ID field: {value.value}"
                ) from None
        if column.field.is_text and isinstance(value, StringValue):
            return value.value
        if kind == "boolean" and isinstance(value, BooleanValue):
            return value.value
        if kind in NUMBER_TYPES and isinstance(value, NumberValue):
            return _number(value.value)
        if kind == "date" and isinstance(value, DateValue):
            return value.value
        if kind == "datetime" and isinstance(value, DateTimeValue):
            return value.value
        raise self._value_type_error(column, value)

    def _value_type_error(self, column: _Column, value: Value) -> SoqlError:
        type_name = _VALUE_TYPE_NAMES[column.field.soap_type]
        quoted = type_name in ("string", "id")
        return self._error(
            "INVALID_FIELD",
            value.pos,
            f"value of filter criterion for field '{column.field.name}' must be of type "
            f"{type_name} and should {'' if quoted else 'not '}be enclosed in quotes",
        )

    def _operator_error(self, ref: FieldRef, column: _Column) -> SoqlError:
        return self._error(
            "INVALID_QUERY_FILTER_OPERATOR",
            ref.pos,
            f"invalid operator on {column.field.type} field",
        )

    # ---- ORDER BY ----------------------------------------------------------------------------

    def _order_keys(self, query: Query) -> list[str]:
        """The ORDER BY keys, then the root Id, so ties (and no ORDER BY) page deterministically.

        Nulls sort as the smallest value, SOQL's default: first ascending, last descending.
        """
        keys = []
        for item in query.order_by:
            column = self._resolve(item.field)
            expr = f"lower({column.sql})" if column.case_insensitive else column.sql
            nulls_first = (not item.descending) if item.nulls_first is None else item.nulls_first
            keys.append(
                f"{expr} {'DESC' if item.descending else 'ASC'} "
                f"NULLS {'FIRST' if nulls_first else 'LAST'}"
            )
        keys.append('t0."Id" ASC')
        return keys

    # ---- output ------------------------------------------------------------------------------

    def _record_json(self, root: SObject, columns: list[_Column]) -> str:
        """REST record JSON: attributes first, then keys in SELECT order, parents nested."""
        tree = _Node(root, "t0")
        for column in columns:
            node = tree
            for relationship, parent, alias in column.hops:
                child = node.entries.get(relationship)
                if not isinstance(child, _Node):
                    child = _Node(parent, alias)
                    node.entries[relationship] = child
                node = child
            node.entries[column.field.name] = column
        return self._node_json(tree, is_root=True)

    def _node_json(self, node: _Node, *, is_root: bool) -> str:
        name = node.sobject.name
        url = f"/services/data/v{self._api_version}/sobjects/{name}/"
        parts = [
            f"'attributes', json_object('type', {_literal(name)}, "
            f"'url', {_literal(url)} || {node.alias}.\"Id\")"
        ]
        for key, entry in node.entries.items():
            value = (
                self._node_json(entry, is_root=False)
                if isinstance(entry, _Node)
                else _rest_value(entry)
            )
            parts.append(f"{_literal(key)}, {value}")
        obj = f"json_object({', '.join(parts)})"
        if is_root:
            return obj
        return f'CASE WHEN {node.alias}."Id" IS NULL THEN NULL ELSE {obj} END'


def _rest_value(column: _Column) -> str:
    kind = column.field.type
    if kind == "datetime":
        return f"strftime({column.sql}, '{REST_DATETIME_FORMAT}')"
    if kind == "date":
        return f"strftime({column.sql}, '{DATE_FORMAT}')"
    return column.sql


def _bulk_text(column: _Column) -> str:
    """Bulk API CSV cell text; a null is an empty cell."""
    kind = column.field.type
    if kind == "datetime":
        text = f"strftime({column.sql}, '{BULK_DATETIME_FORMAT}')"
    elif kind == "date":
        text = f"strftime({column.sql}, '{DATE_FORMAT}')"
    elif column.field.is_text:
        text = column.sql
    else:
        text = f"CAST({column.sql} AS VARCHAR)"
    return f"coalesce({text}, '')"


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
