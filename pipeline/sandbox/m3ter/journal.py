"""The sandbox's durable state file: an append-only JSON-lines journal with group commit.

Why a journal and not SQLite or DuckDB: the state is a few tens of thousands of small JSON
documents that are always read from memory; the file only has to make every acknowledged write
survive a kill. Appending one line per write is the cheapest way to do that, a JSON line is the
object exactly as served (no schema to keep in step with `entities.py`), and replaying 10,000
objects takes well under a second.

How: writers hand records to one writer thread, which appends everything queued, `fsync`s once
for the whole batch and only then completes the writers' futures, so concurrent requests share a
flush (group commit) and an answer is never sent before its write is on disk. A rewrite (the
compacted live state, or a reset) goes through the same queue, so it lands exactly between the
writes before and after it; it is written to a temporary file, synced, and renamed over the
journal. A line torn by a kill mid-write is dropped on the next start: its request was never
answered.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

Record = dict[str, Any]


def _encode(record: Record) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class Journal:
    """One JSON-lines file, appended to by a single writer thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._queue: list[tuple[str, Any, Future[None]]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._file: BinaryIO | None = None
        self._thread: threading.Thread | None = None

    def replay(self) -> Iterator[Record]:
        """The records on disk, in order; a torn last line is cut off the file."""
        if not self.path.exists():
            return
        good = 0
        with self.path.open("rb") as journal:
            data = journal.read()
        lines = data.split(b"\n")
        for index, line in enumerate(lines):
            if index == len(lines) - 1:
                break  # text after the last newline: a write that never completed
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if index == len(lines) - 2 and not lines[-1]:
                    break  # the last full line is itself garbage: torn, same as above
                raise
            good += len(line) + 1
            yield record
        if good != len(data):
            with self.path.open("r+b") as journal:
                journal.truncate(good)
                os.fsync(journal.fileno())

    def start(self) -> None:
        self._file = self.path.open("ab")
        self._thread = threading.Thread(target=self._run, name="m3ter-journal", daemon=True)
        self._thread.start()

    def append(self, record: Record) -> Future[None]:
        """Queue one record; the future completes once it is on disk."""
        return self._submit("append", record)

    def rewrite(self, records: list[Record]) -> Future[None]:
        """Queue a replacement of the whole file by `records` (compaction, reset)."""
        return self._submit("rewrite", records)

    def _submit(self, kind: str, payload: Any) -> Future[None]:
        future: Future[None] = Future()
        with self._cond:
            if self._closing:
                raise RuntimeError("journal is closed")
            self._queue.append((kind, payload, future))
            self._cond.notify()
        return future

    def write_now(self, records: list[Record]) -> None:
        """Replace the file synchronously, before the writer thread starts (first start)."""
        self._replace(records)

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        if self._file is not None:
            self._file.close()
            self._file = None

    # ---- writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                batch, self._queue = self._queue, []
                if not batch and self._closing:
                    return
            done: list[Future[None]] = []
            try:
                buffer: list[bytes] = []
                for kind, payload, future in batch:
                    if kind == "append":
                        buffer.append(_encode(payload))
                    else:
                        self._write(buffer)
                        buffer = []
                        self._replace(payload)
                    done.append(future)
                self._write(buffer)
            except Exception as exc:  # a failed write fails its requests, never the thread
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for future in done:
                future.set_result(None)

    def _write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        assert self._file is not None
        self._file.write(b"".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())

    def _replace(self, records: list[Record]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            chunk: list[bytes] = []
            for record in records:
                chunk.append(_encode(record))
                if len(chunk) >= 1000:
                    out.write(b"".join(chunk))
                    chunk = []
            out.write(b"".join(chunk))
            out.flush()
            os.fsync(out.fileno())
        if self._file is not None:
            self._file.close()
        tmp.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        if self._thread is not None:
            self._file = self.path.open("ab")
