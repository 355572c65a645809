"""The one error type the m3ter sandbox raises, answered as m3ter's JSON body with a message."""

from __future__ import annotations


class ApiError(Exception):
    """An HTTP error answer: `{"message": ...}` with the given status.

    The message names the field and the rule it breaks, so a rejected record in the pipeline's
    journal says what to fix. (m3ter documents "a message" but no schema: [assume] the body is
    exactly `{"message": "<text>"}`.)
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        return {"message": self.message}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(entity_name: str, entity_id: str) -> ApiError:
    return ApiError(404, f"{entity_name} not found: no {entity_name} with id '{entity_id}'")
