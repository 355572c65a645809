"""Writes to the org's records as Salesforce's REST and Bulk APIs take them, checked and applied
set-at-a-time in DuckDB.

Records are staged as a batch table (`write_plan.Batch`), every record's first error found by
one query (`write_plan.WritePlan`), the records that pass built as they will be after the write,
the validation rules run over those, and what is left applied in one statement per object,
stamped with the time and the integration user. One write runs at a time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from pipeline.sandbox.salesforce.schema import Field, OrgSchema
from pipeline.sandbox.salesforce.write_plan import (
    CSV_NULL,
    JSON_BAD,
    JSON_NULL,
    Api,
    Batch,
    Operation,
    WritePlan,
    WriteRules,
    sql_error,
    sql_name,
    sql_names,
    sql_text,
)

ResultKind = Literal["successful", "failed", "unprocessed"]
ROLLED_BACK = (
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header"
)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_STAMPS = ("LastModifiedDate", "SystemModstamp", "LastModifiedById")
ROLLED_BACK_ERROR = sql_error("ALL_OR_NONE_OPERATION_ROLLED_BACK", sql_text(ROLLED_BACK))


class BatchError(Exception):
    """A batch that fails as a whole (the REST request answers 400, the bulk job ends Failed)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class UnknownField(BatchError):
    """A batch names a field the object lacks or the integration user cannot see."""

    def __init__(self, sobject: str, name: str) -> None:
        super().__init__("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
        self.sobject = sobject
        self.name = name


@dataclass(frozen=True)
class Written:
    """One batch's outcome: `status` holds `_rn`, `sf_id`, `created` and `err` (NULL, or a
    struct of code, message and fields) for every record."""

    sobject: str
    operation: Operation
    batch: Batch
    status: str


class Writer:
    """Checks and applies batches of records against `schema`'s tables in `db`, one write at a
    time (a write holds its records until it ends, as Salesforce's transaction does)."""

    def __init__(
        self,
        db: duckdb.DuckDBPyConnection,
        schema: OrgSchema,
        visible: OrgSchema,
        user: str,
        rules: WriteRules,
        reserve_ids: Callable[[int], int],
    ) -> None:
        self.db = db
        self.schema = schema
        self.visible = visible
        self.user = user
        self.rules = rules
        self.reserve_ids = reserve_ids
        self._names = itertools.count(1)
        self._lock = threading.Lock()

    def _table(self, kind: str) -> str:
        return f'work."{kind}_{next(self._names)}"'

    # ---- staging ------------------------------------------------------------------------------

    def stage_csv(self, path: Path, delimiter: str) -> Batch:
        """A Bulk API upload as a batch: every value as text, a blank as NULL."""
        table = self._table("csv")
        cur = self.db.cursor()
        try:
            cur.execute(
                f"CREATE TABLE {table} AS SELECT (row_number() OVER () - 1)::BIGINT AS _rn, * "
                f"FROM read_csv({sql_text(str(path))}, all_varchar = true, header = true, "
                f"delim = {sql_text(delimiter)}, quote = '\"', escape = '\"')"
            )
            columns = [d[0] for d in cur.execute(f"SELECT * FROM {table} LIMIT 0").description]
        finally:
            cur.close()
        return Batch(table, tuple(columns[1:]), CSV_NULL, per_record=False)

    def stage_json(
        self, records: Sequence[Mapping[str, Any]], default_type: str | None = None
    ) -> dict[str, Batch]:
        """JSON records as one batch per object (`attributes.type`, else `default_type`),
        each with the keys its records carry; JSON's null is `JSON_NULL`."""
        raw = self._table("json")
        cur = self.db.cursor()
        try:
            cur.execute(
                f"CREATE TABLE {raw} AS SELECT unnest(range(len(l)))::BIGINT AS _rn, "
                "unnest(l) AS j FROM (SELECT from_json(?::JSON, '[\"JSON\"]') AS l)",
                [json.dumps(list(records))],
            )
            odd = cur.execute(f"SELECT count(*) FROM {raw} WHERE json_type(j) <> 'OBJECT'")
            if (odd.fetchone() or (0,))[0]:
                raise BatchError("JSON_PARSER_ERROR", "Each record must be a JSON object")
            kind = f"coalesce(j->>'$.attributes.type', {sql_text(default_type or '')})"
            types = [t for (t,) in cur.execute(f"SELECT DISTINCT {kind} FROM {raw}").fetchall()]
            if "" in types:
                # [assume: pessimistic] a record without a type fails the whole request.
                raise BatchError(
                    "INVALID_TYPE", "Must specify a type in the attributes of a record"
                )
            keys = dict(
                cur.execute(
                    f"SELECT t, list(k ORDER BY rn) FROM (SELECT {kind} AS t, k, min(_rn) AS rn "
                    f"FROM (SELECT _rn, j, unnest(json_keys(j)) AS k FROM {raw}) GROUP BY ALL) "
                    "GROUP BY t"
                ).fetchall()
            )
            typed = {name: self._json_columns(name, keys.get(name) or []) for name in types}
            batches: dict[str, Batch] = {}
            bad = sql_text(JSON_BAD)
            try:
                for name, columns in typed.items():
                    values = "".join(
                        f", CASE json_type(j, '$.\"{k}\"') WHEN 'NULL' THEN {sql_text(JSON_NULL)} "
                        f"WHEN 'OBJECT' THEN {bad} WHEN 'ARRAY' THEN {bad} "
                        f"ELSE j->>'$.\"{k}\"' END AS {sql_name(k)}"
                        for k in columns
                    )
                    table = self._table("rest")
                    cur.execute(
                        f"CREATE TABLE {table} AS SELECT _rn{values} FROM {raw} WHERE {kind} = ?",
                        [name],
                    )
                    batches[name] = Batch(table, tuple(columns), JSON_NULL, per_record=True)
            except BaseException:
                self.drop(*batches.values())
                raise
            return batches
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {raw}")
            cur.close()

    def _json_columns(self, sobject: str, keys: Sequence[str]) -> list[str]:
        """A type's keys, `attributes` left out and one key per field (the first spelling)."""
        columns: list[str] = []
        seen: set[str] = set()
        for key in keys:
            if key.lower() == "attributes" or key.lower() in seen:
                continue
            if not _NAME.fullmatch(key):
                raise UnknownField(sobject, key)
            seen.add(key.lower())
            columns.append(key)
        return columns

    def drop(self, *items: Batch | Written) -> None:
        cur = self.db.cursor()
        try:
            for item in items:
                table = item.table if isinstance(item, Batch) else item.status
                cur.execute(f"DROP TABLE IF EXISTS {table}")
        finally:
            cur.close()

    # ---- writing ------------------------------------------------------------------------------

    def write(
        self,
        groups: Sequence[tuple[str, Batch]],
        operation: Operation,
        *,
        api: Api,
        key: str = "Id",
        all_or_none: bool = False,
    ) -> list[Written]:
        """Write each (object, batch); with `all_or_none`, nothing unless every record passes.
        Raises BatchError when a batch fails as a whole."""
        # Stamped when the request arrives, as a transaction is: a write that waits for another
        # commits with the earlier stamp (the overlap an incremental read must allow for).
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self._lock:
            cur = self.db.cursor()
            written: list[Written] = []
            images: list[str | None] = []
            try:
                for sobject, batch in groups:
                    done, image = self._check(cur, sobject, operation, batch, key, api, now)
                    written.append(done)
                    images.append(image)
                failed = any(self._failures(cur, w) for w in written)
                if all_or_none and failed:
                    for w in written:
                        cur.execute(
                            f"UPDATE {w.status} SET err = {ROLLED_BACK_ERROR} WHERE err IS NULL"
                        )
                else:
                    cur.execute("BEGIN TRANSACTION")
                    try:
                        for w, image in zip(written, images, strict=True):
                            self._apply(cur, w, image, now)
                        cur.execute("COMMIT")
                    except duckdb.Error:
                        cur.execute("ROLLBACK")
                        raise
            except BaseException:
                self.drop(*written)
                raise
            finally:
                for image in images:
                    if image is not None:
                        cur.execute(f"DROP TABLE IF EXISTS {image}")
                cur.close()
        return written

    def _failures(self, cur: duckdb.DuckDBPyConnection, w: Written) -> int:
        (count,) = cur.execute(f"SELECT count(err) FROM {w.status}").fetchone() or (0,)
        return int(count)

    def counts(self, w: Written) -> tuple[int, int]:
        """(records processed, records failed)."""
        cur = self.db.cursor()
        try:
            row = cur.execute(f"SELECT count(*), count(err) FROM {w.status}").fetchone()
        finally:
            cur.close()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _check(
        self,
        cur: duckdb.DuckDBPyConnection,
        sobject: str,
        operation: Operation,
        batch: Batch,
        key: str,
        api: Api,
        now: dt.datetime,
    ) -> tuple[Written, str | None]:
        """Every record's first error into a status table, new Ids for the records it creates,
        and (unless deleting) the records as the write leaves them, validation rules run."""
        obj = self.visible.sobject(sobject)
        assert obj is not None, sobject
        columns: dict[str, Field] = {}
        for column in batch.columns:
            f = obj.field(column)
            if f is None:
                raise UnknownField(obj.name, column)
            columns[column] = f
        if api == "bulk" and operation in ("delete", "hardDelete"):
            # A delete reads the Id alone (simple-salesforce sends nothing else).
            columns = {c: f for c, f in columns.items() if f.name == "Id"}
        targets = {o.name: o for o in self.schema.objects}
        plan = WritePlan(obj, operation, batch, columns, key, api, self.rules, targets)
        status = self._table("status")
        cur.execute(f"CREATE TABLE {status} AS {plan.status_sql()}")
        written = Written(obj.name, operation, batch, status)
        try:
            parse = cur.execute(
                f"SELECT err.message FROM {status} WHERE err.code = 'JSON_PARSER_ERROR' "
                "ORDER BY _rn LIMIT 1"
            ).fetchone()
            if parse is not None:
                raise BatchError("JSON_PARSER_ERROR", parse[0])
            (created,) = cur.execute(f"SELECT count(*) FROM {status} WHERE created").fetchone() or (
                0,
            )
            if created:
                first = self.reserve_ids(int(created))
                prefix = sql_text(obj.key_prefix)
                cur.execute(
                    f"UPDATE {status} SET sf_id = sf_id({prefix}, {first:d} + n.k) "
                    f"FROM (SELECT _rn, row_number() OVER (ORDER BY _rn) - 1 AS k FROM {status} "
                    f"WHERE created) n WHERE {status}._rn = n._rn"
                )
            # A lock is spent by a write that reaches it, as the other transaction may end.
            locked = cur.execute(
                f"SELECT DISTINCT sf_id FROM {status} WHERE err.code = 'UNABLE_TO_LOCK_ROW'"
            ).fetchall()
            self.rules.release(i for (i,) in locked)
            if operation in ("delete", "hardDelete"):
                return written, None
            full = self.schema.sobject(obj.name)
            assert full is not None
            image = self._table("image")
            cur.execute(f"CREATE TABLE {image} AS {plan.image_sql(full, status, now, self.user)}")
            for rule in self.rules.validation_rules:
                if rule.sobject != obj.name:
                    continue
                fields = sql_names([rule.error_field] if rule.error_field else [])
                failure = sql_error(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION", sql_text(rule.message), fields
                )
                cur.execute(
                    f"UPDATE {status} SET err = {failure} WHERE err IS NULL AND _rn IN "
                    f"(SELECT _rn FROM {image} WHERE ({rule.condition}))"
                )
            cur.execute(
                f"DELETE FROM {image} WHERE _rn IN (SELECT _rn FROM {status} WHERE err IS NOT NULL)"
            )
            return written, image
        except BaseException:
            cur.execute(f"DROP TABLE IF EXISTS {status}")
            raise

    def _apply(
        self, cur: duckdb.DuckDBPyConnection, w: Written, image: str | None, now: dt.datetime
    ) -> None:
        obj = self.schema.sobject(w.sobject)
        assert obj is not None
        table = f"org.{sql_name(obj.name)}"
        stamps = {
            "LastModifiedDate": f"TIMESTAMP '{now.isoformat(sep=' ')}'",
            "SystemModstamp": f"TIMESTAMP '{now.isoformat(sep=' ')}'",
            "LastModifiedById": sql_text(self.user),
        }
        present = [s for s in _STAMPS if obj.field(s) is not None]
        ok = f"(SELECT sf_id FROM {w.status} WHERE err IS NULL)"
        if w.operation == "hardDelete" or (w.operation == "delete" and not obj.soft_delete):
            cur.execute(f'DELETE FROM {table} WHERE "Id" IN {ok}')
            return
        if w.operation == "delete":
            sets = ", ".join(
                ['"IsDeleted" = true', *(f"{sql_name(s)} = {stamps[s]}" for s in present)]
            )
            cur.execute(f'UPDATE {table} SET {sets} WHERE "Id" IN {ok}')
            return
        assert image is not None
        written = {
            f.name for c in w.batch.columns if (f := obj.field(c)) is not None and f.name != "Id"
        }
        names = [f.name for f in obj.fields if f.name in written or f.name in present]
        if names:
            sets = ", ".join(f"{sql_name(n)} = i.{sql_name(n)}" for n in names)
            cur.execute(
                f'UPDATE {table} AS t SET {sets} FROM {image} AS i WHERE t."Id" = i."Id" '
                "AND NOT i._created"
            )
        cur.execute(
            f"INSERT INTO {table} BY NAME SELECT * EXCLUDE (_rn, _created) FROM {image} "
            "WHERE _created"
        )

    # ---- results ------------------------------------------------------------------------------

    def composite_json(self, written: Sequence[Written], *, upsert: bool) -> str:
        """sObject Collections' answer: one result per record, in the request's order."""
        success = "'id', sf_id, 'success', true, 'errors', json_array()"
        if upsert:
            success += ", 'created', created"
        failure = (
            "'success', false, 'errors', json_array(json_object('statusCode', err.code, "
            "'message', err.message, 'fields', to_json(err.fields)))"
        )
        union = " UNION ALL ".join(f"SELECT * FROM {w.status}" for w in written)
        cur = self.db.cursor()
        try:
            row = cur.execute(
                "SELECT coalesce(to_json(list(CASE WHEN err IS NULL THEN json_object("
                f"{success}) ELSE json_object({failure}) END ORDER BY _rn)), '[]') FROM ({union})"
            ).fetchone()
        finally:
            cur.close()
        return str(row[0]) if row else "[]"

    def outcome(self, w: Written) -> tuple[str | None, bool, tuple[str, str, list[str]] | None]:
        """The first record's Id, whether it was created, and its error (code, message,
        fields), for a one-record REST write."""
        cur = self.db.cursor()
        try:
            row = cur.execute(
                f"SELECT sf_id, created, err.code, err.message, err.fields FROM {w.status} "
                "ORDER BY _rn LIMIT 1"
            ).fetchone()
        finally:
            cur.close()
        assert row is not None
        error = (row[2], row[3], list(row[4])) if row[2] is not None else None
        return row[0], bool(row[1]), error

    def write_results(
        self,
        batch: Batch,
        written: Written | None,
        kind: ResultKind,
        path: Path,
        delimiter: str,
        line_ending: str,
    ) -> int:
        """One of a bulk job's result files, rendered by DuckDB; returns its record count (no
        file is written for none)."""
        # Every value quoted, a blank one as "" (as query results are).
        columns = ", ".join(
            f"coalesce(s.{sql_name(c)}, '') AS {sql_name(c)}" for c in batch.columns
        )
        if kind == "unprocessed":
            sql = f"SELECT {columns} FROM {batch.table} s"
            if written is not None:
                sql += f" WHERE _rn NOT IN (SELECT _rn FROM {written.status})"
        else:
            assert written is not None
            error = (
                "r.err.code || ':' || r.err.message || ':' || CASE WHEN len(r.err.fields) > 0 "
                "THEN array_to_string(r.err.fields, ',') || ' --' ELSE '--' END"
            )
            head = (
                "r.sf_id AS sf__Id, r.created AS sf__Created"
                if kind == "successful"
                # [assume: pessimistic] sf__Id is blank on a failed row; match it by its columns.
                else f"'' AS sf__Id, {error} AS sf__Error"
            )
            where = "r.err IS NULL" if kind == "successful" else "r.err IS NOT NULL"
            sql = (
                f"SELECT {head}{', ' + columns if columns else ''} FROM {written.status} r "
                f"JOIN {batch.table} s USING (_rn) WHERE {where}"
            )
        # Salesforce documents that result order need not follow the upload's.
        sql += " ORDER BY hash(s._rn)"
        cur = self.db.cursor()
        try:
            (count,) = cur.execute(f"SELECT count(*) FROM ({sql})").fetchone() or (0,)
            if count:
                cur.execute(
                    f"COPY ({sql}) TO {sql_text(str(path))} (HEADER, FORCE_QUOTE *, QUOTE '\"', "
                    f"ESCAPE '\"', DELIMITER {sql_text(delimiter)}, "
                    f"NEW_LINE {sql_text(line_ending)})"
                )
        finally:
            cur.close()
        return int(count)
