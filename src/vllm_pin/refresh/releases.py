"""`vllm-pin refresh`: rebuild matrix/releases.toml from the package index's metadata.

Every fact here is read from PyPI metadata (PEP 691 JSON index, PEP 658 `.metadata`, or
METADATA range-read from the wheel), normalised through `packaging`, and written in a
deterministic order, so a refresh with nothing new is byte-identical. Rows that look odd are
recorded under `[[anomalies]]`, never "fixed": the data must say what the index says.

This module reads the index and builds the new texts (`vllm_pin.commands.refresh` is the
command: it prints what changed and writes); the pieces live in `wheels` (which wheel),
`core_metadata` (what its METADATA says), `release_rows`, `anomalies`, `releases_file` (the
text) and `refresh_summary` (what changed).

Other modules hook in through `collect(client) -> RefreshResult`, whose `wheels` map gives the
representative wheel of every release and machine (e.g. to range-read `vllm/envs.py`).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.index.pypi import DEFAULT_TIMEOUT, IndexFile, PyPIClient
from vllm_pin.index.wheels import Wheel, group_by_version, package_wheel, representatives
from vllm_pin.matrix.core_metadata import (
    METADATA_PROBLEMS,
    PACKAGES,
    Metadata,
    exact_pin,
    family_pins,
    parse_metadata,
    parse_requirement,
    requirement_name,
)
from vllm_pin.matrix.releases_file import SCHEMA, dumps, loads
from vllm_pin.names import DISTRIBUTIONS
from vllm_pin.refresh import glibc_scan, memo, prefetch, timeline_scan
from vllm_pin.refresh.anomalies import anomaly, find_anomalies
from vllm_pin.refresh.rows import package_row, release_entry
from vllm_pin.refresh.summary import summarize, summarize_table

Progress = Callable[[str, int, int], None]


@dataclass
class RefreshResult:
    """What a refresh read: the releases.toml document plus the wheels behind it."""

    document: dict[str, Any]
    #: distribution -> version -> machine -> the representative wheel whose metadata was read
    wheels: dict[str, dict[Version, dict[str, IndexFile]]] = field(default_factory=dict)
    #: every file whose metadata was read (for the benchmark's byte ratio)
    metadata_files: list[IndexFile] = field(default_factory=list)


class _Counter:
    """Counts finished jobs of a stage (from worker threads) for the progress display."""

    def __init__(self, progress: Progress | None, stage: str, total: int) -> None:
        self.progress, self.stage, self.total, self.done = progress, stage, total, 0
        self._lock = threading.Lock()
        self.tick(0)

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if self.progress is not None:
                self.progress(self.stage, self.done, self.total)


def collect(
    client: PyPIClient,
    *,
    distributions: Sequence[str] = DISTRIBUTIONS,
    only: Collection[Version] | None = None,
    base: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    processes: int = 1,
    timeline: bool = False,
) -> RefreshResult:
    """Read the index and build the releases.toml document.

    `only` limits the refresh to those versions; every other release and package row is
    taken unchanged from `base` (the committed document). Without `only`, `base` is unused.
    The wheels are read on up to `processes` processes (see `prefetch.reading`), with the
    sources the timeline reads from the vLLM wheels when `timeline` (refresh_outputs builds it
    next).
    """
    if only is None:
        base = None
    pages = client.map(client.project, distributions)
    plan: list[tuple[str, Version, list[IndexFile], dict[str, tuple[Wheel, list[Wheel]]]]] = []
    for dist, files in zip(distributions, pages):
        for version, vfiles in sorted(group_by_version(files).items()):
            if only is None or version in only:
                plan.append((dist, version, vfiles, representatives(vfiles)))
    if only is not None:
        found = {v for _, v, _, _ in plan}
        missing = sorted(set(only) - found)
        if missing:
            raise VllmPinError(
                f"--only {', '.join(map(str, missing))}: no such release of "
                f"{' or '.join(distributions)} on {client.index_url}"
            )
    jobs = [(d, v, m, rep.file) for d, v, _, reps in plan for m, (rep, _) in reps.items()]
    files = [job[3] for job in jobs]
    sources = timeline_wheels(
        {v: {m: rep.file for m, (rep, _) in reps.items()} for d, v, _, reps in plan if d == "vllm"}
    )
    wheel_counter = _Counter(progress, "release wheels", len(set(files)))
    with prefetch.reading(
        client, files, sources if timeline else {}, processes, wheel_counter.tick
    ) as metadata_cached:
        # meanwhile: the packages' index pages, then, once every METADATA is cached, the
        # METADATA of the packages they pin
        client.map(_page_or_none(client), PACKAGES)
        metadata_cached.wait()
        # the cache is read on the pool: a thread here waits for the GIL after each read
        # while the scans run (seconds for ~300 files)
        cached = client.map(client.cached_core_metadata, files)
        read = {f: (parse_metadata(got[0]), got[1]) for f, got in zip(files, cached) if got}
        _prefetch_packages(client, [md for md, _ in read.values()])
    # what prefetch did not cache (a worker failed, a file without sha256) is read now
    unread = [f for f in dict.fromkeys(files) if f not in read]
    if unread:
        counter = _Counter(progress, "release metadata", len(unread))
        for f, (data, source) in zip(unread, _core_metadata(client, unread, counter)):
            read[f] = (parse_metadata(data), source)
    metas = {(d, v, m): read[f] for d, v, m, f in jobs}
    floors = glibc_scan.collect(client, files)
    result = RefreshResult(document={})
    doc: dict[str, Any] = {"meta": {"schema": SCHEMA, "index-url": client.index_url}}
    problems: list[dict[str, str]] = []
    for dist in distributions:
        table: dict[Version, Any] = {
            Version(k): v for k, v in ((base or {}).get(dist) or {}).items()
        }
        for d, version, vfiles, reps in plan:
            if d != dist:
                continue
            meta = {m: metas[(d, version, m)] for m in reps}
            glibc = {m: floors[rep.file] for m, (rep, _) in reps.items()}
            table[version] = release_entry(vfiles, reps, meta, glibc)
            result.wheels.setdefault(dist, {})[version] = {
                m: rep.file for m, (rep, _) in reps.items()
            }
            for m, (md, _) in sorted(meta.items()):
                problems += [anomaly(dist, version, f"{p} ({m})") for p in md.problems]
        doc[dist] = {str(v): table[v] for v in sorted(table)}
    result.metadata_files = [job[3] for job in jobs]
    refreshed = [(d, str(v)) for d, v, _, _ in plan]
    doc["packages"] = _packages(client, doc, refreshed, base, result, progress)
    if base is not None:  # metadata problems of releases not re-read
        problems += [
            a
            for a in base.get("anomalies") or []
            if (a["package"], a["release"]) not in refreshed
            and a["what"].startswith(METADATA_PROBLEMS)
        ]
    doc["anomalies"] = find_anomalies(doc, problems)
    result.document = doc
    return result


def _core_metadata(
    client: PyPIClient, files: Sequence[IndexFile], counter: _Counter
) -> list[tuple[bytes, str]]:
    """Each file's METADATA and its source; only those not cached go to the thread pool."""

    def cached(f: IndexFile) -> tuple[bytes, str] | None:
        got = client.cached_core_metadata(f)
        if got is not None:
            counter.tick()
        return got

    def fetch(f: IndexFile) -> tuple[bytes, str]:
        got = client.core_metadata(f)
        counter.tick()
        return got

    return client.map_uncached(cached, fetch, files)


def _pinned_versions(entries: Iterable[Mapping[str, Any]]) -> set[tuple[str, Version]]:
    return _pins(
        platform["pins"]
        for entry in entries
        for platform in (entry.get("platforms") or {}).values()
    )


def _pins(pin_lists: Iterable[Iterable[str]]) -> set[tuple[str, Version]]:
    """(package, version) of each == pin of a torch-family package on the index."""
    out = set()
    for pins in pin_lists:
        for raw in pins:
            name, version = requirement_name(raw), exact_pin(parse_requirement(raw))
            # local builds (torch==2.6.0+cpu) live on other indexes, never on PyPI
            if name in PACKAGES and version is not None and version.local is None:
                out.add((str(name), version))
    return out


def _page_or_none(client: PyPIClient) -> Callable[[str], list[IndexFile] | None]:
    """`client.project`, None for a page it cannot read: read ahead of need, a page that is
    missing is an error only where a pin needs it (`_package_picks` reads it again)."""

    def page(name: str) -> list[IndexFile] | None:
        try:
            return client.project(name)
        except VllmPinError:
            return None

    return page


def _prefetch_packages(client: PyPIClient, metadata: Iterable[Metadata]) -> None:
    """Cache the METADATA of the packages these pin."""
    pinned = _pins(family_pins(md.requires_dist) for md in metadata)
    picks = _package_picks(client, pinned)
    client.map(client.core_metadata, [wheel.file for _, _, wheel in picks])


def _package_picks(
    client: PyPIClient, pinned: Collection[tuple[str, Version]]
) -> list[tuple[str, Version, Wheel]]:
    """The wheel whose metadata stands for each pinned package version on the index."""
    names = sorted({name for name, _ in pinned})
    pages = dict(zip(names, map(group_by_version, client.map(client.project, names))))
    picks: list[tuple[str, Version, Wheel]] = []
    for name, version in sorted(pinned):
        wheel = package_wheel(pages[name].get(version, []))
        if wheel is not None:
            picks.append((name, version, wheel))
    return picks


def _releases(
    doc: Mapping[str, Any], only: Collection[tuple[str, str]] | None = None
) -> list[Mapping[str, Any]]:
    return [
        entry
        for dist in DISTRIBUTIONS
        for key, entry in (doc.get(dist) or {}).items()
        if only is None or (dist, key) in only
    ]


def _packages(
    client: PyPIClient,
    doc: Mapping[str, Any],
    refreshed: Collection[tuple[str, str]],
    base: Mapping[str, Any] | None,
    result: RefreshResult,
    progress: Progress | None,
) -> dict[str, Any]:
    """Rows for every torch-family version some release pins with ==."""
    needed = _pinned_versions(_releases(doc))
    old = (base or {}).get("packages") or {}
    kept = {(n, v) for n, v in needed if base is not None and str(v) in (old.get(n) or {})}
    fresh = (needed - kept) | _pinned_versions(_releases(doc, refreshed))
    rows: dict[str, dict[Version, Any]] = defaultdict(dict)
    for name, version in kept - fresh:
        rows[name][version] = old[name][str(version)]
    picks = _package_picks(client, fresh)
    counter = _Counter(progress, "package metadata", len(picks))
    raw = _core_metadata(client, [wheel.file for _, _, wheel in picks], counter)
    for (name, version, wheel), (data, source) in zip(picks, raw):
        rows[name][version] = package_row(name, parse_metadata(data), source, wheel)
        result.metadata_files.append(wheel.file)
    return {name: {str(v): rows[name][v] for v in sorted(rows[name])} for name in sorted(rows)}


@dataclass
class Output:
    """One generated file: what is committed, what the index says now, and the difference."""

    path: Path
    old: str | None
    new: str
    #: the summary lines; only called for a stale file, since parsing both texts costs time
    changes: Callable[[], list[str]]


def _read_committed(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(f"cannot read {path}: {exc}; restore it from git") from None


def timeline_wheels(
    vllm: Mapping[Version, Mapping[str, IndexFile]],
) -> dict[Version, IndexFile]:
    """The wheel each vLLM release's timeline facts are read from: its x86_64 one."""
    return {v: m["x86_64"] for v, m in vllm.items() if "x86_64" in m}


def _timeline_output(
    client: PyPIClient, result: RefreshResult, path: Path, only: Collection[Version] | None
) -> Output:
    """timeline.toml: facts range-read from the same x86_64 vLLM wheels (see timeline_scan)."""
    wheels = timeline_wheels(result.wheels.get("vllm", {}))
    new = timeline_scan.merged_text(client, wheels, path if only is not None else None)
    return _timeline_text_output(path, new)


def _timeline_text_output(path: Path, new: str) -> Output:
    old = _read_committed(path)

    def changes() -> list[str]:
        old_rows = (_loads_or_none(old) or {}).get("vllm") or {}
        return summarize_table("timeline", old_rows, loads(new).get("vllm") or {})

    return Output(path, old, new, changes)


def _loads_or_none(text: str | None) -> dict[str, Any] | None:
    """The committed document for a summary; None when missing or not TOML (all rows are new)."""
    try:
        return loads(text) if text is not None else None
    except MatrixError:
        return None


def refresh_outputs(
    matrix_dir: Path,
    *,
    only: Collection[Version] | None,
    index_url: str,
    recorded_index_url: str = "",
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
    client: PyPIClient | None = None,
    processes: int = 1,
) -> list[Output]:
    """releases.toml and timeline.toml of ``matrix_dir`` as committed and as the index says now.

    With ``only``, those releases are re-read and every other row is kept from the committed
    files (which must exist). ``recorded_index_url`` is what meta.index-url says (default:
    the index URL without credentials). ``client`` replaces the one built from ``index_url``,
    ``cache_dir`` and ``timeout``; the wheels are read on up to ``processes`` processes. A
    full refresh whose inputs did not change since the last one returns that one's texts (see
    `memo`). Nothing is written to the matrix.
    """
    path = matrix_dir / "releases.toml"
    old_text = _read_committed(path)
    base: dict[str, Any] | None = None  # only `--only` merges into the committed rows
    if only is not None:
        if old_text is None:
            raise VllmPinError(f"--only needs an existing {path}; run a full refresh first")
        base = loads(old_text)
    if client is None:
        client = PyPIClient(index_url=index_url, cache_dir=cache_dir, timeout=timeout)
    recorded = recorded_index_url or client.index_url
    timeline = matrix_dir / "timeline.toml"
    kept = memo.load(client, recorded) if only is None else None
    if kept is not None and len(kept) == 2:  # nothing changed since the last full refresh
        return [
            Output(
                path,
                old_text,
                kept[0],
                lambda: summarize(_loads_or_none(old_text), loads(kept[0])),
            ),
            _timeline_text_output(timeline, kept[1]),
        ]
    result = collect(
        client, only=only, base=base, progress=progress, processes=processes, timeline=True
    )
    result.document["meta"]["index-url"] = recorded
    outputs = [
        Output(
            path,
            old_text,
            dumps(result.document),
            lambda: summarize(base or _loads_or_none(old_text), result.document),
        ),
        _timeline_output(client, result, timeline, only),
    ]
    if only is None:
        memo.store(client, recorded, [o.new for o in outputs])
    return outputs
