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
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

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
#: the most a member read from a wheel may inflate to (a METADATA or an envs.py is KiB)
MAX_MEMBER_BYTES = 4 * 1024 * 1024
_INFLATE_STEP = 64 * 1024
#: a wheel of 100 000 files has a central directory of about 10 MiB
MAX_CENTRAL_DIRECTORY_BYTES = 32 * 1024 * 1024
#: members this close together are read in one range request: a round trip (~0.1 s) costs
#: more than fetching up to this many bytes in between
MERGE_GAP = 256 * 1024


class ZipReadError(PackageIndexError):
    """The remote file is not a readable zip (truncated, corrupt, or an unsupported feature)."""


class ZipEntry(NamedTuple):
    """One member as described by the central directory (a NamedTuple: a wheel has up to
    ~16000, and a frozen dataclass costs 3 us each to build, a tuple 0.5)."""

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
    cd, total = fetch_central_directory(size, fetch, label)
    return parse_central_directory(cd, total, label)


def fetch_central_directory(size: int, fetch: RangeFetcher, label: str) -> tuple[bytes, int]:
    """(the central directory's bytes, how many entries the end record says it holds)."""
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
    if cd_size > MAX_CENTRAL_DIRECTORY_BYTES:
        raise ZipReadError(
            f"{label}: central directory of {cd_size} bytes, more than the "
            f"{MAX_CENTRAL_DIRECTORY_BYTES} allowed; refusing it"
        )
    if cd_offset + cd_size > size:
        raise ZipReadError(
            f"{label}: corrupt zip: central directory [{cd_offset}, {cd_offset + cd_size}) "
            f"lies past the end of the {size}-byte file"
        )
    if cd_offset >= tail_start:
        cd = tail[cd_offset - tail_start : cd_offset - tail_start + cd_size]
    else:
        cd = _read(fetch, cd_offset, cd_offset + cd_size, "the central directory", label)
    return cd, entries_total


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


#: a central directory file header, the fields read: signature, flags, method, crc,
#: compressed and uncompressed size, name/extra/comment lengths, local header offset
_CENTRAL_HEADER = struct.Struct("<4s4xHH4xIIIHHH8xI")
#: the same header's signature and the lengths of what follows it
_CENTRAL_LENGTHS = struct.Struct("<4s24xHHH")


#: what a caller wants of a central directory: the names `want` accepts, all of which contain
#: the hint: an ASCII text, or the ASCII names themselves (a set), that lets the other names
#: be skipped before they are decoded
Selection = tuple[Callable[[str], bool], "str | frozenset[str]"]


def parse_central_directory(
    cd: bytes,
    entries_total: int,
    label: str,
    want: Callable[[str], bool] = lambda _: True,
    hint: str | frozenset[str] = "",
) -> list[ZipEntry]:
    """The entries of a central directory whose name matches `want`; ZipReadError when it is
    corrupt or holds other than `entries_total` entries.

    `hint`, an ASCII text that every wanted name contains (or the set of the ASCII names
    wanted), skips the other names before they are decoded (an ASCII byte means the same
    character in UTF-8 and in cp437).
    """
    return select_entries(cd, entries_total, label, [(want, hint)])[0]


def select_entries(
    cd: bytes, entries_total: int, label: str, selections: Sequence[Selection]
) -> list[list[ZipEntry]]:
    """`parse_central_directory` for several selections at once, in one walk of the
    directory (a vLLM wheel's has ~16000 entries): the entries of each, in order."""
    wants: list[tuple[bytes, frozenset[bytes] | None, Callable[[str], bool], list[ZipEntry]]] = [
        (
            hint.encode("ascii") if isinstance(hint, str) else b"",
            None if isinstance(hint, str) else frozenset(n.encode("ascii") for n in hint),
            want,
            [],
        )
        for want, hint in selections
    ]
    out: list[list[ZipEntry]] = [found for _, _, _, found in wants]
    # one small struct call per entry (its lengths), the whole header and a ZipEntry only for
    # the wanted ones: a vLLM wheel has up to ~16000 entries, a refresh reads ~300 directories
    lengths = _CENTRAL_LENGTHS.unpack_from
    pos = count = 0
    size = len(cd)
    while pos < size:
        if pos + 46 > size:
            raise ZipReadError(f"{label}: corrupt zip: bad central directory entry at byte {pos}")
        sig, name_len, extra_len, comment_len = lengths(cd, pos)
        if sig != _CENTRAL_SIG:
            raise ZipReadError(f"{label}: corrupt zip: bad central directory entry at byte {pos}")
        header, start = pos, pos + 46
        end = start + name_len + extra_len + comment_len
        if end > size:
            raise ZipReadError(
                f"{label}: corrupt zip: central directory entry at {pos} runs past it"
            )
        count += 1
        pos, name_end = end, start + name_len
        raw_name = name = entry = None
        for needle, names, want, found in wants:
            if names is not None:
                raw_name = raw_name or cd[start:name_end]
                if raw_name not in names:
                    continue
            elif needle and cd.find(needle, start, name_end) < 0:
                continue
            if name is None:  # the whole header once, for the first selection that may want it
                _, flags, method, crc, csize, usize, _, _, _, offset = _CENTRAL_HEADER.unpack_from(
                    cd, header
                )
                raw_name = raw_name or cd[start:name_end]
                # ASCII reads the same in UTF-8 and cp437; the ascii codec is the fast one
                name = (
                    raw_name.decode("ascii")
                    if raw_name.isascii()
                    else raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
                )
            if not want(name):
                continue
            if entry is None:
                if 0xFFFFFFFF in (usize, csize, offset):
                    extra = cd[name_end : name_end + extra_len]
                    usize, csize, offset = _apply_zip64_extra(extra, usize, csize, offset)
                entry = ZipEntry(name, offset, csize, usize, method, crc)
            found.append(entry)
    if count != entries_total:
        raise ZipReadError(
            f"{label}: corrupt zip: central directory holds {count} entries, "
            f"the end record says {entries_total}"
        )
    return out


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


def inflate_capped(
    data: Iterable[bytes] | bytes,
    max_bytes: int,
    what: str,
    wbits: int = -15,
    *,
    prefix: bool = False,
) -> bytes:
    """Inflate ``data`` (raw deflate by default; one buffer or chunks as they arrive) a step at
    a time, never holding more than ``max_bytes`` of output: a 0.5 MB bomb that would inflate
    to 512 MiB costs at most ``max_bytes`` of memory.

    Output past ``max_bytes`` is an error, unless ``prefix``: then the first ``max_bytes``
    bytes are the answer (a member's header, read from a prefix of its compressed bytes).
    """
    inflater = zlib.decompressobj(wbits)
    out: list[bytes] = []
    size = 0
    try:
        for chunk in [data] if isinstance(data, bytes) else data:
            pending = chunk
            while pending and not inflater.eof:
                piece = inflater.decompress(pending, _INFLATE_STEP)
                if size + len(piece) > max_bytes:
                    if prefix:
                        return b"".join(out) + piece[: max_bytes - size]
                    raise ZipReadError(
                        f"{what} inflates to more than the {max_bytes} bytes allowed; refusing it"
                    )
                size += len(piece)
                out.append(piece)
                pending = inflater.unconsumed_tail
        tail = inflater.flush(_INFLATE_STEP) if inflater.eof or not prefix else b""
    except zlib.error as exc:
        raise ZipReadError(f"{what}: corrupt deflate data, cannot inflate: {exc}") from None
    if size + len(tail) > max_bytes:
        raise ZipReadError(f"{what} inflates to more than the {max_bytes} bytes allowed")
    if not inflater.eof and not prefix:
        raise ZipReadError(f"{what}: corrupt deflate data, cut short")
    return b"".join(out) + tail


def _check_size(entry: ZipEntry, label: str, max_bytes: int) -> None:
    """Refuse a member larger than ``max_bytes`` before a byte of it is fetched."""
    if max(entry.compressed_size, entry.uncompressed_size) > max_bytes:
        raise ZipReadError(
            f"{label}: {entry.name} is {entry.uncompressed_size} bytes "
            f"({entry.compressed_size} compressed), more than the {max_bytes} allowed; refusing it"
        )


def _span(entry: ZipEntry) -> int:
    """The bytes from the member's local header to the end of its data, with some slack."""
    return _LOCAL_HEADER_LEN + len(entry.name.encode()) + _LOCAL_EXTRA_SLACK + entry.compressed_size


def read_member(
    entry: ZipEntry, fetch: RangeFetcher, label: str, max_bytes: int = MAX_MEMBER_BYTES
) -> bytes:
    """Fetch and inflate one member of at most ``max_bytes``; checks its CRC."""
    _check_size(entry, label, max_bytes)
    return _member_from(
        entry,
        fetch(entry.header_offset, entry.header_offset + _span(entry)),
        fetch,
        label,
        max_bytes,
    )


def _member_from(
    entry: ZipEntry,
    data: bytes,
    fetch: RangeFetcher,
    label: str,
    max_bytes: int = MAX_MEMBER_BYTES,
) -> bytes:
    """Inflate ``entry`` from ``data``, the bytes from its local header on (fetching the rest
    when the local extra field is longer than the slack allowed for)."""
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
        content = inflate_capped(payload, max_bytes, f"{label}: {entry.name}")
    else:
        raise ZipReadError(
            f"{label}: unsupported zip compression method {entry.method} for {entry.name}"
        )
    if zlib.crc32(content) != entry.crc or len(content) != entry.uncompressed_size:
        raise ZipReadError(f"{label}: corrupt zip: CRC or size mismatch for {entry.name}")
    return content


def read_members(entries: Iterable[ZipEntry], fetch: RangeFetcher, label: str) -> dict[str, bytes]:
    """Fetch the given members, one range request per run of members less than MERGE_GAP
    bytes apart."""
    entries = list(entries)
    for e in entries:
        _check_size(e, label, MAX_MEMBER_BYTES)
    out: dict[str, bytes] = {}
    for run in _runs(sorted(entries, key=lambda e: e.header_offset)):
        start = run[0].header_offset
        end = max(e.header_offset + _span(e) for e in run)
        data = fetch(start, end)
        for e in run:
            at = e.header_offset - start
            out[e.name] = _member_from(e, data[at:], fetch, label)
    return out


def _runs(entries: list[ZipEntry]) -> list[list[ZipEntry]]:
    """Group members (sorted by offset) whose gaps are below MERGE_GAP."""
    runs: list[list[ZipEntry]] = []
    end = -1
    for e in entries:
        if runs and e.header_offset - end < MERGE_GAP:
            runs[-1].append(e)
        else:
            runs.append([e])
        end = max(end, e.header_offset + _span(e))
    return runs


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
    # bytes, not a bytearray: the first prefix (most readers need no other) is yielded as it
    # was inflated, without a copy; each later one costs one
    out = b""
    while True:
        room = limit - len(out)
        try:
            piece = chunk[:room] if entry.method == 0 else inflater.decompress(chunk, room)
        except zlib.error as exc:
            raise ZipReadError(f"{label}: corrupt zip: cannot inflate {entry.name}: {exc}") from exc
        out = out + piece if out else piece
        whole = pos >= stop
        if (
            whole
            and len(out) < limit
            and (len(out) != entry.uncompressed_size or zlib.crc32(out) != entry.crc)
        ):
            raise ZipReadError(f"{label}: corrupt zip: CRC or size mismatch for {entry.name}")
        if out or whole:
            yield out
        if whole or len(out) >= limit:
            return
        step *= 2
        chunk = _read(fetch, pos, min(stop, pos + step), entry.name, label)
        pos += len(chunk)
