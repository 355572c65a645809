"""The transform stage: raw Salesforce rows to staged m3ter objects, validated."""
