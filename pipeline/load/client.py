"""What the load stage needs of an m3ter client (`pipeline.m3ter.client.M3terClient`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from pipeline.m3ter.client import Find, M3terSpend


class Client(Protocol):
    def list(self, collection: str, **filters: Any) -> Iterator[dict[str, Any]]: ...

    def pages(self, *segments: str, **filters: Any) -> Iterator[dict[str, Any]]: ...

    def read(self, *segments: str) -> Any: ...

    def get(self, collection: str, object_id: str) -> dict[str, Any]: ...

    def create(
        self, collection: str, body: dict[str, Any], find: Find | None = None
    ) -> dict[str, Any]: ...

    def update(self, collection: str, object_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, collection: str, object_id: str) -> dict[str, Any]: ...

    def spent(self) -> M3terSpend: ...
