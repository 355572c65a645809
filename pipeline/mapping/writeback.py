"""Where each Salesforce object's sync status is written back (`mappings/writeback.yaml`).

As m3ter's own connector does, a record that m3sync takes carries on itself whether it reached
m3ter: a status in the connector's vocabulary, the time of the outcome, the reason when it did
not bill, and the id of the m3ter object it made. Each row of the table names one object and
the fields that hold those; the fields are m3sync's own, so their definitions are declared here
(`ROLE_FIELDS`), for `m3sync setup salesforce` to create and for the sandbox org to hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

WRITEBACK_FILE: Final = "writeback.yaml"

# The connector's `syncStatus__c` values.
Status = Literal["Not Synced", "Success", "Failed", "Pending Deletion", "Delete Failed"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

Role = Literal["status", "time", "message", "m3ter_id"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
# Each role's field, as a describe entry: what set-up creates and what a write must fit.
ROLE_FIELDS: Final[dict[Role, dict[str, Any]]] = {
    "status": {
        "type": "picklist",
        "length": 255,
        "label": "m3ter Sync Status",
        "picklistValues": [{"value": s, "label": s} for s in STATUSES],
    },
    "time": {"type": "datetime", "length": 0, "label": "m3ter Last Synced"},
    "message": {"type": "textarea", "length": 1000, "label": "m3ter Sync Message"},
    "m3ter_id": {"type": "string", "length": 36, "label": "m3ter Id"},
}
_KEYS: Final = ("object", *ROLES, "key", "active")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class StatusFields:
    """One object's write-back: the field of each role (`None`: not written) and the key.

    `key` is the field a write finds the record by: `Id` (an update) or an external id field
    (an upsert on it, for an org whose integrations match records that way).
    """

    object: str
    status: str
    time: str | None = None
    message: str | None = None
    m3ter_id: str | None = None
    key: str = "Id"
    active: bool = True
    where: str = field(default=WRITEBACK_FILE, compare=False)  # `file:line`, for messages
    message_length: int = field(default=1000, compare=False)  # the org's length of `message`

    def fields(self) -> dict[Role, str]:
        """Role -> field, for the roles this object writes."""
        named = {role: getattr(self, role) for role in ROLES}
        return {role: name for role, name in named.items() if name}


def row_problems(data: Mapping[str, Any]) -> list[str]:
    """Every rule one row breaks, each starting with the key it is about."""
    problems = [f"{key}: unknown key {key!r}" for key in data if key not in _KEYS]
    for key in ("object", "status"):
        if data.get(key) in (None, ""):
            problems.append(f"{key}: missing key {key!r}")
    for key in ("object", *ROLES, "key"):
        value = data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            problems.append(f"{key}: {key!r} must be a field's API name, not {value!r}")
    named = [data[r] for r in ROLES if isinstance(data.get(r), str) and data.get(r)]
    for name in sorted({n for n in named if named.count(n) > 1}):
        problems.append(f"{name}: one field cannot hold two roles ({name!r})")
    active = data.get("active")
    if active is not None and not isinstance(active, bool):
        problems.append(f"active: 'active' must be true or false, not {active!r}")
    return problems


def parse_rows(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
) -> tuple[tuple[StatusFields, ...], list[str]]:
    """The table from (where, row) pairs, and every problem, prefixed by where it is and the
    row's object; two active rows for one object are a problem too."""
    parsed: list[StatusFields] = []
    problems: list[str] = []
    for where, data in rows:
        label = f"{where}: write-back of {data.get('object')!r}"
        found = row_problems(data)
        if found:
            problems += [f"{label}: {p}" for p in found]
            continue
        values = {k: data[k] for k in _KEYS if data.get(k) not in (None, "")}
        row = StatusFields(**values, where=where)
        if row.active and any(p.active and p.object.lower() == row.object.lower() for p in parsed):
            problems.append(f"{label}: object: {row.object} has another write-back row; keep one")
        parsed.append(row)
    return tuple(parsed), problems


# The describe types a role's field may have.
_ROLE_TYPES: Final[dict[Role, frozenset[str]]] = {
    "status": frozenset({"picklist", "string"}),
    "time": frozenset({"datetime"}),
    "message": frozenset({"textarea", "string"}),
    "m3ter_id": frozenset({"string"}),
}


def compile_rows(
    rows: Iterable[StatusFields], mapped: Iterable[str], describe: Callable[[str], dict[str, Any]]
) -> tuple[tuple[StatusFields, ...], list[str]]:
    """The active rows checked against the org: each object mapped, each field present,
    writable by the integration user and of its role's type, the key the Id or an external
    id. Returns the rows with the org's spelling of each name, and every problem."""
    mapped_names = {name.lower(): name for name in mapped}
    compiled: list[StatusFields] = []
    problems: list[str] = []
    for row in rows:
        if not row.active:
            continue
        label = f"{row.where}: write-back of {row.object!r}"
        name = mapped_names.get(row.object.lower())
        if name is None:
            problems.append(f"{label}: object: no active mapping takes {row.object}")
            continue
        described = {f["name"].lower(): f for f in describe(name)["fields"]}
        found: dict[str, str] = {}
        length = 1000
        for role, wanted in [*row.fields().items(), ("key", row.key)]:
            entry = described.get(wanted.lower())
            if entry is None:
                problems.append(f"{label}: {role}: {name} has no field {wanted!r}")
                continue
            found[role] = entry["name"]
            if role == "message":
                length = int(entry.get("length") or length)
            if role == "key":
                if entry["name"] != "Id" and not entry.get("externalId"):
                    problems.append(
                        f"{label}: key: {name}.{entry['name']} is neither Id nor an external id"
                    )
                continue
            if not entry.get("updateable", False):
                problems.append(
                    f"{label}: {role}: {name}.{entry['name']} is not writable by the "
                    "integration user (field-level security, or a formula)"
                )
            if entry["type"] not in _ROLE_TYPES[role]:  # type: ignore[index]
                kinds = " or ".join(sorted(_ROLE_TYPES[role]))  # type: ignore[index]
                problems.append(
                    f"{label}: {role}: {name}.{entry['name']} is a {entry['type']} field; "
                    f"the {role} needs {kinds}"
                )
        if len(found) == len(row.fields()) + 1:
            key = found.pop("key")
            compiled.append(
                StatusFields(name, key=key, where=row.where, message_length=length, **found)
            )
    return tuple(compiled), problems
