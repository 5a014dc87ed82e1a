"""The one typed loader for the compatibility matrix, with everything it knows.

:class:`Matrix` is :class:`vllm_pin.matrix.core.ReleaseMatrix` (the release rows, curated
lookups, build tables and known issues, all that `pin` needs and imports) plus what doctor,
timeline and verify read, each loaded on first use: the per-release timeline
(:mod:`vllm_pin.matrix.timeline`) and the GPU observations (:mod:`vllm_pin.matrix.observed`).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from packaging.version import Version

from vllm_pin.matrix.core import (
    PackageInfo,
    Platform,
    Release,
    ReleaseMatrix,
    Resolution,
    Sourced,
    Variant,
    load_rows,
    series_of,
)
from vllm_pin.matrix.observed import Observations, load_observations
from vllm_pin.matrix.timeline import TimelineEntry, load_timeline
from vllm_pin.names import DISTRIBUTIONS, MACHINES

__all__ = [
    "DISTRIBUTIONS",
    "MACHINES",
    "Matrix",
    "PackageInfo",
    "Platform",
    "Release",
    "ReleaseMatrix",
    "Resolution",
    "Sourced",
    "Variant",
    "load_matrix",
    "series_of",
]


class Matrix(ReleaseMatrix):
    """The merged view of releases.toml and curated.toml, with the timeline and
    observations."""

    @cached_property
    def observations(self) -> Observations:
        """What real GPUs showed (matrix/observed/*.toml), validated on first use."""
        return load_observations(self.root)

    @cached_property
    def timelines(self) -> dict[Version, TimelineEntry]:
        path = self.root / "timeline.toml"
        if not path.is_file():
            return {}
        return load_timeline(path)

    def timeline(self, version: str | Version) -> TimelineEntry | None:
        """What a release knows: env vars, attention backends, cudagraph modes."""
        key = version if isinstance(version, Version) else Version(version)
        return self.timelines.get(key)

    def validate(self) -> None:
        """Parse everything the loader leaves for later, so a bad entry fails now."""
        super().validate()
        _ = self.knowledge
        _ = self.timelines
        _ = self.observations


def load_matrix(root: Path | None = None) -> Matrix:
    """Load, validate and merge the matrix files under ``root`` (see docs/matrix-schema.md)."""
    return load_rows(root, Matrix)
