"""Scripts that run inside another interpreter (a target venv, a GPU worker).

Standard library only at import time, and nothing of the rest of the project: vllm-pin need
not be installed where they run. They are run by file path or ``python -m``.
"""

__all__ = [
    "gpu_worker",
    "imports_check",
    "inspect_env",
    "smoke",
]
