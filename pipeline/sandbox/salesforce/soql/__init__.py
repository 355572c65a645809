"""SOQL for the sandbox org: the translator of parsed queries to DuckDB SQL."""

from pipeline.sandbox.salesforce.soql.translate import CompiledQuery, compile_query
from pipeline.soql.ast import Query
from pipeline.soql.errors import SoqlError
from pipeline.soql.parser import parse

__all__ = ["CompiledQuery", "Query", "SoqlError", "compile_query", "parse"]
