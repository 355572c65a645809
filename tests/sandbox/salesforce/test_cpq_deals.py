"""The CPQ org's deals: sales, amendments and renewals as Salesforce CPQ records them."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipeline.salesforce.ids import is_valid_id
from pipeline.sandbox.salesforce.cpq_deals import RENEWAL_UPLIFT
from pipeline.sandbox.salesforce.generator import generate_org
from pipeline.sandbox.salesforce.schema import org_schema

AS_OF = dt.date(2025, 3, 14)


@pytest.fixture(scope="module")
def org() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    generate_org(con, accounts=40, seed=5, as_of=AS_OF, history_days=400, kind="cpq")
    return con


def rows(org: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return org.cursor().execute(sql).fetchall()


def test_the_cpq_org_has_the_demo_objects_and_the_cpq_ones():
    names = {o.name for o in org_schema("cpq").objects}
    assert {"SBQQ__Quote__c", "SBQQ__QuoteLine__c", "SBQQ__Subscription__c", "Account"} <= names
    contract = org_schema("cpq").sobject("Contract")
    assert contract is not None and contract.field("SBQQ__Quote__c") is not None
    assert org_schema("demo").sobject("SBQQ__Quote__c") is None


def test_the_cpq_org_has_no_standard_deals(org):
    for name in ("Order", "OrderItem", "Quote", "QuoteLineItem", "Asset", "OpportunityLineItem"):
        assert rows(org, f'SELECT count(*) FROM org."{name}"') == [(0,)], name


def test_every_reference_of_a_cpq_record_names_a_record_of_its_object(org):
    schema = org_schema("cpq")
    for name in ("SBQQ__Quote__c", "SBQQ__QuoteLine__c", "SBQQ__Subscription__c", "Contract"):
        obj = schema.sobject(name)
        assert obj is not None
        for f in obj.fields:
            if f.type != "reference" or f.reference_to[0] == "User":
                continue
            target = f.reference_to[0]
            dangling = rows(
                org,
                f'SELECT count(*) FROM org."{name}" r WHERE r."{f.name}" IS NOT NULL AND NOT '
                f'EXISTS (SELECT 1 FROM org."{target}" t WHERE t."Id" = r."{f.name}")',
            )
            assert dangling == [(0,)], f"{name}.{f.name}"
    ids = rows(org, 'SELECT "Id" FROM org."SBQQ__Subscription__c"')
    assert ids and all(is_valid_id(i) for (i,) in ids)


def test_an_amendment_line_carries_the_new_total_and_its_prior_quantity(org):
    found = rows(
        org,
        """SELECT l."SBQQ__Quantity__c", l."SBQQ__PriorQuantity__c", s."SBQQ__Quantity__c",
                  l."SBQQ__EffectiveQuantity__c"
           FROM org."SBQQ__QuoteLine__c" l
           JOIN org."SBQQ__Quote__c" q ON q."Id" = l."SBQQ__Quote__c"
           JOIN org."SBQQ__Subscription__c" s ON s."Id" = l."SBQQ__UpgradedSubscription__c"
           WHERE q."SBQQ__Type__c" = 'Amendment'""",
    )
    assert found
    for total, prior, original, effective in found:
        assert prior == original and total != prior and effective == total - prior


def test_an_amendment_subscription_carries_the_change_from_the_amendment_date(org):
    found = rows(
        org,
        """SELECT d."SBQQ__Quantity__c", l."SBQQ__Quantity__c" - l."SBQQ__PriorQuantity__c",
                  d."SBQQ__StartDate__c", q."SBQQ__StartDate__c", d."SBQQ__EndDate__c",
                  o."SBQQ__EndDate__c", d."SBQQ__Contract__c", o."SBQQ__Contract__c",
                  q."SBQQ__MasterContract__c"
           FROM org."SBQQ__Subscription__c" d
           JOIN org."SBQQ__Subscription__c" o ON o."Id" = d."SBQQ__RevisedSubscription__c"
           JOIN org."SBQQ__QuoteLine__c" l ON l."Id" = d."SBQQ__QuoteLine__c"
           JOIN org."SBQQ__Quote__c" q ON q."Id" = l."SBQQ__Quote__c" """,
    )
    assert found
    for delta, change, start, amended_from, end, original_end, contract, original, master in found:
        assert delta == change
        assert start == amended_from and end == original_end
        assert contract == original == master


def test_a_renewal_starts_a_new_contract_the_day_after_the_old_one_ends(org):
    found = rows(
        org,
        """SELECT n."StartDate", o."EndDate", n."Id" <> o."Id", nl."SBQQ__NetPrice__c"
                      / nl."SBQQ__ProrateMultiplier__c",
                  ol."SBQQ__NetPrice__c" / ol."SBQQ__ProrateMultiplier__c"
           FROM org."Opportunity" opp
           JOIN org."Contract" o ON o."Id" = opp."SBQQ__RenewedContract__c"
           JOIN org."Contract" n ON n."SBQQ__Opportunity__c" = opp."Id"
           JOIN org."SBQQ__QuoteLine__c" nl ON nl."SBQQ__Quote__c" = n."SBQQ__Quote__c"
           JOIN org."SBQQ__Subscription__c" os ON os."Id" = nl."SBQQ__RenewedSubscription__c"
           JOIN org."SBQQ__QuoteLine__c" ol ON ol."Id" = os."SBQQ__QuoteLine__c" """,
    )
    assert found
    for start, old_end, new_contract, price, old_price in found:
        assert start == old_end + dt.timedelta(days=1) and new_contract
        assert price == pytest.approx(old_price * RENEWAL_UPLIFT, abs=1e-6)  # 6 places


def test_a_line_s_monthly_formulas_are_its_net_price_over_its_prorate_multiplier(org):
    found = rows(
        org,
        """SELECT "M3ter_Monthly_Unit_Price__c", "SBQQ__NetPrice__c" / "SBQQ__ProrateMultiplier__c",
                  "M3ter_Monthly_Amount__c", "SBQQ__Quantity__c"
           FROM org."SBQQ__QuoteLine__c" """,
    )
    for unit, net_over_term, amount, quantity in found:
        assert unit == pytest.approx(net_over_term, rel=1e-9)
        assert amount == pytest.approx(quantity * unit, rel=1e-9)


def test_each_account_has_at_most_one_sale(org):
    assert rows(
        org,
        """SELECT count(*) FROM (SELECT "SBQQ__Account__c" FROM org."SBQQ__Quote__c"
           WHERE "SBQQ__Type__c" = 'Quote' AND "SBQQ__Primary__c"
           GROUP BY 1 HAVING count(*) > 1)""",
    ) == [(0,)]
