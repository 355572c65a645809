"""Mappings from Salesforce records to m3ter objects: specs, segment attributes, compilation."""
