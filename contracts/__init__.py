"""The wire contract shared by edge and cloud.

Topic builders/parsers, versioned message models, the metric catalog (units and
sign conventions), signing, and stream bookkeeping. Imports nothing else of the
project, so both sides can depend on it without depending on each other.
"""

SCHEMA_VERSION = 1

__all__ = ["SCHEMA_VERSION"]
