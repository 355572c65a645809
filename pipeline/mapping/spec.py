"""The typed mapping model (DESIGN §5): what one mapping record may say, whatever its source.

YAML files (`files.py`) and the org's `*Mapping__mdt` records (`metadata.py`) both go through
`record_problems` / `parse_record`, so one rule set with one wording applies to both; the loaders
only differ in how they say where a problem is (file and line, or metadata type and field).
Nothing here looks at an org's describe: whether a path exists is the compiler's question.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any, Final, Literal, get_args

from pipeline.mapping.errors import MappingError
from pipeline.mapping.products import ProductMapping, lookup_problems
from pipeline.mapping.templates import TemplateError, is_template, parse_template
from pipeline.mapping.writeback import StatusFields

Entity = Literal[
    "accounts",
    "contracts",
    "plans",
    "pricings",
    "plan_groups",
    "plan_group_links",
    "account_plans",
    "commitments",
    "compound_aggregations",
]
ENTITIES: Final[tuple[Entity, ...]] = get_args(Entity)

METADATA_TYPE: Final[dict[Entity, str]] = {
    "accounts": "AccountMapping__mdt",
    "contracts": "ContractMapping__mdt",
    "plans": "PlanMapping__mdt",
    "pricings": "PricingMapping__mdt",
    "plan_groups": "PlanGroupMapping__mdt",
    "plan_group_links": "PlanGroupLinkMapping__mdt",
    "account_plans": "AccountPlanMapping__mdt",
    "commitments": "CommitmentMapping__mdt",
    "compound_aggregations": "CompoundAggregationMapping__mdt",
}

# Entities billed per agreement (Order, Opportunity, Quote, Asset): header or line granularity.
AGREEMENT_ENTITIES: Final[frozenset[Entity]] = frozenset(
    {"plans", "pricings", "plan_groups", "plan_group_links", "account_plans", "commitments"}
)
SEGMENTED_ENTITIES: Final[frozenset[Entity]] = frozenset({"pricings"})
# Entities mapped from reference data (Product2's catalogue), which is small and not time-bound:
# their objects are re-read whole each run rather than a daily partition at a time (DESIGN §3).
REFERENCE_ENTITIES: Final[frozenset[Entity]] = frozenset({"compound_aggregations"})

SyncLevel = Literal["agreement", "line_item"]
SYNC_LEVELS: Final[tuple[SyncLevel, ...]] = get_args(SyncLevel)

# Every key a mapping record may have, in the order an export writes them.
KEYS: Final[tuple[str, ...]] = (
    "name",
    "object",
    "where",
    "sync_level",
    "agreement",
    "identity",
    "fields",
    "hardcoded",
    "custom_fields",
    "segments",
    "product_mapping",
    "combine",
    "active",
)
REQUIRED_KEYS: Final[tuple[str, ...]] = ("name", "object")

# SOQL allows at most five levels in a child-to-parent path (`A.B.C.D.Field`).
MAX_PATH_DEPTH: Final = 5

_SF_NAME = r"[A-Za-z][A-Za-z0-9_]*"
_NAME = re.compile(_SF_NAME)
_SF_PATH = re.compile(rf"{_SF_NAME}(?:\.{_SF_NAME})*")
_M3TER_FIELD = re.compile(r"[a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*")

_PATH_SECTIONS: Final = ("fields", "custom_fields")

# How the rows of one grouped object combine a field they need not agree on. A blank value is
# open-ended for `earliest` and `latest` (no start, no end: it wins) and skipped by the others.
CombineRule = Literal["earliest", "latest", "min", "max", "sum"]
COMBINE_RULES: Final[tuple[CombineRule, ...]] = get_args(CombineRule)


class MappingSpecError(MappingError):
    """Every problem found in a mapping source, one per line, so an operator can fix all at once."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Problem:
    """One broken rule; `path` (top-level key, then nested key) lets a loader say where it is."""

    path: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class MappingRecord:
    """One mapping record: which Salesforce rows become which m3ter objects, and how.

    Constructing one checks every rule that does not depend on the entity; the entity rules
    (`segments`, `sync_level`) are checked by `parse_record` and `MappingSet`.
    """

    name: str
    object: str
    where: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    hardcoded: dict[str, Any] = field(default_factory=dict)
    custom_fields: dict[str, str] = field(default_factory=dict)
    segments: str | None = None
    sync_level: SyncLevel | None = None
    # The field naming a line's agreement (its header), for line objects Salesforce's standard
    # model does not know (`SBQQ__Quote__c` on a quote line, a custom object's lookup).
    agreement: str | None = None
    # The field that names a line across its replacements (a quote re-sync deletes an
    # opportunity's line items and makes new ones): an external id, or the quote line it came
    # from. Without one, a replacement is matched by its values (`staging/successions.py`).
    identity: str | None = None
    product_mapping: dict[str, str] = field(default_factory=dict)
    combine: dict[str, CombineRule] = field(default_factory=dict)
    active: bool = True

    def __post_init__(self) -> None:
        problems = record_problems(None, self.to_dict())
        if problems:
            raise MappingSpecError(f"mapping {self.name!r}: {p.message}" for p in problems)
        # Blank text means "no condition" / "unsegmented" (DESIGN §6 rule 7): store it as absent.
        for key in ("where", "segments", "agreement", "identity"):
            if not (getattr(self, key) or "").strip():
                object.__setattr__(self, key, None)
        for key in ("fields", "hardcoded", "custom_fields", "product_mapping", "combine"):
            object.__setattr__(self, key, dict(getattr(self, key)))

    @property
    def grouped(self) -> bool:
        """Whether rows share objects: a computed code makes every row whose code comes out the
        same one m3ter object; a code read from one field names one record's object."""
        return is_template(self.fields.get("code"))

    def to_dict(self) -> dict[str, Any]:
        """The record's non-default keys in export order: what a YAML file needs to say."""
        values = {key: getattr(self, key) for key in KEYS}
        return {
            key: value
            for key, value in values.items()
            if value is not None and value != {} and not (key == "active" and value is True)
        }


def record_problems(entity: Entity | None, data: Mapping[str, Any]) -> list[Problem]:
    """Every rule `data` (a record as plain keys and values) breaks; entity rules only if given.

    A key whose value is None counts as absent, as an empty YAML key or a blank metadata field.
    """
    problems = [
        Problem((str(key),), f"unknown key {key!r}{_suggestion(str(key), KEYS)}")
        for key in data
        if key not in KEYS
    ]
    for key in REQUIRED_KEYS:
        if data.get(key) is None:
            problems.append(Problem((key,), f"missing key {key!r}"))
    problems += _name_problems(data.get("name"), data.get("object"))
    for key in ("where", "segments"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(Problem((key,), f"{key!r} must be text, not {_kind(value)}"))
    agreement = data.get("agreement")
    if agreement is not None and not (
        isinstance(agreement, str) and (not agreement.strip() or _SF_PATH.fullmatch(agreement))
    ):
        problems.append(
            Problem(
                ("agreement",),
                f"'agreement' must be the field naming a line's agreement (e.g. "
                f"SBQQ__Quote__c), not {agreement!r}",
            )
        )
    identity = data.get("identity")
    if identity is not None and not (
        isinstance(identity, str) and (not identity.strip() or _SF_PATH.fullmatch(identity))
    ):
        problems.append(
            Problem(
                ("identity",),
                f"'identity' must be the field naming a line across its replacements (e.g. "
                f"SBQQ__QuoteLine__c), not {identity!r}",
            )
        )
    sync_level = data.get("sync_level")
    if sync_level is not None and sync_level not in SYNC_LEVELS:
        problems.append(
            Problem(
                ("sync_level",), f"'sync_level' must be {_choices(SYNC_LEVELS)}, not {sync_level!r}"
            )
        )
    active = data.get("active")
    if active is not None and not isinstance(active, bool):
        problems.append(Problem(("active",), f"'active' must be true or false, not {active!r}"))
    for section in _PATH_SECTIONS:
        problems += _path_map_problems(section, data.get(section))
    problems += _hardcoded_problems(data.get("hardcoded"), data.get("fields"))
    problems += _combine_problems(data.get("combine"), data.get("fields"))
    problems += [
        Problem(("product_mapping",), p) for p in lookup_problems(data.get("product_mapping"))
    ]
    lookup = data.get("product_mapping")
    if isinstance(lookup, Mapping):
        problems += [
            Problem(
                ("product_mapping", str(key)),
                f"product_mapping key {key!r}: {path!r} is not a Salesforce field or "
                "relationship path (Field__c, Order.Account.Name)",
            )
            for key, path in lookup.items()
            if isinstance(path, str) and not _SF_PATH.fullmatch(path)
        ]
    if entity is not None:
        problems += _entity_problems(entity, data)
    return problems


def parse_record(
    entity: Entity, data: Mapping[str, Any]
) -> tuple[MappingRecord | None, list[Problem]]:
    """The record `data` describes for `entity`, or None and every problem it has."""
    problems = record_problems(entity, data)
    if problems:
        return None, problems
    return MappingRecord(**{key: value for key, value in data.items() if value is not None}), []


def _name_problems(name: Any, source_object: Any) -> list[Problem]:
    problems = []
    if name is not None and not (isinstance(name, str) and _NAME.fullmatch(name)):
        problems.append(
            Problem(
                ("name",),
                f"'name' must be an identifier (a letter, then letters, digits or underscores), "
                f"not {name!r}",
            )
        )
    if source_object is not None and not (
        isinstance(source_object, str) and _NAME.fullmatch(source_object)
    ):
        problems.append(
            Problem(
                ("object",),
                f"'object' must be a Salesforce object API name (e.g. OrderItem), "
                f"not {source_object!r}",
            )
        )
    return problems


def _path_map_problems(section: str, value: Any) -> list[Problem]:
    """`fields` / `custom_fields`: m3ter field name -> Salesforce field or relationship path."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [
            Problem(
                (section,),
                f"{section!r} must map m3ter field names to Salesforce fields, not {_kind(value)}",
            )
        ]
    problems = []
    for key, path in value.items():
        where = (section, str(key))
        problems += _m3ter_key_problems(section, key)
        if not isinstance(path, str):
            problems.append(
                Problem(
                    where,
                    f"{section} key {key!r}: value must be a Salesforce field or relationship "
                    f"path, not {_kind(path)}",
                )
            )
        elif section == "fields" and is_template(path):
            try:
                template = parse_template(path)
            except TemplateError as exc:
                problems.append(Problem(where, f"{section} key {key!r}: {exc}"))
            else:
                problems += [
                    Problem(
                        where,
                        f"{section} key {key!r}: {{{part}}} has {part.count('.') + 1} levels; "
                        f"SOQL allows at most {MAX_PATH_DEPTH}",
                    )
                    for part in template.paths
                    if part.count(".") >= MAX_PATH_DEPTH
                ]
        elif not _SF_PATH.fullmatch(path):
            problems.append(
                Problem(
                    where,
                    f"{section} key {key!r}: {path!r} is not a Salesforce field or relationship "
                    "path (Field__c, Order.Account.Name)",
                )
            )
        elif path.count(".") >= MAX_PATH_DEPTH:
            problems.append(
                Problem(
                    where,
                    f"{section} key {key!r}: {path!r} has {path.count('.') + 1} levels; "
                    f"SOQL allows at most {MAX_PATH_DEPTH}",
                )
            )
    return problems


def _hardcoded_problems(value: Any, fields: Any) -> list[Problem]:
    """`hardcoded`: m3ter field name -> a JSON scalar, never a field that `fields` also maps."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [
            Problem(
                ("hardcoded",),
                f"'hardcoded' must map m3ter field names to values, not {_kind(value)}",
            )
        ]
    mapped = set(fields) if isinstance(fields, Mapping) else set()
    problems = []
    for key, literal in value.items():
        where = ("hardcoded", str(key))
        problems += _m3ter_key_problems("hardcoded", key)
        if not _is_literal(literal):
            problems.append(
                Problem(
                    where,
                    f"hardcoded key {key!r}: value must be text, a number, true/false or null, "
                    f"not {_kind(literal)}",
                )
            )
        if key in mapped:
            problems.append(
                Problem(where, f"hardcoded key {key!r} is also mapped in 'fields'; keep one")
            )
    return problems


def _combine_problems(value: Any, fields: Any) -> list[Problem]:
    """`combine`: mapped m3ter field -> how a grouped object's rows combine it."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [
            Problem(
                ("combine",),
                f"'combine' must map m3ter field names to {_choices(COMBINE_RULES)}, "
                f"not {_kind(value)}",
            )
        ]
    mapped = fields if isinstance(fields, Mapping) else {}
    problems = []
    for key, rule in value.items():
        where = ("combine", str(key))
        if rule not in COMBINE_RULES:
            problems.append(
                Problem(
                    where,
                    f"combine key {key!r}: {rule!r} is not a rule ({_choices(COMBINE_RULES)})",
                )
            )
        if key not in mapped:
            problems.append(
                Problem(where, f"combine key {key!r} is not mapped in 'fields'; map it there")
            )
        elif key == "code":
            problems.append(Problem(where, "combine key 'code': the code is what rows share"))
    if value and not is_template(mapped.get("code")):
        problems.append(
            Problem(
                ("combine",),
                "'combine' needs a computed code (fields key 'code' such as "
                "'{OrderId}_{Product2.ProductCode}'): only rows sharing a code are combined",
            )
        )
    return problems


def _m3ter_key_problems(section: str, key: Any) -> list[Problem]:
    if isinstance(key, str) and _M3TER_FIELD.fullmatch(key):
        return []
    return [
        Problem(
            (section, str(key)),
            f"{section} key {key!r} is not an m3ter field name (camelCase, dots for nested "
            "fields: address.locality)",
        )
    ]


def _entity_problems(entity: Entity, data: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if data.get("product_mapping") is not None and entity != "plans":
        problems.append(
            Problem(
                ("product_mapping",),
                "'product_mapping' is only allowed in plans mappings (it picks a plan template)",
            )
        )
    if data.get("segments") is not None and entity not in SEGMENTED_ENTITIES:
        problems.append(Problem(("segments",), "'segments' is only allowed in pricings mappings"))
    if entity in AGREEMENT_ENTITIES:
        if data.get("sync_level") is None:
            problems.append(
                Problem(
                    ("sync_level",),
                    f"missing key 'sync_level' (required in {entity} mappings: "
                    f"{_choices(SYNC_LEVELS)})",
                )
            )
    else:
        allowed = ", ".join(e for e in ENTITIES if e in AGREEMENT_ENTITIES)
        problems += [
            Problem((key,), f"'{key}' is only allowed in {allowed} mappings")
            for key in ("sync_level", "agreement", "identity")
            if data.get(key) is not None
        ]
    return problems


def _is_literal(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "a number"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, float):
        return "a number" if math.isfinite(value) else repr(value)
    return type(value).__name__


def _choices(options: Sequence[str]) -> str:
    return " or ".join(repr(option) for option in options)


def _suggestion(word: str, options: Sequence[str]) -> str:
    close = get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Location:
    """Where something was written: a file and 1-based line, or a metadata record's field."""

    source: str
    line: int | None = None

    def __str__(self) -> str:
        return self.source if self.line is None else f"{self.source}:{self.line}"


@dataclass(frozen=True)
class RecordOrigin:
    """Where one record and each of its keys (`("fields", "code")`) came from."""

    location: Location
    keys: Mapping[tuple[str, ...], Location] = field(default_factory=dict)

    def locate(self, *path: str) -> Location:
        """The most precise known location of `path`: the key, its section, else the record."""
        for depth in range(len(path), 0, -1):
            found = self.keys.get(path[:depth])
            if found is not None:
                return found
        return self.location


@dataclass(frozen=True)
class MappingSet:
    """Every entity's mapping records, plus where each came from (ignored by equality).

    Construction checks the entity rules and unique names, so a set is valid whatever built it.
    """

    mappings: Mapping[Entity, Sequence[MappingRecord]] = field(default_factory=dict)
    origins: Mapping[tuple[Entity, str], RecordOrigin] = field(
        default_factory=dict, compare=False, repr=False
    )
    # the product mapping table (`products.py`) the plan mappings' `product_mapping` looks up
    products: Sequence[ProductMapping] = ()
    # where each object's sync status is written back in Salesforce (`writeback.py`)
    writeback: Sequence[StatusFields] = ()

    def __post_init__(self) -> None:
        unknown = [entity for entity in self.mappings if entity not in ENTITIES]
        if unknown:
            raise MappingSpecError(
                f"unknown entity {entity!r}{_suggestion(entity, ENTITIES)}" for entity in unknown
            )
        mappings = {entity: tuple(self.mappings.get(entity, ())) for entity in ENTITIES}
        object.__setattr__(self, "mappings", mappings)
        object.__setattr__(self, "products", tuple(self.products))
        object.__setattr__(self, "writeback", tuple(self.writeback))
        problems = []
        for entity, records in mappings.items():
            seen: set[str] = set()
            for record in records:
                label = self.label(entity, record.name)
                if record.name in seen:
                    problems.append(f"{label}: duplicate mapping name {record.name!r}")
                seen.add(record.name)
                problems += [
                    f"{self.label(entity, record.name, *p.path)}: {p.message}"
                    for p in _entity_problems(entity, record.to_dict())
                ]
        if problems:
            raise MappingSpecError(problems)

    def __getitem__(self, entity: Entity) -> tuple[MappingRecord, ...]:
        return tuple(self.mappings[entity])

    def __len__(self) -> int:
        return sum(len(records) for records in self.mappings.values())

    def __iter__(self) -> Iterator[tuple[Entity, MappingRecord]]:
        """Every (entity, record), entity by entity in `ENTITIES` order."""
        for entity in ENTITIES:
            for record in self.mappings[entity]:
                yield entity, record

    def active(self, entity: Entity) -> tuple[MappingRecord, ...]:
        """The records of `entity` that are switched on: the ones a run compiles."""
        return tuple(record for record in self.mappings[entity] if record.active)

    def locate(self, entity: Entity, name: str, *path: str) -> Location | None:
        """Where mapping `name` (or its key at `path`) was written, if the source said."""
        origin = self.origins.get((entity, name))
        return None if origin is None else origin.locate(*path)

    def label(self, entity: Entity, name: str, *path: str) -> str:
        """The prefix of a message about a mapping: `mappings/pricings.yaml:14: mapping 'X'`."""
        location = self.locate(entity, name, *path)
        if location is None:
            return f"{entity} mapping {name!r}"
        return f"{location}: mapping {name!r}"
