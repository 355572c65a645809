"""Plan groups: links join plans of one currency and distinct products, and an account plan on a
group bills every product the group links, one active account plan per product still."""

from __future__ import annotations

import m3ter

from pipeline.sandbox.m3ter.seed import seed_id
from tests.sandbox.m3ter.builders import API_TEMPLATE, MESSAGING_TEMPLATE, Builder
from tests.sandbox.m3ter.test_validation import rejected

API_EUR_TEMPLATE = seed_id("plantemplates", "api_platform_eur")


def _grouped(client: m3ter.M3ter, *templates: str) -> tuple[Builder, str, list[str]]:
    builder = Builder(client)
    group = builder.plan_group()
    plans = [builder.plan(template) for template in templates]
    for plan in plans:
        client.plan_group_links.create(plan_group_id=group, plan_id=plan)
    return builder, group, plans


def test_a_plan_group_needs_a_name_and_a_currency_of_the_organization(client: m3ter.M3ter):
    message = rejected(lambda: client.plan_groups.create(name="Bundle", currency="JPY"))
    assert message.startswith("currency: JPY is not a currency of this organization")


def test_a_link_names_an_existing_plan_group(client: m3ter.M3ter):
    plan = Builder(client).plan()
    missing = "00000000-0000-4000-8000-000000000000"
    message = rejected(lambda: client.plan_group_links.create(plan_group_id=missing, plan_id=plan))
    assert message == f"planGroupId: no PlanGroup with id '{missing}' exists"


def test_a_plan_is_linked_to_a_group_once(client: m3ter.M3ter):
    _, group, plans = _grouped(client, MESSAGING_TEMPLATE)
    message = rejected(
        lambda: client.plan_group_links.create(plan_group_id=group, plan_id=plans[0])
    )
    assert "is already linked to PlanGroup" in message


def test_a_group_links_one_plan_per_product(client: m3ter.M3ter):
    builder, group, _ = _grouped(client, MESSAGING_TEMPLATE)
    other = builder.plan(MESSAGING_TEMPLATE)
    message = rejected(lambda: client.plan_group_links.create(plan_group_id=group, plan_id=other))
    assert "of the same Product" in message


def test_a_group_links_plans_of_its_own_currency(client: m3ter.M3ter):
    builder = Builder(client)
    group = builder.plan_group("USD")
    euro = builder.plan(API_EUR_TEMPLATE)
    message = rejected(lambda: client.plan_group_links.create(plan_group_id=group, plan_id=euro))
    assert "is priced in EUR" in message


def test_links_are_listed_by_group_and_by_plan(client: m3ter.M3ter):
    _, group, plans = _grouped(client, MESSAGING_TEMPLATE, API_TEMPLATE)
    by_group = client.plan_group_links.list(plan_group=group).data
    assert {link.plan_id for link in by_group} == set(plans)
    assert [link.plan_group_id for link in client.plan_group_links.list(plan=plans[1])] == [group]


def test_a_linked_plan_cannot_be_deleted(client: m3ter.M3ter):
    _, _, plans = _grouped(client, MESSAGING_TEMPLATE)
    assert "cannot be deleted while 1 PlanGroupLink(s) refer to it" in rejected(
        lambda: client.plans.delete(plans[0])
    )


def test_an_account_plan_attaches_a_plan_group(client: m3ter.M3ter):
    builder, group, _ = _grouped(client, MESSAGING_TEMPLATE, API_TEMPLATE)
    attached = client.account_plans.create(
        account_id=builder.account(), plan_group_id=group, start_date="2025-01-01T00:00:00Z"
    )
    assert attached.plan_group_id == group and attached.plan_id is None


def test_an_account_plan_takes_a_plan_or_a_group_not_both(client: m3ter.M3ter):
    builder, group, plans = _grouped(client, MESSAGING_TEMPLATE)
    message = rejected(
        lambda: client.account_plans.create(
            account_id=builder.account(),
            plan_id=plans[0],
            plan_group_id=group,
            start_date="2025-01-01T00:00:00Z",
        )
    )
    assert message.startswith("planId/planGroupId: exactly one")


def test_a_group_and_a_plan_of_one_product_are_not_active_at_once(client: m3ter.M3ter):
    builder, group, _ = _grouped(client, MESSAGING_TEMPLATE, API_TEMPLATE)
    account = builder.account()
    single = client.account_plans.create(
        account_id=account, plan_id=builder.plan(API_TEMPLATE), start_date="2025-01-01T00:00:00Z"
    )
    message = rejected(
        lambda: client.account_plans.create(
            account_id=account, plan_group_id=group, start_date="2025-06-01T00:00:00Z"
        )
    )
    assert "only one AccountPlan per Product" in message and single.id in message


def test_a_group_follows_the_account_plan_it_replaces(client: m3ter.M3ter):
    builder, group, _ = _grouped(client, MESSAGING_TEMPLATE)
    account = builder.account()
    client.account_plans.create(
        account_id=account,
        plan_id=builder.plan(MESSAGING_TEMPLATE),
        start_date="2025-01-01T00:00:00Z",
        end_date="2025-06-01T00:00:00Z",
    )
    client.account_plans.create(
        account_id=account, plan_group_id=group, start_date="2025-06-01T00:00:00Z"
    )
    assert len(client.account_plans.list(account=account, includeall=True).data) == 2


def test_a_link_cannot_give_an_attached_group_a_product_the_account_has(client: m3ter.M3ter):
    builder, group, _ = _grouped(client, MESSAGING_TEMPLATE)
    account = builder.account()
    client.account_plans.create(
        account_id=account, plan_group_id=group, start_date="2025-01-01T00:00:00Z"
    )
    client.account_plans.create(
        account_id=account, plan_id=builder.plan(API_TEMPLATE), start_date="2025-01-01T00:00:00Z"
    )
    message = rejected(
        lambda: client.plan_group_links.create(
            plan_group_id=group, plan_id=builder.plan(API_TEMPLATE)
        )
    )
    assert "only one AccountPlan per Product" in message


def test_a_bespoke_group_attaches_only_to_its_account(client: m3ter.M3ter):
    builder = Builder(client)
    group = builder.plan_group(account_id=builder.account())
    message = rejected(
        lambda: client.account_plans.create(
            account_id=builder.account(), plan_group_id=group, start_date="2025-01-01T00:00:00Z"
        )
    )
    assert message == f"planGroupId: PlanGroup {group} is bespoke to another Account"
