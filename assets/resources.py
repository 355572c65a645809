"""Dagster resources: thin configuration wrappers that build the pipeline's clients.

Credentials are configured with `dg.EnvVar`, so their values never appear in run config, the UI
or metadata; `settings()` hands them to the pipeline only when a run needs them.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from pydantic import PrivateAttr

from pipeline.extract.run import ExtractSettings
from pipeline.load.current import Current
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import DEFAULT_BASE_URL, M3terSettings
from pipeline.m3ter.settings import SECRET_FIELDS as M3TER_SECRETS
from pipeline.mapping.compiler import CompiledSet, compile_mappings
from pipeline.mapping.source import SHIPPED_MAPPINGS, MappingSource
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import DEFAULT_API_VERSION, SalesforceSettings
from pipeline.salesforce.settings import SECRET_FIELDS as SALESFORCE_SECRETS
from pipeline.staging.stage import StageSettings
from pipeline.warehouse import Warehouse


class _Redacted:
    """A resource whose credentials print as redacted: Dagster and pydantic show a resource's
    fields in reprs, errors and logs."""

    _secrets: ClassVar[frozenset[str]] = frozenset()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():  # type: ignore[misc]
            yield name, "<redacted>" if name in self._secrets and value else value


class SalesforceResource(_Redacted, dg.ConfigurableResource):
    """A Salesforce org: login flow, credentials, trust and timeouts."""

    _secrets: ClassVar[frozenset[str]] = SALESFORCE_SECRETS

    auth: str = "client_credentials"  # client_credentials | password | jwt | session
    login_url: str = "https://login.salesforce.com"
    instance_url: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    private_key_file: str | None = None
    session_id: str | None = None
    ca_file: str | None = None
    api_version: str = DEFAULT_API_VERSION
    connect_timeout: float = 10.0
    read_timeout: float = 120.0

    def settings(self) -> SalesforceSettings:
        return SalesforceSettings(
            **{f.name: getattr(self, f.name) for f in fields(SalesforceSettings)}
        )

    @classmethod
    def from_settings(cls, settings: SalesforceSettings) -> "SalesforceResource":
        return cls(**{f.name: getattr(settings, f.name) for f in fields(SalesforceSettings)})

    _client: SalesforceClient | None = PrivateAttr(default=None)

    def client(self) -> SalesforceClient:
        """One client per run: its login and describes serve every asset of the run."""
        if self._client is None:
            self._client = SalesforceClient(self.settings())
        return self._client


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse's Parquet files and its catalog live."""

    root: str = ".m3sync"

    def warehouse(self) -> Warehouse:
        return Warehouse(Path(self.root))


class ExtractResource(dg.ConfigurableResource):
    """How windows are read: overlap, REST/bulk threshold, API quota floor, bulk page size, the
    rows a query may hold before its window is asked in halves."""

    overlap_minutes: float = 10.0
    rest_threshold: int = 10_000
    quota_floor: int = 1_000
    bulk_page_size: int = 100_000
    memory_mb: int = 128
    max_window_rows: int = ExtractSettings.max_window_rows

    def settings(self) -> ExtractSettings:
        return ExtractSettings(
            overlap=dt.timedelta(minutes=self.overlap_minutes),
            rest_threshold=self.rest_threshold,
            quota_floor=self.quota_floor,
            bulk_page_size=self.bulk_page_size,
            memory_mb=self.memory_mb,
            max_window_rows=self.max_window_rows,
        )


class MappingsResource(dg.ConfigurableResource):
    """Where the mappings come from: YAML files, or the org's `*Mapping__mdt` records."""

    source: str = "files"  # files | org
    directory: str = str(SHIPPED_MAPPINGS)
    # Write sync statuses back to Salesforce (`mappings/writeback.yaml`); M3SYNC_WRITEBACK=1.
    writeback: bool = False

    _compiled: CompiledSet | None = PrivateAttr(default=None)

    def mapping_source(self) -> MappingSource:
        return MappingSource(self.source, Path(self.directory))

    def compiled(self, client: SalesforceClient) -> CompiledSet:
        """The mappings compiled against the org's describe, once per run."""
        if self._compiled is None:
            mappings = self.mapping_source().read(lambda: client)
            self._compiled = compile_mappings(mappings, client.describe, writeback=self.writeback)
        return self._compiled


class StageResource(dg.ConfigurableResource):
    """How staging runs, and the share of rejected rows that stops the load."""

    max_reject_share: float = 0.10
    # Rejects a run may always have, whatever their share: two bad accounts among the twelve a
    # quiet year touched should be journaled, not stop the load.
    reject_allowance: int = 10
    memory_mb: int = 2048

    def settings(self) -> StageSettings:
        return StageSettings(memory_mb=self.memory_mb)


class M3terResource(_Redacted, dg.ConfigurableResource):
    """An m3ter organization: API URL, org id, credentials, trust, pace."""

    _secrets: ClassVar[frozenset[str]] = M3TER_SECRETS

    base_url: str = DEFAULT_BASE_URL
    org_id: str = ""
    access_key_id: str = ""
    api_secret: str = ""
    ca_file: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    rate_limit: float = 20.0
    ip_limit: int = 18_000
    ip_window: float = 300.0
    concurrency: int = 4
    # The `coverage` check's floor: the share of priced Salesforce lines m3ter must bill.
    min_coverage: float = 0.75

    def settings(self) -> M3terSettings:
        return M3terSettings(**{f.name: getattr(self, f.name) for f in fields(M3terSettings)})

    @classmethod
    def from_settings(cls, settings: M3terSettings) -> "M3terResource":
        return cls(**{f.name: getattr(settings, f.name) for f in fields(M3terSettings)})

    _client: M3terClient | None = PrivateAttr(default=None)
    _current: dict[bool, Current] = PrivateAttr(default_factory=dict)

    def client(self) -> M3terClient:
        """One client per run: its token, pacing and counters serve every load of the run."""
        if self._client is None:
            self._client = M3terClient(self.settings())
        return self._client

    def current(self, dry_run: bool) -> Current:
        """m3ter's objects, listed once per run: the loads of a run share them, and each load's
        writes (or, in a dry run, its planned creations) serve the loads after it."""
        if dry_run not in self._current:
            self._current[dry_run] = Current(self.client())
        return self._current[dry_run]
