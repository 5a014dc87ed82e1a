#!/usr/bin/env python3
"""Site speed and size: `vllm-pin site -o DIR` against `vllm-pin show 0.10.1.1`, same run.

    python benchmarks/site_speed.py [--repeat 3]

Every command runs as a fresh process of this interpreter, so the baseline (start, load the
matrix, describe one release) is measured under the same load as the site. Reported: median
wall time and CPU time (user + sys of the child; on a shared machine wall time also measures
the neighbours), the ratio to the baseline, and the size of the site. Targets: under 3 s and
under 5 MB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 3.0
TARGET_BYTES = 5_000_000


def measure(command: Sequence[str], repeat: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds) of ``command``; a failure aborts the benchmark."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            sys.exit(f"bench: `{' '.join(command)}` exited {proc.returncode}: {proc.stderr[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args(argv)
    cli = [sys.executable, "-m", "vllm_pin"]
    base_wall, base_cpu = measure([*cli, "show", "0.10.1.1"], args.repeat)
    with tempfile.TemporaryDirectory(prefix="vllm-pin-site-") as tmp:
        out = Path(tmp) / "site"
        wall, cpu = measure([*cli, "site", "-o", str(out)], args.repeat)
        files = [p for p in out.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        biggest = max(files, key=lambda p: p.stat().st_size)
        biggest_line = f"{biggest.relative_to(out)} {biggest.stat().st_size / 1e3:.0f} kB"
    print(f"show 0.10.1.1   {base_wall:6.3f} s wall {base_cpu:6.3f} s CPU  (baseline)")
    print(
        f"site -o DIR     {wall:6.3f} s wall {cpu:6.3f} s CPU  = {wall / base_wall:4.1f}x baseline "
        f"(target < {TARGET_S:.0f} s)"
    )
    print(
        f"site size       {size / 1e6:6.2f} MB in {len(files)} files, largest {biggest_line} "
        f"(target < {TARGET_BYTES / 1e6:.0f} MB)"
    )
    met = cpu < TARGET_S and size < TARGET_BYTES  # CPU: wall time here includes neighbours
    print(f"site: {'meets' if met else 'MISSES'} the targets")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
