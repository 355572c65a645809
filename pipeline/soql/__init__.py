"""SOQL as Salesforce writes it: a parser to typed syntax trees, and Salesforce-style errors.

The sandbox org translates whole queries (`pipeline.sandbox.salesforce.soql`); the mapping
compiler translates the conditions of mapping `where` clauses.
"""
