#!/usr/bin/env python3
"""Pin speed: one `tools/pin.py --vllm 0.10.1.1` and `pin --all --check`, against `python -c pass`.

    python benchmarks/pin_speed.py [--vllm 0.10.1.1] [--repeat 5]

Everything runs as a fresh process of this interpreter, in one run, so the baseline (bare
interpreter start) is measured under the same load as the pins. Medians are reported; the
target is one pin under 1 s, and under 0.3 s beyond interpreter start. `--all --check` runs
on a temporary copy of envs/ (it writes nothing, but a copy keeps the checkout out of it),
then `--all --no-lock` rewrites that copy's requirements and env.toml files. Everything is
offline: pin reads the committed matrix and none of these runs uv. Re-locking every env
(`pin --all --relock`, network) is not timed here: 61-72 s on 2026-11-22 with -j 4.
Measured here on 2026-11-22: baseline 0.008 s, one pin 0.21 s, --all --check 0.29 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 1.0
TARGET_BEYOND_START_S = 0.3


def median_seconds(command: Sequence[str], repeat: int, *, ok: Sequence[int] = (0,)) -> float:
    """Median wall time of ``command``; a run exiting outside ``ok`` aborts the benchmark."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if proc.returncode not in ok:
            sys.exit(f"bench: `{' '.join(command)}` exited {proc.returncode}: {proc.stderr[-500:]}")
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm", default="0.10.1.1", help="release to pin (default 0.10.1.1)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args(argv)
    python = sys.executable
    pin = [python, str(ROOT / "tools" / "pin.py")]
    with tempfile.TemporaryDirectory(prefix="vllm-pin-bench-") as tmp:
        envs = Path(tmp) / "envs"
        shutil.copytree(ROOT / "envs", envs)
        baseline = median_seconds([python, "-c", "pass"], args.repeat)
        one = median_seconds(
            [*pin, "--vllm", args.vllm, "-o", str(Path(tmp) / "req.txt")], args.repeat
        )
        # exit 1 = stale envs/: still a complete check, reported below
        check_cmd = [*pin, "--all", "--check", "--envs-dir", str(envs)]
        check = median_seconds(check_cmd, max(1, args.repeat // 2), ok=(0, 1))
        stale = subprocess.run(check_cmd, capture_output=True, check=False, cwd=ROOT).returncode
        regen = median_seconds(
            [*pin, "--all", "--no-lock", "--envs-dir", str(envs)], max(1, args.repeat // 2)
        )
    print(f"python -c pass          {baseline:6.3f} s  (baseline, median of {args.repeat})")
    print(
        f"pin --vllm {args.vllm:<12} {one:6.3f} s  = {one / baseline:4.1f}x baseline, "
        f"{one - baseline:+.3f} s beyond start "
        f"(target < {TARGET_S:.1f} s, < {TARGET_BEYOND_START_S:.1f} s beyond start)"
    )
    print(
        f"pin --all --check       {check:6.3f} s  = {check / baseline:4.1f}x baseline "
        f"({'up to date' if stale == 0 else 'STALE envs/'})"
    )
    print(f"pin --all --no-lock     {regen:6.3f} s  = {regen / baseline:4.1f}x baseline")
    met = one < TARGET_S and one - baseline < TARGET_BEYOND_START_S
    print(f"one pin: {'meets' if met else 'MISSES'} the target")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
