"""Provisioning: build ``.envs/<name>`` with uv from the generated lock, verify it and run the
smoke test in it; the nox sessions and the CI matrix come from here.
"""

__all__ = [
    "build",
    "checks",
    "ci_matrix",
    "envs",
    "lock",
    "pythons",
    "report",
    "session",
]
