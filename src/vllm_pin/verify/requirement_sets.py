"""Requirement sets as projects write them, read for `vllm-pin verify -r FILE`.

Four forms, told apart by the file name (and, for other ``.toml`` names, by their tables):

- pip requirements files, with ``-r``/``-c`` includes (an include cycle is refused);
- ``pyproject.toml``: ``[project] dependencies``, ``[project.optional-dependencies]``
  (a self-reference such as ``lighteval[accelerate,vllm]`` is expanded) and PEP 735
  ``[dependency-groups]`` (with ``{include-group = ...}``);
- ``uv.lock``: every locked package as an exact pin, its resolution markers kept, and the
  vllm extras that some locked package asks for;
- PEP 751 ``pylock.toml``: every package as an exact pin, its marker kept.

Nothing is resolved here: a file becomes one or more :class:`RequirementSet` (a pyproject
without ``--extra``/``--group`` gives its base and each extra that mentions vllm, on its own).
Any unreadable or malformed input is one :class:`RequirementSetError` line.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from vllm_pin.errors import RequirementSetError
from vllm_pin.names import DISTRIBUTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.9/3.10 only
    import tomli as tomllib

__all__ = [
    "Entry",
    "RequirementSet",
    "read_requirements_file",
    "read_sets",
]

_INCLUDE = re.compile(r"^(-r|-c|--requirement|--constraint)(?:=|\s+)(\S+)$")


@dataclass(frozen=True)
class Entry:
    """One requirement of a set, and where it was written."""

    req: Requirement
    origin: str
    """``file:line`` or the pyproject table it came from."""


@dataclass(frozen=True)
class RequirementSet:
    """The requirements one install would be given."""

    label: str
    """How output names the set: the path, plus ``[extra, ...]`` for a pyproject selection."""
    entries: tuple[Entry, ...]

    def names(self) -> set[str]:
        """Canonical names the set mentions."""
        return {canonicalize_name(e.req.name) for e in self.entries}

    def mentions_vllm(self) -> bool:
        return bool(self.names() & set(DISTRIBUTIONS))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequirementSetError(
            f"--requirements {path}: cannot read it ({exc.strerror})"
        ) from None
    except UnicodeDecodeError:
        raise RequirementSetError(f"--requirements {path}: not UTF-8 text") from None


def _requirement(text: str, origin: str, hint: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement:
        raise RequirementSetError(f"{origin}: {text!r} is not a requirement; {hint}") from None


def read_requirements_file(path: Path, _chain: tuple[Path, ...] = ()) -> list[Entry]:
    """Requirement lines of a pip requirements file, following ``-r``/``-c`` includes.

    Options (``--index-url``, ``--hash=``) are skipped; a line that is not a requirement is a
    one-line error naming the file and line, so nothing is silently ignored. Constraint files
    count as requirements: for judging a set, a constraint narrows a version just as much.
    """
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(p.name for p in (*_chain[_chain.index(resolved) :], resolved))
        raise RequirementSetError(f"--requirements {path}: include cycle {cycle}")
    text = _read_text(path)
    out: list[Entry] = []
    logical = re.sub(r"\\\r?\n", " ", text)
    for lineno, raw in enumerate(logical.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        line = re.sub(r"\s--hash[= ]\S+", "", line).strip()
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include:
            out.extend(read_requirements_file(path.parent / include.group(2), (*_chain, resolved)))
            continue
        if line.startswith("-"):
            continue
        req = _requirement(line, f"{path}:{lineno}", "write it as name==version")
        out.append(Entry(req, f"{path}:{lineno}"))
    return out


def _load_toml(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RequirementSetError(f"--requirements {path}: not valid TOML ({exc})") from None


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequirementSetError(f"{where} must be a list of requirement strings")
    return list(value)


class _Pyproject:
    """The requirement tables of one pyproject.toml, with self-references expanded."""

    def __init__(self, path: Path, data: Mapping[str, Any]) -> None:
        self.path = path
        project = data.get("project", {})
        if not isinstance(project, dict):
            raise RequirementSetError(f"{path}: [project] is not a table")
        self.name = canonicalize_name(str(project.get("name", "")))
        self.base = _strings(project.get("dependencies", []), f"{path}: [project] dependencies")
        optional = project.get("optional-dependencies", {})
        groups = data.get("dependency-groups", {})
        if not isinstance(optional, dict) or not isinstance(groups, dict):
            raise RequirementSetError(
                f"{path}: [project.optional-dependencies] and [dependency-groups] must be tables"
            )
        self.extras = {
            canonicalize_name(k): _strings(v, f"{path}: extra {k!r}") for k, v in optional.items()
        }
        self.groups: dict[str, list[object]] = {}
        for key, value in groups.items():
            if not isinstance(value, list):
                raise RequirementSetError(f"{path}: dependency group {key!r} must be a list")
            self.groups[canonicalize_name(key)] = value

    def _expand(self, texts: Sequence[str], origin: str, seen: set[str]) -> Iterator[Entry]:
        for text in texts:
            req = _requirement(text, f"{self.path} {origin}", "fix the pyproject entry")
            if self.name and canonicalize_name(req.name) == self.name:
                for extra in sorted(canonicalize_name(e) for e in req.extras):
                    yield from self.extra(extra, seen)
                continue
            yield Entry(req, f"{self.path} {origin}")

    def extra(self, name: str, seen: set[str] | None = None) -> Iterator[Entry]:
        seen = set() if seen is None else seen
        key = canonicalize_name(name)
        if key not in self.extras:
            known = ", ".join(sorted(self.extras)) or "none"
            raise RequirementSetError(f"{self.path} has no extra {name!r} (extras: {known})")
        if key in seen:
            return
        seen.add(key)
        yield from self._expand(self.extras[key], f"[{key}]", seen)

    def group(self, name: str, chain: tuple[str, ...] = ()) -> Iterator[Entry]:
        key = canonicalize_name(name)
        if key not in self.groups:
            known = ", ".join(sorted(self.groups)) or "none"
            raise RequirementSetError(
                f"{self.path} has no dependency group {name!r} (groups: {known})"
            )
        if key in chain:
            cycle = " -> ".join((*chain[chain.index(key) :], key))
            raise RequirementSetError(f"{self.path}: dependency group cycle {cycle}")
        for item in self.groups[key]:
            if isinstance(item, dict) and isinstance(item.get("include-group"), str):
                yield from self.group(item["include-group"], (*chain, key))
            elif isinstance(item, str):
                yield from self._expand([item], f"group {key}", set())
            else:
                raise RequirementSetError(
                    f"{self.path}: dependency group {key!r} has an entry that is neither a "
                    "requirement nor {include-group = ...}"
                )

    def sets(self, extras: Sequence[str], groups: Sequence[str]) -> list[RequirementSet]:
        base = tuple(self._expand(self.base, "[project] dependencies", set()))
        if extras or groups:
            chosen = list(base)
            for name in extras:
                chosen.extend(self.extra(name))
            for name in groups:
                chosen.extend(self.group(name))
            picked = [*extras, *(f"group {g}" for g in groups)]
            return [RequirementSet(f"{self.path} [{', '.join(picked)}]", tuple(chosen))]
        whole = RequirementSet(str(self.path), base)
        with_vllm = [
            RequirementSet(f"{self.path} [{name}]", (*base, *self.extra(name)))
            for name in sorted(self.extras)
        ]
        with_vllm = [s for s in with_vllm if s.mentions_vllm()]
        if whole.mentions_vllm() or not with_vllm:
            return [whole, *with_vllm]
        return with_vllm


def _lock_requirement(name: str, version: str, marker: str, origin: str) -> Entry:
    text = f"{name}=={version}" + (f"; {marker}" if marker else "")
    return Entry(_requirement(text, origin, "the lock file is malformed"), origin)


def _packages(data: Mapping[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    packages = data.get(key, [])
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        raise RequirementSetError(f"{path}: [[{key}]] must be an array of tables")
    return packages


def _uv_lock_entries(path: Path, data: Mapping[str, Any]) -> list[Entry]:
    """Each locked version (markers from its resolution forks); vllm with the extras asked."""
    packages = _packages(data, "package", path)
    asked: dict[str, set[str]] = {}
    for package in packages:
        tables = [package.get("dependencies", [])]
        for group_key in ("optional-dependencies", "dev-dependencies"):
            groups = package.get(group_key, {})
            tables += list(groups.values()) if isinstance(groups, dict) else []
        for deps in tables:
            for dep in deps if isinstance(deps, list) else []:
                if isinstance(dep, dict) and isinstance(dep.get("extra"), list):
                    asked.setdefault(canonicalize_name(str(dep.get("name"))), set()).update(
                        str(e) for e in dep["extra"]
                    )
    out = []
    for package in packages:
        if "name" not in package or "version" not in package:
            continue
        name = canonicalize_name(str(package["name"]))
        extras = sorted(asked.get(name, set())) if name in DISTRIBUTIONS else []
        forks = package.get("resolution-markers", [])
        marker = " or ".join(f"({m})" for m in forks) if isinstance(forks, list) else ""
        spelled = f"{name}[{','.join(extras)}]" if extras else name
        out.append(_lock_requirement(spelled, str(package["version"]), marker, f"{path} {name}"))
    return out


def _pylock_entries(path: Path, data: Mapping[str, Any]) -> list[Entry]:
    """PEP 751: each package (that records a version) as an exact pin under its marker."""
    return [
        _lock_requirement(
            str(p["name"]), str(p["version"]), str(p.get("marker", "")), f"{path} {p['name']}"
        )
        for p in _packages(data, "packages", path)
        if "name" in p and "version" in p
    ]


def _is_pylock(path: Path) -> bool:
    return re.fullmatch(r"pylock(\.[^.]+)?\.toml", path.name) is not None


def read_sets(
    path: Path, extras: Sequence[str] = (), groups: Sequence[str] = ()
) -> list[RequirementSet]:
    """The requirement sets a file describes (see the module docstring for the forms)."""
    is_toml = path.suffix == ".toml" or path.name == "uv.lock"
    if (extras or groups) and not (is_toml and path.name != "uv.lock" and not _is_pylock(path)):
        raise RequirementSetError(
            f"--extra/--group select from a pyproject.toml; {path} is not one"
        )
    if not is_toml:
        return [RequirementSet(str(path), tuple(read_requirements_file(path)))]
    data = _load_toml(path)
    if path.name == "uv.lock" or ("package" in data and "version" in data):
        return [RequirementSet(str(path), tuple(_uv_lock_entries(path, data)))]
    if _is_pylock(path) or "lock-version" in data:
        return [RequirementSet(str(path), tuple(_pylock_entries(path, data)))]
    if "project" not in data and "dependency-groups" not in data:
        raise RequirementSetError(
            f"--requirements {path}: no [project] or [dependency-groups] table; give a "
            "pyproject.toml, uv.lock, pylock.toml or a requirements file"
        )
    return _Pyproject(path, data).sets(extras, groups)
