"""The command layer: one module per `vllm-pin` verb, the only place argparse appears.

Each module has ``configure(parser)`` and ``run(args) -> int``; it turns the parsed Namespace
into typed options and passes plain values down. ``_options`` defines shared options once.
"""

__all__ = [
    "ci_matrix",
    "doctor",
    "fit",
    "gpu_sweep",
    "matrix",
    "pin",
    "provision",
    "refresh",
    "show",
    "smoke",
    "timeline",
    "verify",
]
