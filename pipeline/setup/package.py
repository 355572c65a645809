"""The Salesforce set-up the active mappings need, as a Salesforce DX source package.

`sf project deploy start --source-dir DIR` deploys it: every custom field (and custom object)
the mappings read that is neither standard nor a managed package's, the status fields the
write-back writes (`mappings/writeback.yaml`), the `*Mapping__mdt` types with their fields, and a
permission set that lets the integration user read exactly the objects and fields the mappings
read, every record of them (View All: sharing would silently hide rows) and the mapping types,
and edit nothing but the status fields.

Field definitions come from a describe of an org that has them (the embedded demo org for the
shipped mappings): the package repeats their types, lengths, picklist values and lookups.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pipeline.mapping.compiler import CompiledSet
from pipeline.mapping.metadata import MetadataField, type_fields
from pipeline.mapping.writeback import ROLE_FIELDS, StatusFields
from pipeline.salesforce.fields import SYSTEM_FIELDS
from pipeline.salesforce.settings import DEFAULT_API_VERSION

Describe = Callable[[str], dict[str, Any]]

PERMISSION_SET = "M3sync_Integration"
NAMESPACE = "http://soap.sforce.com/2006/04/metadata"
_UNMANAGED_CUSTOM = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*__c$")


@dataclass(frozen=True)
class ReadField:
    """A field a mapping reads, on the object that holds it, with its describe entry."""

    sobject: str
    describe: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.describe["name"])

    @property
    def created(self) -> bool:
        """Whether set-up creates it: a custom field outside any managed package."""
        return is_unmanaged_custom(self.name)

    @property
    def permissible(self) -> bool:
        """Whether a permission set can grant it: required fields are always readable."""
        return self.name not in SYSTEM_FIELDS and bool(self.describe.get("nillable", True))


def is_unmanaged_custom(name: str) -> bool:
    """`Region__c` yes; `SBQQ__Quantity__c` (a package's namespace) and `Name` no."""
    return bool(_UNMANAGED_CUSTOM.match(name)) and name.count("__") == 1


def read_fields(compiled: CompiledSet, describe: Describe) -> dict[str, dict[str, ReadField]]:
    """Object -> field -> the field, for every field the mappings read, relationship paths
    walked to the object each step lands on (`Order.Account.Region__c` reads `OrderItem.OrderId`,
    `Order.AccountId` and `Account.Region__c`)."""
    found: dict[str, dict[str, ReadField]] = {}

    def add(sobject: str, entry: Mapping[str, Any]) -> None:
        found.setdefault(sobject, {}).setdefault(entry["name"], ReadField(sobject, entry))

    for obj in compiled.objects:
        found.setdefault(obj.name, {})
        for path in compiled.fields(obj.name):
            current = obj.name
            *steps, last = path.split(".")
            for step in steps:
                entry = next(
                    f
                    for f in describe(current)["fields"]
                    if (f.get("relationshipName") or "").lower() == step.lower()
                )
                add(current, entry)
                current = entry["referenceTo"][0]
                found.setdefault(current, {})
            entry = next(
                f for f in describe(current)["fields"] if f["name"].lower() == last.lower()
            )
            add(current, entry)
    return {name: dict(sorted(found[name].items())) for name in sorted(found)}


def status_fields(rows: Iterable[StatusFields]) -> list[ReadField]:
    """The fields the write-back rows name, defined as m3sync declares them."""
    return [
        ReadField(row.object, {"name": name, "nillable": True, **ROLE_FIELDS[role]})
        for row in rows
        if row.active
        for role, name in row.fields().items()
    ]


def created_fields(fields: Mapping[str, Mapping[str, ReadField]]) -> list[ReadField]:
    return [f for by_name in fields.values() for f in by_name.values() if f.created]


def write_package(
    out: Path,
    compiled: CompiledSet,
    describe: Describe,
    api_version: str = DEFAULT_API_VERSION,
    writeback: Sequence[StatusFields] = (),
) -> list[Path]:
    """Write the package under `out`; returns the files written, relative to `out`.

    `writeback` (the mappings' write-back rows) adds the status fields, m3sync's own, and lets
    the integration user edit exactly those."""
    fields = read_fields(compiled, describe)
    written = status_fields(writeback)
    files: dict[str, str] = {
        "sfdx-project.json": json.dumps(
            {
                "packageDirectories": [{"path": "force-app", "default": True}],
                "name": "m3sync-setup",
                "namespace": "",
                "sourceApiVersion": api_version,
            },
            indent=2,
        )
        + "\n"
    }
    base = "force-app/main/default"
    for sobject in fields:
        if is_unmanaged_custom(sobject):
            files[f"{base}/objects/{sobject}/{sobject}.object-meta.xml"] = _custom_object(
                describe(sobject)
            )
    for field in [*created_fields(fields), *(f for f in written if f.created)]:
        path = f"{base}/objects/{field.sobject}/fields/{field.name}.field-meta.xml"
        files[path] = _custom_field(field.describe)
    mapping_types = type_fields()
    for type_name, type_fields_ in mapping_types.items():
        files[f"{base}/objects/{type_name}/{type_name}.object-meta.xml"] = _metadata_type(type_name)
        for definition in type_fields_:
            path = f"{base}/objects/{type_name}/fields/{definition.name}.field-meta.xml"
            files[path] = _metadata_field(definition)
    files[f"{base}/permissionsets/{PERMISSION_SET}.permissionset-meta.xml"] = _permission_set(
        fields, mapping_types, written
    )
    for relative, text in files.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return [Path(p) for p in files]


def fields_table(compiled: CompiledSet, describe: Describe) -> str:
    """The custom fields set-up creates, as a Markdown table (the README's real-org section)."""
    lines = ["| object | field | type |", "|---|---|---|"]
    for field in created_fields(read_fields(compiled, describe)):
        lines.append(f"| `{field.sobject}` | `{field.name}` | {_type_label(field.describe)} |")
    return "\n".join(lines)


# ---- XML ----------------------------------------------------------------------------------------


def _xml(root: str, body: Iterable[str]) -> str:
    inner = "".join(f"    {line}\n" for line in body)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACE}">\n{inner}</{root}>\n'
    )


def _tag(name: str, value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else escape(str(value))
    return f"<{name}>{text}</{name}>"


def _label(name: str) -> str:
    return name.removesuffix("__c").removesuffix("__mdt").replace("_", " ")


_TYPES = {
    "string": "Text",
    "boolean": "Checkbox",
    "double": "Number",
    "int": "Number",
    "currency": "Currency",
    "percent": "Percent",
    "date": "Date",
    "datetime": "DateTime",
    "picklist": "Picklist",
    "email": "Email",
    "phone": "Phone",
    "url": "Url",
    "reference": "Lookup",
}


def _metadata_api_type(entry: Mapping[str, Any]) -> str:
    if entry["type"] == "textarea":
        return "LongTextArea" if int(entry.get("length") or 0) > 255 else "TextArea"
    return _TYPES.get(entry["type"], "Text")


def _type_label(entry: Mapping[str, Any]) -> str:
    kind = _metadata_api_type(entry)
    if entry.get("calculatedFormula"):
        return f"Formula({kind}): {entry['calculatedFormula']}"
    if kind == "Lookup":
        return f"Lookup({entry['referenceTo'][0]})"
    if kind in ("Text", "LongTextArea"):
        return f"{kind}({entry.get('length') or 255})"
    if kind == "Picklist":
        return "Picklist(" + ", ".join(v["value"] for v in entry.get("picklistValues", [])) + ")"
    return kind


def _custom_field(entry: Mapping[str, Any]) -> str:
    kind = _metadata_api_type(entry)
    body = [
        _tag("fullName", entry["name"]),
        _tag("label", entry.get("label") or _label(entry["name"])),
        _tag("type", kind),
    ]
    if entry.get("calculatedFormula"):
        body.append(_tag("formula", entry["calculatedFormula"]))
    elif kind == "Checkbox":
        body.append(_tag("defaultValue", False))
    else:
        body.append(_tag("required", not entry.get("nillable", True)))
    if kind in ("Text", "LongTextArea"):
        body.append(_tag("length", entry.get("length") or 255))
    if kind == "LongTextArea":
        body.append(_tag("visibleLines", 3))
    if kind in ("Number", "Currency", "Percent"):
        body += [
            _tag("precision", entry.get("precision") or 18),
            _tag("scale", entry.get("scale") or 0),
        ]
    if kind == "Picklist":
        values = "".join(
            f"<value>{_tag('fullName', v['value'])}{_tag('default', False)}"
            f"{_tag('label', v['label'])}</value>"
            for v in entry.get("picklistValues", [])
        )
        body.append(
            f"<valueSet><restricted>true</restricted><valueSetDefinition>{_tag('sorted', False)}"
            f"{values}</valueSetDefinition></valueSet>"
        )
    if kind == "Lookup":
        relationship = entry["relationshipName"]
        body += [
            _tag("referenceTo", entry["referenceTo"][0]),
            _tag("relationshipName", relationship.removesuffix("__r")),
            _tag("relationshipLabel", _label(relationship.removesuffix("__r"))),
            _tag("deleteConstraint", "SetNull"),
        ]
    return _xml("CustomField", body)


def _custom_object(described: Mapping[str, Any]) -> str:
    label = described.get("label") or _label(described["name"])
    return _xml(
        "CustomObject",
        [
            _tag("label", label),
            _tag("pluralLabel", described.get("labelPlural") or f"{label}s"),
            f"<nameField>{_tag('label', f'{label} Name')}{_tag('type', 'Text')}</nameField>",
            _tag("deploymentStatus", "Deployed"),
            _tag("sharingModel", "ReadWrite"),
        ],
    )


def _metadata_type(name: str) -> str:
    label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name.removesuffix("__mdt"))
    return _xml(
        "CustomObject",
        [_tag("label", label), _tag("pluralLabel", f"{label}s"), _tag("visibility", "Public")],
    )


def _metadata_field(definition: MetadataField) -> str:
    body = [
        _tag("fullName", definition.name),
        _tag("label", _label(definition.name)),
        _tag("type", definition.type),
        _tag("fieldManageability", "DeveloperControlled"),
    ]
    if definition.type == "Checkbox":
        body.append(_tag("defaultValue", False))
    else:
        body.append(_tag("required", definition.required))
    if definition.type in ("Text", "LongTextArea"):
        body.append(_tag("length", definition.length))
    if definition.type == "LongTextArea":
        body.append(_tag("visibleLines", 3))
    if definition.type == "Picklist":
        values = "".join(
            f"<value>{_tag('fullName', v)}{_tag('default', False)}{_tag('label', v)}</value>"
            for v in definition.values
        )
        body.append(
            f"<valueSet><restricted>true</restricted><valueSetDefinition>{_tag('sorted', False)}"
            f"{values}</valueSetDefinition></valueSet>"
        )
    return _xml("CustomField", body)


def _permission_set(
    fields: Mapping[str, Mapping[str, ReadField]],
    mapping_types: Mapping[str, tuple[MetadataField, ...]],
    written: Sequence[ReadField] = (),
) -> str:
    body = [
        _tag("label", "m3sync Integration"),
        _tag(
            "description",
            "Read access for m3sync's integration user to exactly what its mappings read.",
        ),
        _tag("hasActivationRequired", False),
    ]
    for type_name in sorted(mapping_types):
        body.append(
            f"<customMetadataTypeAccess>{_tag('enabled', True)}{_tag('name', type_name)}"
            "</customMetadataTypeAccess>"
        )
    edited = {(f.sobject, f.name) for f in written}
    granted_fields = {s: set(by_name) for s, by_name in fields.items()}
    for sobject, name in edited:
        granted_fields.setdefault(sobject, set()).add(name)
    for sobject in sorted(granted_fields):
        for name in sorted(granted_fields[sobject]):
            entry = fields.get(sobject, {}).get(name)
            if (sobject, name) not in edited and not (entry and entry.permissible):
                continue
            editable = (sobject, name) in edited
            granted = _tag("field", f"{sobject}.{name}") + _tag("readable", True)
            body.append(
                f"<fieldPermissions>{_tag('editable', editable)}{granted}</fieldPermissions>"
            )
    # Read and View All, and Edit for the write-back: tags in the order the Metadata API writes.
    flags = {
        "allowCreate": False,
        "allowDelete": False,
        "allowEdit": False,
        "allowRead": True,
        "modifyAllRecords": False,
    }
    for sobject in fields:
        # Edit, where statuses are written back; never create or delete.
        edits = {**flags, "allowEdit": any(s == sobject for s, _ in edited)}
        granted = "".join(_tag(flag, value) for flag, value in edits.items())
        body.append(
            f"<objectPermissions>{granted}{_tag('object', sobject)}"
            f"{_tag('viewAllRecords', True)}</objectPermissions>"
        )
    return _xml("PermissionSet", body)
