"""Checking a mapping set against the org: everything the compiler would refuse, all at once,
each problem naming file, mapping, key and field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.mapping.compiler import MappingCompileError, compile_mappings
from pipeline.mapping.spec import MappingSet

Describe = Callable[[str], dict[str, Any]]


def reference_problems(mappings: MappingSet, describe: Describe) -> list[str]:
    """One line per problem of the set's active mappings; empty when the set compiles."""
    try:
        compile_mappings(mappings, describe)
    except MappingCompileError as exc:
        return list(exc.problems)
    return []
