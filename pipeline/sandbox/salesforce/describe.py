"""Describe responses (global and per object) rendered from the integration user's schema view."""

from __future__ import annotations

from functools import cache
from typing import Any

from pipeline.salesforce.fields import SYSTEM_FIELDS
from pipeline.sandbox.salesforce.schema import NUMBER_TYPES, Field, OrgSchema, SObject, org_schema

_PRECISION = {"currency": (18, 2), "double": (18, 2), "percent": (3, 2)}


def _urls(obj: SObject, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def _object_flags(obj: SObject) -> dict[str, Any]:
    writable = not obj.custom_metadata and obj.name != "Organization"
    return {
        "custom": obj.custom,
        "customSetting": False,
        "queryable": True,
        "retrieveable": True,
        "replicateable": not obj.custom_metadata,
        "createable": writable,
        "updateable": writable,
        "deletable": writable,
        "searchable": not obj.custom_metadata,
        "triggerable": not obj.custom_metadata,
        "layoutable": not obj.custom_metadata,
    }


def global_describe(schema: OrgSchema, version: str) -> dict[str, Any]:
    sobjects = [
        {
            "name": obj.name,
            "label": obj.label or obj.name,
            "labelPlural": obj.label_plural or (obj.label or obj.name) + "s",
            "keyPrefix": obj.key_prefix or None,
            **_object_flags(obj),
            "urls": _urls(obj, version),
        }
        for obj in schema.objects
    ]
    return {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}


def _field(obj: SObject, f: Field, read_only: frozenset[str]) -> dict[str, Any]:
    system = f.name in SYSTEM_FIELDS
    writable = not (system or f.calculated or f.auto_number or obj.custom_metadata)
    writable = writable and f"{obj.name}.{f.name}" not in read_only  # field-level security
    precision, scale = _PRECISION.get(f.type, (0, 0))
    scale = f.scale if f.scale is not None else scale
    return {
        "name": f.name,
        "label": f.label or f.name,
        "type": f.type,
        "soapType": f.soap_type,
        "length": f.length if f.is_text else 0,
        "byteLength": f.length * 3 if f.is_text else 0,
        "precision": precision,
        "scale": scale,
        "digits": 9 if f.type == "int" else 0,
        "nillable": f.nillable,
        "custom": f.custom,
        "calculated": f.calculated,
        "calculatedFormula": f.formula or None,
        "autoNumber": f.auto_number,
        "createable": writable,
        "updateable": writable,
        "filterable": True,
        "sortable": f.type != "textarea",
        "groupable": f.type not in NUMBER_TYPES and f.type != "textarea",
        "unique": f.name == "Id",
        "externalId": f.external_id,
        "idLookup": f.name == "Id" or f.external_id,
        "nameField": f.name == "Name",
        "defaultedOnCreate": system or f.type == "boolean",
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "picklistValues": [
            {"value": v, "label": v, "active": True, "defaultValue": False} for v in f.picklist
        ],
        "restrictedPicklist": f.restricted_picklist,
    }


def object_describe(
    schema: OrgSchema, obj: SObject, version: str, read_only: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """One object's describe; `read_only` names the fields (`Object.Field`) the user can read
    but not edit, which describe shows neither createable nor updateable."""
    children = [
        {
            "childSObject": child.name,
            "field": f.name,
            "relationshipName": None,
            "cascadeDelete": False,
        }
        for child, f in schema.child_relationships(obj.name)
    ]
    return {
        "name": obj.name,
        "label": obj.label or obj.name,
        "labelPlural": obj.label_plural or (obj.label or obj.name) + "s",
        "keyPrefix": obj.key_prefix or None,
        **_object_flags(obj),
        "fields": [_field(obj, f, read_only) for f in obj.fields],
        "childRelationships": children,
        "recordTypeInfos": [],
        "urls": _urls(obj, version),
    }


def demo_describe(name: str, version: str = "65.0") -> dict[str, Any]:
    """The integration user's describe of the embedded demo org, without a server: the CPQ org,
    whose objects are the demo's and CPQ's."""
    schema = _demo_visible()
    obj = schema.sobject(name)
    if obj is None:
        raise KeyError(f"sObject type '{name}' is not supported")
    return object_describe(schema, obj, version)


@cache
def _demo_visible() -> OrgSchema:
    return org_schema("cpq").visible_to_integration_user()
