"""Settings objects print with their secrets hidden, so a log line or traceback never leaks one."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields
from typing import Any


def redacted_repr(settings: Any, secrets: Collection[str]) -> str:
    """`Name(field=value, ...)` of a dataclass, with every set secret field shown as redacted."""
    shown = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name in secrets and value:
            shown.append(f"{f.name}='<redacted>'")
        else:
            shown.append(f"{f.name}={value!r}")
    return f"{type(settings).__name__}({', '.join(shown)})"
