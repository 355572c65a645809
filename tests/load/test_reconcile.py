"""The order a load's writes go in: what gives up time, then other changes, then new objects."""

from __future__ import annotations

from typing import Any

from pipeline.load.reconcile import Action, write_wave


def action(kind: Any, **changes: tuple[Any, Any]) -> Action:
    return Action(
        kind, "account_plans", "OrderItem", "802000000000001AAA", "2024-03-01", changes=changes
    )


def test_an_end_date_and_a_delete_go_first():
    assert write_wave(action("end_date", endDate=(None, "2024-03-02"))) == 0
    assert write_wave(action("delete")) == 0


def test_an_update_that_only_shortens_an_object_goes_first():
    cut = action("update", endDate=("2025-01-01T00:00:00Z", "2024-06-01T00:00:00Z"))
    assert write_wave(cut) == 0
    assert write_wave(action("update", endDate=(None, "2024-06-01T00:00:00Z"))) == 0


def test_an_update_that_moves_or_lengthens_an_object_waits_for_the_cuts():
    moved = action("update", accountId=("a", "b"), endDate=("2025-01-01", "2024-06-01"))
    assert write_wave(moved) == 1
    assert write_wave(action("update", endDate=("2024-06-01", "2025-01-01"))) == 1


def test_a_create_goes_last():
    assert write_wave(action("create")) == 2
