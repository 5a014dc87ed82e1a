"""Diagnosis: a log or traceback mapped to its cause and the fix valid for the installed
versions."""

__all__ = [
    "diagnose",
]
