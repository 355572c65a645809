"""`m3sync sandbox up` in a process of its own, for tests and benchmarks that kill or measure it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

M3SYNC = str(Path(sys.executable).parent / "m3sync")


@contextmanager
def sandbox_process(
    state_dir: Path, *args: str, timeout: float = 300
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Start the sandbox on free ports, wait for its `sandbox.json`, interrupt it on exit.

    Its output goes to `state_dir/sandbox.out` and `sandbox.err` (files, not pipes, so a chatty
    server can never block on a full pipe).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    info_file = state_dir / "sandbox.json"
    info_file.unlink(missing_ok=True)
    command = [
        M3SYNC,
        "sandbox",
        "up",
        "--state-dir",
        str(state_dir),
        "--port",
        "0",
        "--m3ter-port",
        "0",
        *args,
    ]
    with (state_dir / "sandbox.out").open("w") as out, (state_dir / "sandbox.err").open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not info_file.exists():
            if process.poll() is not None:
                raise RuntimeError(f"sandbox exited: {(state_dir / 'sandbox.err').read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError("sandbox did not start")
            time.sleep(0.05)
        yield process, json.loads(info_file.read_text())
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_demo(root: Path, *org: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """`m3sync demo --no-serve` as a user runs it, on free ports, with a DAGSTER_HOME of its own
    and the environment's choices of start date and mappings left out (the demo makes them);
    the sandbox's state goes to `root/sandbox`, the warehouse to `root/warehouse`."""
    env = {**os.environ, "COLUMNS": "200", "DAGSTER_HOME": str(root / "dagster")}
    for name in ("M3SYNC_START_DATE", "M3SYNC_MAPPINGS_DIR", "M3SYNC_MAPPINGS_SOURCE"):
        env.pop(name, None)
    command = [M3SYNC, "demo", "--no-serve", *org, "--port", "0", "--m3ter-port", "0"]
    command += ["--state-dir", str(root / "sandbox"), "--warehouse", str(root / "warehouse")]
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    return result, env
