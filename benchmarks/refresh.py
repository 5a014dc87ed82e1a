#!/usr/bin/env python3
"""Time a full refresh cold (empty cache) and warm, and count the bytes it fetched.

Targets (issue 2, on the 2-core machines): cold <= 20 s, warm with nothing new <= 2 s, bytes
fetched <= 1% of the size of the wheels whose metadata was read. Nothing is written to the
matrix: the new texts are only built. `--no-timeline` leaves out timeline.toml (the range
reads of vllm/envs.py etc.), to time the releases.toml part alone. The glibc floors (the ELF
`.gnu.version_r` of every library in each vLLM wheel, range-read and inflated only up to the
section) are a stage of their own: its time, requests and bytes are printed apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from packaging.version import Version

from vllm_pin.index.pypi import DEFAULT_INDEX_URL, PyPIClient
from vllm_pin.index.wheels import group_by_version, package_wheel
from vllm_pin.matrix import releases_file
from vllm_pin.refresh import glibc_scan, timeline_scan
from vllm_pin.refresh import releases as refresh

TARGET_COLD_S = 20.0
TARGET_WARM_S = 2.0
TARGET_BYTES_RATIO = 0.01


GLIBC_STAGE = "library glibc versions"


@dataclass
class Stage:
    """One progress stage of a refresh: when it started and ended, and what it fetched."""

    seconds: float = 0.0
    bytes_fetched: int = 0
    requests: int = 0


@dataclass
class Run:
    seconds: float
    bytes_fetched: int
    requests: int
    wheel_bytes: int
    files: int
    stages: dict[str, Stage]


def stage_recorder(client: PyPIClient, stages: dict[str, Stage]) -> refresh.Progress:
    """A progress callback that notes each stage's time, bytes and requests."""
    started: dict[str, tuple[float, int, int]] = {}

    def note(stage: str, done: int, total: int) -> None:
        now = (time.perf_counter(), client.bytes_fetched, client.requests_made)
        if done == 0 or stage not in started:
            started[stage] = now
        if done == total:
            t, b, r = started[stage]
            stages[stage] = Stage(now[0] - t, now[1] - b, now[2] - r)

    return note


def full_refresh(client: PyPIClient, with_timeline: bool) -> Run:
    """What `refresh --check` does, minus printing: collect, render, and the timeline hook."""
    start = time.perf_counter()
    stages: dict[str, Stage] = {}
    result = refresh.collect(client, progress=stage_recorder(client, stages))
    releases_file.dumps(result.document)
    wheel_bytes = {f.sha256: f.size for f in result.metadata_files}
    if with_timeline:
        wheels = {v: m["x86_64"] for v, m in result.wheels.get("vllm", {}).items() if "x86_64" in m}
        timeline_scan.merged_text(client, wheels, None)  # a full refresh keeps no committed rows
        wheel_bytes.update({f.sha256: f.size for f in wheels.values()})
    return Run(
        time.perf_counter() - start,
        client.bytes_fetched,
        client.requests_made,
        sum(wheel_bytes.values()),
        len(wheel_bytes),
        stages,
    )


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def torch_floors(client: PyPIClient, versions: list[str]) -> int:
    """What refresh would cost and find if it read torch wheels' libraries as it reads vLLM's."""
    pages = group_by_version(client.project("torch"))
    for raw in versions:
        wheel = package_wheel(pages.get(Version(raw), []))
        if wheel is None:
            print(f"torch {raw}: no Linux wheel on the index")
            continue
        before, start = client.bytes_fetched, time.perf_counter()
        scan = glibc_scan.collect(client, [wheel.file])[wheel.file]
        floor = scan.floor
        print(
            f"torch {raw} {wheel.file.filename}: tag {wheel.min_glibc}, libraries "
            f"{f'{floor[0]} ({floor[1]})' if floor else 'not read'}; {len(scan.libraries)} read, "
            f"unread {list(scan.unread)}; {time.perf_counter() - start:.1f} s, "
            f"{(client.bytes_fetched - before) / 2**20:.1f} MiB of {wheel.file.size / 2**20:.0f}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--index-url", default=os.environ.get("VLLM_PIN_INDEX_URL") or DEFAULT_INDEX_URL
    )
    parser.add_argument("--no-timeline", action="store_true", help="time releases.toml only")
    parser.add_argument("--warm-runs", type=int, default=3, help="report the best of N warm runs")
    parser.add_argument(
        "--torch",
        metavar="VERSION[,VERSION]",
        help="instead: read the glibc floor of these torch versions' wheels (refresh does not)",
    )
    args = parser.parse_args(argv)
    if args.torch:
        with tempfile.TemporaryDirectory(prefix="vllm-pin-bench-") as tmp:
            client = PyPIClient(args.index_url, cache_dir=Path(tmp))
            return torch_floors(client, args.torch.split(","))
    with tempfile.TemporaryDirectory(prefix="vllm-pin-bench-") as tmp:
        cache = Path(tmp) / "cache"
        make: Callable[[], PyPIClient] = lambda: PyPIClient(args.index_url, cache_dir=cache)  # noqa: E731
        cold = full_refresh(make(), not args.no_timeline)
        warm = min(
            (full_refresh(make(), not args.no_timeline) for _ in range(args.warm_runs)),
            key=lambda r: r.seconds,
        )
    ratio = cold.bytes_fetched / cold.wheel_bytes
    scope = "releases.toml" if args.no_timeline else "releases.toml + timeline.toml"
    print(f"full refresh ({scope}) from {args.index_url}, {os.cpu_count()} CPUs")
    print(
        f"cold: {cold.seconds:6.2f} s  {cold.requests} requests  (target <= {TARGET_COLD_S:.0f} s: "
        f"{verdict(cold.seconds <= TARGET_COLD_S)}; ratio {cold.seconds / TARGET_COLD_S:.2f})"
    )
    print(
        f"warm: {warm.seconds:6.2f} s  {warm.requests} requests  (target <= {TARGET_WARM_S:.0f} s: "
        f"{verdict(warm.seconds <= TARGET_WARM_S)}; ratio {warm.seconds / TARGET_WARM_S:.2f})"
    )
    mib = f"{cold.bytes_fetched / 2**20:.1f} MiB"
    size = f"{cold.wheel_bytes / 2**30:.1f} GiB in the {cold.files} wheels read"
    target = f"target <= {TARGET_BYTES_RATIO:.0%}: {verdict(ratio <= TARGET_BYTES_RATIO)}"
    print(f"bytes fetched cold: {mib} of {size} = {ratio:.4%} ({target})")
    print(f"bytes fetched warm: {warm.bytes_fetched / 2**20:.2f} MiB (index pages only)")
    for label, run in (("cold", cold), ("warm", warm)):
        elf = run.stages.get(GLIBC_STAGE)
        if elf is not None:
            print(
                f"  of which glibc floors (ELF), {label}: {elf.seconds:6.2f} s  "
                f"{elf.requests} requests  {elf.bytes_fetched / 2**20:.1f} MiB "
                f"({elf.seconds / run.seconds:.0%} of the {label} time)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
