"""Verification: an installed environment or a requirement set checked against vLLM's own
requirements, the matrix, the host and the VLLM_* variables the release knows.
"""

__all__ = [
    "checks",
    "env",
    "envvars",
    "imports",
    "report",
]
