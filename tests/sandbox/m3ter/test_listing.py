"""List endpoints: `{data, nextToken}` pages, page-size bounds and each entity's filters."""

from __future__ import annotations

import m3ter
import pytest
from multidict import MultiDict

from pipeline.sandbox.m3ter.listing import decode_token, encode_token, values
from tests.sandbox.m3ter.builders import (
    API_PLATFORM,
    API_TEMPLATE,
    BAND,
    MESSAGES_SENT,
    MESSAGING,
    MESSAGING_TEMPLATE,
    Builder,
)
from tests.sandbox.m3ter.conftest import RunningM3ter


def test_a_list_answers_data_and_a_next_token_while_more_remain(sandbox: RunningM3ter):
    session = sandbox.authed()
    first = session.get(sandbox.org_url("products"), params={"pageSize": 4}).json()
    assert set(first) == {"data", "nextToken"}
    second = session.get(
        sandbox.org_url("products"), params={"pageSize": 4, "nextToken": first["nextToken"]}
    ).json()
    assert "nextToken" not in second
    codes = [p["code"] for p in first["data"] + second["data"]]
    assert len(codes) == len(set(codes)) == 6


def test_a_list_is_in_creation_order(client: m3ter.M3ter):
    made = [
        client.accounts.create(code=f"a{i}", name="A", email_address="a@b.c").id for i in range(5)
    ]
    assert [a.id for a in client.accounts.list(page_size=2)] == made


@pytest.mark.parametrize("size", ["0", "101", "ten"])
def test_a_page_size_outside_1_to_100_is_refused(sandbox: RunningM3ter, size: str):
    answer = sandbox.authed().get(sandbox.org_url("products"), params={"pageSize": size})
    assert answer.status_code == 400
    assert answer.json() == {"message": "pageSize: must be an integer from 1 to 100"}


def test_a_forged_next_token_is_refused(sandbox: RunningM3ter):
    answer = sandbox.authed().get(sandbox.org_url("products"), params={"nextToken": "%%%"})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("nextToken:")


def test_codes_filter_takes_comma_joined_values(client: m3ter.M3ter):
    for code in ("a", "b", "c"):
        client.accounts.create(code=code, name=code, email_address="x@y.z")
    assert [a.code for a in client.accounts.list(codes=["a", "c"])] == ["a", "c"]


def test_ids_filter_takes_repeated_values(sandbox: RunningM3ter):
    session = sandbox.authed()
    products = session.get(sandbox.org_url("products"), params={"pageSize": 3}).json()["data"]
    wanted = [products[0]["id"], products[2]["id"]]
    answer = session.get(sandbox.org_url("products"), params=[("ids", i) for i in wanted])
    assert [p["id"] for p in answer.json()["data"]] == wanted


def test_contracts_filter_by_account(client: m3ter.M3ter):
    builder = Builder(client)
    account, other = builder.account(), builder.account()
    mine = builder.contract(account)
    builder.contract(other)
    assert [c.id for c in client.contracts.list(account_id=account)] == [mine]


def test_aggregations_filter_by_the_product_of_their_meter(client: m3ter.M3ter):
    codes = {a.code for a in client.aggregations.list(product_id=[API_PLATFORM])}
    assert codes == {"api_calls", "gatewayRequests"}


def test_plans_filter_by_product(client: m3ter.M3ter):
    builder = Builder(client)
    messaging = builder.plan(MESSAGING_TEMPLATE)
    api = builder.plan(API_TEMPLATE)
    assert [p.id for p in client.plans.list(product_id=MESSAGING)] == [messaging]
    assert [p.id for p in client.plans.list(product_id=API_PLATFORM)] == [api]


def test_pricings_filter_by_plan_and_by_active_date(client: m3ter.M3ter):
    plan = Builder(client).plan()
    old = client.pricings.create(
        plan_id=plan,
        aggregation_id=MESSAGES_SENT,
        pricing_bands=[BAND],
        start_date="2024-01-01T00:00:00Z",
        end_date="2025-01-01T00:00:00Z",
    )
    new = client.pricings.create(
        plan_id=plan,
        aggregation_id=MESSAGES_SENT,
        pricing_bands=[BAND],
        start_date="2025-01-01T00:00:00Z",
    )
    assert [p.id for p in client.pricings.list(plan_id=plan)] == [old.id, new.id]
    assert [p.id for p in client.pricings.list(plan_id=plan, date="2024-06-01")] == [old.id]


def test_account_plans_by_account_are_only_the_active_ones_unless_includeall(client: m3ter.M3ter):
    builder = Builder(client)
    account = builder.account()
    ended = client.account_plans.create(
        account_id=account,
        plan_id=builder.plan(),
        start_date="2020-01-01T00:00:00Z",
        end_date="2021-01-01T00:00:00Z",
    )
    current = client.account_plans.create(
        account_id=account, plan_id=builder.plan(), start_date="2021-01-01T00:00:00Z"
    )
    assert [p.id for p in client.account_plans.list(account=account)] == [current.id]
    everything = client.account_plans.list(account=account, includeall=True)
    assert [p.id for p in everything] == [ended.id, current.id]


def test_the_account_plan_product_filter_needs_the_account_filter(sandbox: RunningM3ter):
    answer = sandbox.authed().get(sandbox.org_url("accountplans"), params={"product": MESSAGING})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("product: can only be used together")


def test_commitments_filter_by_end_date_range(client: m3ter.M3ter):
    account = Builder(client).account()
    ends = ("2025-06-01", "2026-06-01")
    made = [
        client.commitments.create(
            account_id=account, amount=10, currency="USD", start_date="2025-01-01", end_date=end
        ).id
        for end in ends
    ]
    listed = client.commitments.list(
        account_id=account, end_date_start="2026-01-01", end_date_end="2027-01-01"
    )
    assert [c.id for c in listed] == [made[1]]


def test_external_mappings_are_found_by_external_id_and_by_m3ter_id(client: m3ter.M3ter):
    account = Builder(client).account()
    mapping = client.external_mappings.create(
        external_system="Salesforce",
        external_table="Account",
        external_id="001XYZ",
        m3ter_entity="Account",
        m3ter_id=account,
    )
    by_external = client.external_mappings.list_by_external_entity(
        "001XYZ", system="Salesforce", external_table="Account"
    )
    by_m3ter = client.external_mappings.list_by_m3ter_entity(account, entity="Account")
    by_system = client.external_mappings.list(external_system_id="Salesforce")
    assert [m.id for m in by_external] == [m.id for m in by_m3ter] == [mapping.id]
    assert [m.id for m in by_system] == [mapping.id]


def test_unknown_filters_are_ignored(sandbox: RunningM3ter):
    answer = sandbox.authed().get(
        sandbox.org_url("products"), params={"codes": "nothing", "pageSize": 100}
    )
    assert len(answer.json()["data"]) == 6


def test_array_parameters_split_on_commas_and_repeat():
    params = MultiDict([("ids", "a,b"), ("ids", "c"), ("ids", " ")])
    assert values(params, "ids") == ["a", "b", "c"]
    assert values(params, "codes") is None


def test_a_next_token_round_trips():
    assert decode_token(encode_token(42)) == 42
