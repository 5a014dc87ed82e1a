"""Pinning: requirements-vllm.txt, hashed locks, pyproject extras and envs/, from the matrix.

Reads the committed matrix (no network) except where a lock or the pyproject clash check
runs uv. Takes :class:`vllm_pin.pin.options.PinOptions` or plain values (no parsed CLI);
:func:`vllm_pin.pin.generate.generate` is what `vllm-pin pin` runs.
"""

__all__ = [
    "cutoff",
    "envs_dir",
    "generate",
    "lock",
    "lockfile",
    "options",
    "pins",
    "pyproject_edit",
    "pyproject_extra",
    "stale",
]
