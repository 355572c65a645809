"""Computed text: a mapping value built from fields and literals (`{OrderId}_{Product2.Code__c}`).

A `fields` value that holds braces is a template: each `{path}` takes a Salesforce field or
relationship path's value, the text between is kept as written. A computed `code` is what makes
many source rows one m3ter object (every row whose code comes out the same), as the connector's
agreement sync level does for the lines of one agreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_PART = re.compile(r"\{([^{}]*)\}")
_SF_PATH: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")


class TemplateError(ValueError):
    """Text that looks like a template but is not one."""


@dataclass(frozen=True)
class Template:
    """Literal text and field paths, in order: `parts[i]` is a path when `is_path[i]`."""

    parts: tuple[str, ...]
    is_path: tuple[bool, ...]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p, path in zip(self.parts, self.is_path, strict=True) if path)


def is_template(value: object) -> bool:
    """Whether a `fields` value is computed text rather than one field's path."""
    return isinstance(value, str) and ("{" in value or "}" in value)


def parse_template(text: str) -> Template:
    """The template `text` holds; raises TemplateError naming what is wrong."""
    parts: list[str] = []
    is_path: list[bool] = []
    position = 0
    for match in _PART.finditer(text):
        literal = text[position : match.start()]
        if "{" in literal or "}" in literal:
            raise TemplateError(f"{text!r} has an unmatched brace")
        if literal:
            parts.append(literal)
            is_path.append(False)
        path = match.group(1).strip()
        if not _SF_PATH.fullmatch(path):
            raise TemplateError(
                f"{{{match.group(1)}}} in {text!r} is not a Salesforce field or relationship "
                "path (Field__c, Order.Account.Name)"
            )
        parts.append(path)
        is_path.append(True)
        position = match.end()
    rest = text[position:]
    if "{" in rest or "}" in rest:
        raise TemplateError(f"{text!r} has an unmatched brace")
    if rest:
        parts.append(rest)
        is_path.append(False)
    if not any(is_path):
        raise TemplateError(f"{text!r} names no field: write one as {{Field__c}}")
    return Template(tuple(parts), tuple(is_path))
