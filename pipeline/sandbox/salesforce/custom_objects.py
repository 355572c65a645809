"""Objects an org has beyond the demo's: a YAML file of definitions, as a test org would be set up.

```yaml
objects:
  - name: Subscription__c
    label: Subscription
    fields:
      - {name: Account__c, type: reference, reference_to: Account}
      - {name: Quantity__c, type: double}
      - {name: Status__c, type: picklist, values: [Active, Cancelled]}
```

Each object gets the system fields every custom object has (Id, IsDeleted, CreatedDate, ...,
SystemModstamp, OwnerId, Name) and starts empty; records come from the REST API
(`POST sobjects/{Object}/`), as in a real org.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.sandbox.salesforce.schema import FIELD_TYPES, Field, SObject, custom_object

_FIELD_KEYS = frozenset({"name", "type", "label", "length", "reference_to", "values", "required"})


class ObjectDefinitionError(ValueError):
    """A definitions file the sandbox cannot build objects from; names file, object and key."""


def load_objects(path: Path) -> tuple[SObject, ...]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ObjectDefinitionError(f"{path}: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("objects"), list):
        raise ObjectDefinitionError(f"{path}: expected a mapping with an 'objects' list")
    return tuple(_sobject(path, index, item) for index, item in enumerate(data["objects"], start=1))


def _sobject(path: Path, index: int, item: Any) -> SObject:
    where = f"{path}: object #{index}"
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise ObjectDefinitionError(f"{where}: needs a 'name'")
    name = item["name"]
    where = f"{path}: object {name!r}"
    if not name.endswith("__c"):
        raise ObjectDefinitionError(f"{where}: a custom object's name ends in '__c'")
    fields = item.get("fields") or []
    if not isinstance(fields, list):
        raise ObjectDefinitionError(f"{where}: 'fields' must be a list")
    prefix = f"a{index:02d}"
    return custom_object(
        name, prefix, *(_field(where, f) for f in fields), label=item.get("label", name)
    )


def _field(where: str, item: Any) -> Field:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise ObjectDefinitionError(f"{where}: every field needs a 'name'")
    name = item["name"]
    unknown = sorted(set(item) - _FIELD_KEYS)
    if unknown:
        raise ObjectDefinitionError(f"{where}: field {name!r}: unknown keys {unknown}")
    if not name.endswith("__c"):
        raise ObjectDefinitionError(f"{where}: field {name!r}: a custom field ends in '__c'")
    kind = item.get("type")
    if kind not in FIELD_TYPES or kind == "id":
        raise ObjectDefinitionError(
            f"{where}: field {name!r}: type must be one of "
            f"{', '.join(t for t in FIELD_TYPES if t != 'id')}, not {kind!r}"
        )
    required = bool(item.get("required", False))
    if kind == "reference":
        target = item.get("reference_to")
        if not isinstance(target, str):
            raise ObjectDefinitionError(f"{where}: field {name!r}: needs 'reference_to'")
        return Field(
            name,
            "reference",
            label=item.get("label", name),
            length=18,
            reference_to=(target,),
            relationship_name=name[:-3] + "__r",
            nillable=not required,
        )
    return Field(
        name,
        kind,
        label=item.get("label", name),
        length=int(item.get("length", 255 if kind not in ("textarea",) else 32768)),
        picklist=tuple(item.get("values", ())),
        nillable=not required and kind != "boolean",
    )
