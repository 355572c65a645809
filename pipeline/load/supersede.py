"""Account plans of one account and product never overlap: the newer one supersedes.

m3ter allows one active AccountPlan per Product and Account at a time (m3ter-api reference
§3.11), while Salesforce happily holds several deals for the same product whose service periods
overlap (a renewal signed before the old term ends, an upsell). m3ter's own answer is `replace`:
the existing plan ends where the new one starts. m3sync applies that rule to the desired state
as a whole, in one SQL statement over every staged account plan:

- per account and product (the product of the plan's plan template), ordered by start, each
  account plan ends no later than the next one's start;
- of two starting at the same instant, the one with the smaller code keeps the slot and the
  other is refused with a reason (m3ter would refuse it too);
- loading any partition brings every account plan of the account and product groups it touches,
  so a new deal end-dates an older one staged in another partition, and the result does not
  depend on which partitions are loaded in which order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import pandas as pd

from pipeline.load.groups import OBJECTS, REFUSED, TOUCHED
from pipeline.mapping.compiler import AGREEMENT
from pipeline.mapping.spec import Entity
from pipeline.staging.stage import staged_table
from pipeline.warehouse import Warehouse

SUPERSEDED_BY = "_superseded_by"  # the code of the account plan that ends this one
PRODUCTS = "_products"  # the m3ter products an account plan bills
PLAN_PRODUCTS = "_plan_products"  # the temporary table of each staged plan's m3ter product


ACCOUNT_PLANS = "_account_plans"  # the temporary table `superseded()` fills


def account_plan_rows(
    warehouse: Warehouse, con: duckdb.DuckDBPyConnection, template_products: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The account plans of `_objects` (`groups.objects`) the load touches, and those of the
    account and product groups they touch, as `superseded()` leaves them."""
    superseded(warehouse, con, template_products)
    cursor = con.execute(
        f"SELECT * EXCLUDE ({TOUCHED}, {PRODUCTS}) FROM {ACCOUNT_PLANS} WHERE {TOUCHED} "
        "ORDER BY _source_object, _source_id"
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def superseded(
    warehouse: Warehouse, con: duckdb.DuckDBPyConnection, template_products: Mapping[str, str]
) -> None:
    """Fill `_account_plans` with every account plan of `_objects`, `endDate` cut at the next
    start and same-start rivals refused, `_touched` when the load touches it or one of its
    account and product groups, and `_products` the m3ter products it bills.

    An account plan on a plan group bills the product of every plan the group links (the
    staged links), so it takes part in the group of each: a renewal's group ends the old
    group where it starts, and a plan and a group sharing a product supersede each other like
    two plans. `template_products` maps plan template codes to m3ter product ids; a template
    it lacks stands for a product of its own.
    """
    products = pd.DataFrame(
        {"template": list(template_products), "product": list(template_products.values())},
        dtype="string",
    )
    con.register("_template_products", products)
    plans = (
        "SELECT code AS plan, any_value(planTemplateCode) AS template FROM "
        f"({staged_columns(warehouse, 'plans', 'code, planTemplateCode, _tombstone')}) "
        "WHERE NOT _tombstone GROUP BY code"
    )
    links = (
        "SELECT DISTINCT planGroupCode, planCode FROM "
        f"({staged_columns(warehouse, 'plan_group_links', 'planGroupCode, planCode, _tombstone')}) "
        "WHERE NOT _tombstone"
    )
    agreement = f"ap.{AGREEMENT}" if _has_column(con, AGREEMENT) else "NULL::VARCHAR"
    own_agreement = agreement.replace("ap.", "g.", 1)
    plan_column = "ap.planCode" if _has_column(con, "planCode") else "NULL::VARCHAR"
    group_column = "ap.planGroupCode" if _has_column(con, "planGroupCode") else "NULL::VARCHAR"
    columns = (
        f"ap._source_object, ap._source_id, ap.accountCode, ap.startDate, ap.code, "
        f"ap.{TOUCHED}, {agreement} AS _agreement_of"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {PLAN_PRODUCTS} AS
            SELECT p.plan, coalesce(t.product, 'template:' || p.template) AS product
            FROM ({plans}) p LEFT JOIN _template_products t ON t.template = p.template
            WHERE p.template IS NOT NULL"""
    )
    query = f"""
        WITH plan_products AS (SELECT * FROM {PLAN_PRODUCTS}),
        group_products AS (
            SELECT DISTINCT l.planGroupCode AS plan_group, pp.product
            FROM ({links}) l JOIN plan_products pp ON pp.plan = l.planCode
        ),
        grouped AS (
            SELECT {columns}, pp.product AS _product
            FROM {OBJECTS} ap JOIN plan_products pp ON pp.plan = {plan_column}
            WHERE NOT ap._tombstone
            UNION ALL
            SELECT {columns}, gp.product
            FROM {OBJECTS} ap JOIN group_products gp ON gp.plan_group = {group_column}
            WHERE NOT ap._tombstone
        ),
        ranked AS (
            SELECT *,
                first_value(code) OVER slot AS _slot,
                first_value(_agreement_of) OVER slot AS _slot_agreement
            FROM grouped
            WINDOW slot AS (PARTITION BY accountCode, _product, startDate ORDER BY code)
        ),
        successors AS (
            SELECT _source_object, _source_id, _product,
                lead(startDate) OVER w AS _next_start, lead(code) OVER w AS _next_code
            FROM ranked WHERE code = _slot
            WINDOW w AS (PARTITION BY accountCode, _product ORDER BY startDate)
        ),
        touched AS (
            SELECT DISTINCT accountCode, _product FROM ranked WHERE {TOUCHED}
        ),
        slots AS (
            SELECT r._source_object, r._source_id,
                min(s._next_start) AS _next_start,
                arg_min(s._next_code, s._next_start) AS _next_code,
                min(r._slot) FILTER (WHERE r.code <> r._slot) AS _lost_to,
                arg_min(r._slot_agreement, r._slot) FILTER (WHERE r.code <> r._slot)
                    AS _lost_agreement,
                list(DISTINCT r._product ORDER BY r._product) AS _products,
                bool_or(t.accountCode IS NOT NULL) AS _group_touched
            FROM ranked r
            LEFT JOIN successors s USING (_source_object, _source_id, _product)
            LEFT JOIN touched t ON t.accountCode = r.accountCode AND t._product = r._product
            GROUP BY r._source_object, r._source_id
        )
        SELECT g.* EXCLUDE (endDate, {TOUCHED}),
            g.{TOUCHED} OR coalesce(sl._group_touched, false) AS {TOUCHED},
            CASE WHEN sl._next_start IS NOT NULL
                      AND (g.endDate IS NULL OR g.endDate > sl._next_start)
                 THEN sl._next_start ELSE g.endDate END AS endDate,
            CASE WHEN sl._next_start IS NOT NULL
                      AND (g.endDate IS NULL OR g.endDate > sl._next_start)
                 THEN sl._next_code END AS {SUPERSEDED_BY},
            CASE WHEN sl._lost_to IS NOT NULL THEN
                'starts when account plan ' || sl._lost_to || ' of the same account and product '
                || 'does; m3ter allows one active account plan per product'
                || CASE WHEN {own_agreement} = sl._lost_agreement
                        THEN '; both bill lines of agreement ' || sl._lost_agreement
                             || ': sync its lines at sync_level agreement (one plan and '
                             || 'account plan per agreement and product)'
                        ELSE '; two agreements of the account (' || sl._lost_agreement || ', '
                             || {own_agreement} || ') start the product on the '
                             || 'same day: end one, or sell both on one agreement' END
            END AS {REFUSED},
            sl._products AS {PRODUCTS}
        FROM {OBJECTS} g
        LEFT JOIN slots sl USING (_source_object, _source_id)
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ACCOUNT_PLANS} AS {query}")


def staged_columns(warehouse: Warehouse, entity: Entity, columns: str) -> str:
    """`SELECT columns` over the latest staged rows of `entity` (plain column names), or no
    rows of those columns when nothing is staged."""
    table = staged_table(entity)
    if not warehouse.partitions(table):
        names = (name.strip() for name in columns.split(","))
        return f"SELECT {', '.join(f'NULL::VARCHAR AS {n}' for n in names)} WHERE false"
    return f"SELECT {columns} FROM {table.sql}"


def _has_column(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return any(row[0] == name for row in con.execute(f"DESCRIBE {OBJECTS}").fetchall())
