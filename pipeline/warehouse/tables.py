"""What a warehouse table is: where it lives, and how its view picks one version per key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.warehouse.sql import identifier

SCHEMAS: tuple[str, ...] = ("raw", "staged", "load")
UNPARTITIONED = "_all"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PARTITION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,199}")


def is_identifier(value: object) -> bool:
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def check_identifier(kind: str, value: object) -> str:
    """Refuse anything but a lower-case SQL identifier: it becomes a directory and a view name."""
    if not is_identifier(value):
        raise ValueError(f"{kind} must be a lower-case identifier ([a-z_][a-z0-9_]*): {value!r}")
    return value


def check_partition(key: object) -> str:
    """Refuse partition keys that could escape the table directory or hide from the view glob.

    A key becomes `<key>.parquet`; a leading dot would look like a temporary file, and '/', '..'
    or glob characters would reach outside the table's own files.
    """
    if not isinstance(key, str) or not _PARTITION.fullmatch(key) or ".." in key:
        raise ValueError(
            f"partition key must be letters, digits and _ . = + - "
            f"(not starting with '.', no '..'): {key!r}"
        )
    return key


def _check_columns(kind: str, columns: tuple[str, ...]) -> None:
    for column in columns:
        if not isinstance(column, str) or not column or "\x00" in column:
            raise ValueError(f"{kind} column names must be non-empty strings: {column!r}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"{kind} names a column twice: {columns!r}")


@dataclass(frozen=True)
class Table:
    """A table of the warehouse; its view shows the union of its partition files.

    With `latest_by`, the view keeps one row per key: the one whose `order_by` columns are
    greatest (nulls count as oldest). Column names are quoted, so extracted names such as
    `Order.Account.Name` are fine.
    """

    schema: str
    name: str
    latest_by: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_identifier("schema", self.schema)
        if self.schema not in SCHEMAS:
            raise ValueError(f"schema must be one of {', '.join(SCHEMAS)}: {self.schema!r}")
        check_identifier("table name", self.name)
        object.__setattr__(self, "latest_by", tuple(self.latest_by))
        object.__setattr__(self, "order_by", tuple(self.order_by))
        _check_columns("latest_by", self.latest_by)
        _check_columns("order_by", self.order_by)
        if bool(self.latest_by) != bool(self.order_by):
            raise ValueError(
                f"{self.qualified}: latest_by and order_by go together "
                "(the latest version per key needs an order, and an order needs a key)"
            )

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql(self) -> str:
        """The view's name quoted for SQL."""
        return f"{identifier(self.schema)}.{identifier(self.name)}"

    def spec(self) -> dict[str, Any]:
        """What `refresh_catalog` needs to rebuild this table's view from the data directory."""
        return {
            "schema": self.schema,
            "name": self.name,
            "latest_by": list(self.latest_by),
            "order_by": list(self.order_by),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Table:
        return cls(
            schema=spec["schema"],
            name=spec["name"],
            latest_by=tuple(spec.get("latest_by", ())),
            order_by=tuple(spec.get("order_by", ())),
        )
