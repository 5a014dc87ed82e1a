"""Known issues and version-bound configuration facts, parsed from matrix/curated.toml.

Advice about vLLM goes stale with every release (`VLLM_USE_V1=0` after V0 was removed, the
XFORMERS backend after it was dropped, a `VLLM_CUDAGRAPH_MODE` that never existed). So every
fix here is bound to a vllm SpecifierSet, and `knob_problems` checks the knobs a text names
against the per-release timeline that refresh reads out of the wheels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from vllm_pin.errors import MatrixError
from vllm_pin.matrix.timeline import KINDS, KNOBS, TimelineEntry
from vllm_pin.matrix.tomlfields import Fields
from vllm_pin.names import Distribution

CUDA_DISTRIBUTION: Distribution = "vllm"
"""The distribution of the CUDA wheels: the only one whose engine starts `requires` is about."""


@dataclass(frozen=True)
class Fix:
    """The fix that holds for one range of vllm releases.

    `fix` is advice and is linted: every knob it names must exist in every release of the
    range. `why` is context (what changed, what the seed got wrong) and may name removed knobs.
    """

    vllm: SpecifierSet
    fix: str
    why: str = ""


@dataclass(frozen=True)
class Evidence:
    """A configuration to look up in the GPU observations: backend, mode, batch invariance."""

    backend: str
    mode: str | None = None
    batch_invariant: bool | None = None

    @property
    def label(self) -> str:
        parts = [self.backend, self.mode or "", "batch-invariant" if self.batch_invariant else ""]
        return "+".join(p for p in parts if p)


@dataclass(frozen=True)
class KnownIssue:
    """A log signature, the releases it affects, its cause and the fix per release range."""

    id: str
    signature: re.Pattern[str]
    vllm: SpecifierSet
    torch: SpecifierSet | None
    cause: str
    source: str
    reason: str
    fixes: tuple[Fix, ...]
    facts: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    """GPU configurations whose observed outcome (matrix/observed/) bears on this issue."""

    def matches(self, log: str) -> bool:
        """Whether the signature occurs anywhere in the log."""
        return self.signature.search(log) is not None

    def affects(self, vllm: Version, torch: Version | None = None) -> bool:
        """Whether these versions are in the affected range (torch only checked when known)."""
        if not self.vllm.contains(vllm, prereleases=True):
            return False
        if self.torch is None or torch is None:
            return True
        return self.torch.contains(torch, prereleases=True)

    def fix_for(self, vllm: Version) -> Fix | None:
        """The first fix whose range holds this release."""
        return next((f for f in self.fixes if f.vllm.contains(vllm, prereleases=True)), None)


@dataclass(frozen=True)
class ConfigFact:
    """A fact about configuration in a range of releases that the timeline cannot express.

    `env_vars`: variables that work in these releases although envs.py's registry lacks them.
    `unsupported`: `NAME=VALUE` settings that exist in the registry but no longer work.
    `backends` / `architectures`: the set the fact is about (informational).
    `requires`: canonical names of distributions every CUDA engine start of these releases
    imports; `workaround` says how to start without them (pin/verify warn on `--without`).
    """

    id: str
    vllm: SpecifierSet
    fact: str
    source: str
    reason: str
    env_vars: frozenset[str] = frozenset()
    unsupported: frozenset[str] = frozenset()
    backends: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    workaround: str = ""

    def applies(self, vllm: Version) -> bool:
        return self.vllm.contains(vllm, prereleases=True)


@dataclass(frozen=True)
class Replacement:
    """What to use instead of a knob in releases that lack it."""

    knob: str
    vllm: SpecifierSet
    instead: str
    source: str
    reason: str


@dataclass(frozen=True)
class Knowledge:
    """Everything below the knowledge marker of curated.toml, typed."""

    issues: tuple[KnownIssue, ...]
    facts: tuple[ConfigFact, ...]
    replacements: tuple[Replacement, ...]

    def fact(self, fact_id: str) -> ConfigFact | None:
        return next((f for f in self.facts if f.id == fact_id), None)

    def without_warnings(
        self, distribution: str, vllm: Version, without: Iterable[str]
    ) -> list[str]:
        """One line per `--without` distribution an engine start of this release needs.

        `requires` is about CUDA engine starts, so only the CUDA wheels (`vllm`) are checked.
        """
        if canonicalize_name(distribution) != CUDA_DISTRIBUTION:
            return []
        left_out = sorted({canonicalize_name(n) for n in without})
        return [
            f"warning: {CUDA_DISTRIBUTION} {vllm} needs {name} at every CUDA engine start "
            f"(config fact {f.id}): without {name} {f.workaround}; source: {f.source}"
            for name in left_out
            for f in self.facts
            if name in f.requires and f.applies(vllm)
        ]


# -- parsing ------------------------------------------------------------------------------


def _entry(table: str, index: int, raw: object) -> Fields:
    """One ``[[table]]`` entry, named in errors by its curated ``id`` (or ``knob``), else #N."""
    ident = (raw.get("id") or raw.get("knob")) if isinstance(raw, dict) else None
    return Fields("curated.toml", raw, f"[[{table}]] {ident or f'#{index + 1}'}")


def parse_known_issues(raw: Sequence[Any]) -> list[KnownIssue]:
    """Typed `[[known-issues]]`; MatrixError naming the entry on a bad regex/specifier."""
    issues: list[KnownIssue] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        entry = _entry("known-issues", index, item)
        issue_id = entry.text("id")
        if issue_id in seen:
            raise entry.fail("duplicate id")
        seen.add(issue_id)
        fixes_raw = entry.opt("fixes", list, [])
        if not fixes_raw:
            raise entry.fail("needs at least one [[known-issues.fixes]]")
        fixes = []
        for n, fix_raw in enumerate(fixes_raw):
            fe = _entry(f"known-issues.fixes of {issue_id}", n, fix_raw)
            fixes.append(Fix(fe.specifier("vllm"), fe.text("fix"), fe.opt("why", str, "")))
        issues.append(
            KnownIssue(
                id=issue_id,
                signature=entry.regex("signature"),
                vllm=entry.specifier("vllm"),
                torch=entry.specifier("torch") if "torch" in entry else None,
                cause=entry.text("cause"),
                source=entry.text("source"),
                reason=entry.text("reason"),
                fixes=tuple(fixes),
                facts=entry.strings("facts", required=False),
                evidence=_parse_evidence(entry, issue_id),
            )
        )
    return issues


def _parse_evidence(issue: Fields, issue_id: str) -> tuple[Evidence, ...]:
    out = []
    for n, item in enumerate(issue.opt("evidence", list, [])):
        e = _entry(f"known-issues.evidence of {issue_id}", n, item)
        invariant = e.get("batch-invariant", bool) if "batch-invariant" in e else None
        out.append(Evidence(e.text("backend"), e.opt("mode", str, "") or None, invariant))
    return tuple(out)


def parse_config_facts(raw: Sequence[Any]) -> list[ConfigFact]:
    """Typed `[[config-facts]]`."""
    out = []
    for index, item in enumerate(raw):
        e = _entry("config-facts", index, item)
        requires = tuple(canonicalize_name(n) for n in e.strings("requires", required=False))
        workaround = e.opt("workaround", str, "")
        if bool(requires) != bool(workaround):
            raise e.fail("requires and workaround go together")
        out.append(
            ConfigFact(
                id=e.text("id"),
                vllm=e.specifier("vllm"),
                fact=e.text("fact"),
                source=e.text("source"),
                reason=e.text("reason"),
                env_vars=frozenset(e.strings("env-vars", required=False)),
                unsupported=frozenset(e.strings("unsupported", required=False)),
                backends=e.strings("backends", required=False),
                architectures=e.strings("architectures", required=False),
                requires=requires,
                workaround=workaround,
            )
        )
    return out


def parse_replacements(raw: Sequence[Any]) -> list[Replacement]:
    """Typed `[[knob-replacements]]`."""
    out = []
    for index, item in enumerate(raw):
        e = _entry("knob-replacements", index, item)
        out.append(
            Replacement(
                knob=e.text("knob"),
                vllm=e.specifier("vllm"),
                instead=e.text("instead"),
                source=e.text("source"),
                reason=e.text("reason"),
            )
        )
    return out


def parse_knowledge(curated: Mapping[str, Any]) -> Knowledge:
    """The knowledge sections of a parsed curated.toml, cross-checked (fact ids exist)."""
    knowledge = Knowledge(
        issues=tuple(parse_known_issues(curated.get("known-issues", []))),
        facts=tuple(parse_config_facts(curated.get("config-facts", []))),
        replacements=tuple(parse_replacements(curated.get("knob-replacements", []))),
    )
    ids = {f.id for f in knowledge.facts}
    for issue in knowledge.issues:
        for fact_id in issue.facts:
            if fact_id not in ids:
                raise MatrixError(
                    f"curated.toml [[known-issues]] {issue.id}: unknown config fact {fact_id!r}"
                )
    return knowledge


# -- knob checking ------------------------------------------------------------------------

_ENV_SETTING = re.compile(r"\b(VLLM_[A-Z0-9_]+)(?:=([A-Za-z0-9_.]+))?")
_UPPER = re.compile(r"\b[A-Z][A-Z0-9_]*[A-Z0-9]\b")
_KWARG = re.compile(r"\b([a-z][a-z0-9_]*)=(?!=)")
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
_WORD = re.compile(r"\b[a-z][a-z0-9_]*\b")


@dataclass(frozen=True)
class Universe:
    """Every name any release has, per kind: what counts as a knob in free text."""

    names: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, entries: Iterable[TimelineEntry]) -> Universe:
        entries = list(entries)
        return cls({kind: frozenset().union(*(e.names(kind) for e in entries)) for kind in KINDS})


def knobs_in(text: str, universe: Universe) -> list[tuple[str, str]]:
    """(kind, name) of every knob a text names, in order, without duplicates.

    Kinds: the timeline's (env-vars, attention-backends, cudagraph-modes, engine-args), plus
    "setting" for `VLLM_X=VALUE` and "knob" for compilation_config keys such as cudagraph_mode.
    """
    found: list[tuple[str, str]] = []

    def add(kind: str, name: str) -> None:
        if (kind, name) not in found:
            found.append((kind, name))

    for m in _ENV_SETTING.finditer(text):
        if text[: m.start()].endswith("unset "):
            continue  # advice to remove a variable is valid whether or not the release has it
        add("env-vars", m.group(1))
        if m.group(2):
            add("setting", f"{m.group(1)}={m.group(2)}")
    for m in _UPPER.finditer(text):
        word = m.group(0)
        for kind in ("attention-backends", "cudagraph-modes"):
            if word in universe.names[kind]:
                add(kind, word)
    args = universe.names["engine-args"]
    for m in _KWARG.finditer(text):
        if m.group(1) in args:
            add("engine-args", m.group(1))
    for m in _FLAG.finditer(text):
        name = m.group(1).split(".")[0].replace("-", "_")
        if name in args:
            add("engine-args", name)
    for m in _WORD.finditer(text):
        if m.group(0) in KNOBS:
            add("knob", m.group(0))
    return found


def knob_problems(
    text: str,
    version: Version,
    entry: TimelineEntry,
    universe: Universe,
    facts: Iterable[ConfigFact] = (),
) -> list[str]:
    """Knobs a text names that this release lacks (or settings it no longer honours)."""
    applicable = [f for f in facts if f.applies(version)]
    extra_env = frozenset().union(*(f.env_vars for f in applicable))
    unsupported = frozenset().union(*(f.unsupported for f in applicable))
    problems = []
    for kind, name in knobs_in(text, universe):
        if kind == "setting":
            # a variable the release lacks is already reported; its value adds nothing
            if name in unsupported and name.split("=")[0] not in problems:
                problems.append(name)
        elif kind == "knob":
            if not entry.names(KNOBS[name]):
                problems.append(name)
        elif (
            entry.known(kind)
            and name not in entry.names(kind)
            and not (kind == "env-vars" and name in extra_env)
        ):
            problems.append(name)
    return problems
