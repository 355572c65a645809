"""The DuckDB warehouse: immutable Parquet files per partition plus a catalog of views."""

from pipeline.warehouse.catalog import CatalogError
from pipeline.warehouse.tables import SCHEMAS, UNPARTITIONED, Table
from pipeline.warehouse.warehouse import DEFAULT_ROOT, Warehouse

__all__ = ["DEFAULT_ROOT", "SCHEMAS", "UNPARTITIONED", "CatalogError", "Table", "Warehouse"]
