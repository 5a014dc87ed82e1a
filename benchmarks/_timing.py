"""Shared by the benchmarks: time fresh processes against baselines measured in the same run.

Each command runs `repeat` times as a fresh process; the best (minimum) wall time and CPU
time (user + sys of that child, from getrusage) are kept, as timeit does: on a machine shared
with other work, the best run is the one least disturbed. Both are printed, each also as a
ratio of the baseline, and a target is met when either the wall or the CPU time meets it.
`measure_rounds` runs the commands and their baseline in turn, round after round, so that a
slow spell of the machine (seen here: the same command 30% slower for a minute) falls on all
of them alike instead of on whichever was being measured then.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: children run as a user's shell would: with bytecode caching on (no recompiling every run)
CHILD_ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPATH": str(ROOT / "src"),
}


@dataclass(frozen=True)
class Sample:
    """Best of N runs of one command: wall seconds and CPU seconds (user + sys)."""

    wall: float
    cpu: float

    def minus(self, other: Sample) -> Sample:
        return Sample(self.wall - other.wall, self.cpu - other.cpu)


def measure(
    command: Sequence[str],
    repeat: int,
    *,
    ok: Sequence[int] = (0,),
    stdin: bytes | None = None,
) -> Sample:
    """Best wall and CPU time of ``command``; a run exiting outside ``ok`` aborts."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            command, input=stdin, capture_output=True, check=False, cwd=ROOT, env=CHILD_ENV
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode not in ok:
            err = proc.stderr.decode(errors="replace")[-500:]
            sys.exit(f"bench: `{' '.join(command)}` exited {proc.returncode}: {err}")
    return Sample(min(walls), min(cpus))


@dataclass(frozen=True)
class Job:
    """One command to time, the exit codes that count as a complete run, and its stdin."""

    command: Sequence[str]
    ok: Sequence[int] = (0,)
    stdin: bytes | None = None


#: `python -c pass` with this interpreter: the cost of starting any command
BASELINE = Job((sys.executable, "-c", "pass"))


def measure_rounds(jobs: Sequence[Job], repeat: int) -> list[Sample]:
    """Best wall and CPU time of each job, the jobs run in turn ``repeat`` rounds over."""
    runs: list[list[Sample]] = [[] for _ in jobs]
    for _ in range(repeat):
        for job, samples in zip(jobs, runs):
            samples.append(measure(job.command, 1, ok=job.ok, stdin=job.stdin))
    return [Sample(min(s.wall for s in samples), min(s.cpu for s in samples)) for samples in runs]


def uv_compile(vllm: str, repeat: int) -> Sample | None:
    """`uv pip compile vllm==X --no-deps` (what the user's installer costs); None without uv."""
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        return None
    command = [uv, "pip", "compile", "-", "--no-deps", "-q", "--python-version", "3.12"]
    return measure(command, repeat, stdin=f"vllm=={vllm}\n".encode())


def line(label: str, s: Sample, base: Sample, extra: str = "") -> str:
    """One result: wall and CPU, each as a ratio of the baseline."""
    return (
        f"{label:<30} wall {s.wall:6.3f} s ({s.wall / base.wall:5.1f}x)  "
        f"cpu {s.cpu:6.3f} s ({s.cpu / max(base.cpu, 1e-6):5.1f}x){extra}"
    )


def verdict(label: str, beyond_start: Sample, target: float) -> tuple[str, bool]:
    """``label`` against ``target`` seconds beyond interpreter start (see the module doc)."""
    met = beyond_start.wall <= target or beyond_start.cpu <= target
    how = (
        f"wall {beyond_start.wall:+.3f} s, cpu {beyond_start.cpu:+.3f} s beyond start; "
        f"target <= {target:.2f} s"
    )
    return f"{label}: {'meets' if met else 'MISSES'} the target ({how})", met
