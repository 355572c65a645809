"""The demo org generator: shape, consistency and determinism of the generated records."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from pipeline.mapping.files import load_mappings
from pipeline.mapping.products import PRODUCT_MAPPING_TYPE
from pipeline.mapping.spec import ENTITIES, METADATA_TYPE
from pipeline.salesforce.ids import is_valid_id
from pipeline.sandbox.catalog import CATALOG, CURRENCY_RATES
from pipeline.sandbox.salesforce.generator import (
    INTEGRATION_USERNAME,
    generate_org,
    history_start,
)
from pipeline.sandbox.salesforce.schema import demo_schema
from tests.shipped import MAPPINGS_DIR

ACCOUNTS = 60
SEED = 11
AS_OF = dt.date(2025, 3, 14)
SCHEMA = demo_schema()
# Mapping types of entities the demo org's mappings leave to an example (plan groups): empty.
UNUSED_TYPES = tuple(
    METADATA_TYPE[entity] for entity in ENTITIES if not load_mappings(MAPPINGS_DIR)[entity]
)
# Setup objects the org fills as it starts (`Org.grant_access`), not the generator.
SETUP_OBJECTS = ("PermissionSet", "PermissionSetAssignment", "ObjectPermissions")
TRANSACTIONAL = (
    "Account",
    "Contract",
    "Opportunity",
    "OpportunityLineItem",
    "Quote",
    "QuoteLineItem",
    "Order",
    "OrderItem",
    "Asset",
)
AGREEMENTS = ("Order", "Opportunity", "Quote")


def _build(seed: int = SEED, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if threads is not None:
        con.execute(f"SET threads = {threads}")
    generate_org(con, accounts=ACCOUNTS, seed=seed, as_of=AS_OF)
    return con


@pytest.fixture(scope="module")
def org() -> duckdb.DuckDBPyConnection:
    return _build()


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchall()[0][0]


def _table_contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {o.name: con.execute(f'SELECT * FROM org."{o.name}"').fetchall() for o in SCHEMA.objects}


def _lookups() -> list[tuple[str, str, str]]:
    """(object, lookup field, target object) for every reference field of the demo schema."""
    return [
        (o.name, f.name, f.reference_to[0])
        for o in SCHEMA.objects
        for f in o.fields
        if f.type == "reference"
    ]


def test_row_counts_follow_the_account_count() -> None:
    con = duckdb.connect()
    counts = generate_org(con, accounts=ACCOUNTS, seed=SEED, as_of=AS_OF)
    assert counts["OrderItem"] == 20 * ACCOUNTS
    assert counts["Account"] == ACCOUNTS
    assert counts["Organization"] == 1
    assert counts["Product2"] == len(CATALOG)
    assert counts["Pricebook2"] == 1
    assert counts["PricebookEntry"] == len(CATALOG) * len(CURRENCY_RATES)
    assert set(counts) == {o.name for o in SCHEMA.objects}
    for name, count in counts.items():
        assert _scalar(con, f'SELECT count(*) FROM org."{name}"') == count


def test_a_database_file_named_org_still_gets_its_org_schema(tmp_path) -> None:
    con = duckdb.connect(str(tmp_path / "org.duckdb"))
    counts = generate_org(con, accounts=5, seed=SEED, as_of=AS_OF)
    assert counts["OrderItem"] == 100
    assert _scalar(con, 'SELECT count(*) FROM org.org."OrderItem"') == 100


def test_same_seed_gives_identical_tables_whatever_the_thread_count(
    org: duckdb.DuckDBPyConnection,
) -> None:
    assert _table_contents(_build(threads=1)) == _table_contents(org)


def test_different_seed_gives_a_different_org(org: duckdb.DuckDBPyConnection) -> None:
    other = _table_contents(_build(seed=SEED + 1))
    assert other["OrderItem"] != _table_contents(org)["OrderItem"]
    assert len(other["OrderItem"]) == 20 * ACCOUNTS


def test_organization_is_a_sandbox_with_an_integration_user(org: duckdb.DuckDBPyConnection) -> None:
    assert _scalar(org, 'SELECT bool_and("IsSandbox") FROM org."Organization"') is True
    assert (
        _scalar(
            org,
            f"""SELECT count(*) FROM org."User"
                            WHERE "Username" = '{INTEGRATION_USERNAME}' AND "IsActive" """,
        )
        == 1
    )


def test_ids_are_valid_18_character_ids_with_the_object_key_prefix(
    org: duckdb.DuckDBPyConnection,
) -> None:
    for obj in SCHEMA.objects:
        ids = [row[0] for row in org.execute(f'SELECT "Id" FROM org."{obj.name}"').fetchall()]
        assert ids or obj.name in (*UNUSED_TYPES, *SETUP_OBJECTS), obj.name
        assert len(set(ids)) == len(ids), obj.name
        assert all(is_valid_id(i) and len(i) == 18 and i.startswith(obj.key_prefix) for i in ids), (
            obj.name
        )


def test_every_lookup_points_to_an_existing_record_of_its_object(
    org: duckdb.DuckDBPyConnection,
) -> None:
    for obj, field, target in _lookups():
        dangling = _scalar(
            org,
            f"""
            SELECT count(*) FROM org."{obj}" c
            WHERE c."{field}" IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM org."{target}" p WHERE p."Id" = c."{field}")""",
        )
        assert dangling == 0, f"{obj}.{field}"


def test_live_records_never_point_to_deleted_records(org: duckdb.DuckDBPyConnection) -> None:
    for obj, field, target in _lookups():
        if target == "User" or obj not in TRANSACTIONAL:
            continue
        bad = _scalar(
            org,
            f"""
            SELECT count(*) FROM org."{obj}" c JOIN org."{target}" p ON p."Id" = c."{field}"
            WHERE NOT c."IsDeleted" AND p."IsDeleted" """,
        )
        assert bad == 0, f"{obj}.{field}"


def test_children_are_created_after_their_parents(org: duckdb.DuckDBPyConnection) -> None:
    for obj, field, target in _lookups():
        if target == "User" or field == "SyncedQuoteId":  # a quote syncs after it is created
            continue
        if obj in SETUP_OBJECTS:  # no CreatedDate
            continue
        bad = _scalar(
            org,
            f"""
            SELECT count(*) FROM org."{obj}" c JOIN org."{target}" p ON p."Id" = c."{field}"
            WHERE p."Id" <> c."Id" AND c."CreatedDate" <= p."CreatedDate" """,
        )
        assert bad == 0, f"{obj}.{field}"


def test_timestamps_are_ordered_and_fall_in_the_three_years_before_as_of(
    org: duckdb.DuckDBPyConnection,
) -> None:
    for name in TRANSACTIONAL:
        row = org.execute(f"""
            SELECT count(*) FILTER (WHERE NOT ("CreatedDate" <= "LastModifiedDate"
                                               AND "LastModifiedDate" <= "SystemModstamp")),
                   min("CreatedDate"), max("SystemModstamp"),
                   count(*) FILTER (WHERE "SystemModstamp" > "LastModifiedDate")
            FROM org."{name}" """).fetchall()[0]
        assert row[0] == 0, name
        assert row[1] >= dt.datetime(AS_OF.year - 3, AS_OF.month, AS_OF.day), name
        assert row[2] <= dt.datetime.combine(AS_OF, dt.time(23, 59, 59, 999000)), name
        assert row[3] > 0, name


def test_a_shorter_history_keeps_every_record_inside_it() -> None:
    con = duckdb.connect()
    generate_org(con, accounts=10, seed=SEED, as_of=AS_OF, history_days=60)
    first = dt.datetime.combine(history_start(AS_OF, 60), dt.time())
    for name in TRANSACTIONAL:
        earliest, latest = con.execute(
            f'SELECT min("CreatedDate"), max("SystemModstamp") FROM org."{name}"'
        ).fetchall()[0]
        assert earliest >= first, name
        assert latest < dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time()), name


def test_quiet_days_hold_the_catalogue_and_no_deal() -> None:
    con = duckdb.connect()
    generate_org(con, accounts=10, seed=SEED, as_of=AS_OF, history_days=400, quiet_days=365)
    active = dt.datetime.combine(history_start(AS_OF, 400) + dt.timedelta(days=365), dt.time())
    for name in TRANSACTIONAL:
        (earliest,) = con.execute(f'SELECT min("CreatedDate") FROM org."{name}"').fetchall()[0]
        assert earliest >= active, name
    (products,) = con.execute('SELECT max("CreatedDate") FROM org."Product2"').fetchall()[0]
    assert products < active


def test_quiet_days_must_leave_days_for_deals() -> None:
    with pytest.raises(ValueError, match="quiet_days"):
        generate_org(
            duckdb.connect(), accounts=1, seed=SEED, as_of=AS_OF, history_days=30, quiet_days=29
        )


def test_history_starts_three_years_back_unless_told_otherwise() -> None:
    assert history_start(dt.date(2024, 2, 29)) == dt.date(2021, 2, 28)
    assert history_start(AS_OF, 60) == AS_OF - dt.timedelta(days=60)


def test_every_one_of_the_last_seven_days_has_modified_records_of_each_object(
    org: duckdb.DuckDBPyConnection,
) -> None:
    for name in TRANSACTIONAL:
        days = {
            row[0]
            for row in org.execute(f"""
            SELECT DISTINCT CAST("SystemModstamp" AS DATE) FROM org."{name}"
            WHERE "SystemModstamp" >= DATE '{AS_OF}' - 7""").fetchall()
        }
        assert days >= {AS_OF - dt.timedelta(days=d) for d in range(8)}, name


def test_records_share_system_modstamps_including_at_midnight(
    org: duckdb.DuckDBPyConnection,
) -> None:
    for name in TRANSACTIONAL:
        shared = org.execute(f"""
            SELECT "SystemModstamp", count(*) FROM org."{name}"
            GROUP BY ALL HAVING count(*) > 1""").fetchall()
        assert shared, name
        assert any(stamp.time() == dt.time(0) for stamp, _ in shared), name


def test_about_two_percent_of_transactional_records_are_deleted(
    org: duckdb.DuckDBPyConnection,
) -> None:
    deleted = total = 0
    for name in TRANSACTIONAL:
        d, t = org.execute(f"""SELECT count(*) FILTER (WHERE "IsDeleted"), count(*)
                               FROM org."{name}" """).fetchall()[0]
        deleted, total = deleted + d, total + t
    assert 0.01 < deleted / total < 0.04
    assert _scalar(org, """SELECT count(*) FROM org."Order" WHERE "IsDeleted" """) > 0


def test_line_items_of_deleted_orders_are_deleted_with_them(org: duckdb.DuckDBPyConnection) -> None:
    assert (
        _scalar(
            org,
            """
        SELECT count(*) FROM org."OrderItem" i JOIN org."Order" o ON o."Id" = i."OrderId"
        WHERE o."IsDeleted" AND NOT (i."IsDeleted"
                                     AND i."SystemModstamp" = o."SystemModstamp")""",
        )
        == 0
    )


def test_each_deal_chain_is_flagged_for_billing_at_most_once(
    org: duckdb.DuckDBPyConnection,
) -> None:
    assert (
        _scalar(
            org,
            """
        WITH quote_orders AS (
            SELECT q."OpportunityId", count(*) FILTER (WHERE q."Sync_To_M3ter__c") AS quotes
            FROM org."Quote" q GROUP BY ALL
        ),
        order_opps AS (
            SELECT "OpportunityId", count(*) FILTER (WHERE "Sync_To_M3ter__c") AS orders
            FROM org."Order" WHERE "OpportunityId" IS NOT NULL GROUP BY ALL
        )
        SELECT count(*) FROM org."Opportunity" o
        LEFT JOIN quote_orders q ON q."OpportunityId" = o."Id"
        LEFT JOIN order_opps r ON r."OpportunityId" = o."Id"
        WHERE o."Sync_To_M3ter__c"::INT + coalesce(q.quotes, 0) + coalesce(r.orders, 0) > 1
    """,
        )
        == 0
    )
    assert (
        _scalar(
            org,
            """
        SELECT count(*) FROM org."Order" r JOIN org."Quote" q ON q."Id" = r."QuoteId"
        WHERE r."OpportunityId" IS DISTINCT FROM q."OpportunityId" """,
        )
        == 0
    )


def test_every_source_kind_bills_some_deals(org: duckdb.DuckDBPyConnection) -> None:
    for name in (*AGREEMENTS, "Asset"):
        assert (
            _scalar(
                org,
                f"""SELECT count(*) FROM org."{name}"
                                WHERE "Sync_To_M3ter__c" AND NOT "IsDeleted" """,
            )
            > 0
        ), name
    assert (
        _scalar(
            org,
            """SELECT count(*) FROM org."Opportunity"
                           WHERE NOT "Sync_To_M3ter__c" AND NOT "IsWon" """,
        )
        > 0
    )


def test_synced_opportunities_are_won_and_have_no_order_or_syncing_quote(
    org: duckdb.DuckDBPyConnection,
) -> None:
    assert (
        _scalar(
            org,
            """
        SELECT count(*) FROM org."Opportunity" o
        WHERE o."Sync_To_M3ter__c" AND (NOT o."IsWon" OR o."SyncedQuoteId" IS NOT NULL
            OR NOT o."HasOpportunityLineItem"
            OR EXISTS (SELECT 1 FROM org."Order" r WHERE r."OpportunityId" = o."Id"))""",
        )
        == 0
    )


def test_synced_quotes_sync_to_their_opportunity_and_have_no_order(
    org: duckdb.DuckDBPyConnection,
) -> None:
    assert (
        _scalar(
            org,
            """
        SELECT count(*) FROM org."Quote" q JOIN org."Opportunity" o ON o."Id" = q."OpportunityId"
        WHERE q."Sync_To_M3ter__c" AND (NOT q."IsSyncing" OR o."SyncedQuoteId" <> q."Id"
            OR EXISTS (SELECT 1 FROM org."Order" r WHERE r."QuoteId" = q."Id"))""",
        )
        == 0
    )
    assert (
        _scalar(
            org,
            """
        SELECT count(*) FROM org."Opportunity" o
        WHERE (o."SyncedQuoteId" IS NOT NULL) <> EXISTS (
            SELECT 1 FROM org."Quote" q WHERE q."OpportunityId" = o."Id" AND q."IsSyncing")
    """,
        )
        == 0
    )
    assert (
        _scalar(
            org,
            """
        SELECT count(*) FROM org."Opportunity" o JOIN org."Quote" q ON q."Id" = o."SyncedQuoteId"
        WHERE o."LastModifiedDate" < q."CreatedDate" """,
        )
        == 0
    )


def test_synced_assets_are_root_assets(org: duckdb.DuckDBPyConnection) -> None:
    assert (
        _scalar(
            org,
            """SELECT count(*) FROM org."Asset"
                           WHERE "Sync_To_M3ter__c" AND ("ParentId" IS NOT NULL
                                 OR "RootAssetId" <> "Id" OR "Product2Id" IS NULL)""",
        )
        == 0
    )
    assert _scalar(org, """SELECT count(*) FROM org."Asset" WHERE "ParentId" IS NOT NULL""") > 0


def test_about_a_third_of_synced_agreements_carry_a_prepayment(
    org: duckdb.DuckDBPyConnection,
) -> None:
    union = " UNION ALL ".join(
        f'SELECT "Sync_To_M3ter__c" AS s, "Prepayment_Amount__c" AS p FROM org."{name}"'
        for name in AGREEMENTS
    )
    flagged, prepaid = org.execute(f"""SELECT count(*) FILTER (WHERE s),
                                              count(*) FILTER (WHERE s AND p > 0)
                                       FROM ({union})""").fetchall()[0]
    assert 0.15 < prepaid / flagged < 0.45
    for name in AGREEMENTS:
        assert (
            _scalar(
                org,
                f"""SELECT count(*) FROM org."{name}"
                                WHERE "Prepayment_Amount__c" IS NOT NULL
                                  AND NOT "Sync_To_M3ter__c" """,
            )
            == 0
        ), name


def test_lines_use_pricebook_entries_of_their_product_and_account_currency(
    org: duckdb.DuckDBPyConnection,
) -> None:
    for line, header, key in (
        ("OrderItem", "Order", "OrderId"),
        ("OpportunityLineItem", "Opportunity", "OpportunityId"),
        ("QuoteLineItem", "Quote", "QuoteId"),
    ):
        assert (
            _scalar(
                org,
                f"""
            SELECT count(*) FROM org."{line}" l
            JOIN org."{header}" h ON h."Id" = l."{key}"
            JOIN org."Account" a ON a."Id" = h."AccountId"
            JOIN org."PricebookEntry" e ON e."Id" = l."PricebookEntryId"
            WHERE e."Product2Id" <> l."Product2Id" OR e."CurrencyIsoCode" <> h."CurrencyIsoCode"
               OR h."CurrencyIsoCode" <> a."CurrencyIsoCode" OR l."ListPrice" <> e."UnitPrice"
               OR l."Quantity" <= 0 OR l."UnitPrice" > l."ListPrice"
               OR l."UnitPrice" < 0.7 * l."ListPrice" """,
            )
            == 0
        ), line


def test_service_periods_end_after_they_start_and_some_are_open_ended(
    org: duckdb.DuckDBPyConnection,
) -> None:
    for name, start, end in (
        ("Order", "EffectiveDate", "EndDate"),
        ("OrderItem", "ServiceDate", "EndDate"),
        ("Opportunity", "Service_Start_Date__c", "Service_End_Date__c"),
        ("Asset", "InstallDate", "UsageEndDate"),
    ):
        bad, open_ended = org.execute(f"""
            SELECT count(*) FILTER (WHERE "{end}" <= "{start}"),
                   count(*) FILTER (WHERE "{start}" IS NOT NULL AND "{end}" IS NULL)
            FROM org."{name}" """).fetchall()[0]
        assert bad == 0, name
        assert open_ended > 0, name


def test_contract_end_date_is_start_plus_term_months_minus_a_day(
    org: duckdb.DuckDBPyConnection,
) -> None:
    assert (
        _scalar(
            org,
            """
        SELECT count(*) FROM org."Contract"
        WHERE "EndDate" <> CAST("StartDate" + to_months("ContractTerm") - INTERVAL 1 DAY AS DATE)
    """,
        )
        == 0
    )


def test_some_accounts_have_blank_segment_fields_and_a_parent(
    org: duckdb.DuckDBPyConnection,
) -> None:
    region, tier, parented = org.execute("""
        SELECT count(*) FILTER (WHERE "Region__c" IS NULL),
               count(*) FILTER (WHERE "Tier__c" IS NULL),
               count(*) FILTER (WHERE "ParentId" IS NOT NULL)
        FROM org."Account" """).fetchall()[0]
    assert 0 < region < ACCOUNTS * 0.1
    assert 0 < tier < ACCOUNTS * 0.1
    assert parented > 0


def test_text_values_fit_their_field_lengths(org: duckdb.DuckDBPyConnection) -> None:
    for obj in SCHEMA.objects:
        for field in obj.fields:
            if field.is_text and field.length:
                longest = _scalar(
                    org,
                    f"""SELECT max(length("{field.name}"))
                                           FROM org."{obj.name}" """,
                )
                assert (longest or 0) <= field.length, f"{obj.name}.{field.name}"


def test_picklist_values_come_from_the_picklist(org: duckdb.DuckDBPyConnection) -> None:
    for obj in SCHEMA.objects:
        for field in obj.fields:
            if field.picklist:
                values = {
                    r[0]
                    for r in org.execute(f"""SELECT DISTINCT "{field.name}"
                                                        FROM org."{obj.name}" """).fetchall()
                }
                assert values - {None} <= set(field.picklist), f"{obj.name}.{field.name}"


def test_auto_number_fields_are_filled(org: duckdb.DuckDBPyConnection) -> None:
    for name, field in (
        ("Order", "OrderNumber"),
        ("Contract", "ContractNumber"),
        ("Quote", "QuoteNumber"),
        ("OrderItem", "OrderItemNumber"),
        ("QuoteLineItem", "LineNumber"),
    ):
        assert (
            _scalar(
                org,
                f"""SELECT count(*) FROM org."{name}"
                                WHERE NOT regexp_full_match("{field}", '[0-9]{{8,10}}')""",
            )
            == 0
        )
        assert (
            _scalar(
                org,
                f"""SELECT count(DISTINCT "{field}") = count(*)
                                FROM org."{name}" """,
            )
            is True
        )


def test_products_carry_their_m3ter_codes(org: duckdb.DuckDBPyConnection) -> None:
    rows = org.execute("""
        SELECT "ProductCode", "QuantityUnitOfMeasure", "M3ter_Product_Code__c",
               "M3ter_Plan_Template_Code__c", "M3ter_Calculation__c", "M3ter_Aggregation_Code__c"
        FROM org."Product2" ORDER BY "Id" """).fetchall()
    assert [r[:5] for r in rows] == [
        (p.product_code, p.unit, p.m3ter_product, p.plan_template, p.calculation) for p in CATALOG
    ]
    assert all(r[5] for r in rows)


def test_every_mapping_type_has_active_records_with_json_fields(
    org: duckdb.DuckDBPyConnection,
) -> None:
    for obj in SCHEMA.objects:
        if not obj.custom_metadata or obj.name in (PRODUCT_MAPPING_TYPE, *UNUSED_TYPES):
            continue
        rows = org.execute(f"""
            SELECT "Fields__c", "Hardcoded__c", "Custom_Fields__c", "Source_Object__c",
                   "Active__c", "Language", "DeveloperName" = "QualifiedApiName"
            FROM org."{obj.name}" """).fetchall()
        assert rows, obj.name
        for fields, hardcoded, custom, source, active, language, qualified in rows:
            assert json.loads(fields), obj.name
            for text in (hardcoded, custom):
                assert text is None or isinstance(json.loads(text), dict)
            assert SCHEMA.sobject(source) is not None
            assert active and language == "en_US" and qualified


def test_products_are_resolved_to_annual_and_euro_plan_templates(
    org: duckdb.DuckDBPyConnection,
) -> None:
    rows = org.execute(f"""
        SELECT "Product_Code__c", "Billing_Frequency__c", "Currency__c", "Plan_Template_Code__c"
        FROM org."{PRODUCT_MAPPING_TYPE}" WHERE "Active__c" """).fetchall()
    assert ("API-CALLS", "Annual", "EUR", "api_platform_annual_eur") in rows
    assert {currency for _, _, currency, _ in rows} == {None, "EUR"}
    assert {frequency for _, frequency, _, _ in rows} == {None, "Annual"}


def test_pricing_segments_use_both_text_forms_and_a_literal(org: duckdb.DuckDBPyConnection) -> None:
    segments = [
        r[0]
        for r in org.execute("""
        SELECT "Segments__c" FROM org."PricingMapping__mdt"
        WHERE "Segments__c" IS NOT NULL""").fetchall()
    ]
    assert "region: Order.Account.Region__c, tier: Order.Account.Tier__c" in segments
    as_json = [json.loads(s) for s in segments if s.startswith("{")]
    assert as_json
    assert any("." not in value for s in as_json for value in s.values())


def test_account_plans_of_lines_are_synced_per_agreement_and_product(
    org: duckdb.DuckDBPyConnection,
) -> None:
    rows = org.execute("""
        SELECT "Source_Object__c", "Sync_Level__c", "Fields__c", "Combine__c"
        FROM org."AccountPlanMapping__mdt" """).fetchall()
    assert {level for _, level, _, _ in rows} == {"agreement"}
    for source, _, fields, combine in rows:
        code = json.loads(fields)["code"]
        if source == "Asset":
            assert code == "Id" and combine is None
        else:
            assert code.startswith("{") and "M3ter_Product_Code__c" in code
            assert json.loads(combine) == {"startDate": "earliest", "endDate": "latest"}
