"""The deploy suite: one PostgreSQL server for the session, and the state a clean run leaves in
m3ter, which every deployed run must converge to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.postgres import Postgres, postgres_server
from tests.reliability.world import State, clean_state


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> State:
    return clean_state(tmp_path_factory.mktemp("reference"))
