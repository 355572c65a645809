"""The shipped mappings compiled against the demo org's describe, for suites that need them."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.extract.objects import SourceObject
from pipeline.mapping.compiler import CompiledSet, compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.sandbox.salesforce.describe import object_describe
from pipeline.sandbox.salesforce.schema import demo_schema

MAPPINGS_DIR = Path(__file__).resolve().parents[1] / "mappings"
SCHEMA = demo_schema().visible_to_integration_user()


def describe(name: str) -> dict[str, Any]:
    """The integration user's describe of the demo org, without a server."""
    obj = SCHEMA.sobject(name)
    if obj is None:
        raise KeyError(f"sObject type '{name}' is not supported")
    return object_describe(SCHEMA, obj, "59.0")


@cache
def shipped() -> CompiledSet:
    return compile_mappings(load_mappings(MAPPINGS_DIR), describe)


def mapped(name: str) -> SourceObject:
    """The extracted object with the fields the shipped mappings read, as the assets select."""
    return replace(shipped().objects[name], fields=shipped().fields(name))
