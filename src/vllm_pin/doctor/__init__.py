"""Diagnosis: a log or traceback mapped to its cause and the fix valid for the installed
versions: curated signatures (diagnose), analyzers that answer from the matrix (analyzers),
linear log lookups (logtext) and the ranking of all matches (ranking)."""

__all__ = [
    "analyzers",
    "diagnose",
    "logtext",
    "ranking",
]
