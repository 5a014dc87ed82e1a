"""Refresh's side of the timeline: read each release's knobs out of its files.

`collect` range-reads the members `vllm_source` parses out of every release's wheel (never the
whole wheel) and builds each entry with `vllm_source.entry_from_files`, caching it by the
wheel's sha256; `merged_text` is the refresh hook that renders the new matrix/timeline.toml.
The data model and the queries live in `vllm_pin.matrix.timeline`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from packaging.version import Version

from vllm_pin.errors import UNPARSABLE_SOURCE, MatrixError, PackageIndexError
from vllm_pin.index.pypi import IndexFile, PyPIClient
from vllm_pin.index.zipread import Selection
from vllm_pin.matrix import vllm_source
from vllm_pin.matrix.timeline import TimelineEntry, dumps, entry_row, load_timeline, parse_entry
from vllm_pin.matrix.tomlfields import Fields
from vllm_pin.refresh import wheel_cache

__all__ = ["SOURCES", "collect", "merged_text"]

#: the members the timeline is read from, for `PyPIClient.select`: these exact paths
SOURCES: Selection = (vllm_source.wanted_member, vllm_source.MEMBER_PATTERNS)


def collect(
    client: PyPIClient, index_files_by_release: Mapping[Version, IndexFile]
) -> dict[Version, TimelineEntry]:
    """Range-read the parsed members out of each release's representative wheel.

    Entries are cached by wheel sha256 and vllm_source.PARSER_VERSION (a released file never
    changes), so a refresh with nothing new parses nothing; only misses reach the thread pool.
    """
    out: dict[Version, TimelineEntry] = {}
    misses: list[tuple[Version, IndexFile]] = []
    for version, f in sorted(index_files_by_release.items()):
        cached = _cached_entry(client.cache_dir, f)
        if cached is None:
            misses.append((version, f))
        else:
            out[version] = cached

    def read(item: tuple[Version, IndexFile]) -> dict[str, bytes]:
        return client.read_members(item[1], *SOURCES)

    # the reads run on the pool; the parsing runs here, in version order while the pool reads
    # on, so a text that the release before shipped unchanged is parsed once (vllm_source
    # keeps the last few)
    for (version, f), raw in zip(misses, client.imap(read, misses)):
        try:
            entry = vllm_source.entry_from_files(
                {name: data.decode("utf-8") for name, data in raw.items()}, f.filename
            )
        except UNPARSABLE_SOURCE as exc:
            why = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise PackageIndexError(
                f"{f.filename}: cannot parse its vllm sources ({why}); a broken or hostile wheel"
            ) from None
        wheel_cache.store(
            client.cache_dir, "timeline", f, vllm_source.PARSER_VERSION, entry_row(entry)
        )
        out[version] = entry
    return dict(sorted(out.items()))


def _cached_entry(cache_dir: Path, f: IndexFile) -> TimelineEntry | None:
    """The cached entry of a wheel; None when absent or unreadable (it is then re-parsed)."""
    row = wheel_cache.load(cache_dir, "timeline", f, vllm_source.PARSER_VERSION)
    if row is None:
        return None
    try:
        return parse_entry(Fields(f"timeline cache of {f.filename}", row))
    except MatrixError:
        return None


def merged_text(
    client: PyPIClient, index_files_by_release: Mapping[Version, IndexFile], path: Path | None
) -> str:
    """The refresh hook: new timeline text for these wheels, keeping the committed rows at
    `path` of every other release (so `refresh --only X` re-reads only X). A full refresh
    passes None: like releases.toml, it keeps nothing the index no longer has."""
    entries = load_timeline(path) if path is not None and path.is_file() else {}
    entries.update(collect(client, index_files_by_release))
    return dumps(entries)
