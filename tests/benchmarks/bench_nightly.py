"""The nightly `m3sync run` of yesterday's partition after a backfill of the demo org's history,
with m3sync's own overhead apart from its runs' steps.

Run: `uv run python -m tests.benchmarks.bench_nightly [--accounts 200] [--history-days N]
[--quiet-days N] [--baseline REV]`

Each revision gets a fresh sandbox (m3ter at its real limit, 50 requests/s), backfills every day
but yesterday (`m3sync backfill --to <the day before yesterday>`, timed and reported too), then
runs `m3sync run`, which extracts, stages and loads yesterday's partition: the org's changes of
that day, a few dozen lines. Printed for that run: wall time (target: under 30 s), m3ter writes,
the time in its steps per stage, the runs' own bookkeeping outside the steps, and the time
outside any run (process start, imports, the code location's load, the summary). `--baseline
REV` runs the same at another revision (a git worktree with its own locked environment).
"""

from __future__ import annotations

import datetime as dt

from tests.benchmarks.runs import (
    checkout,
    demo_sandbox,
    m3ter_writes,
    org_options,
    org_parser,
    print_breakdown,
    print_comparison,
    run_command,
    yesterday,
)

TARGET_SECONDS = 30.0


def main() -> None:
    args = org_parser(__doc__.splitlines()[0], "bench-nightly").parse_args()
    org = org_options(args)
    before = (dt.date.fromisoformat(yesterday()) - dt.timedelta(days=1)).isoformat()
    walls = {}
    for revision in [None] + ([args.baseline] if args.baseline else []):
        name = revision or "this tree"
        executable = checkout(revision, args.work)
        with demo_sandbox(args.work / "sandbox", *org) as sandbox:
            common = ["--sandbox", sandbox["file"], "--warehouse", str(args.work / "warehouse")]
            first = sandbox["salesforce"]["history_from"]
            backfill = run_command(
                executable,
                ["backfill", "--from", first, "--to", before, *common],
                args.work / "dagster",
                {},
            )
            written = m3ter_writes(sandbox)
            print(
                f"{name}: m3sync backfill {first}..{before}: {backfill.wall:.1f} s, "
                f"{written:,} m3ter writes"
            )
            nightly = run_command(
                executable, ["run", *common], args.work / "dagster", {}, fresh=False
            )
            writes = m3ter_writes(sandbox) - written
        walls[name] = nightly.wall
        verdict = "met" if nightly.wall < TARGET_SECONDS else "missed"
        print(
            f"{name}: m3sync run (partition {yesterday()}): {nightly.wall:.1f} s, "
            f"{writes:,} m3ter writes; target under {TARGET_SECONDS:.0f} s ({verdict})"
        )
        print_breakdown(name, nightly)
    print_comparison(walls, args.baseline)


if __name__ == "__main__":
    main()
