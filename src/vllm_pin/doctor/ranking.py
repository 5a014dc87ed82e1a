"""Ranking: curated known issues and analyzer findings in one list, most specific first,
each with the reason for its place."""

from __future__ import annotations

from dataclasses import dataclass

from vllm_pin.doctor.analyzers import Finding
from vllm_pin.doctor.diagnose import Diagnosis

#: a curated signature whose affected range holds the release: exact text, checked range
AFFECTED = 90
#: a curated signature, release unknown
UNKNOWN_RELEASE = 75
#: a curated signature for a release outside its affected range
OUTSIDE = 40


@dataclass(frozen=True)
class Ranked:
    """One answer, curated or analyzed, with its rank and why."""

    id: str
    rank: int
    why: str
    diagnosis: Diagnosis | None = None
    finding: Finding | None = None


def _curated(d: Diagnosis) -> Ranked:
    if d.affected is True:
        return Ranked(
            d.issue.id,
            AFFECTED,
            f"curated known issue: its exact signature matched and the release is in its "
            f"affected range (vllm {d.issue.vllm or 'all'})",
            diagnosis=d,
        )
    if d.affected is None:
        return Ranked(
            d.issue.id,
            UNKNOWN_RELEASE,
            "curated known issue: its exact signature matched (release unknown)",
            diagnosis=d,
        )
    return Ranked(
        d.issue.id,
        OUTSIDE,
        f"curated known issue, but the release is outside its affected range (vllm {d.issue.vllm})",
        diagnosis=d,
    )


def _analyzed(f: Finding) -> Ranked:
    joined = ", ".join(name for name, _ in f.facts)
    return Ranked(
        f.id,
        f.rank,
        f"analyzer: {len(f.facts)} facts read from the log and environment"
        + (f" ({joined})" if joined else "")
        + " and answered from the matrix",
        finding=f,
    )


def rank(diagnoses: list[Diagnosis], findings: list[Finding]) -> list[Ranked]:
    """All answers, the most specific first (stable: curated before analyzers on a tie)."""
    answers = [*map(_curated, diagnoses), *map(_analyzed, findings)]
    return sorted(answers, key=lambda r: -r.rank)
