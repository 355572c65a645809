"""What the m3ter client raises, sorted by what the loader should do next.

`M3terRejected` (and `M3terStaleVersion`) concern one record: journal m3ter's message, carry on
with the others, try again next run. `M3terUnavailable` and `M3terAuthError` concern the whole
org: stop the run. Messages carry m3ter's own text and the request's method and path; the client
redacts its api secret and bearer token from them before they are built.
"""

from __future__ import annotations

from typing import Any


class M3terError(Exception):
    """Base of every error the m3ter client raises.

    `status` is the HTTP status of the last answer (None if no answer came back) and `message`
    m3ter's `{"message": ...}` text, or a description of the failure when there was none.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method and path else ""
        super().__init__(f"{where}{status if status is not None else 'no answer'}: {message}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class M3terRejected(M3terError):
    """m3ter refused the request itself (400, 404, 409, other 4xx but 401/403/429): sending it
    again unchanged cannot succeed."""


class M3terStaleVersion(M3terRejected):
    """A PUT was refused and the object, read back, is at another version than the one sent:
    apply the change to `current`, the object as it is now."""

    def __init__(
        self,
        message: str,
        *,
        current: dict[str, Any],
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, status=status, method=method, path=path)
        self.current = current


class M3terAuthError(M3terError):
    """The service user's credentials were refused, or a fresh token was refused too (401/403):
    every further call would fail the same way."""


class M3terForbidden(M3terAuthError):
    """A fresh token was refused for one kind of call: the service user lacks `permission`
    (m3ter's action on an entity, such as `config:create` on `Commitment`), or the organization
    refuses it everything (`permission` None)."""

    def __init__(
        self,
        message: str,
        *,
        permission: str | None,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, status=status, method=method, path=path)
        self.permission = permission


class M3terUnavailable(M3terError):
    """m3ter kept failing (429, 5xx, dropped connection, timeout) until the retries ran out."""
