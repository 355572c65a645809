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

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

from pipeline.staging.stage import staged_table
from pipeline.warehouse import Warehouse

OVERLAP = "_overlaps"  # the code of the account plan that keeps the slot, on a refused row
SUPERSEDED_BY = "_superseded_by"  # the code of the account plan that ends this one


def account_plan_rows(
    warehouse: Warehouse,
    con: duckdb.DuckDBPyConnection,
    partitions: Sequence[str] | None,
    template_products: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The latest staged account plans of `partitions` (all when None) and of the groups they
    touch, with `endDate` cut at the next start and same-start rivals marked in `_overlaps`.

    `template_products` maps plan template codes to m3ter product ids; a template it lacks
    stands for a product of its own.
    """
    products = pd.DataFrame(
        {"template": list(template_products), "product": list(template_products.values())},
        dtype="string",
    )
    con.register("_template_products", products)
    plans = staged_table("plans").sql if warehouse.partitions(staged_table("plans")) else None
    plan_join = f"LEFT JOIN {plans} p ON p.code = ap.planCode AND NOT p._tombstone" if plans else ""
    template = "p.planTemplateCode" if plans else "NULL"
    wanted = "WHERE _partition IN (SELECT unnest($partitions))" if partitions else ""
    where = (
        "WHERE g._partition IN (SELECT unnest($partitions)) OR EXISTS (SELECT 1 FROM touched t "
        "WHERE t.accountCode = g.accountCode AND t._product = g._product)"
        if partitions
        else ""
    )
    query = f"""
        WITH ap AS (SELECT * FROM {staged_table("account_plans").sql}),
        grouped AS (
            SELECT ap.*,
                CASE WHEN NOT ap._tombstone AND {template} IS NOT NULL
                     THEN coalesce(t.product, 'template:' || {template}) END AS _product
            FROM ap {plan_join}
            LEFT JOIN _template_products t ON t.template = {template}
        ),
        ranked AS (
            SELECT _source_object, _source_id, accountCode, _product, startDate, code, _partition,
                first_value(code) OVER (
                    PARTITION BY accountCode, _product, startDate ORDER BY code) AS _slot
            FROM grouped WHERE _product IS NOT NULL
        ),
        successors AS (
            SELECT _source_object, _source_id,
                lead(startDate) OVER w AS _next_start, lead(code) OVER w AS _next_code
            FROM ranked WHERE code = _slot
            WINDOW w AS (PARTITION BY accountCode, _product ORDER BY startDate)
        ),
        touched AS (
            SELECT DISTINCT accountCode, _product FROM ranked {wanted}
        )
        SELECT g.* EXCLUDE (_product, endDate),
            CASE WHEN s._next_start IS NOT NULL
                      AND (g.endDate IS NULL OR g.endDate > s._next_start)
                 THEN s._next_start ELSE g.endDate END AS endDate,
            CASE WHEN s._next_start IS NOT NULL
                      AND (g.endDate IS NULL OR g.endDate > s._next_start)
                 THEN s._next_code END AS {SUPERSEDED_BY},
            CASE WHEN r.code <> r._slot THEN r._slot END AS {OVERLAP}
        FROM grouped g
        LEFT JOIN ranked r USING (_source_object, _source_id)
        LEFT JOIN successors s USING (_source_object, _source_id)
        {where}
        ORDER BY g._source_object, g._source_id
    """
    cursor = con.execute(query, {"partitions": list(partitions)} if partitions else {})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
