"""Two backfills over overlapping ranges at once, and an analyst's read-only DuckDB session open
throughout (DESIGN §4): nothing fails, nothing is created twice, m3ter ends as after one run."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import duckdb
import pytest

from tests.reliability.conftest import assert_converged
from tests.reliability.world import World

# Queries the catalog twice a second, in a process of its own, until told to stop on stdin.
ANALYST = """
import select, sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
queries = errors = 0
while not select.select([sys.stdin], [], [], 0.5)[0]:
    try:
        con.execute("SELECT count(*) FROM staged.accounts").fetchall()
        con.execute("SELECT count(*) FROM raw.order_item").fetchall()
        queries += 1
    except duckdb.Error as exc:
        errors += 1
        print(exc, file=sys.stderr)
print(queries, errors)
"""


def _days(first: str, count: int) -> list[str]:
    start = dt.date.fromisoformat(first)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range(count)]


@pytest.mark.full
def test_overlapping_backfills_beside_an_analyst_fail_nothing_and_load_nothing_twice(
    world: World, reference
):
    with world.sandbox():
        days = _days(world.info["salesforce"]["history_from"], 7)
        first = world.backfill_command()
        first[first.index("--to") + 1] = days[0]
        assert (
            subprocess.run(first, env=world.env(), capture_output=True, check=False).returncode == 0
        )
        catalog = world.root / "warehouse" / "warehouse.duckdb"
        analyst = subprocess.Popen(
            [sys.executable, "-c", ANALYST, str(catalog)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            early = world.backfill_command()
            early[early.index("--to") + 1] = days[4]
            late = world.backfill_command()
            late[late.index("--from") + 1] = days[2]
            runs = [
                subprocess.Popen(command, env=world.env(), stdout=log, stderr=subprocess.STDOUT)
                for command, log in (
                    (early, (world.root / "early.log").open("w")),
                    (late, (world.root / "late.log").open("w")),
                )
            ]
            codes = [run.wait(timeout=900) for run in runs]
            out, err = analyst.communicate("stop\n", timeout=60)
        finally:
            if analyst.poll() is None:
                analyst.kill()
        logs = [(world.root / name).read_text()[-3000:] for name in ("early.log", "late.log")]
        assert codes == [0, 0], logs
        queries, errors = map(int, out.split())
        assert errors == 0 and queries > 0, err
        created = duckdb.connect(str(catalog), read_only=True).execute(
            """SELECT entity, source_id, count(*) FROM load.journal
               WHERE action = 'create' AND status = 'applied' GROUP BY ALL HAVING count(*) > 1"""
        )
        assert created.fetchall() == []
        assert_converged(world, reference, "overlapping backfills", None)
