"""How m3ter answers what it was sent: the one place that knows its echo.

An m3ter answer carries every field of its response model, not only those a client sent: unset
text as `""`, unset flags as `false` or their documented default, `customFields: {}`, band and
other ids it assigns; it writes integral numbers without a fraction (`1000` for `1000.0`) and
date-times with milliseconds. A comparison of what m3sync would send with what m3ter holds must
see through all of that, or every run rewrites every object (the SDK's response models and the
Terraform providers' workarounds are the evidence; nothing here depends on one server's wording).

The rule, for one field m3sync decides:

- sent nothing (null): m3ter holding a blank (null, `""`, `[]`, `{}`, `false`, `0`) or the
  field's documented default is the same;
- sent a value: the same value, numbers compared as numbers, date-times as instants, objects
  member by member over the members sent (members m3ter adds, such as a band's `id`, are its
  own), lists element by element.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any, Final

# Documented defaults m3ter answers for a field left out (SDK docstrings and API reference),
# by field name: the same name means the same default on every entity that has it.
DOCUMENTED_DEFAULTS: Final[Mapping[str, object]] = {
    "type": "DEBIT",  # Pricing
    "childBillingMode": "PARENT_BREAKDOWN",  # AccountPlan, Commitment
    "cumulative": False,
    "tiersSpanPlan": False,
    "evaluateNullAggregations": False,
    "applyContractPeriodLimits": False,
}
_DATETIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$"
)


def is_blank(value: Any) -> bool:
    """A value m3ter may answer for a field that holds nothing."""
    if value is None or value is False:
        return True
    if isinstance(value, str | list | dict):
        return not value
    return isinstance(value, int | float) and value == 0


def unset(name: str, value: Any) -> bool:
    """Whether `value`, answered for field `name`, means the field was never given."""
    return is_blank(value) or (name in DOCUMENTED_DEFAULTS and value == DOCUMENTED_DEFAULTS[name])


def same(name: str, sent: Any, answered: Any) -> bool:
    """Whether m3ter holding `answered` for field `name` is what sending `sent` gives."""
    if sent is None or (isinstance(sent, str | list | dict) and not sent):
        return unset(name, answered)
    if isinstance(sent, bool) or isinstance(answered, bool):
        return sent is answered or (sent is False and unset(name, answered))
    if isinstance(sent, int | float):
        return isinstance(answered, int | float) and math.isclose(
            float(sent), float(answered), rel_tol=1e-12, abs_tol=0.0
        )
    if isinstance(sent, str):
        return isinstance(answered, str) and _text(sent) == _text(answered)
    if isinstance(sent, dict):
        if not isinstance(answered, dict):
            return False
        return all(same(key, value, answered.get(key)) for key, value in sent.items())
    if isinstance(sent, list):
        return (
            isinstance(answered, list)
            and len(sent) == len(answered)
            and all(same(name, a, b) for a, b in zip(sent, answered, strict=True))
        )
    return bool(sent == answered)


def same_map(sent: Mapping[str, Any] | None, answered: Any) -> bool:
    """Whether a map m3sync decides whole (`customFields`, a pricing's `segment`) is the same:
    every key sent holds its value, and m3ter holds no other key with a value."""
    sent = sent or {}
    held = answered if isinstance(answered, dict) else {}
    if any(not same(key, value, held.get(key)) for key, value in sent.items()):
        return False
    return all(is_blank(value) for key, value in held.items() if key not in sent)


def _text(value: str) -> str:
    """Date-times as UTC instants to the millisecond (`...T00:00:00Z` is `...T00:00:00.000Z`)."""
    if not _DATETIME.match(value):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return parsed.astimezone(dt.UTC).isoformat(timespec="milliseconds")
