"""The journal: appends in order, rewrites in place of the file, and a torn tail is cut off."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.sandbox.m3ter.journal import Journal


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_append_is_on_disk_when_its_future_completes(tmp_path: Path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.start()
    journal.append({"n": 1}).result()
    assert _lines(tmp_path / "j.jsonl") == [{"n": 1}]
    journal.close()


def test_a_rewrite_lands_between_the_appends_around_it(tmp_path: Path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.start()
    journal.append({"n": 1})
    journal.rewrite([{"snapshot": True}])
    journal.append({"n": 2}).result()
    journal.close()
    assert _lines(tmp_path / "j.jsonl") == [{"snapshot": True}, {"n": 2}]


def test_close_writes_everything_still_queued(tmp_path: Path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.start()
    futures = [journal.append({"n": n}) for n in range(500)]
    journal.close()
    assert all(f.done() for f in futures)
    assert len(_lines(tmp_path / "j.jsonl")) == 500


def test_replay_yields_the_records_and_cuts_a_torn_tail(tmp_path: Path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"n":1}\n{"n":2}\n{"n":')
    assert list(Journal(path).replay()) == [{"n": 1}, {"n": 2}]
    assert path.read_bytes() == b'{"n":1}\n{"n":2}\n'


def test_replay_of_a_missing_file_is_empty(tmp_path: Path):
    assert list(Journal(tmp_path / "none.jsonl").replay()) == []
