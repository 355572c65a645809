"""Billing coverage: is every Salesforce line the mappings price billable in m3ter, and if not, why.

A line (a record a pricing mapping takes) is billable when m3ter holds its pricing, the plan the
pricing sits on, and an account plan on that plan, for an account m3ter holds, active over the
line's service period; an account plan cut short by a later agreement of the account for the
same product (a renewal, an upsell) still bills the line until then. What m3ter holds is what
the load journal says it applied, with account plans as the load computes them
(`supersede.py`); the end-to-end tests check that against m3ter itself.

A line that is not billable carries the reason at its root: the first object on its way to
billing that failed, walking from the account down (an account refused because it has no e-mail
address explains every line of that account, once), with the reason the stage or m3ter gave.
Findings count the roots and the lines that depend on them.

Everything is one SQL statement over the warehouse, written to `load.coverage` (one row per
line) for the data team.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb

from pipeline.load import groups
from pipeline.load.current import Current
from pipeline.load.journal import latest_journal_sql
from pipeline.load.supersede import (
    ACCOUNT_PLANS,
    PLAN_PRODUCTS,
    PRODUCTS,
    SUPERSEDED_BY,
    staged_columns,
    superseded,
)
from pipeline.mapping.compiler import AGREEMENT
from pipeline.staging.stage import latest_rejects_sql, staged_table
from pipeline.warehouse import Table, Warehouse

COVERAGE = Table("load", "coverage")
WHOLE = "_all"
# Outcomes after which m3ter holds the object as the journal says.
_HELD = "status IN ('applied', 'unchanged') AND action IN ('create', 'update', 'unchanged')"
_PRICED = (
    "planCode, planTemplateCode, aggregationCode, compoundAggregationCode, segment, startDate, "
    "endDate"
)
_LINKED = "code, planGroupCode, planCode"
_UNLOADED = "'not in m3ter yet (not loaded)'"
# Ids (Salesforce's, codes made from them, m3ter's UUIDs) vary from one root to the next:
# findings name the rule.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ID_PATTERN = rf"{_UUID}|[A-Za-z0-9]{{15,18}}(_[A-Za-z0-9_]+)?"


@dataclass(frozen=True)
class Finding:
    """One reason lines do not bill, at its root: how many roots, and how many lines."""

    entity: str  # the m3ter entity at the root (accounts, plans, pricings, account_plans)
    reason: str  # an example of the reason, as the stage or m3ter gave it
    roots: int
    lines: int

    def __str__(self) -> str:
        noun = self.entity.replace("_", " ")
        if self.roots == 1 and noun.endswith("s"):
            noun = noun[:-1]
        depend = "line depends" if self.lines == 1 else "lines depend"
        them = "it" if self.roots == 1 else "them"
        return f"{self.roots:,} {noun}: {self.reason}; {self.lines:,} {depend} on {them}"


@dataclass(frozen=True)
class Coverage:
    lines: int
    billable: int
    findings: list[Finding] = field(default_factory=list)
    by_month: list[tuple[str, int, int]] = field(default_factory=list)  # (YYYY-MM, lines, billable)

    @property
    def share(self) -> float:
        """Billable lines over lines; 1.0 when there is nothing to bill."""
        return self.billable / self.lines if self.lines else 1.0


def template_products(current: Current) -> dict[str, str]:
    """Plan template code -> m3ter product id, from m3ter's plan templates (listed once a run)."""
    return {
        t["code"]: t["productId"]
        for t in current.listing("plantemplates")
        if t.get("code") and t.get("productId")
    }


def coverage(warehouse: Warehouse, template_products: Mapping[str, str]) -> Coverage:
    """Compute coverage over everything staged and journaled, write `load.coverage`, and sum it.

    `template_products` maps plan template codes to m3ter product ids (m3ter's plan templates),
    which decide which account plans supersede which.
    """
    con = warehouse.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # a check's log, not a terminal
        if not _lines_sql(warehouse, con, template_products):
            return Coverage(0, 0)
        warehouse.write_partition(con, COVERAGE, WHOLE, "SELECT * FROM _coverage")
        return _summary(con)
    finally:
        con.close()


def _lines_sql(
    warehouse: Warehouse, con: duckdb.DuckDBPyConnection, template_products: Mapping[str, str]
) -> bool:
    """Fill `_coverage` with one row per line; False if no pricing is staged."""
    if not warehouse.partitions(staged_table("pricings")):
        return False
    if groups.objects(warehouse, con, "account_plans", None):
        superseded(warehouse, con, template_products)
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {ACCOUNT_PLANS} AS SELECT NULL::VARCHAR AS "
            "_source_object, NULL::VARCHAR AS _source_id, NULL::VARCHAR AS code, "
            "NULL::VARCHAR AS accountCode, NULL::VARCHAR AS planCode, NULL::VARCHAR AS "
            "planGroupCode, NULL::VARCHAR AS "
            f"startDate, NULL::VARCHAR AS endDate, NULL::VARCHAR AS {SUPERSEDED_BY}, "
            f"NULL::VARCHAR AS {AGREEMENT}, NULL::VARCHAR[] AS {PRODUCTS}, false AS _tombstone "
            "WHERE false"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {PLAN_PRODUCTS} AS SELECT NULL::VARCHAR AS plan, "
            "NULL::VARCHAR AS product WHERE false"
        )
    meta = "_source_object, _source_id, _partition, _tombstone"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _coverage AS
        WITH journal AS ({latest_journal_sql(warehouse)}),
        held AS (SELECT *, {_HELD} AS ok FROM journal),
        rejected AS ({latest_rejects_sql(warehouse)}),
        pricing AS ({staged_columns(warehouse, "pricings", f"{meta}, {AGREEMENT}, {_PRICED}")}),
        plan_rows AS ({staged_columns(warehouse, "plans", meta)}),
        ap_rows AS ({staged_columns(warehouse, "account_plans", f"{meta}, accountCode, code")}),
        link_rows AS ({staged_columns(warehouse, "plan_group_links", f"{meta}, {_LINKED}")}),
        account_rows AS ({staged_columns(warehouse, "accounts", f"{meta}, code")}),
        -- a record's latest reject counts while no later version of it was staged
        current_rejects AS (
            SELECT r.* FROM rejected r
            LEFT JOIN (SELECT 'pricings' AS entity, {meta} FROM pricing
                       UNION ALL SELECT 'plans', {meta} FROM plan_rows
                       UNION ALL SELECT 'account_plans', {meta} FROM ap_rows
                       UNION ALL SELECT 'plan_group_links', {meta} FROM link_rows
                       UNION ALL SELECT 'accounts', {meta} FROM account_rows) s
              USING (entity, _source_object, _source_id)
            WHERE s._partition IS NULL OR r._partition > s._partition
        ),
        lines AS (
            SELECT _source_object, _source_id, {AGREEMENT} AS agreement, planCode,
                coalesce(aggregationCode, compoundAggregationCode) AS aggregation, segment,
                startDate, endDate, NULL::VARCHAR AS rejected
            FROM pricing WHERE NOT _tombstone
            UNION ALL
            SELECT r._source_object, r._source_id, NULL, NULL, NULL, NULL, NULL, NULL, r.message
            FROM current_rejects r
            WHERE r.entity = 'pricings' AND NOT EXISTS (
                SELECT 1 FROM pricing p WHERE p._source_object = r._source_object
                AND p._source_id = r._source_id AND NOT p._tombstone)
        ),
        placed AS (
            SELECT l.*, ap.accountCode AS account, ap.code AS ap_code, pp.product
            FROM lines l LEFT JOIN ap_rows ap
              ON ap._source_object = l._source_object AND ap._source_id = l._source_id
             AND NOT ap._tombstone
            LEFT JOIN {PLAN_PRODUCTS} pp ON pp.plan = l.planCode
        ),
        accounts AS (
            SELECT code, bool_or(ok) AS ok, any_value(message) AS message
            FROM held WHERE entity = 'accounts' GROUP BY code
        ),
        plans AS (
            SELECT code, bool_or(ok) AS ok, any_value(message) FILTER (NOT ok) AS message
            FROM held WHERE entity = 'plans' GROUP BY code
        ),
        plan_groups AS (
            SELECT code, bool_or(ok) AS ok, any_value(message) FILTER (NOT ok) AS message
            FROM held WHERE entity = 'plan_groups' GROUP BY code
        ),
        -- the plans each group links, as staged, and whether m3ter holds the link
        links AS (
            SELECT l.code, l.planGroupCode, l.planCode, coalesce(j.ok, false) AS ok,
                j.message
            FROM (SELECT DISTINCT code, planGroupCode, planCode FROM link_rows
                  WHERE NOT _tombstone) l
            LEFT JOIN (SELECT code, bool_or(ok) AS ok,
                           any_value(message) FILTER (NOT ok) AS message
                       FROM held WHERE entity = 'plan_group_links' GROUP BY code) j
              USING (code)
        ),
        account_plans AS (
            SELECT a.*, j.ok, j.message, s.{AGREEMENT} AS superseder_agreement,
                coalesce(s.{PRODUCTS}, []) AS superseder_products,
                coalesce(sj.ok, false) AS superseder_held
            FROM {ACCOUNT_PLANS} a
            LEFT JOIN held j ON j.entity = 'account_plans'
             AND j.source_object = a._source_object AND j.source_id = a._source_id
            LEFT JOIN {ACCOUNT_PLANS} s ON s.code = a.{SUPERSEDED_BY} AND NOT s._tombstone
            LEFT JOIN held sj ON sj.entity = 'account_plans'
             AND sj.source_object = s._source_object AND sj.source_id = s._source_id
            WHERE NOT a._tombstone
        ),
        judged AS (
            SELECT p.*,
                acc.ok AS account_ok,
                coalesce(acc_reject.message, acc.message) AS account_reason,
                pl.ok AS plan_ok,
                coalesce(plan_reject.message, pl.message) AS plan_reason,
                pj.ok AS pricing_ok, pj.message AS pricing_reason,
                ap_reject.message AS ap_reject,
                own.ok AS ap_ok, own.message AS ap_reason, own.startDate AS ap_start,
                own.endDate AS ap_end, own.{SUPERSEDED_BY} AS ap_superseded_by,
                own.superseder_held AS ap_superseder_held,
                list_contains(own.superseder_products, p.product) AS ap_superseder_bills,
                own.planGroupCode AS ap_group, grp.ok AS group_ok, grp.message AS group_reason,
                link.code AS link_code, link.ok AS link_ok,
                coalesce(link_reject.message, link.message) AS link_reason,
                EXISTS (
                    SELECT 1 FROM account_plans c
                    WHERE (c.planCode = p.planCode OR EXISTS (
                            SELECT 1 FROM links gl WHERE gl.ok
                            AND gl.planGroupCode = c.planGroupCode AND gl.planCode = p.planCode))
                      AND c.ok AND c.startDate <= p.startDate
                      AND (c.endDate IS NULL OR (p.endDate IS NOT NULL AND c.endDate >= p.endDate)
                           OR (c.{SUPERSEDED_BY} IS NOT NULL AND c.superseder_held
                               AND c.superseder_agreement IS DISTINCT FROM p.agreement
                               AND list_contains(c.superseder_products, p.product)))
                ) AS covered
            FROM placed p
            LEFT JOIN accounts acc ON acc.code = p.account
            LEFT JOIN current_rejects acc_reject
              ON acc_reject.entity = 'accounts' AND acc_reject.code = p.account
            LEFT JOIN plans pl ON pl.code = p.planCode
            LEFT JOIN current_rejects plan_reject ON plan_reject.entity = 'plans'
             AND plan_reject._source_object = p._source_object
             AND plan_reject._source_id = p._source_id
            LEFT JOIN held pj ON pj.entity = 'pricings'
             AND pj.source_object = p._source_object AND pj.source_id = p._source_id
            LEFT JOIN current_rejects ap_reject ON ap_reject.entity = 'account_plans'
             AND ap_reject._source_object = p._source_object
             AND ap_reject._source_id = p._source_id
            LEFT JOIN account_plans own ON own.code = p.ap_code
            LEFT JOIN plan_groups grp ON grp.code = own.planGroupCode
            LEFT JOIN links link
              ON link.planGroupCode = own.planGroupCode AND link.planCode = p.planCode
            LEFT JOIN current_rejects link_reject ON link_reject.entity = 'plan_group_links'
             AND link_reject._source_object = p._source_object
             AND link_reject._source_id = p._source_id
        ),
        rooted AS (
            SELECT *,
                CASE
                    WHEN rejected IS NOT NULL THEN struct_pack(e := 'pricings', k := _source_id,
                        r := rejected)
                    WHEN account IS NOT NULL AND NOT coalesce(account_ok, false)
                        THEN struct_pack(e := 'accounts', k := account, r := coalesce(
                            account_reason, 'not in m3ter: no account mapping takes it'))
                    WHEN NOT coalesce(plan_ok, false) THEN struct_pack(e := 'plans', k := planCode,
                        r := coalesce(plan_reason, {_UNLOADED}))
                    WHEN NOT coalesce(pricing_ok, false) THEN struct_pack(e := 'pricings',
                        k := _source_id, r := coalesce(pricing_reason, {_UNLOADED}))
                    WHEN covered THEN NULL
                    WHEN ap_group IS NOT NULL AND NOT coalesce(group_ok, false)
                        THEN struct_pack(e := 'plan_groups', k := ap_group,
                            r := coalesce(group_reason, {_UNLOADED}))
                    WHEN ap_group IS NOT NULL AND NOT coalesce(link_ok, false)
                        THEN struct_pack(e := 'plan_group_links',
                            k := coalesce(link_code, ap_group || '/' || planCode),
                            r := coalesce(link_reason, CASE WHEN link_code IS NULL
                                THEN 'no plan group link mapping links the line''s plan to '
                                     || 'the group its account plan attaches'
                                ELSE {_UNLOADED} END))
                    WHEN ap_code IS NULL THEN struct_pack(e := 'account_plans', k := _source_id,
                        r := coalesce(ap_reject, 'no account plan mapping takes the line'))
                    WHEN NOT coalesce(ap_ok, false) THEN struct_pack(e := 'account_plans',
                        k := ap_code, r := coalesce(ap_reason, {_UNLOADED}))
                    WHEN ap_superseded_by IS NOT NULL AND ap_superseder_held
                         AND NOT coalesce(ap_superseder_bills, false)
                        THEN struct_pack(e := 'account_plans', k := ap_code,
                            r := 'ends where account plan ' || ap_superseded_by || ' of the same '
                                 || 'account starts, which bills another of its products but not '
                                 || 'this line''s: a plan group''s account plan ends whole; sync '
                                 || 'these agreements without plan groups')
                    WHEN ap_superseded_by IS NOT NULL THEN struct_pack(e := 'account_plans',
                        k := ap_superseded_by, r := 'ends where account plan ' || ap_superseded_by
                            || ' of the same account and product starts, which m3ter does not '
                            || 'hold')
                    ELSE struct_pack(e := 'account_plans', k := ap_code,
                        r := 'runs ' || coalesce(ap_start, '?') || ' to '
                             || coalesce(ap_end, 'open') || ', not over the line''s '
                             || startDate || ' to ' || coalesce(endDate, 'open'))
                END AS root
            FROM judged
        )
        SELECT _source_object AS source_object, _source_id AS source_id, agreement,
            account AS account_code, planCode AS plan_code, aggregation, segment,
            startDate AS start_date, endDate AS end_date, substr(startDate, 1, 7) AS month,
            root IS NULL AS billable, root.e AS root_entity, root.k AS root_key,
            root.r AS reason,
            regexp_replace(root.r, '{_ID_PATTERN}', '…', 'g') AS finding
        FROM rooted
    """)
    return True


def _summary(con: duckdb.DuckDBPyConnection) -> Coverage:
    (lines, billable) = con.execute(
        "SELECT count(*), count(*) FILTER (billable) FROM _coverage"
    ).fetchone() or (0, 0)
    findings = [
        Finding(entity, reason, roots, count)
        for entity, reason, roots, count in con.execute("""
            SELECT root_entity, min(reason), count(DISTINCT root_key), count(*)
            FROM _coverage WHERE NOT billable
            GROUP BY root_entity, finding ORDER BY count(*) DESC, root_entity, finding
            """).fetchall()
    ]
    by_month = [
        (str(month), int(total), int(good))
        for month, total, good in con.execute("""
            SELECT coalesce(month, '(rejected)'), count(*), count(*) FILTER (billable)
            FROM _coverage GROUP BY 1 ORDER BY 1""").fetchall()
    ]
    return Coverage(int(lines), int(billable), findings, by_month)
