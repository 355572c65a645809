"""Files replaced atomically, with temporary names that a live writer guards against cleanup.

A file is written to `.<name>.tmp-<token>` beside its final name and renamed into place, so a
reader sees the old file or the new one, never half of one. The temporary name never ends in
`.parquet`, so a view's `*.parquet` glob cannot pick it up. While a writer works, it holds an
exclusive `flock` on `.<name>.tmp-<token>.lock`; the kernel drops that lock when the writer dies
(even on SIGKILL), which is how the next writer tells a leftover from a write in progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GUARD_SUFFIX = ".lock"
_TEMP = re.compile(r"\..+\.tmp-[0-9a-f]{32}")


def temp_paths(path: Path) -> tuple[Path, Path]:
    """A fresh temporary name for `path` and the guard file that marks it as in use."""
    token = uuid.uuid4().hex
    temp = path.with_name(f".{path.name}.tmp-{token}")
    return temp, temp.with_name(temp.name + GUARD_SUFFIX)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename durable: the new directory entry survives a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hold_guard(guard: Path) -> int:
    """Create `guard` and lock it; return the descriptor, which keeps the lock while open.

    A sweeper may open the guard between its creation and our lock, take the lock and unlink it;
    in that case our lock sits on an unlinked file and protects nothing, so we start over.
    """
    fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    if os.fstat(fd).st_nlink == 0:
        os.close(fd)
        raise FileNotFoundError(guard)
    return fd


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on normal exit, fsync it and rename it over `path`.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temp, guard = temp_paths(path)
        try:
            fd = _hold_guard(guard)
        except FileNotFoundError:
            continue
        break
    try:
        yield temp
        fsync_file(temp)
        os.replace(temp, path)
        fsync_dir(path.parent)
    finally:
        temp.unlink(missing_ok=True)
        guard.unlink(missing_ok=True)
        os.close(fd)


@contextlib.contextmanager
def staging_directory(parent: Path, name: str) -> Iterator[Path]:
    """A private, guarded directory under `parent` for files that are renamed out of it one by one.

    It carries a temporary name (so views never see it and the sweep removes it if its writer
    dies) and is removed with whatever is left in it on exit.
    """
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        temp, guard = temp_paths(parent / name)
        try:
            fd = _hold_guard(guard)
        except FileNotFoundError:
            continue
        break
    try:
        temp.mkdir()
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        guard.unlink(missing_ok=True)
        os.close(fd)


def write_json_atomically(path: Path, data: Any) -> None:
    """Write `data` as JSON unless the file already holds exactly that (no needless renames)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return
    with atomic_target(path) as temp:
        temp.write_text(text)


def _lock_free_guard(guard: Path) -> int | None:
    """Lock `guard` unless a live writer holds it.

    Returns the descriptor holding the lock, -1 if there is no guard at all (its writer finished
    or never got that far), or None if a live writer holds it.
    """
    try:
        fd = os.open(guard, os.O_RDWR)
    except FileNotFoundError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def sweep_temp_files(directory: Path) -> list[Path]:
    """Remove temporary files whose writer is gone; return what was removed.

    A temporary file whose guard is locked belongs to a live writer and is left alone. Unlinking
    happens while holding the guard's lock, so a writer racing to create the same guard notices.
    """
    if not directory.is_dir():
        return []
    temps = {
        directory / entry.name.removesuffix(GUARD_SUFFIX)
        for entry in directory.iterdir()
        if _TEMP.fullmatch(entry.name.removesuffix(GUARD_SUFFIX))
    }
    removed: list[Path] = []
    for temp in sorted(temps):
        guard = temp.with_name(temp.name + GUARD_SUFFIX)
        fd = _lock_free_guard(guard)
        if fd is None:
            continue
        try:
            for stale in (temp, guard):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                    removed.append(stale)
                elif stale.exists():
                    stale.unlink(missing_ok=True)
                    removed.append(stale)
        finally:
            if fd >= 0:
                os.close(fd)
    return removed
