"""SOQL errors as Salesforce reports them: an error code and a message pointing into the query."""

from __future__ import annotations

# How much of a long row the echo keeps around the caret; real messages show a window of roughly
# this size, cut at token boundaries, rather than the whole query.
_ECHO_WIDTH = 80
_ECHO_BEFORE = 30
_ECHO_AFTER = 40
_BOUNDARY = " \t,()"


class SoqlError(Exception):
    """A query the org refuses; the API layer answers it as HTTP 400 `[{message, errorCode}]`."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    def __str__(self) -> str:
        return self.message


def pointed_message(text: str, line: int, column: int, detail: str) -> str:
    """`detail` behind Salesforce's prefix: the row echoed, a caret, `ERROR at Row:R:Column:C`."""
    rows = text.split("\n")
    row = rows[line - 1] if 0 < line <= len(rows) else ""
    start, end = 0, len(row)
    if len(row) > _ECHO_WIDTH:
        start = max(0, column - 1 - _ECHO_BEFORE)
        while start > 0 and row[start - 1] not in _BOUNDARY:
            start -= 1
        end = min(len(row), column - 1 + _ECHO_AFTER)
        while end < len(row) and row[end] not in _BOUNDARY:
            end += 1
    caret = " " * (column - 1 - start) + "^"
    return f"\n{row[start:end]}\n{caret}\nERROR at Row:{line}:Column:{column}\n{detail}"


def pointed_error(error_code: str, text: str, line: int, column: int, detail: str) -> SoqlError:
    return SoqlError(error_code, pointed_message(text, line, column, detail))
