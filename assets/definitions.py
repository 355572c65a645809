"""The m3sync Dagster code location (`dagster dev -w workspace.yaml`)."""

from __future__ import annotations

import dagster as dg

defs = dg.Definitions()
