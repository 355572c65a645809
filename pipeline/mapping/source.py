"""Where a run's mappings come from: the YAML files, or the org's `*Mapping__mdt` records.

The code location reads them as it loads, to derive its assets from the objects they name
(`pipeline/extract/objects.py`); each run reads them again and compiles them against describe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pipeline.extract.objects import SourceObjects, source_objects
from pipeline.mapping.files import load_mappings
from pipeline.mapping.metadata import org_metadata_types, read_org_mappings
from pipeline.mapping.spec import MappingSet
from pipeline.salesforce.client import SalesforceClient

SHIPPED_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
Source = Literal["files", "org"]
ENVIRONMENT: dict[str, str] = {
    "source": "M3SYNC_MAPPINGS_SOURCE",
    "directory": "M3SYNC_MAPPINGS_DIR",
}


WRITEBACK_VARIABLE = "M3SYNC_WRITEBACK"


def writeback_on(environ: Mapping[str, str]) -> bool:
    """Whether runs write sync statuses back to Salesforce: off unless asked, so a real org
    is never written to before its status fields exist (`m3sync setup salesforce`)."""
    return environ.get(WRITEBACK_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class MappingSource:
    source: str = "files"
    directory: Path = SHIPPED_MAPPINGS

    def __post_init__(self) -> None:
        if self.source not in get_args(Source):
            raise ValueError(f"mappings source must be 'files' or 'org', not {self.source!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MappingSource:
        values = {name: environ[var] for name, var in ENVIRONMENT.items() if environ.get(var)}
        return cls(values.get("source", "files"), Path(values.get("directory", SHIPPED_MAPPINGS)))

    def read(self, client: Callable[[], SalesforceClient]) -> MappingSet:
        """The mapping set; `client` is called only when the mappings live in the org."""
        if self.source == "org":
            return read_org_mappings(client())
        return load_mappings(self.directory)

    def objects(self, client: Callable[[], SalesforceClient]) -> SourceObjects:
        """The objects the mappings read; from the org, also the mapping types it holds, whose
        raw tables show which mapping records a run applied."""
        if self.source != "org":
            return source_objects(load_mappings(self.directory))
        org = client()
        return source_objects(read_org_mappings(org), org_metadata_types(org))
