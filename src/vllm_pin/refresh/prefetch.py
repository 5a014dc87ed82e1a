"""Refresh's wheel reading spread over processes, so a cold refresh uses more than one core.

A cold full refresh reads the facts of ~300 wheels (core metadata, the glibc versions their
libraries need, vLLM's knobs for the timeline) through ~2700 range requests, and parses what
comes back: central directories, ELF sections, vLLM's sources. That parsing and the HTTP layer
are Python that holds the GIL, so one process keeps one core busy however many requests are in
flight. `reading` hands shares of the wheels to worker processes (`python -m
vllm_pin.refresh.prefetch`, its settings on stdin); each reads its share into the wheel cache
exactly as refresh would, while this process reads its own share and refresh does what it can
meanwhile. Refresh then finds every fact in the cache.

A worker is only a head start: whatever it did not cache (it failed to start, was killed, or
met a broken wheel), refresh reads itself and reports any error as it always did.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from packaging.version import Version

import vllm_pin
from vllm_pin.errors import VllmPinError
from vllm_pin.index.pypi import METADATA_MEMBER, IndexFile, PyPIClient
from vllm_pin.refresh import glibc_scan, timeline_scan

__all__ = [
    "MAX_PROCESSES",
    "Latch",
    "default_processes",
    "fill",
    "reading",
    "shares",
]

#: more processes than this share the same ~2700 requests with little to gain
MAX_PROCESSES = 4
#: below this many wheels a worker costs more (start-up, its own connections) than it saves
MIN_WHEELS_PER_PROCESS = 8
#: what refresh does besides its share, as a fraction of all the wheels' work: the packages
#: pinned by the METADATA (`reading`), then the texts. Measured on cold refreshes of PyPI on
#: 2 CPUs: at 0.2 this process and its worker finish within a few tenths of a second of each
#: other, of ~9.5 s (at 0.1 this one finished a second after its worker)
REFRESH_BESIDES = 0.2
#: the command that runs a worker (a list, so a test can make one that fails)
WORKER = [sys.executable, "-m", "vllm_pin.refresh.prefetch"]

Tick = Callable[[], None]
#: what a worker says once its wheels' METADATA are cached
METADATA_LINE = b"metadata\n"


def default_processes() -> int:
    """One per CPU this process may run on, at most MAX_PROCESSES."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_PROCESSES))


def fill(
    client: PyPIClient,
    wheels: Sequence[IndexFile],
    timeline: Mapping[Version, IndexFile],
    done: Callable[[IndexFile], None] | None = None,
    metadata_read: Callable[[], None] | None = None,
) -> None:
    """Read these wheels' facts into the cache: the METADATA the index serves alone (PEP 658)
    beside the central directories, each directory walked once for what every scan of its
    wheel reads; then the ELF scan beside the timeline scan of the `timeline` wheels and the
    other METADATA, read out of the zips through their directories. `done` hears of each
    wheel whose ELF scan is cached, `metadata_read` once every METADATA is (or that part
    stopped). A broken wheel or index stops a part, quietly: the refresh that follows reads
    the rest, and reports the error."""
    served: Future[object] | None = None

    def read_metadata() -> None:
        try:
            if served is not None:
                served.result()
            client.map(client.core_metadata, wheels)  # the served ones are cached by now
        finally:
            if metadata_read is not None:
                metadata_read()

    with ThreadPoolExecutor(max_workers=3) as side:
        served = side.submit(client.map, client.served_core_metadata, wheels)
        jobs: list[Future[object]] = [served]
        try:
            sources = set(timeline.values())

            def select(f: IndexFile) -> None:
                selections = [glibc_scan.LIBRARIES]
                selections += [timeline_scan.SOURCES] if f in sources else []
                selections += [METADATA_MEMBER] if not f.core_metadata else []
                client.select(f, selections)

            client.map(select, wheels)
            jobs.append(side.submit(read_metadata))
            jobs.append(side.submit(timeline_scan.collect, client, timeline))
            glibc_scan.collect(client, wheels, done)
        except VllmPinError:
            pass  # refresh meets it again, and reports it
        finally:
            if len(jobs) == 1 and metadata_read is not None:
                metadata_read()  # the directories were not all read: nothing waits for more
        for job in jobs:
            with contextlib.suppress(VllmPinError):
                job.result()


def shares(
    wheels: Sequence[IndexFile], processes: int, head_start: float = 0.0
) -> list[list[IndexFile]]:
    """The wheels split into `processes` shares of about equal work, largest wheels first
    (the bytes of a wheel's libraries are what its scan reads through). The first share's
    process has `head_start` (a fraction of all the work) to do besides."""
    out: list[list[IndexFile]] = [[] for _ in range(processes)]
    load = [0.0] * processes
    load[0] = head_start * sum(max(f.size, 1) for f in wheels)
    for f in sorted(wheels, key=lambda f: (-f.size, f.filename)):
        least = load.index(min(load))
        out[least].append(f)
        load[least] += max(f.size, 1)
    return out


class Latch:
    """Opens once each of a number of processes has said so (or gone)."""

    def __init__(self, count: int) -> None:
        self._left = count
        self._lock = threading.Lock()
        self._open = threading.Event()
        if count <= 0:
            self._open.set()

    def count_down(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._open.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Until every process has counted down (or `timeout` seconds); whether it is open."""
        return self._open.wait(timeout)


@contextlib.contextmanager
def reading(
    client: PyPIClient,
    wheels: Sequence[IndexFile],
    timeline: Mapping[Version, IndexFile],
    processes: int,
    tick: Tick,
) -> Iterator[Latch]:
    """Read the wheels' facts into the cache on up to `processes` processes (this one
    included, in the background while the block runs); the block leaves when all are done.
    `tick` hears of each wheel done, from any of them, once per distinct wheel.

    The block gets a latch that opens once every METADATA of the wheels is cached (or its
    reading stopped). When the block fails, the client is cancelled (what is in flight ends,
    nothing new is sent) and the workers are stopped, so the error is not kept waiting."""
    # two statements: Python 3.9 has no parenthesised context managers
    with _shared(client, wheels, timeline, processes, tick) as share:  # noqa: SIM117
        with ThreadPoolExecutor(max_workers=1) as background:
            job = background.submit(
                fill,
                client,
                share.wheels,
                share.timeline,
                lambda _: tick(),
                share.metadata.count_down,
            )
            try:
                yield share.metadata
            except BaseException:
                client.cancel()
                raise
            job.result()


@dataclass
class _Share:
    """This process's share of the wheels, and the latch the workers count down."""

    wheels: list[IndexFile]
    timeline: dict[Version, IndexFile]
    metadata: Latch


@contextlib.contextmanager
def _shared(
    client: PyPIClient,
    wheels: Sequence[IndexFile],
    timeline: Mapping[Version, IndexFile],
    processes: int,
    tick: Tick,
) -> Iterator[_Share]:
    """Start the workers on their shares; yield this process's share; wait for the workers
    (stop them when the client was cancelled). The share's latch waits for this process and
    every worker to have read their METADATA."""
    wheels = list(dict.fromkeys(wheels))
    for _ in [f for f in wheels if not f.sha256]:  # the cache keeps only what a sha256 names:
        tick()  # refresh reads them itself
    wheels = [f for f in wheels if f.sha256]
    settings = client.settings()
    processes = min(processes, max(1, len(wheels) // MIN_WHEELS_PER_PROCESS))
    if settings is None or processes < 2:
        yield _Share(wheels, dict(timeline), Latch(1))
        return
    parts = shares(wheels, processes, REFRESH_BESIDES)
    latch = Latch(processes)
    workers = [_start(client, settings, part, timeline, tick, latch) for part in parts[1:]]
    try:
        own = set(parts[0])
        yield _Share(parts[0], {v: f for v, f in timeline.items() if f in own}, latch)
    finally:
        for worker in workers:
            worker.finish(stop=client.cancelled)


class _Worker:
    """A worker process and the threads that read its output."""

    def __init__(
        self, process: subprocess.Popen[bytes], client: PyPIClient, tick: Tick, latch: Latch
    ) -> None:
        self.process = process
        self.readers = [
            threading.Thread(
                target=self._read, args=(process.stdout, client, tick, latch), daemon=True
            ),
            threading.Thread(target=self._drain, args=(process.stderr,), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[bytes] | None, client: PyPIClient, tick: Tick, latch: Latch) -> None:
        """An empty line per wheel done, `metadata` once its METADATA are; at the end, what
        the worker fetched (JSON). A worker that ends without saying `metadata` counts down
        the latch all the same."""
        said = False
        try:
            for line in stream or ():
                if line == METADATA_LINE:
                    said = True
                    latch.count_down()
                elif line.strip():
                    with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                        client.add_counts(json.loads(line))
                else:
                    tick()
        finally:
            if not said:
                latch.count_down()

    @staticmethod
    def _drain(stream: IO[bytes] | None) -> None:
        for _ in stream or ():  # what a failing worker says is not the error refresh reports
            pass

    def finish(self, stop: bool) -> None:
        """Wait for the worker, or `stop` it; stop it too if this process is leaving early."""
        try:
            if stop:
                self.process.kill()
            self.process.wait()
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            for reader in self.readers:
                reader.join()


def _start(
    client: PyPIClient,
    settings: dict[str, object],
    wheels: Sequence[IndexFile],
    timeline: Mapping[Version, IndexFile],
    tick: Tick,
    latch: Latch,
) -> _Worker:
    own = set(wheels)
    request = {
        "client": settings,
        "wheels": [asdict(f) for f in wheels],
        "timeline": {str(v): f.sha256 for v, f in timeline.items() if f in own},
    }
    # the worker imports this package from where this process found it (a checkout's src/)
    source = str(Path(vllm_pin.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, (source, os.environ.get("PYTHONPATH"))))
    process = subprocess.Popen(
        WORKER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert process.stdin is not None
    try:
        process.stdin.write(json.dumps(request).encode())
        process.stdin.close()
    except OSError:
        pass  # it died at once: refresh reads its share itself
    return _Worker(process, client, tick, latch)


def main() -> int:
    """A worker: read the wheels on stdin into the cache; an empty line on stdout per wheel
    done, METADATA_LINE once their METADATA are, then what it fetched (`PyPIClient.counts`)."""
    request = json.load(sys.stdin.buffer)
    client = PyPIClient.from_settings(request["client"])
    wheels = [IndexFile(**row) for row in request["wheels"]]
    by_sha = {f.sha256: f for f in wheels}
    timeline = {Version(v): by_sha[sha] for v, sha in request["timeline"].items()}
    lock = threading.Lock()

    def say(line: bytes) -> None:
        with lock:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()

    fill(client, wheels, timeline, lambda _: say(b"\n"), lambda: say(METADATA_LINE))
    say(json.dumps(client.counts()).encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
