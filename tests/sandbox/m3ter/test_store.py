"""State: atomic checks under concurrent writes, and persistence across restarts and kills."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from multidict import MultiDict

from pipeline.sandbox.m3ter import store as store_module
from pipeline.sandbox.m3ter.seed import reference_configuration
from pipeline.sandbox.m3ter.store import Store
from tests.processes import sandbox_process
from tests.sandbox.m3ter.builders import Builder
from tests.sandbox.m3ter.conftest import RunningM3ter, StartM3ter, sdk_client


def _store(path: Path) -> Store:
    return Store(path / "state.jsonl", actor="tester", seed=reference_configuration)


def _account(n: int) -> dict[str, Any]:
    return {"code": f"a{n}", "name": "A", "emailAddress": "a@b.c"}


def test_a_restart_keeps_every_object(start_m3ter: StartM3ter):
    with start_m3ter(name="kept") as first:
        client = first.client()
        account = Builder(client).account()
        product = client.products.create(code="p", name="P")
        client.products.update(product.id, code="p", name="P2", version=1)
        client.products.delete(client.products.create(code="gone", name="G").id)
        before = first.admin("GET", "export").json()
    with start_m3ter(name="kept") as second:
        client = second.client()
        assert client.accounts.retrieve(account).id == account
        assert client.products.retrieve(product.id).version == 2
        assert second.admin("GET", "export").json() == before


def test_credentials_and_org_id_survive_a_restart(start_m3ter: StartM3ter):
    with start_m3ter(name="kept") as first:
        info = first.info
    with start_m3ter(name="kept") as second:
        assert {k: second.info[k] for k in ("org_id", "access_key_id", "api_secret")} == {
            k: info[k] for k in ("org_id", "access_key_id", "api_secret")
        }


@contextmanager
def _server_process(state_dir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    with sandbox_process(state_dir, "--only", "m3ter", "--m3ter-rate-limit", "0") as (
        process,
        info,
    ):
        yield process, info["m3ter"]


@pytest.mark.full  # the reliability suite: the m3ter sandbox killed mid-write
def test_every_acknowledged_write_survives_a_killed_server(tmp_path: Path):
    with _server_process(tmp_path) as (process, info):
        client = sdk_client(info)
        made = [
            client.accounts.create(code=f"k{i}", name="K", email_address="k@k.k").id
            for i in range(20)
        ]
        client.accounts.update(made[0], code="k0", name="Renamed", email_address="k@k.k", version=1)
        client.accounts.delete(made[1])
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    with _server_process(tmp_path) as (_, info):
        client = sdk_client(info)
        listed = {a.id: a for a in client.accounts.list(page_size=100)}
        assert set(listed) == set(made) - {made[1]}
        assert listed[made[0]].name == "Renamed"
        assert listed[made[0]].version == 2


def test_a_line_torn_by_a_kill_is_dropped_on_start(tmp_path: Path):
    store = _store(tmp_path)
    store.create("accounts", _account(1))[1].result()
    store.close()
    with (tmp_path / "state.jsonl").open("ab") as journal:
        journal.write(b'{"op":"put","c":"accounts","seq":99,"o":{"id":"x"')
    reopened = _store(tmp_path)
    assert reopened.counts()["accounts"] == 1
    reopened.create("accounts", _account(2))[1].result()
    reopened.close()
    assert _store(tmp_path).counts()["accounts"] == 2


def test_the_journal_is_compacted_and_keeps_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(store_module, "COMPACT_SLACK", 20)
    store = _store(tmp_path)
    made, _ = store.create("products", {"code": "p", "name": "P0"})
    for version in range(1, 60):
        store.update(
            "products", made["id"], {"code": "p", "name": f"P{version}", "version": version}
        )[1].result()
    store.close()
    lines = (tmp_path / "state.jsonl").read_text().splitlines()
    assert len(lines) < 60
    reopened = _store(tmp_path)
    assert reopened.retrieve("products", made["id"])["name"] == "P59"
    assert reopened.retrieve("products", made["id"])["version"] == 60


def test_concurrent_creates_with_one_code_make_exactly_one_object(sandbox: RunningM3ter):
    def create(_: int) -> int:
        with requests.Session() as session:
            session.verify = str(sandbox.ca_file)
            session.trust_env = False
            session.headers["Authorization"] = f"Bearer {sandbox.token(session)}"
            return session.post(sandbox.org_url("accounts"), json=_account(7)).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(create, range(16)))
    assert statuses.count(200) == 1
    assert statuses.count(400) == 15


def test_concurrent_updates_of_one_version_let_exactly_one_through(sandbox: RunningM3ter):
    session = sandbox.authed()
    product = session.post(sandbox.org_url("products"), json={"code": "p", "name": "P"}).json()
    token = session.headers["Authorization"]

    def update(n: int) -> int:
        with requests.Session() as own:
            own.verify = str(sandbox.ca_file)
            own.trust_env = False
            return own.put(
                sandbox.org_url(f"products/{product['id']}"),
                json={"code": "p", "name": f"P{n}", "version": 1},
                headers={"Authorization": str(token)},
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(update, range(16)))
    assert statuses.count(200) == 1
    final = session.get(sandbox.org_url(f"products/{product['id']}")).json()
    assert final["version"] == 2


def test_a_store_holds_ten_thousand_objects_and_lists_them_by_code(tmp_path: Path):
    store = _store(tmp_path)
    futures = [store.create("accounts", _account(n))[1] for n in range(10_000)]
    futures[-1].result()
    store.close()
    reopened = _store(tmp_path)
    assert reopened.counts()["accounts"] == 10_000
    page = reopened.list("accounts", MultiDict({"codes": "a9999,a5"}))
    assert [a["code"] for a in page["data"]] == ["a5", "a9999"]
    reopened.close()
