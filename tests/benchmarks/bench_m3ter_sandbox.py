"""Sustained requests/s of the m3ter sandbox on loopback, 8 concurrent clients, limit off and on.

Run: `uv run python -m tests.benchmarks.bench_m3ter_sandbox [--seconds 10] [--clients 8]`

The sandbox runs in its own process (`m3sync sandbox up --only m3ter`), so clients and server do
not share a GIL. Each client thread holds one pooled `requests` session and one token (fetched
once), and runs the loader's mix: list by codes, retrieve, create, full-replace update with the
current version (each create and update is fsynced before it is answered). The goal is at least
500 requests/s with the limit off, ten times m3ter's real 50/s, so the sandbox never is what limits
a load that respects m3ter's limit. The second run switches the limit on and shows ~50 accepted
requests/s, the rest answered 429 (with no Retry-After, as m3ter documents none).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.processes import sandbox_process


@contextmanager
def m3ter_process(state_dir: Path, rate_limit: float) -> Iterator[dict[str, str]]:
    with sandbox_process(state_dir, "--only", "m3ter", "--m3ter-rate-limit", str(rate_limit)) as (
        _,
        info,
    ):
        yield info["m3ter"]


class Client(threading.Thread):
    """One loader-like client: a session, a token, its own accounts and their versions."""

    def __init__(
        self, info: dict[str, str], number: int, stop: threading.Event, start: threading.Barrier
    ) -> None:
        super().__init__(daemon=True)
        self.info, self.number, self.stop_event, self.barrier = info, number, stop, start
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.retry_after: Counter[str] = Counter()
        self.accepted_at: Counter[int] = Counter()  # 200 answers per wall-clock second
        self.random = random.Random(number)  # noqa: S311 - a reproducible mix, not a secret
        self.session = requests.Session()
        self.session.verify = info["ca_file"]
        self.session.trust_env = False
        self.base = f"{info['url']}/organizations/{info['org_id']}"

    def _call(self, kind: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        answer = self.session.request(method, url, **kwargs)
        self.statuses[(kind, answer.status_code)] += 1
        if answer.status_code == 200:
            self.accepted_at[int(time.time())] += 1
        if answer.status_code == 429:
            self.retry_after[answer.headers.get("Retry-After", "-")] += 1
        return answer

    def run(self) -> None:
        token = self.session.post(
            f"{self.info['url']}/oauth/token",
            auth=(self.info["access_key_id"], self.info["api_secret"]),
            json={"grant_type": "client_credentials"},
        ).json()
        self.session.headers["Authorization"] = f"Bearer {token['access_token']}"
        accounts: dict[str, tuple[str, int]] = {}  # id -> (code, version)
        serial = 0
        self.barrier.wait()
        while not self.stop_event.is_set():
            roll = self.random.random()
            if roll < 0.2 or not accounts:
                serial += 1
                code = f"bench-{self.number}-{serial}-{time.monotonic_ns()}"
                answer = self._call(
                    "create",
                    "POST",
                    f"{self.base}/accounts",
                    json={"code": code, "name": "Bench", "emailAddress": "bench@example.test"},
                )
                if answer.status_code == 200:
                    accounts[answer.json()["id"]] = (code, 1)
            elif roll < 0.4:
                account_id = self.random.choice(list(accounts))
                code, version = accounts[account_id]
                answer = self._call(
                    "update",
                    "PUT",
                    f"{self.base}/accounts/{account_id}",
                    json={
                        "code": code,
                        "name": f"Bench {version}",
                        "emailAddress": "bench@example.test",
                        "version": version,
                    },
                )
                if answer.status_code == 200:
                    accounts[account_id] = (code, version + 1)
            elif roll < 0.7:
                account_id = self.random.choice(list(accounts))
                self._call("retrieve", "GET", f"{self.base}/accounts/{account_id}")
            else:
                codes = ",".join(
                    self.random.sample([c for c, _ in accounts.values()], min(len(accounts), 20))
                )
                self._call(
                    "list", "GET", f"{self.base}/accounts", params={"codes": codes, "pageSize": 100}
                )


def run(info: dict[str, str], clients: int, seconds: float) -> dict[str, Any]:
    stop = threading.Event()
    barrier = threading.Barrier(clients + 1)
    threads = [Client(info, n, stop, barrier) for n in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    statuses: Counter[tuple[str, int]] = Counter()
    retry_after: Counter[str] = Counter()
    accepted_at: Counter[int] = Counter()
    for thread in threads:
        statuses.update(thread.statuses)
        retry_after.update(thread.retry_after)
        accepted_at.update(thread.accepted_at)
    total = sum(statuses.values())
    by_status: Counter[int] = Counter()
    for (_, status), n in statuses.items():
        by_status[status] += n
    return {
        "seconds": elapsed,
        "requests": total,
        "per_second": total / elapsed,
        "by_status": dict(by_status),
        "by_kind": dict(statuses),
        "accepted_per_second": by_status[200] / elapsed,
        "retry_after": dict(retry_after),
        "max_accepted_in_a_second": max(accepted_at.values(), default=0),
        "wall_clock_seconds": len(accepted_at),
    }


def report(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title}")
    print(
        f"  {result['requests']:,} requests in {result['seconds']:.1f} s = "
        f"{result['per_second']:,.0f} requests/s "
        f"({result['accepted_per_second']:,.0f}/s answered 200)"
    )
    print(f"  by status: {result['by_status']}")
    mix = Counter({kind: n for (kind, _), n in result["by_kind"].items()})
    print(f"  mix: {dict(mix)}")
    if result["retry_after"]:
        print(f"  429 Retry-After headers: {result['retry_after']}")
        print(
            f"  at most {result['max_accepted_in_a_second']} answered 200 in any wall-clock "
            f"second (client clock; the run touched {result['wall_clock_seconds']} seconds)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with m3ter_process(Path(tmp) / "off", rate_limit=0) as info:
            run(info, args.clients, 1.0)  # warm-up: TLS handshakes, first objects
            off = run(info, args.clients, args.seconds)
        report(f"limit off, {args.clients} clients", off)
        with m3ter_process(Path(tmp) / "on", rate_limit=50) as info:
            time.sleep(1.0)
            on = run(info, args.clients, args.seconds)
        report(f"limit on (50 requests/s per org), {args.clients} clients, no back-off", on)
    verdict = "meets" if off["per_second"] >= 500 else "MISSES"
    print(
        f"\n{off['per_second']:,.0f} requests/s with the limit off {verdict} the 500/s goal; "
        f"with the limit on {on['accepted_per_second']:.1f} requests/s were accepted."
    )


if __name__ == "__main__":
    main()
