"""`m3sync backfill` of the three-year demo org against both sandboxes, beside its floor: the
writes m3ter received, at the loader's 45 requests/s.

Run: `uv run python -m tests.benchmarks.bench_backfill [--accounts 200] [--history-days N]
[--quiet-days N] [--baseline REV]`

Each command gets a fresh sandbox (m3ter at its real limit, 50 requests/s) and a fresh
DAGSTER_HOME and warehouse, and runs as a user runs it: `m3sync backfill --from <the org's first
day> --sandbox sandbox.json`, at 45 requests/s and 8 connections. Printed: wall time, m3ter's
writes (its admin counters), the floor (writes / 45), their ratio and the target (wall time at
most 1.2 x floor + 30 s), then per stage the time its steps took, the m3ter calls they made and
the time outside those calls at 45/s, and the time outside the steps. `--baseline REV` runs the
same at another revision (a git worktree with its own locked environment) and prints both.
"""

from __future__ import annotations

from tests.benchmarks.runs import (
    LOADER_RATE,
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


def main() -> None:
    args = org_parser(__doc__.splitlines()[0], "bench-backfill").parse_args()
    org = org_options(args)
    revisions = [None] + ([args.baseline] if args.baseline else [])
    walls = {}
    for revision in revisions:
        name = revision or "this tree"
        executable = checkout(revision, args.work)
        with demo_sandbox(args.work / "sandbox", *org) as sandbox:
            first = sandbox["salesforce"]["history_from"]
            arguments = ["backfill", "--from", first, "--to", yesterday(), "--sandbox"]
            arguments += [sandbox["file"], "--warehouse", str(args.work / "warehouse")]
            timed = run_command(executable, arguments, args.work / "dagster", {})
            writes = m3ter_writes(sandbox)
        floor = writes / LOADER_RATE
        target = 1.2 * floor + 30
        walls[name] = timed.wall
        print(
            f"{name}: m3sync backfill {first}..{yesterday()}: wall {timed.wall:.1f} s; "
            f"{writes:,} m3ter writes, floor {floor:.1f} s at {LOADER_RATE:.0f}/s; "
            f"ratio {timed.wall / floor:.2f}; target {target:.1f} s "
            f"({'met' if timed.wall <= target else 'missed'})"
        )
        print_breakdown(name, timed)
    print_comparison(walls, args.baseline)


if __name__ == "__main__":
    main()
