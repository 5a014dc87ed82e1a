#!/usr/bin/env python3
"""Site speed and size: `vllm-pin site -o DIR` against `vllm-pin show 0.10.1.1`, same run.

    python benchmarks/site_speed.py [--repeat 3]

Every command runs as a fresh process of this interpreter, in turn with the baseline (start,
load the matrix, describe one release; see _timing.py), so both see the same load. Reported:
the best wall time and CPU time (user + sys of the child; on a shared machine wall time
also measures the neighbours), the ratio to the baseline, and the size of the site. Targets:
under 3 s and under 5 MB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _timing import Job, measure_rounds

TARGET_S = 3.0
TARGET_BYTES = 5_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best of)")
    args = parser.parse_args(argv)
    cli = [sys.executable, "-m", "vllm_pin"]
    with tempfile.TemporaryDirectory(prefix="vllm-pin-site-") as tmp:
        out = Path(tmp) / "site"
        base, site = measure_rounds(
            [Job([*cli, "show", "0.10.1.1"]), Job([*cli, "site", "-o", str(out)])], args.repeat
        )
        base_wall, base_cpu, wall, cpu = base.wall, base.cpu, site.wall, site.cpu
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
