"""Mapping files (`mappings/<entity>.yaml`, DESIGN §5): loading with line numbers, and export.

Loading composes PyYAML's node tree (safe tags only) instead of plain `safe_load` so that every
record and key keeps its line: a problem is reported as `file:line: mapping 'name': ...`, and all
problems of all files are reported together so one `mappings validate` shows everything to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from pipeline.mapping.products import (
    PRODUCT_MAPPING_TYPE,
    PRODUCT_MAPPINGS_FILE,
    ProductMapping,
    parse_rows,
)
from pipeline.mapping.spec import (
    ENTITIES,
    METADATA_TYPE,
    Entity,
    Location,
    MappingRecord,
    MappingSet,
    MappingSpecError,
    RecordOrigin,
    parse_record,
)
from pipeline.mapping.writeback import WRITEBACK_FILE, StatusFields
from pipeline.mapping.writeback import parse_rows as parse_writeback_rows

T = TypeVar("T")
ENTITY_FILES: Final[dict[Entity, str]] = {entity: f"{entity}.yaml" for entity in ENTITIES}
_ENTITY_OF_FILE: Final[dict[str, Entity]] = {name: e for e, name in ENTITY_FILES.items()}
_YAML_SUFFIXES: Final = (".yaml", ".yml")
# Keys whose value is itself a mapping of m3ter field -> something: their keys get lines too.
_SECTIONS: Final = frozenset({"fields", "hardcoded", "custom_fields", "product_mapping", "combine"})

_TIMESTAMP_TAG: Final = "tag:yaml.org,2002:timestamp"
_BOOL_TAG: Final = "tag:yaml.org,2002:bool"
_YAML12_BOOL: Final = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class _Loader(yaml.SafeLoader):
    """Safe loading, with dates kept as text and only true/false read as booleans.

    m3ter takes dates as ISO text, and YAML 1.1's `yes`/`no`/`on`/`off` booleans would turn a
    hard-coded country code `NO` into `false`; YAML 1.2 reads both as text, and so does this.
    """

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's class-level resolver table)
        first: [
            (tag, _YAML12_BOOL if tag == _BOOL_TAG else regexp)
            for tag, regexp in resolvers
            if tag != _TIMESTAMP_TAG
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class _Dumper(yaml.SafeDumper):
    """Block-style YAML, multi-line text as `|` blocks, no anchors for repeated values."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


@dataclass
class _RawRecord:
    """One record as written: plain values, the line of each key path, and structural problems."""

    index: int
    line: int
    data: dict[str, Any] = field(default_factory=dict)
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)
    # Key paths whose value could not be read: rule checks say nothing more about them.
    unreadable: set[tuple[str, ...]] = field(default_factory=set)
    is_mapping: bool = True

    @property
    def name(self) -> str | None:
        name = self.data.get("name")
        return name if isinstance(name, str) and name else None

    @property
    def label(self) -> str:
        return f"mapping {self.name!r}" if self.name else f"mapping #{self.index}"


class _FileReader:
    """Reads one mapping file into records with origins, collecting every problem with its line."""

    def __init__(self, path: Path, entity: Entity) -> None:
        self.path = path
        self.source = str(path)
        self.entity = entity
        self.problems: list[tuple[int, str]] = []
        self.constructor = _Loader("")

    def read(self) -> list[tuple[MappingRecord, RecordOrigin]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append((0, f"cannot read the file: {exc}"))
            return []
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            self.problems.append(_syntax_problem(exc))
            return []
        except yaml.reader.ReaderError as exc:
            self.problems.append(_character_problem(text, exc))
            return []
        except yaml.YAMLError as exc:
            self.problems.append((0, f"invalid YAML: {exc}"))
            return []
        if root is None:
            return []
        if not isinstance(root, yaml.SequenceNode):
            self.problems.append(
                (
                    _line(root),
                    f"expected a list of mapping records ('- name: ...'), not {_node_kind(root)}",
                )
            )
            return []
        raws = [self._record(index, node) for index, node in enumerate(root.value, start=1)]
        self._check_names(raws)
        return self._parse(raws)

    def _record(self, index: int, node: yaml.Node) -> _RawRecord:
        raw = _RawRecord(index, _line(node))
        if not isinstance(node, yaml.MappingNode):
            raw.is_mapping = False
            raw.problems.append(
                (
                    raw.line,
                    f"expected a mapping of keys (name, object, ...), not {_node_kind(node)}",
                )
            )
            return raw
        for key, _, value_node in self._items(node, (), raw):
            if key in _SECTIONS and isinstance(value_node, yaml.MappingNode):
                section = raw.data[key] = {}
                for sub_key, _, sub_node in self._items(value_node, (key,), raw):
                    self._read_value(sub_node, raw, section, (key, sub_key))
            else:
                self._read_value(value_node, raw, raw.data, (key,))
        return raw

    def _items(
        self, node: yaml.MappingNode, path: tuple[str, ...], raw: _RawRecord
    ) -> Iterable[tuple[str, int, yaml.Node]]:
        """(key, line, value node) of a mapping node; non-text and repeated keys are problems."""
        where = f"{path[0]} key" if path else "key"
        for key_node, value_node in node.value:
            line = _line(key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                raw.problems.append((line, f"{where} must be text, not {_node_kind(key_node)}"))
                continue
            key = key_node.value
            if (*path, key) in raw.lines:
                first = raw.lines[(*path, key)]
                raw.problems.append((line, f"duplicate {where} {key!r} (first at line {first})"))
                continue
            raw.lines[(*path, key)] = line
            yield key, line, value_node

    def _read_value(
        self, node: yaml.Node, raw: _RawRecord, target: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        """Stores the node's value at `target[path[-1]]`, or records why it cannot be read."""
        try:
            target[path[-1]] = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raw.problems.append((_line(node), f"invalid value: {problem}"))
            raw.unreadable.add(path)

    def _check_names(self, raws: Sequence[_RawRecord]) -> None:
        first: dict[str, int] = {}
        for raw in raws:
            if raw.name is None:
                continue
            line = raw.lines.get(("name",), raw.line)
            if raw.name in first:
                raw.problems.append(
                    (line, f"duplicate mapping name {raw.name!r} (first at line {first[raw.name]})")
                )
            else:
                first[raw.name] = line

    def _parse(self, raws: Sequence[_RawRecord]) -> list[tuple[MappingRecord, RecordOrigin]]:
        parsed = []
        for raw in raws:
            origin = RecordOrigin(
                Location(self.source, raw.line),
                {path: Location(self.source, line) for path, line in raw.lines.items()},
            )
            problems = list(raw.problems)
            record = None
            if raw.is_mapping:
                record, found = parse_record(self.entity, raw.data)
                problems += [
                    (origin.locate(*p.path).line or 0, p.message)
                    for p in found
                    if not any(p.path[: len(u)] == u for u in raw.unreadable)
                ]
            self.problems += [(line, f"{raw.label}: {message}") for line, message in problems]
            if record is not None and not raw.problems:
                parsed.append((record, origin))
        return parsed

    def messages(self) -> list[str]:
        """The problems as `file:line: ...` lines, in line order."""
        ordered = sorted(self.problems, key=lambda problem: problem[0])
        return [
            f"{self.source}:{line}: {message}" if line else f"{self.source}: {message}"
            for line, message in ordered
        ]


def _syntax_problem(exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    """The parser's line and its explanation, with where the broken construct started."""
    problem, mark = exc.problem or "", exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    started = exc.context_mark
    if exc.context and not exc.context.startswith("while"):
        problem = f"{exc.context}, {problem}"  # "expected a single document..., but found..."
    elif exc.context and started and started.line + 1 != line:
        problem = f"{problem} ({exc.context} that starts at line {started.line + 1})"
    elif exc.context:
        problem = f"{problem} ({exc.context})"
    return line, f"invalid YAML: {problem}"


def _character_problem(text: str, exc: yaml.reader.ReaderError) -> tuple[int, str]:
    """A character YAML text cannot hold (NUL, most control characters), at its line."""
    character = exc.character if isinstance(exc.character, str) else chr(exc.character)
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    return line, (
        f"invalid YAML: character U+{ord(character):04X} at column {column} is not allowed in "
        "YAML text; write it as an escape in a double-quoted string"
    )


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the value {node.value!r}"


def _entity_of(path: Path) -> Entity | None:
    return _ENTITY_OF_FILE.get(path.name)


def _unknown_file(path: Path) -> str:
    expected = ", ".join([*ENTITY_FILES.values(), PRODUCT_MAPPINGS_FILE, WRITEBACK_FILE])
    return f"{path}: unknown mapping file {path.name!r} (expected one of: {expected})"


def _read(path: Path, entity: Entity) -> tuple[list[tuple[MappingRecord, RecordOrigin]], list[str]]:
    reader = _FileReader(path, entity)
    parsed = reader.read()
    return parsed, reader.messages()


def load_mapping_file(
    path: str | os.PathLike[str], entity: Entity | None = None
) -> list[MappingRecord]:
    """The records of one mapping file; the entity comes from the file name unless given.

    Raises `MappingSpecError` listing every problem of the file, one `file:line: ...` per line.
    """
    path = Path(path)
    entity = entity or _entity_of(path)
    if entity is None:
        raise MappingSpecError([_unknown_file(path)])
    parsed, problems = _read(path, entity)
    if problems:
        raise MappingSpecError(problems)
    return [record for record, _ in parsed]


def load_mappings(directory: str | os.PathLike[str]) -> MappingSet:
    """Every mapping file of `directory` (one per entity; a missing file means no mappings).

    YAML files other than the entity files are errors, so a misnamed file is never
    silently skipped; other files (a README) are ignored. All files' problems are raised together.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise MappingSpecError([f"{directory}: mapping directory not found"])
    mappings: dict[Entity, list[MappingRecord]] = {}
    origins: dict[tuple[Entity, str], RecordOrigin] = {}
    problems: list[str] = []
    products: tuple[ProductMapping, ...] = ()
    writeback: tuple[StatusFields, ...] = ()
    for path in sorted(directory.iterdir()):
        if path.suffix not in _YAML_SUFFIXES or not path.is_file():
            continue
        if path.name == PRODUCT_MAPPINGS_FILE:
            products, found = _read_table(path, "product mappings", parse_rows)
            problems += found
            continue
        if path.name == WRITEBACK_FILE:
            writeback, found = _read_table(path, "write-back rows", parse_writeback_rows)
            problems += found
            continue
        entity = _entity_of(path)
        if entity is None:
            problems.append(_unknown_file(path))
            continue
        parsed, found = _read(path, entity)
        problems += found
        mappings[entity] = [record for record, _ in parsed]
        origins.update(((entity, record.name), origin) for record, origin in parsed)
    if problems:
        raise MappingSpecError(problems)
    return MappingSet(mappings, origins, products, writeback)


def _read_table(
    path: Path,
    noun: str,
    parse: Callable[[Iterable[tuple[str, Mapping[str, Any]]]], tuple[tuple[T, ...], list[str]]],
) -> tuple[tuple[T, ...], list[str]]:
    """A table of rows (product mappings, write-back rows) in `path`, each row's problems at
    its line."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (_Loader is a SafeLoader)
    except yaml.YAMLError as exc:
        return (), [f"{path}: not valid YAML ({exc})"]
    if data is None:
        return (), []
    if not isinstance(node, yaml.SequenceNode) or not isinstance(data, list):
        return (), [f"{path}:1: expected a list of {noun}"]
    rows = []
    problems = []
    for item, row in zip(node.value, data, strict=True):
        if not isinstance(row, dict):
            problems.append(f"{path}:{_line(item)}: expected a row, not {_node_kind(item)}")
            continue
        rows.append((f"{path}:{_line(item)}", row))
    parsed, found = parse(rows)
    return parsed, problems + found


def products_yaml(rows: Iterable[ProductMapping]) -> str:
    documents = [
        yaml.dump([row.to_dict()], Dumper=_Dumper, sort_keys=False, default_flow_style=False)
        for row in rows
    ]
    return "\n".join(documents) if documents else "[]\n"


def to_yaml(records: Iterable[MappingRecord]) -> str:
    """The YAML text of one entity's records: keys in a stable order, defaults left out."""
    documents = [
        yaml.dump(
            [record.to_dict()],
            Dumper=_Dumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=float("inf"),
        )
        for record in records
    ]
    return "\n".join(documents) if documents else "[]\n"


def dump_mappings(mapping_set: MappingSet, directory: str | os.PathLike[str]) -> list[Path]:
    """Writes every entity file and the product mapping table (empty ones as `[]`), so that
    loading gives the set back.

    Each file is replaced atomically, so a reader never sees half an export.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for entity in ENTITIES:
        path = directory / ENTITY_FILES[entity]
        header = (
            f"# m3ter {entity.replace('_', ' ')}: the YAML form of "
            f"{METADATA_TYPE[entity]} records (one list item per record).\n"
        )
        _write_atomically(path, header + to_yaml(mapping_set[entity]))
        written.append(path)
    path = directory / PRODUCT_MAPPINGS_FILE
    header = (
        "# Product mapping resolution: the YAML form of "
        f"{PRODUCT_MAPPING_TYPE} records (one list item per record).\n"
    )
    _write_atomically(path, header + products_yaml(mapping_set.products))
    written.append(path)
    return written


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
