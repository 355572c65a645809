"""Sync statuses written back to Salesforce, where sales operations look."""
