"""refresh.prefetch: shares of the wheels read by real worker processes into the cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import FakeIndex
from vllm_pin import cli
from vllm_pin.index.pypi import IndexFile, PyPIClient
from vllm_pin.refresh import glibc_scan, prefetch, wheel_cache
from vllm_pin.refresh import releases as refresh


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    return fake_index.load_recorded()


def _client(index: FakeIndex, cache: Path, userinfo: str = "") -> PyPIClient:
    url = f"{index.url}/simple/".replace("://", f"://{userinfo}", 1)
    return PyPIClient(url, cache, timeout=5, backoff=0.01)


def _release_wheels(client: PyPIClient) -> list[IndexFile]:
    wheels = refresh.collect(client).wheels
    return sorted(
        {f for versions in wheels.values() for m in versions.values() for f in m.values()},
        key=lambda f: f.filename,
    )


def _elf_cached(cache: Path, wheels: list[IndexFile]) -> list[bool]:
    return [
        wheel_cache.load(cache, "elf", f, glibc_scan.PARSER_VERSION) is not None for f in wheels
    ]


@pytest.fixture
def wheels(index: FakeIndex, tmp_path: Path) -> list[IndexFile]:
    found = _release_wheels(_client(index, tmp_path / "listing"))
    assert len(found) >= 4
    return found


def test_workers_read_their_shares_into_the_cache(
    index: FakeIndex, wheels: list[IndexFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process reads only the first share (test_a_failing_worker_costs_only_time); the
    other wheels are in the cache because the worker processes read them, with the same
    settings (credentials included)."""
    monkeypatch.setattr(prefetch, "MIN_WHEELS_PER_PROCESS", 1)
    cache = tmp_path / "cache"
    parts = prefetch.shares(wheels, 3, prefetch.REFRESH_BESIDES)
    assert all(parts)
    assert sorted(f.filename for p in parts for f in p) == [f.filename for f in wheels]
    ticks: list[int] = []
    index.auth.clear()
    index.log.clear()
    client = _client(index, cache, "user:s3cret@")
    with prefetch.reading(client, wheels, {}, 3, lambda: ticks.append(1)):
        pass
    assert _elf_cached(cache, wheels) == [True] * len(wheels)
    assert len(ticks) == len(wheels)  # a tick per wheel, from whichever process read it
    assert index.auth and set(index.auth) == {"Basic dXNlcjpzM2NyZXQ="}
    # what the workers fetched counts as fetched by this client
    assert client.requests_made == len(index.log) == sum(s.requests for s in client.stats.values())


def test_a_refresh_on_workers_writes_what_one_process_writes(
    index: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = refresh.collect(_client(index, tmp_path / "one")).document
    monkeypatch.setattr(prefetch, "MIN_WHEELS_PER_PROCESS", 1)
    shared = refresh.collect(_client(index, tmp_path / "three"), processes=3).document
    assert shared == alone


def test_a_failing_worker_costs_only_time(
    index: FakeIndex, wheels: list[IndexFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker dies at once: its share is not cached, and refresh reads it itself."""
    alone = refresh.collect(_client(index, tmp_path / "one")).document
    monkeypatch.setattr(prefetch, "WORKER", [sys.executable, "-c", "raise SystemExit(3)"])
    monkeypatch.setattr(prefetch, "MIN_WHEELS_PER_PROCESS", 1)
    cache = tmp_path / "cache"
    ticks: list[int] = []
    with prefetch.reading(_client(index, cache), wheels, {}, 2, lambda: ticks.append(1)):
        pass
    own = set(prefetch.shares(wheels, 2, prefetch.REFRESH_BESIDES)[0])
    assert _elf_cached(cache, wheels) == [f in own for f in wheels]
    assert len(ticks) == len(own)
    assert refresh.collect(_client(index, cache), processes=2).document == alone


def test_one_process_for_a_client_with_its_own_session(
    index: FakeIndex, wheels: list[IndexFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A given session (a test's stand-in) cannot cross into a worker: no worker starts."""
    monkeypatch.setattr(prefetch, "WORKER", [sys.executable, "-c", "raise SystemExit(3)"])
    monkeypatch.setattr(prefetch, "MIN_WHEELS_PER_PROCESS", 1)
    client = _client(index, tmp_path / "cache")
    client = PyPIClient(client.index_url, client.cache_dir, timeout=5, session=client.session)
    assert client.settings() is None
    with prefetch.reading(client, wheels, {}, 4, lambda: None):
        pass
    assert _elf_cached(client.cache_dir, wheels) == [True] * len(wheels)


@pytest.mark.parametrize(
    ("sizes", "processes", "head_start", "expected"),
    [
        ([5, 4, 3, 2, 1], 1, 0.0, [[5, 4, 3, 2, 1]]),
        ([5, 4, 3, 2, 1], 2, 0.0, [[5, 2, 1], [4, 3]]),
        ([1, 1, 1, 1], 3, 0.0, [[1, 1], [1], [1]]),
        ([9, 1, 1, 1], 2, 0.0, [[9], [1, 1, 1]]),
        # the first process has a fifth of the work to do besides: it takes less
        ([5, 4, 3, 2, 1], 2, 0.2, [[4, 2], [5, 3, 1]]),
        ([1, 1, 1, 1], 2, 0.5, [[1], [1, 1, 1]]),
    ],
)
def test_shares_balance_the_bytes(
    sizes: list[int], processes: int, head_start: float, expected: list[list[int]]
) -> None:
    files = [
        IndexFile(f"x-{i}-py3-none-any.whl", "", "", size, "", False, "", "")
        for i, size in enumerate(sizes)
    ]
    parts = prefetch.shares(files, processes, head_start)
    assert [[f.size for f in part] for part in parts] == expected


def test_default_processes_is_bounded() -> None:
    assert 1 <= prefetch.default_processes() <= prefetch.MAX_PROCESSES


@pytest.mark.parametrize("value", ["0", "-2"])
def test_processes_below_one_is_an_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["refresh", "--processes", value, "--matrix-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vllm-pin refresh: error: --processes {value}: give 1 or more"]


def test_the_latch_opens_once_every_process_read_its_metadata(
    index: FakeIndex, wheels: list[IndexFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prefetch, "MIN_WHEELS_PER_PROCESS", 1)
    client = _client(index, tmp_path / "cache")
    zipped = [f for f in wheels if not f.core_metadata]
    assert zipped
    with prefetch.reading(client, wheels, {}, 2, lambda: None) as metadata_cached:
        metadata_cached.wait()
        assert [client.cached_core_metadata(f) is not None for f in zipped] == [True] * len(zipped)


def test_a_worker_that_dies_still_opens_the_latch(
    index: FakeIndex, wheels: list[IndexFile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prefetch, "WORKER", [sys.executable, "-c", "raise SystemExit(3)"])
    monkeypatch.setattr(prefetch, "MIN_WHEELS_PER_PROCESS", 1)
    opened: list[bool] = []
    with prefetch.reading(
        _client(index, tmp_path / "cache"), wheels, {}, 3, lambda: None
    ) as metadata_cached:
        opened.append(metadata_cached.wait(timeout=30))
    assert opened == [True]


@pytest.mark.parametrize("count", [0, 1, 3])
def test_latch_counts_down(count: int) -> None:
    latch = prefetch.Latch(count)
    for _ in range(count):
        assert latch.wait(0) is False
        latch.count_down()
    assert latch.wait(0) is True
