"""Daily partitions on SystemModstamp and the extract windows that cover them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.extract.plan import STAMP, FieldPlan

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


# Ids compare as their 15-character case-sensitive form, base 62 in ASCII order.
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LENGTH = 15
SECOND = dt.timedelta(seconds=1)


def _id_number(text: str) -> int:
    number = 0
    for char in text.ljust(_ID_LENGTH, "0")[:_ID_LENGTH]:
        number = number * 62 + _BASE62.index(char)
    return number


def _id_text(number: int) -> str:
    chars = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "".join(reversed(chars))


@dataclass(frozen=True)
class Slice:
    """One query's share of a window: stamps in `[low, high)`, and Ids in `[ids)` if set.

    A query that times out is asked again as two halves: halves of its stamp range down to one
    second (SOQL's datetime literals have no finer grain), then halves of its Id range, from
    the object's first and last Id down to single Ids. [assume] Salesforce compares Ids in
    filters by their 15-character case-sensitive form, in base-62 order (`0-9A-Za-z`), as
    PK chunking's Id-range boundaries rely on; it documents the boundaries, not the order.

    Every record of the slice is in one of its halves; one whose own and parent stamps fall in
    different halves of the stamp range is in both, which the extract allows for
    (`_one_row_per_record` in `extract/run.py`).
    """

    low: dt.datetime
    high: dt.datetime
    ids: tuple[int, int] | None = None  # [first, last) as base-62 numbers of 15-character Ids

    @classmethod
    def of(cls, window: Window, overlap: dt.timedelta) -> Slice:
        return cls(window.start - overlap, window.end)

    def halves(
        self, ids: Callable[[tuple[str, str] | None], tuple[str, str] | None]
    ) -> tuple[Slice, ...] | None:
        """This slice's halves (one, where the other holds no Id), or None when it holds one
        Id of one second. `ids(bounds)` gives the first and last Id the object has in
        `[bounds)` (anywhere, for None); it is asked only when the Ids must be split, and
        narrows each half to the Ids it really holds, so Ids far apart (a few made long after
        the rest) cost a query or two, not a halving per power of two between them."""
        if self.high - self.low > SECOND:
            middle = self.low + ((self.high - self.low) // 2 // SECOND) * SECOND
            return Slice(self.low, middle, self.ids), Slice(middle, self.high, self.ids)
        if self.ids is None:
            bounds = ids(None)
            if bounds is None:
                return None
            first, last = _id_number(bounds[0]), _id_number(bounds[1]) + 1
        else:
            first, last = self.ids
        if last - first <= 1:
            return None
        middle = (first + last) // 2
        halves = []
        for low, high in ((first, middle), (middle, last)):
            held = ids((_id_text(low), _id_text(high)))
            if held is not None:
                ends = (_id_number(held[0]), _id_number(held[1]) + 1)
                halves.append(Slice(self.low, self.high, ends))
        return tuple(halves)

    def conditions(
        self,
        stamps: Sequence[str],
        writer: str | None = None,
        written: Sequence[str] = (),
        since: dt.datetime | None = None,
    ) -> str:
        """The slice's filter. A stamp in `written` at or after `since` counts only when its
        record's last writer is not `writer`: m3sync's write-back moves it, and nothing the
        mappings read. Before `since` every change counts (the integration user may have made
        records before m3sync wrote to them)."""
        low, high = soql_datetime(self.low), soql_datetime(self.high)
        skip = writer is not None and since is not None and self.high > since

        def term(stamp: str) -> str:
            within = f"{stamp} >= {low} AND {stamp} < {high}"
            if not skip or stamp not in written:
                return f"({within})"
            by = f"{stamp.removesuffix(STAMP)}LastModifiedById != '{writer}'"
            if since is not None and self.low < since:
                by = f"({by} OR {stamp} < {soql_datetime(since)})"
            return f"({within} AND {by})"

        where = " OR ".join(term(s) for s in stamps)
        if self.ids is None:
            return where
        first, last = (_id_text(n) for n in self.ids)
        return f"Id >= '{first}' AND Id < '{last}' AND ({where})"


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
    return slice_query(plan, Slice.of(window, overlap))


def slice_query(plan: FieldPlan, part: Slice) -> str:
    where = part.conditions(plan.stamps, plan.writer, plan.written, plan.written_since)
    return f"{select_clause(plan)} WHERE {where}"
