"""Checking a mapping set against the org: everything the compiler would refuse, all at once,
each problem naming file, mapping, key and field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.mapping.compiler import MappingCompileError, compile_mappings
from pipeline.mapping.spec import MappingSet

Describe = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class Validation:
    problems: list[str]  # what the compiler refuses; empty when the set compiles
    warnings: list[str]  # what compiles but deserves a look (formula fields, ignored segments)


def validate(mappings: MappingSet, describe: Describe, *, writeback: bool = False) -> Validation:
    """The set's active mappings (and write-back rows, when runs write back) against the org:
    every problem and warning, a line each."""
    try:
        compiled = compile_mappings(mappings, describe, writeback=writeback)
    except MappingCompileError as exc:
        return Validation(list(exc.problems), [])
    return Validation([], list(compiled.warnings))
