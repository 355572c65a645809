"""SOQL for the sandbox org: a parser for the subset it serves and a translator to DuckDB SQL."""

from pipeline.sandbox.salesforce.soql.ast import Query
from pipeline.sandbox.salesforce.soql.errors import SoqlError
from pipeline.sandbox.salesforce.soql.parser import parse
from pipeline.sandbox.salesforce.soql.translate import CompiledQuery, compile_query

__all__ = ["CompiledQuery", "Query", "SoqlError", "compile_query", "parse"]
