#!/usr/bin/env python3
"""Verify speed: `verify -r` of a 200-line set and `verify --python`, against `python -c pass`.

    python benchmarks/verify_speed.py [--vllm 0.10.1.1] [--repeat 7]

The 200-line set is the first 200 lines of envs/<series>/requirements.lock with its hash
lines dropped (pins and `# via` comments), written to a temporary file. `verify -r` also runs
on the whole hashed lock. `verify --python` inspects this interpreter's environment (one
subprocess; no vLLM installed here, so it reports that and exits 1, which is still a full
run of the checks that apply). Every run is a fresh process measured in the same run as the
baseline (see _timing.py); the matrix parse cache is warm, as after any earlier command.
Target (issue 15): `verify -r` of 200 lines <= 0.3 s beyond interpreter start.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _timing import BASELINE, ROOT, Job, line, measure, measure_rounds, verdict

TARGET_REQUIREMENTS_S = 0.30
LINES = 200


def two_hundred_lines(lock: Path) -> str:
    """The lock's first LINES lines once its `--hash` continuation lines are dropped."""
    kept = [
        ln.removesuffix(" \\")
        for ln in lock.read_text(encoding="utf-8").splitlines()
        if not ln.lstrip().startswith("--hash")
    ]
    return "\n".join(kept[:LINES]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm", default="0.10.1.1", help="release the set pins")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (best of)")
    args = parser.parse_args(argv)
    series = ".".join(args.vllm.split(".")[:2])
    lock = ROOT / "envs" / series / "requirements.lock"
    verify = [sys.executable, "-m", "vllm_pin", "verify"]
    with tempfile.TemporaryDirectory(prefix="vllm-pin-bench-") as tmp:
        small = Path(tmp) / "requirements.txt"
        small.write_text(two_hundred_lines(lock), encoding="utf-8")
        set_cmd = [*verify, "-r", str(small), "--vllm", args.vllm]
        measure(set_cmd, 1, ok=(0, 1))  # warm the parse and bytecode caches
        base, req, full, env = measure_rounds(
            [
                BASELINE,
                Job(set_cmd, ok=(0, 1)),
                Job([*verify, "-r", str(lock), "--vllm", args.vllm], ok=(0, 1)),
                Job([*verify, "--python", sys.executable], ok=(0, 1)),
            ],
            args.repeat,
        )
    print(f"verify speed, best of {args.repeat} runs, {os.cpu_count()} CPUs, warm parse cache")
    print(line("python -c pass (baseline)", base, base))
    print(line(f"verify -r ({LINES} lines)", req, base))
    full_lines = len(lock.read_text(encoding="utf-8").splitlines())
    print(line(f"verify -r ({full_lines}-line lock)", full, base))
    print(line("verify --python", env, base))
    text, met = verdict(f"verify -r of {LINES} lines", req.minus(base), TARGET_REQUIREMENTS_S)
    print(text)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
