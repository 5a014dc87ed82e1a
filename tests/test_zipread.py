"""zipread: central directory and single members of a zip, read through byte ranges."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable

import pytest

from conftest import INDEX_FIXTURES, Sparse
from vllm_pin.index.zipread import (
    MERGE_GAP,
    TAIL_BYTES,
    Selection,
    ZipReadError,
    fetch_central_directory,
    parse_central_directory,
    read_central_directory,
    read_member,
    read_members,
    select_entries,
)


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


class Fetcher:
    """A range fetcher over bytes that records every request."""

    def __init__(self, data: bytes | Sparse) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        if isinstance(self.data, Sparse):
            return self.data.read(start, min(end, self.data.size))
        return self.data[start:end]

    @property
    def fetched(self) -> int:
        return sum(end - start for start, end in self.calls)


METADATA = b"Metadata-Version: 2.1\nName: demo\nRequires-Dist: torch (==2.3.1)\n"


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_reads_one_member_of_a_small_zip(compression: int) -> None:
    data = make_zip(
        {"demo/__init__.py": b"x = 1\n" * 100, "demo-1.0.dist-info/METADATA": METADATA},
        compression,
    )
    fetch = Fetcher(data)
    entries = read_central_directory(len(data), fetch, "demo.whl")
    assert [e.name for e in entries] == ["demo/__init__.py", "demo-1.0.dist-info/METADATA"]
    assert len(fetch.calls) == 1  # the tail holds the whole central directory
    assert read_member(entries[1], fetch, "demo.whl") == METADATA


def test_large_central_directory_costs_one_more_range_and_no_member_bytes() -> None:
    rng = random.Random(0)  # incompressible members: the archive is much larger than its tail
    payload = {f"pkg/module_{i:05d}.py": rng.randbytes(500) for i in range(1500)}
    payload["pkg-1.0.dist-info/METADATA"] = METADATA
    data = make_zip(payload)
    fetch = Fetcher(data)
    entries = read_central_directory(len(data), fetch, "big.whl")
    assert len(entries) == 1501
    assert len(fetch.calls) == 2
    wanted = [e for e in entries if e.name.endswith("METADATA")]
    assert read_members(wanted, fetch, "big.whl") == {"pkg-1.0.dist-info/METADATA": METADATA}
    assert fetch.fetched < TAIL_BYTES + 150_000 < len(data) / 4


def test_zip64_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lower zipfile's limits so a small archive is written with zip64 records and extras.
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 10)
    data = make_zip({f"m{i}.txt": f"member {i}\n".encode() * 5 for i in range(4)})
    assert b"PK\x06\x06" in data  # really a zip64 end record
    fetch = Fetcher(data)
    entries = read_central_directory(len(data), fetch, "z64.zip")
    assert [e.name for e in entries] == ["m0.txt", "m1.txt", "m2.txt", "m3.txt"]
    assert read_member(entries[3], fetch, "z64.zip") == b"member 3\n" * 5


def test_real_wheel_tail_from_the_index() -> None:
    """vllm 0.1.4's real wheel: only its last 12 KiB are stored, the rest reads as zeros."""
    name = "vllm-0.1.4-cp311-cp311-manylinux1_x86_64.whl"
    tail = (INDEX_FIXTURES / "files" / f"{name}.tail").read_bytes()
    fetch = Fetcher(Sparse(18841397, tail))
    entries = read_central_directory(18841397, fetch, name)
    meta = next(e for e in entries if e.name == "vllm-0.1.4.dist-info/METADATA")
    text = read_member(meta, fetch, name).decode()
    assert "Requires-Dist: torch >=2.0.0" in text
    assert fetch.fetched < 100_000


def _cut_end(data: bytes) -> tuple[int, Callable[[int, int], bytes]]:
    """The index says the file is len(data) bytes; the server has lost its last 10."""
    return len(data), lambda s, e: data[:-10][s:e]


def _bad_crc(data: bytes) -> bytes:
    return data.replace(b"hello hello", b"jello hello", 1)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: (160, lambda s, e: (b"not a zip at all" * 10)[s:e]), "no end-of-central"),
        (lambda d: (10, lambda s, e: d[s:e]), "smaller than an EOCD record"),
        (_cut_end, "truncated zip"),
    ],
    ids=["not-a-zip", "tiny", "truncated-tail"],
)
def test_broken_zips_fail_with_a_precise_error(
    mangle: Callable[[bytes], tuple[int, Callable[[int, int], bytes]]], message: str
) -> None:
    size, fetch = mangle(make_zip({"a.txt": b"hello " * 10}))
    with pytest.raises(ZipReadError, match=message) as info:
        read_central_directory(size, fetch, "broken.whl")
    assert str(info.value).startswith("broken.whl: ")
    assert "\n" not in str(info.value)


def test_member_cut_short_is_reported_as_truncated() -> None:
    data = make_zip({"a.txt": bytes(range(256)) * 40}, zipfile.ZIP_STORED)
    entries = read_central_directory(len(data), Fetcher(data), "t.whl")
    short = Fetcher(data[: entries[0].header_offset + 100])
    with pytest.raises(ZipReadError, match="truncated zip"):
        read_member(entries[0], short, "t.whl")


def test_corrupt_member_fails_its_crc_check() -> None:
    data = _bad_crc(make_zip({"a.txt": b"hello " * 10}, zipfile.ZIP_STORED))
    entries = read_central_directory(len(data), Fetcher(data), "c.whl")
    with pytest.raises(ZipReadError, match="CRC"):
        read_member(entries[0], Fetcher(data), "c.whl")


def test_central_directory_past_the_end_is_corrupt() -> None:
    data = bytearray(make_zip({"a.txt": b"x"}))
    eocd = data.rfind(b"PK\x05\x06")
    data[eocd + 16 : eocd + 20] = (len(data) + 5).to_bytes(4, "little")
    with pytest.raises(ZipReadError, match="corrupt zip: central directory"):
        read_central_directory(len(data), Fetcher(bytes(data)), "c.whl")


@pytest.mark.parametrize(
    ("filler", "requests"),
    [(0, 1), (MERGE_GAP // 2, 1), (MERGE_GAP * 2, 3)],
    ids=["adjacent", "gaps below MERGE_GAP", "gaps above MERGE_GAP"],
)
def test_nearby_members_are_read_in_one_range(filler: int, requests: int) -> None:
    rng = random.Random(filler)
    wanted = {f"pkg/m{i}.py": f"value = {i}\n".encode() * 50 for i in range(3)}
    members: dict[str, bytes] = {}
    for i, (name, data) in enumerate(wanted.items()):
        members[name] = data
        members[f"pkg/blob{i}.bin"] = rng.randbytes(filler)  # incompressible gap
    data = make_zip(members)
    entries = [e for e in read_central_directory(len(data), Fetcher(data), "m.whl")]
    fetch = Fetcher(data)
    got = read_members([e for e in entries if e.name in wanted][::-1], fetch, "m.whl")
    assert got == wanted
    assert len(fetch.calls) == requests


@pytest.mark.parametrize(
    "names",
    [["a.so", "b.txt", "lib/c.so.12"], ["caf\u00e9.so", "b.txt"]],  # zipfile flags UTF-8 names
    ids=["ascii", "utf-8"],
)
def test_central_directory_keeps_only_the_wanted_names(names: list[str]) -> None:
    data = make_zip(dict.fromkeys(names, b"x"))
    cd, total = fetch_central_directory(len(data), Fetcher(data), "n.whl")
    wanted = parse_central_directory(cd, total, "n.whl", lambda n: not n.endswith(".txt"))
    assert [e.name for e in wanted] == [n for n in names if not n.endswith(".txt")]
    assert [e.name for e in parse_central_directory(cd, total, "n.whl")] == names
    with pytest.raises(ZipReadError, match=f"holds {total} entries, the end record says 9"):
        parse_central_directory(cd, 9, "n.whl", lambda n: False)  # counted, even unwanted


def test_a_hint_skips_names_without_it_and_still_counts_them() -> None:
    names = ["pkg/a.so", "pkg/b.py", "caf\u00e9/c.so.1", "pkg/d.txt"]
    data = make_zip(dict.fromkeys(names, b"x"))
    cd, total = fetch_central_directory(len(data), Fetcher(data), "h.whl")
    seen: list[str] = []
    got = parse_central_directory(cd, total, "h.whl", lambda n: seen.append(n) is None, ".so")
    assert [e.name for e in got] == seen == ["pkg/a.so", "caf\u00e9/c.so.1"]


@pytest.mark.parametrize(
    ("selections", "expected"),
    [
        ([(lambda n: True, ".so")], [["pkg/a.so", "caf\u00e9/c.so.1"]]),
        ([(lambda n: True, frozenset({"pkg/b.py", "pkg/x.py"}))], [["pkg/b.py"]]),
        (
            [
                (lambda n: n.endswith(".so"), ""),
                (lambda n: True, frozenset({"pkg/a.so", "pkg/d.txt"})),
                (lambda n: False, "pkg/"),
            ],
            [["pkg/a.so"], ["pkg/a.so", "pkg/d.txt"], []],
        ),
        ([], []),
    ],
    ids=["hint", "exact-names", "several", "none"],
)
def test_several_selections_in_one_walk_find_what_each_alone_finds(
    selections: list[Selection], expected: list[list[str]]
) -> None:
    names = ["pkg/a.so", "pkg/b.py", "caf\u00e9/c.so.1", "pkg/d.txt"]
    data = make_zip(dict.fromkeys(names, b"x"))
    cd, total = fetch_central_directory(len(data), Fetcher(data), "s.whl")
    found = select_entries(cd, total, "s.whl", selections)
    assert [[e.name for e in entries] for entries in found] == expected
    alone = [parse_central_directory(cd, total, "s.whl", *sel) for sel in selections]
    assert found == alone
    with pytest.raises(ZipReadError, match="the end record says 9"):
        select_entries(cd, 9, "s.whl", selections)
