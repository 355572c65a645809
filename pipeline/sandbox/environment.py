"""The `M3SYNC_*` variables that point m3sync at a running sandbox, from its `sandbox.json`.

Runs launched by the CLI, the Dagster UI and its daemon all configure their resources from the
environment (as `EnvVar`s), so pointing them at the sandbox is setting these variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from pipeline.m3ter.settings import ENVIRONMENT as M3TER_ENVIRONMENT
from pipeline.m3ter.settings import sandbox_settings as m3ter_sandbox_settings
from pipeline.mapping.source import WRITEBACK_VARIABLE
from pipeline.salesforce.settings import ENVIRONMENT as SALESFORCE_ENVIRONMENT
from pipeline.salesforce.settings import sandbox_settings as salesforce_sandbox_settings

# Pace is the operator's choice, not the sandbox's: left to the environment or the defaults.
_PACE = ("rate_limit", "ip_limit", "ip_window", "concurrency")


def sandbox_environment(info: Mapping[str, Any]) -> dict[str, str]:
    """Variables for each server `info` (a parsed `sandbox.json`) describes."""
    found: dict[str, str] = {}
    if "salesforce" in info:
        values = asdict(salesforce_sandbox_settings(info["salesforce"]))
        found.update(
            {var: str(values[name]) for name, var in SALESFORCE_ENVIRONMENT.items() if values[name]}
        )
        # The sandbox org holds the status fields: its runs write sync statuses back.
        found[WRITEBACK_VARIABLE] = "1"
    if "m3ter" in info:
        values = asdict(m3ter_sandbox_settings(info["m3ter"]))
        found.update(
            {
                var: str(values[name])
                for name, var in M3TER_ENVIRONMENT.items()
                if name not in _PACE and values[name]
            }
        )
    return found
