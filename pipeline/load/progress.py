"""How a load reports its progress: one message format, written by the load asset and read
back by the command's progress display."""

from __future__ import annotations

import re

_WRITES = re.compile(r"^([\d,]+) of ([\d,]+) writes$")


def writes_message(done: int, total: int) -> str:
    return f"{done:,} of {total:,} writes"


def read_writes(message: str) -> tuple[int, int] | None:
    """(done, total) from a `writes_message`, else None."""
    found = _WRITES.match(message)
    if found is None:
        return None
    done, total = (int(group.replace(",", "")) for group in found.groups())
    return done, total
