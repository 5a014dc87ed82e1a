"""Read single members of a remote zip (a wheel) through byte-range requests.

A vLLM wheel is 200-400 MiB, but its METADATA is a few KiB. The zip format puts a central
directory at the end of the file that says where each member lives, so reading the last
~64 KiB (plus, for large directories, one more range) and then only the wanted members costs
a tiny fraction of the wheel. Zip64 archives (more than 65535 entries or offsets past 4 GiB)
are handled.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from vllm_pin.errors import PackageIndexError

#: fetch(start, end) -> the bytes [start, end) of the remote file (end exclusive).
RangeFetcher = Callable[[int, int], bytes]

TAIL_BYTES = 64 * 1024 + 22  # the largest possible EOCD record: 22 bytes + a 65535-byte comment
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD_SIG = b"PK\x06\x06"
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL_SIG = b"PK\x03\x04"
_LOCAL_HEADER_LEN = 30
_LOCAL_EXTRA_SLACK = 256  # local extra fields may differ from central ones; read a little more


class ZipReadError(PackageIndexError):
    """The remote file is not a readable zip (truncated, corrupt, or an unsupported feature)."""


@dataclass(frozen=True)
class ZipEntry:
    """One member as described by the central directory."""

    name: str
    header_offset: int
    compressed_size: int
    uncompressed_size: int
    method: int
    crc: int


def _u16(buf: bytes, at: int) -> int:
    return int(struct.unpack_from("<H", buf, at)[0])


def _u32(buf: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", buf, at)[0])


def _u64(buf: bytes, at: int) -> int:
    return int(struct.unpack_from("<Q", buf, at)[0])


def _read(fetch: RangeFetcher, start: int, end: int, what: str, label: str) -> bytes:
    """Fetch a range and insist on getting every byte of it."""
    data = fetch(start, end)
    if len(data) < end - start:
        raise ZipReadError(
            f"{label}: truncated zip: wanted {end - start} bytes of {what} at offset {start}, "
            f"got {len(data)}"
        )
    if len(data) > end - start:
        raise ZipReadError(f"{label}: got {len(data)} bytes for a {end - start}-byte range")
    return data


def read_central_directory(size: int, fetch: RangeFetcher, label: str) -> list[ZipEntry]:
    """Return every entry of the zip of `size` bytes; `label` names the file in errors."""
    if size < 22:
        raise ZipReadError(f"{label}: truncated zip: {size} bytes is smaller than an EOCD record")
    tail_start = max(0, size - TAIL_BYTES)
    tail = _read(fetch, tail_start, size, "the end of central directory", label)
    eocd = tail.rfind(_EOCD_SIG)
    if eocd < 0 or len(tail) - eocd < 22:
        raise ZipReadError(f"{label}: not a zip or truncated: no end-of-central-directory record")
    entries_total = _u16(tail, eocd + 10)
    cd_size = _u32(tail, eocd + 12)
    cd_offset = _u32(tail, eocd + 16)
    if 0xFFFFFFFF in (cd_size, cd_offset) or entries_total == 0xFFFF:
        cd_offset, cd_size, entries_total = _zip64_eocd(tail, tail_start, eocd, fetch, label)
    if cd_offset + cd_size > size:
        raise ZipReadError(
            f"{label}: corrupt zip: central directory [{cd_offset}, {cd_offset + cd_size}) "
            f"lies past the end of the {size}-byte file"
        )
    if cd_offset >= tail_start:
        cd = tail[cd_offset - tail_start : cd_offset - tail_start + cd_size]
    else:
        cd = _read(fetch, cd_offset, cd_offset + cd_size, "the central directory", label)
    entries = _parse_central_directory(cd, label)
    if len(entries) != entries_total:
        raise ZipReadError(
            f"{label}: corrupt zip: central directory holds {len(entries)} entries, "
            f"the end record says {entries_total}"
        )
    return entries


def _zip64_eocd(
    tail: bytes, tail_start: int, eocd: int, fetch: RangeFetcher, label: str
) -> tuple[int, int, int]:
    """Read (cd_offset, cd_size, entries) from the zip64 end record."""
    loc = eocd - 20
    if loc < 0 or tail[loc : loc + 4] != _ZIP64_LOCATOR_SIG:
        raise ZipReadError(f"{label}: corrupt zip64: no zip64 end-of-central-directory locator")
    rec_offset = _u64(tail, loc + 8)
    if rec_offset >= tail_start:
        rec = tail[rec_offset - tail_start : rec_offset - tail_start + 56]
    else:
        rec = _read(fetch, rec_offset, rec_offset + 56, "the zip64 end record", label)
    if len(rec) < 56 or rec[:4] != _ZIP64_EOCD_SIG:
        raise ZipReadError(f"{label}: corrupt zip64: bad zip64 end-of-central-directory record")
    return _u64(rec, 48), _u64(rec, 40), _u64(rec, 32)


def _parse_central_directory(cd: bytes, label: str) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    pos = 0
    while pos < len(cd):
        if cd[pos : pos + 4] != _CENTRAL_SIG or pos + 46 > len(cd):
            raise ZipReadError(f"{label}: corrupt zip: bad central directory entry at byte {pos}")
        flags = _u16(cd, pos + 8)
        method = _u16(cd, pos + 10)
        crc = _u32(cd, pos + 16)
        csize = _u32(cd, pos + 20)
        usize = _u32(cd, pos + 24)
        name_len, extra_len, comment_len = (
            _u16(cd, pos + 28),
            _u16(cd, pos + 30),
            _u16(cd, pos + 32),
        )
        offset = _u32(cd, pos + 42)
        end = pos + 46 + name_len + extra_len + comment_len
        if end > len(cd):
            raise ZipReadError(
                f"{label}: corrupt zip: central directory entry at {pos} runs past it"
            )
        raw_name = cd[pos + 46 : pos + 46 + name_len]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        extra = cd[pos + 46 + name_len : pos + 46 + name_len + extra_len]
        usize, csize, offset = _apply_zip64_extra(extra, usize, csize, offset)
        entries.append(ZipEntry(name, offset, csize, usize, method, crc))
        pos = end
    return entries


def _apply_zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Replace 0xFFFFFFFF sizes/offset with their 64-bit values from the zip64 extra field."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = _u16(extra, pos), _u16(extra, pos + 2)
        if tag == 0x0001:
            field = extra[pos + 4 : pos + 4 + length]
            at = 0
            values = []
            for current in (usize, csize, offset):
                if current == 0xFFFFFFFF and at + 8 <= len(field):
                    values.append(_u64(field, at))
                    at += 8
                else:
                    values.append(current)
            return values[0], values[1], values[2]
        pos += 4 + length
    return usize, csize, offset


def read_member(entry: ZipEntry, fetch: RangeFetcher, label: str) -> bytes:
    """Fetch and inflate one member; checks its CRC."""
    guess = (
        _LOCAL_HEADER_LEN + len(entry.name.encode()) + _LOCAL_EXTRA_SLACK + entry.compressed_size
    )
    data = fetch(entry.header_offset, entry.header_offset + guess)
    if len(data) < _LOCAL_HEADER_LEN or data[:4] != _LOCAL_SIG:
        raise ZipReadError(f"{label}: corrupt zip: no local header for {entry.name}")
    start = _LOCAL_HEADER_LEN + _u16(data, 26) + _u16(data, 28)
    end = start + entry.compressed_size
    if end > len(data):
        more = entry.header_offset + len(data)
        data += _read(fetch, more, entry.header_offset + end, entry.name, label)
    payload = data[start:end]
    if len(payload) != entry.compressed_size:
        raise ZipReadError(f"{label}: truncated zip: {entry.name} is cut short")
    if entry.method == 0:
        content = payload
    elif entry.method == 8:
        try:
            content = zlib.decompress(payload, -15)
        except zlib.error as exc:
            raise ZipReadError(f"{label}: corrupt zip: cannot inflate {entry.name}: {exc}") from exc
    else:
        raise ZipReadError(
            f"{label}: unsupported zip compression method {entry.method} for {entry.name}"
        )
    if zlib.crc32(content) != entry.crc or len(content) != entry.uncompressed_size:
        raise ZipReadError(f"{label}: corrupt zip: CRC or size mismatch for {entry.name}")
    return content


def read_members(entries: Iterable[ZipEntry], fetch: RangeFetcher, label: str) -> dict[str, bytes]:
    """Fetch the given members: one range request each."""
    return {e.name: read_member(e, fetch, label) for e in entries}


def iter_member_prefix(
    entry: ZipEntry, fetch: RangeFetcher, label: str, *, limit: int, first: int = 64 * 1024
) -> Iterator[bytes]:
    """Ever longer starts of one member, inflated, for a reader that stops once it has enough.

    The first range read takes the local header and `first` compressed bytes; each later one
    twice as many as the one before. They are inflated by a streaming decompressor held to
    `limit` bytes of output, so neither the whole member nor more than `limit` inflated bytes
    are ever held. The last prefix yielded is the whole member (CRC checked) or its first
    `limit` bytes.
    """
    span = _LOCAL_HEADER_LEN + len(entry.name.encode()) + _LOCAL_EXTRA_SLACK + first
    data = fetch(entry.header_offset, entry.header_offset + span)
    if len(data) < _LOCAL_HEADER_LEN or data[:4] != _LOCAL_SIG:
        raise ZipReadError(f"{label}: corrupt zip: no local header for {entry.name}")
    if entry.method not in (0, 8):
        raise ZipReadError(
            f"{label}: unsupported zip compression method {entry.method} for {entry.name}"
        )
    start = entry.header_offset + _LOCAL_HEADER_LEN + _u16(data, 26) + _u16(data, 28)
    stop = start + entry.compressed_size
    chunk = data[start - entry.header_offset : stop - entry.header_offset]
    pos, step = start + len(chunk), first
    inflater = zlib.decompressobj(-15)
    out = bytearray()
    while True:
        room = limit - len(out)
        try:
            out += chunk[:room] if entry.method == 0 else inflater.decompress(chunk, room)
        except zlib.error as exc:
            raise ZipReadError(f"{label}: corrupt zip: cannot inflate {entry.name}: {exc}") from exc
        whole = pos >= stop
        if (
            whole
            and len(out) < limit
            and (len(out) != entry.uncompressed_size or zlib.crc32(out) != entry.crc)
        ):
            raise ZipReadError(f"{label}: corrupt zip: CRC or size mismatch for {entry.name}")
        if out or whole:
            yield bytes(out)
        if whole or len(out) >= limit:
            return
        step *= 2
        chunk = _read(fetch, pos, min(stop, pos + step), entry.name, label)
        pos += len(chunk)
