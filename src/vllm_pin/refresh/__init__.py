"""Refresh: the package index read into releases.toml and timeline.toml, deterministically,
writing only when asked.
"""

__all__ = [
    "anomalies",
    "glibc_scan",
    "memo",
    "releases",
    "rows",
    "summary",
    "timeline_scan",
    "wheel_cache",
]
