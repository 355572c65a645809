"""The errors the org sandbox answers, in Salesforce's JSON shape."""

from __future__ import annotations

import json


class ApiError(Exception):
    """An error answered as Salesforce does: an HTTP status and a JSON array of one error
    (with the fields it is about, as a write's errors name them)."""

    def __init__(
        self, status: int, error_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> str:
        error: dict[str, object] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            error["fields"] = self.fields
        return json.dumps([error])
