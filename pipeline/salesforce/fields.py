"""Facts about Salesforce fields that hold in every org."""

from __future__ import annotations

from typing import Final

# Fields Salesforce sets on every record: read-only in describe, refused in an insert, and never
# granted by a permission set.
SYSTEM_FIELDS: Final = frozenset(
    {
        "Id",
        "IsDeleted",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
    }
)
