"""verify's VP601-VP604: VLLM_* variables that the checked vLLM release does not read as set.

vLLM silently ignores a variable it no longer (or never) reads, so a stale one changes nothing
and nobody notices; the release's registries are read from the installed vllm's source (never
imported) or, for a requirements file, from the matrix timeline.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from vllm_pin.errors import UNPARSABLE_SOURCE, VllmPinError
from vllm_pin.matrix import vllm_source
from vllm_pin.matrix.knowledge import Knowledge
from vllm_pin.matrix.model import Matrix
from vllm_pin.matrix.timeline import TimelineEntry
from vllm_pin.verify.checks import Context
from vllm_pin.verify.env import Env, Problem


@dataclass(frozen=True)
class Knobs:
    """What one vLLM release reads from its configuration, and where that was read."""

    version: Version
    entry: TimelineEntry
    source: str


def knobs_from_site(site: Path, version: Version) -> Knobs | None:
    """Read the installed vllm's registries statically (never importing vllm)."""
    try:
        files = {
            member: (site / member).read_text(encoding="utf-8")
            for member in sorted(vllm_source.MEMBER_PATTERNS)
            if (site / member).is_file()
        }
        entry = vllm_source.entry_from_files(files)
    except SyntaxError:
        return None  # newer syntax than this interpreter reads: the variables go unchecked
    except (OSError, *UNPARSABLE_SOURCE) as exc:
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise VllmPinError(
            f"cannot read the installed vllm's sources under {site}/vllm ({why}); "
            "the installation is damaged: reinstall vllm"
        ) from None
    if not entry.env_vars:
        return None
    return Knobs(version, entry, str(site / vllm_source.ENVS_PY))


def knobs_from_matrix(matrix: Matrix, version: Version) -> Knobs | None:
    """The timeline's record of a release, for checking before anything is installed."""
    entry = matrix.timeline(version)
    if entry is None or not entry.env_vars:
        return None
    return Knobs(version, entry, f'matrix/timeline.toml [vllm."{version}"]')


def knobs_for(env: Env, ctx: Context) -> Knobs | None:
    """The installed vllm's own source first (that is what runs), else the matrix timeline."""
    vllm = env.vllm
    if vllm is None:
        return None
    if env.vllm_site is not None:
        knobs = knobs_from_site(env.vllm_site, vllm.version)
        if knobs is not None:
            return knobs
    if ctx.matrix is None:
        return None
    return knobs_from_matrix(ctx.matrix, Version(vllm.version.public))


def _last_release_with(matrix: Matrix | None, name: str, before: Version) -> Version | None:
    if matrix is None:
        return None
    having = [v for v, e in matrix.timelines.items() if v < before and name in e.env_vars]
    return max(having, default=None)


def _close(word: str, options: Iterable[str]) -> str:
    found = difflib.get_close_matches(word, sorted(options), n=3, cutoff=0.75)
    return f"did you mean {' or '.join(found)}? " if found else ""


def check_env_vars(env: Env, ctx: Context, knobs: Knobs | None) -> Iterator[Problem]:
    """VP601-VP604: VLLM_* variables the release removed, never had, rejects the value of, or
    still lists but no longer honours (curated `[[config-facts]]` `unsupported`)."""
    if not env.environ:
        return
    vllm = env.vllm
    if knobs is None:
        if vllm is not None:
            env.notes.append(f"VLLM_* variables not checked: no envs.py facts for {vllm.label}")
        return
    knowledge = ctx.matrix.knowledge if ctx.matrix is not None else None
    facts = [f for f in (knowledge.facts if knowledge else ()) if f.applies(knobs.version)]
    extra_env = frozenset().union(*(f.env_vars for f in facts))
    where = f"vllm {knobs.version}"
    unread = f"not a key of environment_variables in {knobs.source}; setting it does nothing"
    for name, value in sorted(env.environ.items()):
        setting = f"{name}={value}"
        hint = _knob_hint(name, value, knobs, knowledge)
        if name in knobs.entry.env_vars or name in extra_env:
            # a curated setting (VLLM_USE_V1=0) may be printed: its value is public knowledge
            stale = next((f for f in facts if setting in f.unsupported), None)
            if stale is None:
                yield from _check_value(name, value, knobs, where, knowledge)
                continue
            yield Problem(
                "VP604",
                setting,
                f"{where} still lists {name} but no longer honours {setting}",
                f"{stale.fact} ({stale.source})",
                f"unset {name}{hint}",
            )
        elif (last := _last_release_with(ctx.matrix, name, knobs.version)) is not None:
            yield Problem(
                "VP601",
                name,  # the name only: a value may be a secret (VLLM_API_KEYS)
                f"{where} no longer reads {name} (last release that did: {last})",
                unread,
                f"unset {name}{hint}",
            )
        else:
            yield Problem(
                "VP602",
                name,
                f"{where} has no variable {name}",
                unread,
                f"{_close(name, knobs.entry.env_vars)}unset {name}{hint}",
            )


def _replacement(knowledge: Knowledge | None, version: Version, *keys: str) -> str:
    """The curated `[[knob-replacements]]` advice for the first key that has one, or ""."""
    for key in keys:
        for rep in knowledge.replacements if knowledge else ():
            if rep.knob == key and rep.vllm.contains(version, prereleases=True):
                return f"; what to use instead: {rep.instead} ({rep.source})"
    return ""


def _knob_hint(name: str, value: str, knobs: Knobs, knowledge: Knowledge | None) -> str:
    """Point a variable the release ignores at the knob it has instead.

    Curated `[[knob-replacements]]` (for `NAME=VALUE`, then `NAME`) win; otherwise the
    timeline names the knob: `compilation_config` `cudagraph_mode` where CUDAGraphMode exists,
    or an engine argument named like the variable.
    """
    curated = _replacement(knowledge, knobs.version, f"{name}={value}", name)
    if curated:
        return curated
    knob = name[len("VLLM_") :].lower()
    if knob == "cudagraph_mode" and knobs.entry.cudagraph_modes:
        mode = value.upper() if value.upper() in knobs.entry.cudagraph_modes else "PIECEWISE"
        return (
            f'; the real knob is compilation_config={{"cudagraph_mode": "{mode}"}} '
            f'(LLM(..., compilation_config=...) or vllm serve -O \'{{"cudagraph_mode": '
            f'"{mode}"}}\'; modes: {", ".join(sorted(knobs.entry.cudagraph_modes))})'
        )
    if knob in knobs.entry.engine_args:
        return (
            f"; the real knob is the engine argument LLM({knob}=...) / --{knob.replace('_', '-')}"
        )
    return ""


def _check_value(
    name: str, value: str, knobs: Knobs, where: str, knowledge: Knowledge | None
) -> Iterator[Problem]:
    allowed = knobs.entry.env_var_choices.get(name)
    if name == "VLLM_ATTENTION_BACKEND" and knobs.entry.attention_backends:
        allowed = knobs.entry.attention_backends
    if allowed is None or value in allowed:
        return
    yield Problem(
        "VP603",
        name,  # never the value: it may be a secret; the user can see it in their env
        f"{where} does not accept the value of {name}",
        f"valid values: {', '.join(sorted(allowed))}",
        f"{_close(value, allowed)}set {name} to one of the valid values or unset it"
        + _replacement(knowledge, knobs.version, f"{name}={value}", value),
    )
