"""Pricings of one plan never overlap for one aggregation and segment.

m3ter prices a plan's aggregation and segment once at a time (overlapping pricings are refused).
At agreement level every line becomes a pricing on its agreement's plan, so two lines that sell
the same usage at once (the product sold twice, at two prices) would make two such pricings.
Which price bills is a question for the deal, not for m3sync: both are refused with a reason
that names the lines, in one statement over every staged pricing, so that the load order
cannot change the result.
"""

from __future__ import annotations

from typing import Any

import duckdb

from pipeline.load.groups import OBJECTS, REFUSED, TOUCHED


def pricing_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The pricings of `_objects` (`groups.objects`) the load touches, and those whose windows
    overlap theirs, each overlapping one with its reason in `_refused`."""
    far = "'9999-12-31T00:00:00Z'"
    query = f"""
        WITH live AS (SELECT * FROM {OBJECTS} WHERE NOT _tombstone),
        clashes AS (
            SELECT a._source_object, a._source_id,
                list(b._source_id ORDER BY b._source_id) AS _rivals,
                bool_or(b.{TOUCHED}) AS _rival_touched
            FROM live a JOIN live b
              ON a._source_id <> b._source_id
             AND a.planCode IS NOT DISTINCT FROM b.planCode
             AND a.planTemplateCode IS NOT DISTINCT FROM b.planTemplateCode
             AND a.aggregationCode IS NOT DISTINCT FROM b.aggregationCode
             AND a.compoundAggregationCode IS NOT DISTINCT FROM b.compoundAggregationCode
             AND a.segment IS NOT DISTINCT FROM b.segment
             AND a.startDate < coalesce(b.endDate, {far})
             AND b.startDate < coalesce(a.endDate, {far})
            GROUP BY a._source_object, a._source_id
        )
        SELECT o.* EXCLUDE ({TOUCHED}),
            CASE WHEN c._rivals IS NOT NULL THEN
                'prices ' || coalesce(o.aggregationCode, o.compoundAggregationCode)
                || coalesce(' segment ' || o.segment, '') || ' on plan '
                || coalesce(o.planCode, o.planTemplateCode) || ' over dates that '
                || o._source_object || ' ' || array_to_string(c._rivals, ', ')
                || ' price too; m3ter prices one at a time: sell the usage once per agreement, '
                || 'or give the lines dates that do not overlap'
            END AS {REFUSED}
        FROM {OBJECTS} o LEFT JOIN clashes c USING (_source_object, _source_id)
        WHERE o.{TOUCHED} OR coalesce(c._rival_touched, false)
        ORDER BY o._source_object, o._source_id
    """
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
