#!/usr/bin/env python3
"""Pin speed: one `pin --vllm X` and `pin --all --check`, against `python -c pass` (and uv).

    python benchmarks/pin_speed.py [--vllm 0.10.1.1] [--repeat 7] [--uv]

Everything runs as a fresh process of this interpreter, in one run, so the baseline (bare
interpreter start) is measured under the same load as the pins (see _timing.py for how wall
and CPU time are judged). The matrix parse cache is warmed first, as after any earlier
command; `--cold` times the first run after an edit of the matrix (cache off). `--all
--check` runs on a temporary copy of envs/; `--all --no-lock` rewrites that copy.
Everything is offline; `--uv` adds `uv pip compile vllm==X --no-deps` (network) as a
second baseline.
Targets (issue 15): one pin <= 0.15 s beyond interpreter start; `pin --all --check` <= 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _timing import (
    BASELINE,
    CHILD_ENV,
    ROOT,
    Job,
    line,
    measure,
    measure_rounds,
    uv_compile,
    verdict,
)

TARGET_ONE_S = 0.15
TARGET_CHECK_S = 0.30


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm", default="0.10.1.1", help="release to pin (default 0.10.1.1)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (best of)")
    parser.add_argument("--cold", action="store_true", help="matrix parse cache off")
    parser.add_argument("--uv", action="store_true", help="also time uv pip compile (network)")
    args = parser.parse_args(argv)
    if args.cold:
        CHILD_ENV["VLLM_PIN_MATRIX_CACHE"] = "off"
    pin = [sys.executable, "-m", "vllm_pin", "pin"]
    with tempfile.TemporaryDirectory(prefix="vllm-pin-bench-") as tmp:
        envs = Path(tmp) / "envs"
        shutil.copytree(ROOT / "envs", envs)
        one_cmd = [*pin, "--vllm", args.vllm, "-o", str(Path(tmp) / "req.txt")]
        measure(one_cmd, 1)  # warm the parse and bytecode caches
        # exit 1 = stale envs/: still a complete check, reported below
        check_cmd = [*pin, "--all", "--check", "--envs-dir", str(envs)]
        base, one, check = measure_rounds(
            [BASELINE, Job(one_cmd), Job(check_cmd, ok=(0, 1))], args.repeat
        )
        stale = subprocess.run(check_cmd, capture_output=True, check=False, env=CHILD_ENV)
        regen = measure([*pin, "--all", "--no-lock", "--envs-dir", str(envs)], args.repeat)
    uv = uv_compile(args.vllm, max(1, args.repeat // 3)) if args.uv else None
    cache = "cache off" if args.cold else "warm parse cache"
    print(f"pin speed, best of {args.repeat} runs, {os.cpu_count()} CPUs, {cache}")
    print(line("python -c pass (baseline)", base, base))
    if uv is not None:
        print(line(f"uv pip compile vllm=={args.vllm}", uv, base, "  (no-deps, baseline 2)"))
        print(f"  one pin takes {one.wall / uv.wall:.2f}x the wall time of uv pip compile")
    print(line(f"pin --vllm {args.vllm}", one, base))
    state = "up to date" if stale.returncode == 0 else "STALE envs/"
    print(line("pin --all --check", check, base, f"  ({state})"))
    print(line("pin --all --no-lock", regen, base))
    met = True
    for label, sample, target in (
        ("one pin", one.minus(base), TARGET_ONE_S),
        ("pin --all --check", check.minus(base), TARGET_CHECK_S),
    ):
        text, ok = verdict(label, sample, target)
        print(text)
        met = met and ok
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
