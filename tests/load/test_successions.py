"""A line Salesforce replaces keeps its m3ter objects: the load, through the m3ter sandbox."""

from __future__ import annotations

from pipeline.m3ter.client import M3terClient
from tests.load.conftest import ACCOUNTS, DAY1, DAY2, item, run, write_raw

ORDER = "801000000000001AAA"
COLLECTIONS = ("plans", "pricings", "accountplans")


def held(client: M3terClient) -> dict[str, list[dict]]:
    return {c: sorted(client.list(c), key=lambda o: o["id"]) for c in COLLECTIONS}


def test_a_line_replaced_by_an_equal_one_keeps_its_objects_and_writes_nothing(
    client, warehouse, compiled
):
    write_raw(warehouse, DAY1, [(1, ACCOUNTS[0], 0.5, False)], order=ORDER)
    run(client, warehouse, compiled, DAY1)
    before = held(client)
    replaced = [(1, ACCOUNTS[0], 0.5, True), (2, ACCOUNTS[0], 0.5, False)]
    write_raw(warehouse, DAY2, replaced, order=ORDER)
    outcomes = run(client, warehouse, compiled, DAY2)
    writes = {
        k: n for o in outcomes.values() for k, n in o.items() if not k.startswith("unchanged")
    }
    assert writes == {}
    assert held(client) == before
    assert before["pricings"][0]["code"] == item(1)


def test_the_replacement_s_delete_ends_the_objects_it_continued(client, warehouse, compiled):
    write_raw(warehouse, DAY1, [(1, ACCOUNTS[0], 0.5, False)], order=ORDER)
    run(client, warehouse, compiled, DAY1)
    write_raw(
        warehouse, DAY2, [(1, ACCOUNTS[0], 0.5, True), (2, ACCOUNTS[0], 0.5, False)], order=ORDER
    )
    run(client, warehouse, compiled, DAY2)
    write_raw(warehouse, "2024-03-03", [(2, ACCOUNTS[0], 0.5, True)], order=ORDER)
    outcomes = run(client, warehouse, compiled, "2024-03-03")
    assert outcomes["pricings"] == {"end_date:applied": 1}
    (pricing,) = client.list("pricings")
    assert pricing["code"] == item(1) and pricing["endDate"].startswith("2024-03-04")
