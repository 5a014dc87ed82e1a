"""The `[[anomalies]]` of releases.toml: rows whose pins disagree with the index.

They are recorded, never "fixed": the data must say what the index says. All but metadata
problems are derived from the document alone, so a `--only` merge stays coherent.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.matrix.core_metadata import (
    PACKAGES,
    exact_pin,
    linux_markers,
    parse_requirement,
    torch_requirement,
)
from vllm_pin.names import DISTRIBUTIONS


def anomaly(dist: str, version: Version | str, what: str) -> dict[str, str]:
    """One `[[anomalies]]` row."""
    return {"release": str(version), "package": dist, "what": what}


def _applies(req: Requirement, machine: str, extras: Iterable[str]) -> bool:
    """Whether a pin applies on Linux/machine, under no extra or one of the declared extras."""
    if req.marker is None:
        return True
    env = linux_markers(machine)
    marker: Marker = req.marker
    return any(marker.evaluate({**env, "extra": e}) for e in ["", *extras])


def find_anomalies(
    doc: Mapping[str, Any], extra: Iterable[dict[str, str]] = ()
) -> list[dict[str, str]]:
    """Rows that look odd, derived from the document alone (so --only merges stay coherent)."""
    packages: Mapping[str, Any] = doc.get("packages") or {}
    found: dict[tuple[str, Version, str], set[str]] = defaultdict(set)
    machines: dict[tuple[str, Version], set[str]] = defaultdict(set)
    for dist in DISTRIBUTIONS:
        for key, entry in (doc.get(dist) or {}).items():
            version = Version(key)
            for machine, platform in (entry.get("platforms") or {}).items():
                machines[(dist, version)].add(machine)
                extras = _extras(platform["requires-dist"])
                for what in _platform_anomalies(platform["pins"], machine, extras, packages):
                    found[(dist, version, what)].add(machine)
    out = list(extra)
    for (name, release, what), where in found.items():
        on = "" if where == machines[(name, release)] else f" (on {', '.join(sorted(where))})"
        out.append(anomaly(name, release, what + on))
    return sorted(out, key=lambda a: (a["package"], Version(a["release"]), a["what"]))


def _extras(requires_dist: Iterable[str]) -> set[str]:
    return {extra for raw in requires_dist for extra in _marker_extras(raw)}


@cache
def _marker_extras(raw: str) -> tuple[str, ...]:
    """The extras a requirement's marker names (the same strings recur in every release)."""
    marker = parse_requirement(raw).marker
    return tuple(re.findall(r'extra == "([^"]+)"', str(marker))) if marker else ()


def _platform_anomalies(
    pins: Sequence[str], machine: str, extras: Iterable[str], packages: Mapping[str, Any]
) -> list[str]:
    reqs = [r for r in map(parse_requirement, pins) if _applies(r, machine, extras)]
    torch = [v for r in reqs if canonicalize_name(r.name) == "torch" for v in [exact_pin(r)] if v]
    out = []
    for req in reqs:
        name, version = str(canonicalize_name(req.name)), exact_pin(req)
        if name not in PACKAGES or version is None or version.local is not None:
            continue
        row = (packages.get(name) or {}).get(str(version))
        if row is None:
            out.append(f"pins {name}=={version}, which has no wheel on the index")
            continue
        if name == "torch":
            continue
        declared = torch_requirement(row["requires-dist"])
        for t in torch:
            if declared is None:
                out.append(
                    f"pins torch=={t} with {name}=={version}, "
                    f"and {name} {version} declares no torch requirement"
                )
            elif t not in SpecifierSet(declared):
                out.append(
                    f"pins torch=={t} with {name}=={version}, which requires torch{declared}"
                )
    return out
