"""The SQL that checks one batch of records and builds them as the write leaves them.

A batch is a table of VARCHAR columns named as the request named them (a CSV upload's header, a
JSON body's keys) and `_rn`, each record's place in the request. NULL in a column leaves the
field as it is (a blank CSV value, a JSON key left out); the batch's `null_mark` (`#N/A` in a CSV,
JSON's null) empties it. One query finds each record's first error, in the order Salesforce
meets them: the record's key (Id or external id), each field's value (writable, type, lookup,
picklist or length), required fields, then the row lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipeline.salesforce.fields import SYSTEM_FIELDS
from pipeline.salesforce.ids import to18
from pipeline.sandbox.salesforce.schema import NUMBER_TYPES, Field, SObject

Operation = Literal["insert", "update", "upsert", "delete", "hardDelete"]
OPERATIONS: tuple[Operation, ...] = ("insert", "update", "upsert", "delete", "hardDelete")
Api = Literal["rest", "bulk"]

CSV_NULL = "#N/A"  # Bulk API: the value that empties a field (a blank leaves it)
JSON_NULL = "\x1enull"  # JSON's null, staged
JSON_BAD = "\x1ebad"  # a JSON object or array where a field's value belongs
NOT_WRITABLE = (
    "Unable to create/update fields: {}. Please check the security settings of this field and "
    "verify that it is read/write for your profile or permission set."
)
_ID = "[0-9A-Za-z]"
_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
# Bulk API 2.0's "Valid Date Format in Records": a time zone is required.
_DATETIME = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,3})?(Z|[+-][0-9]{2}:?[0-9]{2})"
)
_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"


@dataclass(frozen=True)
class ValidationRule:
    sobject: str
    condition: str  # DuckDB SQL over the record after the write
    message: str
    error_field: str | None = None


@dataclass
class WriteRules:
    """What refuses a write besides the schema: the fields the integration user may only read,
    the org's validation rules, and records another transaction holds (id -> writes left)."""

    read_only_fields: frozenset[str] = frozenset()
    validation_rules: list[ValidationRule] = field(default_factory=list)
    locks: dict[str, int] = field(default_factory=dict)

    def lock(self, ids: Iterable[str], times: int) -> None:
        for record_id in ids:
            key = to18(record_id)
            self.locks[key] = self.locks.get(key, 0) + times

    def release(self, ids: Iterable[str]) -> None:
        """One write more has failed on each of `ids`."""
        for key in ids:
            left = self.locks.get(key, 0) - 1
            if left > 0:
                self.locks[key] = left
            else:
                self.locks.pop(key, None)


@dataclass(frozen=True)
class Batch:
    table: str
    columns: tuple[str, ...]
    null_mark: str
    # JSON: a key names a field only on the records that carry it; CSV: a column, on every row.
    per_record: bool


def sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_names(items: Iterable[str]) -> str:
    return "[" + ", ".join(sql_text(i) for i in items) + "]::VARCHAR[]"


def sql_error(code: str, message: str, fields: str = "[]::VARCHAR[]") -> str:
    """An error struct; `message` and `fields` are SQL expressions."""
    return (
        f"struct_pack(code := {sql_text(code)}, message := ({message})::VARCHAR, "
        f"fields := ({fields})::VARCHAR[])"
    )


def id_ok(v: str) -> str:
    return (
        f"(regexp_full_match({v}, '{_ID}{{15}}') OR (regexp_full_match({v}, '{_ID}{{18}}') "
        f"AND substr({v}, 16, 3) = sf_checksum(substr({v}, 1, 15))))"
    )


def id18(v: str) -> str:
    return f"(CASE WHEN length({v}) = 15 THEN {v} || sf_checksum({v}) ELSE {v} END)"


def type_ok(f: Field, v: str) -> str | None:
    """SQL true when text `v` is a value of `f`'s type (None: any text is)."""
    # [assume: pessimistic] strict forms: true/false alone; a date alone; a datetime with its zone.
    if f.type == "boolean":
        return f"lower({v}) IN ('true', 'false')"
    if f.type == "int":
        return f"regexp_full_match({v}, '[+-]?[0-9]+') AND try_cast({v} AS INTEGER) IS NOT NULL"
    if f.type in NUMBER_TYPES:
        return f"regexp_full_match({v}, '{_NUMBER}')"
    if f.type == "date":
        return (
            f"regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
            f"AND try_cast({v} AS DATE) IS NOT NULL"
        )
    if f.type == "datetime":
        return f"regexp_full_match({v}, '{_DATETIME}') AND try_cast({v} AS TIMESTAMPTZ) IS NOT NULL"
    return None


def cast_value(f: Field, v: str) -> str:
    """Text `v`, checked, as the value `f`'s column stores."""
    if f.type == "boolean":
        return f"(lower({v}) = 'true')"
    if f.type == "int":
        return f"try_cast({v} AS INTEGER)"
    if f.type in NUMBER_TYPES:
        return f"try_cast({v} AS DOUBLE)"
    if f.type == "date":
        return f"try_cast({v} AS DATE)"
    if f.type == "datetime":
        return f"timezone('UTC', try_cast({v} AS TIMESTAMPTZ))"
    if f.type in ("id", "reference"):
        return id18(v)
    return v


@dataclass(frozen=True)
class WritePlan:
    """The SQL that checks one batch and builds its records as written."""

    obj: SObject
    operation: Operation
    batch: Batch
    columns: Mapping[str, Field]  # batch column -> the field it names
    key: str
    api: Api
    rules: WriteRules
    targets: Mapping[str, SObject]  # the org's objects by name, for lookups

    @property
    def by_field(self) -> dict[str, str]:
        """Field name -> the batch column that writes it."""
        found: dict[str, str] = {}
        for column, f in self.columns.items():
            found.setdefault(f.name, column)
        return found

    @property
    def key_field(self) -> Field:
        f = self.obj.field(self.key if self.operation == "upsert" else "Id")
        assert f is not None, self.key
        return f

    @property
    def keyed_by_id(self) -> bool:
        return self.operation != "insert" and self.key_field.name == "Id"

    @property
    def deleting(self) -> bool:
        return self.operation in ("delete", "hardDelete")

    def _value(self, f: Field, alias: str = "s") -> str:
        column = self.by_field.get(f.name)
        return f"{alias}.{sql_name(column)}" if column else "NULL::VARCHAR"

    def _has(self, v: str) -> str:
        return f"({v} IS NOT NULL AND {v} <> {sql_text(self.batch.null_mark)})"

    def status_sql(self) -> str:
        """`_rn`, `created`, `sf_id` (the record's 18-character Id where known) and `err`."""
        null = sql_text(self.batch.null_mark)  # an emptied key is no key
        k = f"nullif({self._value(self.key_field)}, {null})"
        raw = f"nullif({self._value(self.key_field, 'b')}, {null})"
        table, joins = self.batch.table, ""
        if self.operation == "insert":
            created, target = "true", "NULL::VARCHAR"
            staged = f"SELECT b.*, NULL::VARCHAR AS _target, 1 AS _dups FROM {table} b"
        elif self.keyed_by_id:
            created = f"({k} IS NULL)" if self.operation == "upsert" else "false"
            target = "s._target"
            staged = (
                "SELECT *, count(*) OVER (PARTITION BY _target) AS _dups FROM (SELECT b.*, "
                f"CASE WHEN {id_ok(raw)} THEN {id18(raw)} END AS _target FROM {table} b)"
            )
        else:  # an upsert on an external id field
            ext = sql_name(self.key_field.name)
            created = f"({k} IS NOT NULL AND m._id IS NULL)"
            target = "CASE WHEN m._n = 1 THEN m._id END"
            live = 'NOT "IsDeleted" AND ' if self.obj.soft_delete else ""
            # External ids match whatever their case, as Salesforce's do unless made
            # case-sensitive; deleted records are not matched.
            joins = (
                f'LEFT JOIN (SELECT lower({ext}::VARCHAR) AS _k, count(*) AS _n, min("Id") AS _id, '
                f'list("Id" ORDER BY "Id") AS _ids FROM org.{sql_name(self.obj.name)} '
                f"WHERE {live}{ext} IS NOT NULL GROUP BY 1) m ON m._k = lower({k})"
            )
            staged = (
                "SELECT b.*, NULL::VARCHAR AS _target, "
                f"count(*) OVER (PARTITION BY lower({raw})) AS _dups FROM {table} b"
            )
        # [assume: pessimistic] one error per record, the first met; the lock before the rules.
        checks = [
            *self._parse_checks(),
            self._key_check(k, target),
            *self._field_checks(),
            self._required_check(created),
            self._lock_check(target, created),
        ]
        errors = ", ".join(c for c in checks if c) or "NULL"
        return (
            f"SELECT s._rn, {created} AS created, {target} AS sf_id, "
            f"coalesce({errors}, NULL) AS err FROM ({staged}) s {joins} "
            f'LEFT JOIN org.{sql_name(self.obj.name)} t ON t."Id" = {target}'
        )

    def _key_check(self, k: str, target: str) -> str:
        """The record's key: given, well formed, naming one live record, once in the batch."""
        if self.operation == "insert":
            if "Id" not in self.by_field:
                return ""
            refused = sql_error(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                sql_text("cannot specify Id in an insert call"),
                sql_names(["Id"]),
            )
            return f"CASE WHEN {k} IS NOT NULL THEN {refused} END"
        if not self.keyed_by_id:
            return self._external_key_check(k)
        call = "a delete" if self.deleting else "an update"
        missing = sql_error("MISSING_ARGUMENT", sql_text(f"Id not specified in {call} call"))
        if self.api == "bulk":
            malformed = f"{sql_text(self.obj.name + ' ID: id value of incorrect type: ')} || {k}"
        else:
            malformed = f"'malformed id ' || {k}"
        # A hard delete of a record in the recycle bin fails too: it is deleted already.
        deleted = sql_error("ENTITY_IS_DELETED", sql_text("entity is deleted"))
        # [assume: pessimistic] every record of an Id named twice in one write fails, the first too.
        duplicate = sql_error("DUPLICATE_VALUE", f"'Duplicate id in list: ' || {k}")
        return (
            "CASE "
            + (f"WHEN {k} IS NULL THEN {missing} " if self.operation != "upsert" else "")
            + f"WHEN {k} IS NULL THEN NULL "
            f"WHEN {target} IS NULL THEN {sql_error('MALFORMED_ID', malformed, sql_names(['Id']))} "
            'WHEN t."Id" IS NULL THEN '
            f"{sql_error('INVALID_CROSS_REFERENCE_KEY', sql_text('invalid cross reference id'))} "
            + (f'WHEN t."IsDeleted" THEN {deleted} ' if self.obj.soft_delete else "")
            + f"WHEN s._dups > 1 THEN {duplicate} END"
        )

    def _external_key_check(self, k: str) -> str:
        name = self.key_field.name
        label = self.key_field.label or name
        about = sql_names([name])
        many = (
            f"{sql_text(label + ': more than one record found for external id field: [')} "
            "|| array_to_string(m._ids, ', ') || ']'"
        )
        missing = sql_error("MISSING_ARGUMENT", sql_text(name + " not specified"))
        duplicate = sql_error(
            "DUPLICATE_VALUE", f"'Duplicate external id specified: ' || {k}", about
        )
        return (
            f"CASE WHEN {k} IS NULL THEN {missing} "
            f"WHEN m._n > 1 THEN {sql_error('DUPLICATE_EXTERNAL_ID', many, about)} "
            f"WHEN s._dups > 1 THEN {duplicate} END"
        )

    def _writable(self, f: Field) -> bool:
        if f.name == "Id" or (self.operation == "upsert" and f.name == self.key_field.name):
            return True  # the key, checked as such
        fixed = f.name in SYSTEM_FIELDS or f.calculated or f.auto_number
        return not fixed and f"{self.obj.name}.{f.name}" not in self.rules.read_only_fields

    def _touched(self, column: str) -> str:
        """Whether a record sets the column's field: the JSON record carries the key; in a CSV,
        the column is there."""
        # [assume: pessimistic] a read-only field's CSV column fails every row, blank ones too.
        return f"(s.{sql_name(column)} IS NOT NULL)" if self.batch.per_record else "true"

    def _parse_checks(self) -> list[str]:
        """JSON values that are not of their field's type: the whole request fails."""
        if not self.batch.per_record or self.deleting:
            return []
        checks = []
        for column, f in self.columns.items():
            v = f"s.{sql_name(column)}"
            kind = f.soap_type.split(":")[-1]
            shape = sql_text(f"Cannot deserialize instance of {kind} from START_OBJECT value")
            checks.append(
                f"CASE WHEN {v} = {sql_text(JSON_BAD)} THEN "
                f"{sql_error('JSON_PARSER_ERROR', shape)} END"
            )
            ok = type_ok(f, v)
            if ok is not None:
                head = sql_text(f"Cannot deserialize instance of {kind} from VALUE_STRING value ")
                message = f"{head} || {v} || ' or request may be missing a required field'"
                failure = sql_error("JSON_PARSER_ERROR", message)
                checks.append(f"CASE WHEN {self._has(v)} AND NOT ({ok}) THEN {failure} END")
        return checks

    def _field_checks(self) -> list[str]:
        if self.deleting:
            return []
        checks = []
        fixed = [(c, f) for c, f in self.columns.items() if not self._writable(f)]
        if fixed:
            touched = ", ".join(
                f"CASE WHEN {self._touched(c)} THEN {sql_text(f.name)} END" for c, f in fixed
            )
            names = f"list_filter([{touched}], lambda x: x IS NOT NULL)"
            message = f"replace({sql_text(NOT_WRITABLE)}, '{{}}', array_to_string({names}, ', '))"
            failure = sql_error("INVALID_FIELD_FOR_INSERT_UPDATE", message, names)
            checks.append(f"CASE WHEN len({names}) > 0 THEN {failure} END")
        for index, column in enumerate(self.batch.columns, start=1):
            f = self.columns.get(column)
            if f is not None and f.name != "Id" and self.by_field.get(f.name) == column:
                checks += self._value_checks(f, f"s.{sql_name(column)}", index)
        return checks

    def _value_checks(self, f: Field, v: str, index: int) -> list[str]:
        """One field's value: its type (a CSV's; JSON's fail the request), its lookup, its
        picklist or length, an email's form, and no null where the field is required."""
        has = self._has(v)
        label = f.label or f.name
        about = sql_names([f.name])
        checks = []
        ok = type_ok(f, v)
        if ok is not None and not self.batch.per_record:
            head = sql_text(f"Failed to deserialize field at col {index}. Due to, '")
            tail = sql_text(f"' is not a valid value for the type {f.soap_type}")
            failure = sql_error("INVALID_FIELD", f"{head} || {v} || {tail}", about)
            checks.append(f"CASE WHEN {has} AND NOT ({ok}) THEN {failure} END")
        if f.type == "reference":
            # [assume: pessimistic] a lookup to a record in the recycle bin is refused as unknown.
            exists = " OR ".join(
                f'EXISTS (SELECT 1 FROM org.{sql_name(target)} x WHERE x."Id" = {id18(v)}'
                + (' AND NOT x."IsDeleted")' if self._soft_deleted(target) else ")")
                for target in f.reference_to
            )
            malformed = sql_error(
                "MALFORMED_ID",
                f"{sql_text(label + ': id value of incorrect type: ')} || {v}",
                about,
            )
            missing = sql_error(
                "INVALID_CROSS_REFERENCE_KEY", sql_text("invalid cross reference id"), about
            )
            checks.append(
                f"CASE WHEN {has} AND NOT {id_ok(v)} THEN {malformed} "
                f"WHEN {has} AND NOT ({exists or 'false'}) THEN {missing} END"
            )
        elif f.restricted_picklist:
            message = f"{sql_text(label + ': bad value for restricted picklist field: ')} || {v}"
            failure = sql_error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", message, about)
            checks.append(
                f"CASE WHEN {has} AND NOT list_contains({sql_names(f.picklist)}, {v}) "
                f"THEN {failure} END"
            )
        elif f.is_text and f.length:
            tail = sql_text(f" (max length={f.length})")
            message = f"{sql_text(label + ': data value too large: ')} || {v} || {tail}"
            failure = sql_error("STRING_TOO_LONG", message, about)
            checks.append(f"CASE WHEN {has} AND length({v}) > {f.length:d} THEN {failure} END")
        if f.type == "email":
            message = f"{sql_text(label + ': invalid email address: ')} || {v}"
            failure = sql_error("INVALID_EMAIL_ADDRESS", message, about)
            checks.append(
                f"CASE WHEN {has} AND NOT regexp_full_match({v}, '{_EMAIL}') THEN {failure} END"
            )
        if not f.nillable:
            # [assume: pessimistic] emptying a required field fails, a checkbox's too.
            message = sql_text(f"Required fields are missing: [{f.name}]")
            failure = sql_error("REQUIRED_FIELD_MISSING", message, about)
            checks.append(f"CASE WHEN {v} = {sql_text(self.batch.null_mark)} THEN {failure} END")
        return checks

    def _soft_deleted(self, name: str) -> bool:
        target = self.targets.get(name)
        return target is not None and target.soft_delete

    def _required_check(self, created: str) -> str:
        """A record the write creates names every required field (as `Org.create_record`)."""
        if self.operation in ("update", "delete", "hardDelete"):
            return ""
        required = [
            f
            for f in self.obj.fields
            if not f.nillable
            and f.name not in SYSTEM_FIELDS
            and f.type != "boolean"
            and not (f.calculated or f.auto_number)
            and f.name not in ("OwnerId", "CurrencyIsoCode")
        ]
        if not required:
            return ""
        missing = ", ".join(
            f"CASE WHEN NOT {self._has(self._value(f))} THEN {sql_text(f.name)} END"
            if f.name in self.by_field
            else sql_text(f.name)
            for f in required
        )
        names = f"list_filter([{missing}], lambda x: x IS NOT NULL)"
        message = f"'Required fields are missing: [' || array_to_string({names}, ', ') || ']'"
        failure = sql_error("REQUIRED_FIELD_MISSING", message, names)
        return f"CASE WHEN {created} AND len({names}) > 0 THEN {failure} END"

    def _lock_check(self, target: str, created: str) -> str:
        locked = [i for i, left in self.rules.locks.items() if left > 0]
        if not locked or self.operation == "insert":
            return ""
        message = f"'unable to obtain exclusive access to this record or 1 records: ' || {target}"
        failure = sql_error("UNABLE_TO_LOCK_ROW", message)
        held = f"list_contains({sql_names(locked)}, {target})"
        return f"CASE WHEN NOT {created} AND {held} THEN {failure} END"

    def image_sql(self, full: SObject, status: str, now: dt.datetime, user: str) -> str:
        """The records that passed, every column as the write leaves it."""
        stamp = f"TIMESTAMP '{now.isoformat(sep=' ')}'"
        defaults = {
            "IsDeleted": "false",
            "CreatedDate": stamp,
            "CreatedById": sql_text(user),
            "OwnerId": sql_text(user),
            "CurrencyIsoCode": "'USD'",
        }
        fixed = {
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
            "LastModifiedById": sql_text(user),
        }
        columns = []
        for f in full.fields:
            name = sql_name(f.name)
            if f.name == "Id":
                columns.append(f"r.sf_id AS {name}")
                continue
            if f.name in fixed:
                columns.append(f"{fixed[f.name]} AS {name}")
                continue
            default = defaults.get(f.name, "false" if f.type == "boolean" else "NULL")
            value = f"CASE WHEN r.created THEN {default} ELSE t.{name} END"
            column = self.by_field.get(f.name)
            if column is not None:
                v = f"s.{sql_name(column)}"
                null = sql_text(self.batch.null_mark)
                value = (
                    f"CASE WHEN {v} IS NULL THEN {value} WHEN {v} = {null} "
                    f"THEN NULL ELSE {cast_value(f, v)} END"
                )
            columns.append(f"{value} AS {name}")
        return (
            f"SELECT r._rn, r.created AS _created, {', '.join(columns)} FROM {status} r "
            f"JOIN {self.batch.table} s USING (_rn) LEFT JOIN org.{sql_name(full.name)} t "
            'ON t."Id" = r.sf_id AND NOT r.created WHERE r.err IS NULL'
        )
