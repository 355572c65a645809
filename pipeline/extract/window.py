"""Daily partitions on SystemModstamp and the extract windows that cover them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.extract.plan import FieldPlan

DAY = dt.timedelta(days=1)
WHOLE = "_all"  # partition key of objects read whole


@dataclass(frozen=True)
class Window:
    """`[start, end)` in UTC, covering one or more whole daily partitions."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def for_partitions(cls, keys: Sequence[str]) -> Window:
        days = sorted(dt.date.fromisoformat(k) for k in keys)
        if not days:
            raise ValueError("no partitions given")
        if len(set(days)) != len(days) or (days[-1] - days[0]).days != len(days) - 1:
            raise ValueError(f"partitions must be consecutive days: {list(keys)}")
        start = dt.datetime.combine(days[0], dt.time(), dt.UTC)
        return cls(start, start + DAY * len(days))

    @property
    def partitions(self) -> list[str]:
        days = (self.end - self.start) // DAY
        return [(self.start + DAY * i).date().isoformat() for i in range(days)]


def soql_datetime(value: dt.datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def select_clause(plan: FieldPlan) -> str:
    return f"SELECT {', '.join(c.path for c in plan.columns)} FROM {plan.sobject}"


def window_query(plan: FieldPlan, window: Window, overlap: dt.timedelta) -> str:
    """Rows modified in the window (opened `overlap` early), or whose parents were.

    A parent's change to a field the extract reads through (say `Order.Account.Region__c`) makes
    the child row new too, so each parent's stamp widens the filter.
    """
    low, high = soql_datetime(window.start - overlap), soql_datetime(window.end)
    conditions = " OR ".join(f"({s} >= {low} AND {s} < {high})" for s in plan.stamps)
    return f"{select_clause(plan)} WHERE {conditions}"


def count_query(plan: FieldPlan, window: Window | None, overlap: dt.timedelta) -> str:
    query = window_query(plan, window, overlap) if window else select_clause(plan)
    return "SELECT COUNT() " + query[query.index(" FROM ") + 1 :]
