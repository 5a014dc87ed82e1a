"""`vllm-pin refresh`: rebuild matrix/releases.toml from the package index's metadata.

Every fact here is read from PyPI metadata (PEP 691 JSON index, PEP 658 `.metadata`, or
METADATA range-read from the wheel), normalised through `packaging`, and written in a
deterministic order, so a refresh with nothing new is byte-identical. Rows that look odd are
recorded under `[[anomalies]]`, never "fixed": the data must say what the index says.

This module reads the index and drives the command; the pieces live in `wheels` (which wheel),
`core_metadata` (what its METADATA says), `release_rows`, `anomalies`, `releases_file` (the
text) and `refresh_summary` (what changed).

Other modules hook in through `collect(client) -> RefreshResult`, whose `wheels` map gives the
representative wheel of every release and machine (e.g. to range-read `vllm/envs.py`).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from packaging.version import InvalidVersion, Version

from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.index.pypi import DEFAULT_INDEX_URL, IndexFile, PyPIClient
from vllm_pin.index.wheels import Wheel, group_by_version, package_wheel, representatives
from vllm_pin.matrix.core_metadata import (
    METADATA_PROBLEMS,
    PACKAGES,
    Metadata,
    exact_pin,
    parse_metadata,
    parse_requirement,
    requirement_name,
)
from vllm_pin.matrix.releases_file import DISTRIBUTIONS, SCHEMA, dumps, loads
from vllm_pin.refresh.anomalies import anomaly, find_anomalies
from vllm_pin.refresh.rows import package_row, release_entry
from vllm_pin.refresh.summary import summarize, summarize_table

INDEX_URL_ENV = "VLLM_PIN_INDEX_URL"

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
) -> RefreshResult:
    """Read the index and build the releases.toml document.

    `only` limits the refresh to those versions; every other release and package row is
    taken unchanged from `base` (the committed document). Without `only`, `base` is unused.
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
    counter = _Counter(progress, "release metadata", len(jobs))

    def read(job: tuple[str, Version, str, IndexFile]) -> tuple[Metadata, str]:
        data, source = client.core_metadata(job[3])
        counter.tick()
        return parse_metadata(data), source

    metas = dict(zip([(d, v, m) for d, v, m, _ in jobs], client.map(read, jobs)))
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
            table[version] = release_entry(vfiles, reps, meta)
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


def _pinned_versions(entries: Iterable[Mapping[str, Any]]) -> set[tuple[str, Version]]:
    out = set()
    for entry in entries:
        for platform in (entry.get("platforms") or {}).values():
            for raw in platform["pins"]:
                name, version = requirement_name(raw), exact_pin(parse_requirement(raw))
                # local builds (torch==2.6.0+cpu) live on other indexes, never on PyPI
                if name in PACKAGES and version is not None and version.local is None:
                    out.add((str(name), version))
    return out


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
    names = sorted({name for name, _ in fresh})
    pages = dict(zip(names, map(group_by_version, client.map(client.project, names))))
    picks: list[tuple[str, Version, Wheel]] = []
    for name, version in sorted(fresh):
        wheel = package_wheel(pages[name].get(version, []))
        if wheel is not None:
            picks.append((name, version, wheel))
    counter = _Counter(progress, "package metadata", len(picks))

    def read(pick: tuple[str, Version, Wheel]) -> dict[str, Any]:
        data, source = client.core_metadata(pick[2].file)
        counter.tick()
        return package_row(pick[0], parse_metadata(data), source, pick[2])

    for (name, version, wheel), row in zip(picks, client.map(read, picks)):
        rows[name][version] = row
        result.metadata_files.append(wheel.file)
    return {name: {str(v): rows[name][v] for v in sorted(rows[name])} for name in sorted(rows)}


def _parse_only(values: Sequence[str] | None) -> set[Version] | None:
    if not values:
        return None
    out = set()
    for raw in (part.strip() for value in values for part in value.split(",")):
        try:
            out.add(Version(raw))
        except InvalidVersion:
            raise VllmPinError(f"--only {raw!r} is not a version; e.g. --only 0.10.1.1") from None
    return out


def _progress_printer(stream: TextIO) -> Progress:
    """Live counts on a terminal; one line per finished stage otherwise."""
    tty = stream.isatty()

    def show(stage: str, done: int, total: int) -> None:
        if tty:
            end = "\n" if done == total else ""
            stream.write(f"\r\033[Krefresh: {stage} {done}/{total}{end}")
            stream.flush()
        elif done == total:
            stream.write(f"refresh: {stage} {done}/{total}\n")

    return show


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin refresh`."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the matrix files")
    mode.add_argument(
        "--check", action="store_true", help="exit 1 when the committed files are stale"
    )
    parser.add_argument(
        "--index-url",
        default=os.environ.get(INDEX_URL_ENV) or DEFAULT_INDEX_URL,
        help=f"PEP 691 simple index (env {INDEX_URL_ENV}; default {DEFAULT_INDEX_URL})",
    )
    parser.add_argument("--cache-dir", type=Path, help="default ~/.cache/vllm-pin")
    parser.add_argument(
        "--only",
        action="append",
        metavar="VERSION[,VERSION]",
        help="refresh only these releases; keep every other row of the committed files",
    )
    parser.add_argument(
        "--matrix-dir",
        type=Path,
        help="where releases.toml and timeline.toml live (default: the checkout's matrix/)",
    )


@dataclass
class _Output:
    """One generated file: what is committed, what the index says now, and the difference."""

    path: Path
    old: str | None
    new: str
    #: the summary lines; only called for a stale file, since parsing both texts costs time
    changes: Callable[[], list[str]]


def _read_committed(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _timeline_output(
    client: PyPIClient, result: RefreshResult, path: Path, only: Collection[Version] | None
) -> _Output:
    """timeline.toml: facts range-read from the same x86_64 vLLM wheels (see vllm_pin.matrix.timeline)."""
    from vllm_pin.matrix import timeline

    wheels = {v: m["x86_64"] for v, m in result.wheels.get("vllm", {}).items() if "x86_64" in m}
    old = _read_committed(path)
    new = timeline.merged_text(client, wheels, path if only is not None else None)

    def changes() -> list[str]:
        old_rows = (_loads_or_none(old) or {}).get("vllm") or {}
        return summarize_table("timeline", old_rows, loads(new).get("vllm") or {})

    return _Output(path, old, new, changes)


def _loads_or_none(text: str | None) -> dict[str, Any] | None:
    """The committed document for a summary; None when missing or not TOML (all rows are new)."""
    try:
        return loads(text) if text is not None else None
    except MatrixError:
        return None


def run(args: argparse.Namespace) -> int:
    """Refresh; print what changed; write only with --write, all files or none."""
    from vllm_pin.matrix.paths import default_matrix_dir

    matrix_dir: Path = args.matrix_dir or default_matrix_dir()
    path = matrix_dir / "releases.toml"
    only = _parse_only(args.only)
    old_text = _read_committed(path)
    base: dict[str, Any] | None = None  # only `--only` merges into the committed rows
    if only is not None:
        if old_text is None:
            raise VllmPinError(f"--only needs an existing {path}; run a full refresh first")
        base = loads(old_text)
    client = PyPIClient(index_url=args.index_url, cache_dir=args.cache_dir)
    result = collect(client, only=only, base=base, progress=_progress_printer(sys.stderr))
    outputs = [
        _Output(
            path,
            old_text,
            dumps(result.document),
            lambda: summarize(base or _loads_or_none(old_text), result.document),
        ),
        _timeline_output(client, result, matrix_dir / "timeline.toml", only),
    ]
    stale = [o for o in outputs if o.new != o.old]
    if not stale:
        print(f"no changes: {', '.join(str(o.path) for o in outputs)} up to date")
        return 0
    for o in stale:
        lines = o.changes() or ["(formatting only)"]
        print(f"{o.path}: {len(lines)} change(s)")
        print("".join(f"  {line}\n" for line in lines), end="")
    if args.write:
        for o in stale:
            atomic_write_text(o.path, o.new)
            print(f"wrote {o.path}")
        return 0
    if args.check:
        print("the matrix is stale; run tools/refresh_matrix.py --write")
        return 1
    print("nothing written; run with --write to apply")
    return 0
