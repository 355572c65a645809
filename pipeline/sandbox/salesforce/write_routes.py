"""The org sandbox's write endpoints: REST sObject rows and collections, Bulk API 2.0 ingest.

Each handler answers in Salesforce's wire format; the records themselves are checked and written
by `writes.Writer` on the sandbox's worker threads, and every call passes the data API gate
(faults, session, daily quota) like any other.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from pipeline.salesforce.ids import is_valid_id, to18
from pipeline.sandbox.salesforce.errors import ApiError
from pipeline.sandbox.salesforce.ingest import MAX_UPLOAD_BYTES, IngestJob
from pipeline.sandbox.salesforce.schema import SObject
from pipeline.sandbox.salesforce.write_plan import Batch, Operation
from pipeline.sandbox.salesforce.writes import BatchError, ResultKind, Written

if TYPE_CHECKING:
    from pipeline.sandbox.salesforce.app import SalesforceSandbox

COLLECTION_LIMIT: Final = 200  # records in one sObject Collections request
RESULT_KINDS: Final[dict[str, ResultKind]] = {
    "successfulresults": "successful",
    "failedresults": "failed",
    "unprocessedrecords": "unprocessed",
}


class WriteRoutes:
    """Handlers for the write endpoints of one sandbox org."""

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox
        self.org = sandbox.org
        self.writer = sandbox.org.writer

    def add_to(self, router: web.UrlDispatcher, v: str) -> None:
        r = router
        r.add_patch(f"{v}/sobjects/{{object}}/{{id}}", self.update_record)
        r.add_delete(f"{v}/sobjects/{{object}}/{{id}}", self.delete_record)
        r.add_patch(f"{v}/sobjects/{{object}}/{{field}}/{{value}}", self.upsert_record)
        for slash in ("", "/"):
            r.add_patch(f"{v}/composite/sobjects{slash}", self.update_collection)
            r.add_patch(
                f"{v}/composite/sobjects/{{object}}/{{field}}{slash}", self.upsert_collection
            )
            r.add_post(f"{v}/jobs/ingest{slash}", self.create_job)
            r.add_get(f"{v}/jobs/ingest{slash}", self.list_jobs)
            r.add_put(f"{v}/jobs/ingest/{{job}}/batches{slash}", self.upload)
            r.add_get(f"{v}/jobs/ingest/{{job}}/{{kind}}{slash}", self.results)
        r.add_get(f"{v}/jobs/ingest/{{job}}", self.job_info)
        r.add_patch(f"{v}/jobs/ingest/{{job}}", self.set_state)
        r.add_delete(f"{v}/jobs/ingest/{{job}}", self.delete_job)

    # ---- REST: one record ---------------------------------------------------------------------

    async def update_record(self, request: web.Request) -> web.Response:
        obj = self._writable(request.match_info["object"], "update")
        body = _without_attributes(await _json_object(request))
        if any(key.lower() == "id" for key in body):
            # [assume: pessimistic] an Id in the body is refused, even the URL's own.
            raise _not_writable(["Id"])
        record = {**body, "Id": request.match_info["id"]}
        await self._one(request, obj, "update", record, "Id")
        return web.Response(status=204)

    async def delete_record(self, request: web.Request) -> web.Response:
        obj = self._writable(request.match_info["object"], "delete")
        await self._one(request, obj, "delete", {"Id": request.match_info["id"]}, "Id")
        return web.Response(status=204)

    async def upsert_record(self, request: web.Request) -> web.Response:
        info = request.match_info
        obj = self._writable(info["object"], "upsert")
        key = obj.field(info["field"])
        if key is None or not (key.external_id or key.name == "Id"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {info['field']}",
            )
        body = _without_attributes(await _json_object(request))
        if any(name.lower() == key.name.lower() for name in body):
            # [assume: pessimistic] the key given in the URL may not be repeated in the body.
            raise ApiError(
                400, "INVALID_FIELD", f"The external ID field {key.name} is already in the URL"
            )
        record = {**body, key.name: info["value"]}
        try:
            record_id, created = await self._one(request, obj, "upsert", record, key.name)
        except _MultipleChoices as several:
            return _json(several.urls, status=300)
        answer = {"id": record_id, "success": True, "errors": [], "created": created}
        return _json(answer, status=201 if created else 200)

    async def _one(
        self,
        request: web.Request,
        obj: SObject,
        operation: Operation,
        record: dict[str, Any],
        key: str,
    ) -> tuple[str | None, bool]:
        return await self.sandbox.run_blocking(
            self._write_one, obj, operation, record, key, request.match_info["version"]
        )

    def _write_one(
        self, obj: SObject, operation: Operation, record: dict[str, Any], key: str, version: str
    ) -> tuple[str | None, bool]:
        """A one-record write, its failure as the REST resource answers it."""
        if key == "Id":
            self._found(obj, str(record["Id"]))
        written = self._write([record], obj.name, operation, key=key)
        try:
            record_id, created, error = self.writer.outcome(written[0])
        finally:
            self.writer.drop(*written)
        if error is not None:
            code, message, fields = error
            if code == "DUPLICATE_EXTERNAL_ID":
                raise _MultipleChoices(self._urls(obj, key, str(record[key]), version))
            if code == "INVALID_CROSS_REFERENCE_KEY" and not fields:  # the record's own Id
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            raise ApiError(400, code, message, fields)
        return record_id, created

    def _found(self, obj: SObject, record_id: str) -> None:
        """The record a URL names exists and is not deleted, as `GET` would answer."""
        if not is_valid_id(record_id):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {record_id}",
            )
        deleted = '"IsDeleted"' if obj.soft_delete else "false"
        cur = self.org.db.cursor()
        try:
            row = cur.execute(
                f'SELECT {deleted} FROM org."{obj.name}" WHERE "Id" = ?', [to18(record_id)]
            ).fetchone()
        finally:
            cur.close()
        if row is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if row[0]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")

    def _urls(self, obj: SObject, key: str, value: str, version: str) -> list[str]:
        """The records an external id names, for 300 Multiple Choices."""
        live = ' AND NOT "IsDeleted"' if obj.soft_delete else ""
        cur = self.org.db.cursor()
        try:
            row = cur.execute(
                f'SELECT list("Id" ORDER BY "Id") FROM org."{obj.name}" '
                f'WHERE lower("{key}"::VARCHAR) = lower(?){live}',
                [value],
            ).fetchone()
        finally:
            cur.close()
        ids = row[0] if row and row[0] else []
        return [f"/services/data/v{version}/sobjects/{obj.name}/{i}" for i in ids]

    # ---- REST: sObject Collections ------------------------------------------------------------

    async def update_collection(self, request: web.Request) -> web.Response:
        records, all_or_none = _collection(await _json_object(request))
        answer = await self.sandbox.run_blocking(
            self._collection, records, None, "update", "Id", all_or_none
        )
        return _json(answer)

    async def upsert_collection(self, request: web.Request) -> web.Response:
        info = request.match_info
        obj = self._writable(info["object"], "upsert")
        key = obj.field(info["field"])
        if key is None or not (key.external_id or key.name == "Id"):
            raise ApiError(
                400, "INVALID_FIELD", f"Field {info['field']} is not an external id of {obj.name}"
            )
        records, all_or_none = _collection(await _json_object(request))
        answer = await self.sandbox.run_blocking(
            self._collection, records, obj.name, "upsert", key.name, all_or_none
        )
        return _json(answer)

    def _collection(
        self,
        records: list[Any],
        sobject: str | None,
        operation: Operation,
        key: str,
        all_or_none: bool,
    ) -> str:
        if not records:
            return "[]"
        written = self._write(records, sobject, operation, key=key, all_or_none=all_or_none)
        try:
            return self.writer.composite_json(written, upsert=operation == "upsert")
        finally:
            self.writer.drop(*written)

    def _write(
        self,
        records: list[Any],
        sobject: str | None,
        operation: Operation,
        *,
        key: str,
        all_or_none: bool = False,
    ) -> list[Written]:
        """Stages JSON records per object and writes them; a whole-request failure is a 400."""
        batches: dict[str, Batch] = {}
        try:
            batches = self.writer.stage_json(records, sobject)
            groups = []
            for name, batch in batches.items():
                if sobject is not None and name.lower() != sobject.lower():
                    raise BatchError("INVALID_TYPE", f"Record type {name} is not {sobject}")
                obj = self._writable(name, operation, in_collection=True)
                groups.append((obj.name, batch))
            return self.writer.write(
                groups, operation, api="rest", key=key, all_or_none=all_or_none
            )
        except BatchError as exc:
            raise ApiError(400, exc.error_code, exc.message) from None
        finally:
            self.writer.drop(*batches.values())

    def _writable(self, name: str, operation: str, *, in_collection: bool = False) -> SObject:
        """The object a write names, if the integration user sees it and it takes writes."""
        try:
            obj = self.org.sobject(name)
        except ApiError:
            if not in_collection:
                raise  # the URL names no resource: 404
            # [assume: pessimistic] a record of an unknown type fails the whole request.
            raise ApiError(
                400, "INVALID_TYPE", f"sObject type '{name}' is not supported."
            ) from None
        if obj.custom_metadata or obj.name == "Organization":
            raise ApiError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {obj.name} does not support {operation}",
            )
        return obj

    # ---- Bulk API 2.0 ingest ------------------------------------------------------------------

    async def create_job(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        usage = self.sandbox.usage
        if usage.bulk_batches >= usage.batch_limit:
            # [assume: pessimistic] an org out of batches refuses the job, not its records.
            raise ApiError(
                400,
                "LIMIT_EXCEEDED",
                f"Max bulk API batches ({usage.batch_limit}) per 24 hrs has been reached",
            )
        job = await self.sandbox.run_blocking(
            self.org.ingest.create, body, request.match_info["version"]
        )
        return _json(job.info(self.sandbox.creds.user_id))

    async def list_jobs(self, request: web.Request) -> web.Response:
        user = self.sandbox.creds.user_id
        records = [job.info(user) for job in self.org.ingest.jobs()]
        return _json({"done": True, "records": records, "nextRecordsUrl": None})

    async def job_info(self, request: web.Request) -> web.Response:
        job = self.org.ingest.job(request.match_info["job"])
        return _json(job.info(self.sandbox.creds.user_id))

    async def upload(self, request: web.Request) -> web.Response:
        job = self.org.ingest.start_upload(request.match_info["job"])
        size = 0
        with job.upload.open("wb") as out:
            async for chunk in request.content.iter_chunked(1 << 20):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    break
                await self.sandbox.run_blocking(out.write, chunk)
        if size > MAX_UPLOAD_BYTES:
            job.upload.unlink(missing_ok=True)
            job.uploaded = False
            raise ApiError(400, "INVALIDBATCH", "The job's data exceeds 150 MB")
        return web.Response(status=201)

    async def set_state(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        job = self.org.ingest.set_state(request.match_info["job"], body.get("state"))
        if job.state == "UploadComplete":
            asyncio.get_running_loop().run_in_executor(self.sandbox.executor, self._run, job)
        return _json(job.info(self.sandbox.creds.user_id))

    def _run(self, job: IngestJob) -> None:
        self.org.ingest.run(job)
        self.sandbox.usage.spend_batches(job.batches)

    async def results(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        kind = RESULT_KINDS.get(info["kind"].lower())
        if kind is None:
            raise web.HTTPNotFound()
        job = self.org.ingest.job(info["job"])
        path, _ = await self.sandbox.run_blocking(
            self.org.ingest.results, job.id, kind, info["version"]
        )
        if path is None:
            # [assume: pessimistic] no records: an empty body, not even a header line.
            return web.Response(body=b"", content_type="text/csv", charset="UTF-8")
        try:
            return await self.sandbox.stream_file(request, path, {"Content-Type": "text/csv"})
        finally:
            if path != job.upload:
                path.unlink(missing_ok=True)

    async def delete_job(self, request: web.Request) -> web.Response:
        await self.sandbox.run_blocking(self.org.ingest.delete, request.match_info["job"])
        return web.Response(status=204)


class _MultipleChoices(Exception):
    def __init__(self, urls: list[str]) -> None:
        super().__init__(urls)
        self.urls = urls


def _json(body: Any, status: int = 200) -> web.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return web.Response(text=text, status=status, content_type="application/json", charset="UTF-8")


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return body


def _without_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "attributes"}


def _collection(body: Mapping[str, Any]) -> tuple[list[Any], bool]:
    records = body.get("records")
    if not isinstance(records, list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must hold a records list")
    if len(records) > COLLECTION_LIMIT:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    return records, bool(body.get("allOrNone", False))


def _not_writable(fields: list[str]) -> ApiError:
    return ApiError(
        400,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {', '.join(fields)}. Please check the security "
        "settings of this field and verify that it is read/write for your profile or "
        "permission set.",
        fields,
    )
