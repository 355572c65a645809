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
from pipeline.staging.stage import staged_table
from pipeline.warehouse import Warehouse

SUPERSEDED_BY = "_superseded_by"  # the code of the account plan that ends this one


ACCOUNT_PLANS = "_account_plans"  # the temporary table `superseded()` fills


def account_plan_rows(
    warehouse: Warehouse, con: duckdb.DuckDBPyConnection, template_products: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The account plans of `_objects` (`groups.objects`) the load touches, and those of the
    account and product groups they touch, as `superseded()` leaves them."""
    superseded(warehouse, con, template_products)
    cursor = con.execute(
        f"SELECT * EXCLUDE ({TOUCHED}, _product) FROM {ACCOUNT_PLANS} WHERE {TOUCHED} "
        "ORDER BY _source_object, _source_id"
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def superseded(
    warehouse: Warehouse, con: duckdb.DuckDBPyConnection, template_products: Mapping[str, str]
) -> None:
    """Fill `_account_plans` with every account plan of `_objects`, `endDate` cut at the next
    start and same-start rivals refused, `_touched` when the load touches it or its account and
    product group, and `_product` the m3ter product it bills.

    `template_products` maps plan template codes to m3ter product ids; a template it lacks
    stands for a product of its own.
    """
    products = pd.DataFrame(
        {"template": list(template_products), "product": list(template_products.values())},
        dtype="string",
    )
    con.register("_template_products", products)
    plans_table = staged_table("plans")
    plans = (
        f"SELECT code, any_value(planTemplateCode) AS planTemplateCode FROM {plans_table.sql} "
        "WHERE NOT _tombstone GROUP BY code"
        if warehouse.partitions(plans_table)
        else None
    )
    plan_join = f"LEFT JOIN ({plans}) p ON p.code = ap.planCode" if plans else ""
    template = "p.planTemplateCode" if plans else "NULL"
    agreement = f"ap.{AGREEMENT}" if _has_column(con, AGREEMENT) else "NULL::VARCHAR"
    query = f"""
        WITH grouped AS (
            SELECT ap.*, {agreement} AS _agreement_of,
                CASE WHEN NOT ap._tombstone AND {template} IS NOT NULL
                     THEN coalesce(t.product, 'template:' || {template}) END AS _product
            FROM {OBJECTS} ap {plan_join}
            LEFT JOIN _template_products t ON t.template = {template}
        ),
        ranked AS (
            SELECT _source_object, _source_id, accountCode, _product, startDate, code,
                _agreement_of, {TOUCHED},
                first_value(code) OVER slot AS _slot,
                first_value(_agreement_of) OVER slot AS _slot_agreement
            FROM grouped WHERE _product IS NOT NULL
            WINDOW slot AS (PARTITION BY accountCode, _product, startDate ORDER BY code)
        ),
        successors AS (
            SELECT _source_object, _source_id,
                lead(startDate) OVER w AS _next_start, lead(code) OVER w AS _next_code
            FROM ranked WHERE code = _slot
            WINDOW w AS (PARTITION BY accountCode, _product ORDER BY startDate)
        ),
        touched AS (
            SELECT DISTINCT accountCode, _product FROM ranked WHERE {TOUCHED}
        )
        SELECT g.* EXCLUDE (_agreement_of, endDate, {TOUCHED}),
            g.{TOUCHED} OR EXISTS (SELECT 1 FROM touched t
                WHERE t.accountCode = g.accountCode AND t._product = g._product) AS {TOUCHED},
            CASE WHEN s._next_start IS NOT NULL
                      AND (g.endDate IS NULL OR g.endDate > s._next_start)
                 THEN s._next_start ELSE g.endDate END AS endDate,
            CASE WHEN s._next_start IS NOT NULL
                      AND (g.endDate IS NULL OR g.endDate > s._next_start)
                 THEN s._next_code END AS {SUPERSEDED_BY},
            CASE WHEN r.code <> r._slot THEN
                'starts when account plan ' || r._slot || ' of the same account and product '
                || 'does; m3ter allows one active account plan per product'
                || CASE WHEN r._agreement_of = r._slot_agreement
                        THEN '; both bill lines of agreement ' || r._agreement_of
                             || ': sync its lines at sync_level agreement (one plan and '
                             || 'account plan per agreement and product)'
                        ELSE '; two agreements of the account (' || r._slot_agreement || ', '
                             || r._agreement_of || ') start the product on the same day: end '
                             || 'one, or sell both on one agreement' END
            END AS {REFUSED}
        FROM grouped g
        LEFT JOIN ranked r USING (_source_object, _source_id)
        LEFT JOIN successors s USING (_source_object, _source_id)
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ACCOUNT_PLANS} AS {query}")


def _has_column(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return any(row[0] == name for row in con.execute(f"DESCRIBE {OBJECTS}").fetchall())
