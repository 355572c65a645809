"""Atomic replacement, and cleanup that tells a dead writer's temporary file from a live one's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.warehouse import files

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from pipeline.warehouse.files import atomic_target
with atomic_target(Path(sys.argv[1])) as temp:
    temp.write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def temp_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if ".tmp-" in path.name)


@pytest.fixture
def killed_writer_dir(tmp_path: Path) -> Path:
    """A directory holding what a writer killed inside `atomic_target` leaves behind."""
    command = [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "a.parquet")]
    process = subprocess.run(command, check=False)
    assert process.returncode == -signal.SIGKILL
    return tmp_path


def test_atomic_target_renames_the_file_into_place_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.parquet"
    with files.atomic_target(target) as temp:
        temp.write_text("new")
    assert target.read_text() == "new"
    assert temp_files(tmp_path) == []


def test_atomic_target_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "a.parquet"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_target(target) as temp:
        temp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old"
    assert temp_files(tmp_path) == []


def test_temporary_names_never_match_the_parquet_glob(tmp_path):
    temp, guard = files.temp_paths(tmp_path / "2026-11-20.parquet")
    assert not temp.match("*.parquet")
    assert not guard.match("*.parquet")


def test_killed_writer_leaves_its_temporary_file(killed_writer_dir):
    assert len(temp_files(killed_writer_dir)) == 2  # the file and its guard


def test_sweep_removes_the_temporary_files_of_a_dead_writer(killed_writer_dir):
    removed = files.sweep_temp_files(killed_writer_dir)
    assert len(removed) == 2
    assert temp_files(killed_writer_dir) == []


def test_sweep_leaves_a_live_writers_temporary_file_alone(tmp_path):
    with files.atomic_target(tmp_path / "a.parquet") as temp:
        temp.write_text("in progress")
        assert files.sweep_temp_files(tmp_path) == []
        assert temp.read_text() == "in progress"
    assert (tmp_path / "a.parquet").read_text() == "in progress"


def test_sweep_removes_a_temporary_file_without_a_guard(tmp_path):
    orphan, _ = files.temp_paths(tmp_path / "a.parquet")
    orphan.write_text("orphan")
    assert files.sweep_temp_files(tmp_path) == [orphan]


def test_sweep_ignores_files_that_are_not_temporary(tmp_path):
    for name in ("a.parquet", "_table.json", ".notes", "warehouse.lock"):
        (tmp_path / name).write_text("keep")
    assert files.sweep_temp_files(tmp_path) == []


def test_unchanged_json_is_not_rewritten(tmp_path):
    path = tmp_path / "_table.json"
    files.write_json_atomically(path, {"a": 1})
    inode = os.stat(path).st_ino
    files.write_json_atomically(path, {"a": 1})
    assert os.stat(path).st_ino == inode
    files.write_json_atomically(path, {"a": 2})
    assert os.stat(path).st_ino != inode
