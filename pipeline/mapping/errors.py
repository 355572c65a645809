"""Errors of mapping compilation, each naming where in which mapping file the problem is."""

from __future__ import annotations

from collections.abc import Sequence


class MappingError(ValueError):
    """Base of every mapping problem: a mapping that cannot be compiled as written."""


class SegmentError(MappingError):
    """The `segments` text of one mapping has problems; every problem is one line of the message.

    Each line names the file, the mapping and the `segments` key, so a line can be read (or
    grepped) on its own; all problems of the mapping are reported at once rather than one per run.
    """

    def __init__(self, file: str, mapping: str, problems: Sequence[str]) -> None:
        self.file = file
        self.mapping = mapping
        self.problems = tuple(problems)
        super().__init__(
            "\n".join(f"{file}: mapping {mapping!r}: segments: {p}" for p in self.problems)
        )
