"""The Salesforce objects m3sync extracts: exactly those the active mappings name.

Nothing lists objects by hand. A mapping's `object` (standard, custom `__c` or a managed
package's `SBQQ__...__c`) becomes one raw table and one extract asset, named after its API name
as the mapping spells it; relationship paths (`SBQQ__Quote__r.SBQQ__Account__r.Region__c`) are
selected on that object, so a parent gets no extract of its own unless a mapping names it too.

An object is read a daily partition at a time unless only reference entities (DESIGN §3: small,
not time-bound, such as the compound aggregations of Product2) map it; then it is re-read whole.
Which fields an object brings is the compiled mappings' business (`CompiledSet.fields`). The
field plan always adds `Id`, `SystemModstamp`, `IsDeleted` (where the object has one) and the
stamps of the parents that relationship paths read through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from pipeline.mapping.spec import ENTITIES, REFERENCE_ENTITIES, Entity, MappingSet


@dataclass(frozen=True)
class SourceObject:
    """One extracted object: its API name, its raw table, and how it is read."""

    name: str
    fields: tuple[str, ...] = ()  # always selected, whatever the mappings read
    partitioned: bool = True
    # Whole-object reads of custom metadata take every field describe lists.
    all_fields: bool = False

    @property
    def table(self) -> str:
        """`OrderItem` -> `order_item`, `SBQQ__QuoteLine__c` -> `sbqq_quote_line_c`."""
        base = self.name.replace("__", "_")
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()

    @property
    def custom_metadata(self) -> bool:
        return self.name.endswith("__mdt")


@dataclass(frozen=True)
class SourceObjects:
    """The objects one mapping set reads, and which of them each entity's mappings read."""

    objects: tuple[SourceObject, ...]
    by_entity: dict[Entity, tuple[SourceObject, ...]]

    def __iter__(self) -> Iterator[SourceObject]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, name: str) -> SourceObject:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(f"no active mapping reads {name!r}")

    def partitioned(self, entity: Entity) -> bool:
        """Whether `entity` is staged a partition at a time: it is unless it is a reference
        entity whose objects are all read whole."""
        sources = self.by_entity.get(entity, ())
        if entity in REFERENCE_ENTITIES:
            return any(s.partitioned for s in sources)
        return True


def source_objects(mappings: MappingSet, metadata_types: Sequence[str] = ()) -> SourceObjects:
    """Every object an active mapping names, in first-mention order, plus `metadata_types`
    (the `*Mapping__mdt` types the mappings were read from, read whole with every field)."""
    named: dict[str, set[Entity]] = {}
    for entity in ENTITIES:
        for record in mappings.active(entity):
            named.setdefault(record.object, set()).add(entity)
    objects = {
        name: SourceObject(name, partitioned=not entities <= REFERENCE_ENTITIES)
        for name, entities in named.items()
    }
    for name in metadata_types:
        objects.setdefault(name, SourceObject(name, partitioned=False, all_fields=True))
    by_entity = {
        entity: tuple(objects[name] for name in _unique(r.object for r in mappings.active(entity)))
        for entity in ENTITIES
    }
    return SourceObjects(tuple(objects.values()), by_entity)


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))
