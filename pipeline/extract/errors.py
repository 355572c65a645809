"""Errors of the extract stage, each with a message an operator can act on."""

from __future__ import annotations


class ExtractError(Exception):
    """Base of every extract failure."""


class FieldNotFound(ExtractError):
    """A field or relationship path the extract needs does not exist for the integration user."""

    def __init__(self, sobject: str, path: str, reason: str) -> None:
        super().__init__(
            f"{sobject}: cannot select {path!r}: {reason} (fields hidden from the integration "
            "user by field-level security count as missing)"
        )
        self.sobject = sobject
        self.path = path
        self.reason = reason
