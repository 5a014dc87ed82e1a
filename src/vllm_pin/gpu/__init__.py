"""The GPU sweep: every attention backend x cudagraph mode of a release, in isolated processes,
turned into observation files under matrix/observed/.
"""

__all__ = [
    "consistency",
    "log",
    "machine",
    "observation",
    "outcome",
    "plan",
    "process",
    "scheduler",
    "sweep",
    "work_dir",
]
