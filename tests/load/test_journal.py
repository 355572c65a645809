"""What the load's records tell the next run: ids made, and creates that may have been applied."""

from __future__ import annotations

from pipeline.load.journal import Knowledge, write_journal, write_pending
from pipeline.load.reconcile import Action, Outcome

DAY = "2024-03-01"


def create(n: int) -> Action:
    source = f"001000000000{n:03d}AAA"
    return Action("create", "accounts", "Account", source, DAY, code=source, body={})


def test_a_warehouse_with_no_loads_knows_nothing(warehouse):
    known = Knowledge(warehouse).of("accounts")
    assert (known.ids, known.codes, known.uncertain) == ({}, {}, frozenset())


def test_pending_creates_with_no_journal_after_them_are_uncertain(warehouse):
    write_pending(warehouse, "accounts", "killed", [create(1), create(2)])
    assert Knowledge(warehouse).of("accounts").uncertain == {create(1).key, create(2).key}


def test_journaled_creates_are_known_by_id_and_code_and_no_longer_uncertain(warehouse):
    write_pending(warehouse, "accounts", "run", [create(1)])
    write_journal(warehouse, "accounts", "run", [Outcome(create(1), "applied", "m-1", 1)])
    known = Knowledge(warehouse).of("accounts")
    assert known.ids == {create(1).key: "m-1"}
    assert known.codes == {create(1).code: "m-1"}
    assert not known.uncertain


def test_a_create_that_failed_stays_uncertain_and_one_m3ter_refused_does_not(warehouse):
    write_pending(warehouse, "accounts", "run", [create(1), create(2)])
    outcomes = [Outcome(create(1), "failed", message="no answer"), Outcome(create(2), "rejected")]
    write_journal(warehouse, "accounts", "run", outcomes)
    assert Knowledge(warehouse).of("accounts").uncertain == {create(1).key}


def test_a_later_pending_create_makes_a_settled_record_uncertain_again(warehouse):
    write_pending(warehouse, "accounts", "first", [create(1)])
    write_journal(warehouse, "accounts", "first", [Outcome(create(1), "rejected")])
    write_pending(warehouse, "accounts", "second", [create(1)])
    assert Knowledge(warehouse).of("accounts").uncertain == {create(1).key}


def test_each_entity_knows_its_own(warehouse):
    write_pending(warehouse, "accounts", "run", [create(1)])
    assert not Knowledge(warehouse).of("contracts").uncertain
