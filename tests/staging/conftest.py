"""A fresh warehouse, and the OrderItem plans and pricings the staging tests stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.mapping.compiler import CompiledSet
from pipeline.warehouse import Warehouse
from tests.staging.test_stage import PLANS, PRICINGS, compiled_set


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse")


@pytest.fixture
def compiled(tmp_path: Path) -> CompiledSet:
    return compiled_set(tmp_path, pricings=PRICINGS, plans=PLANS)
