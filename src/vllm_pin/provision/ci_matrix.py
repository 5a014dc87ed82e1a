"""The provision sessions as a GitHub Actions matrix (`vllm-pin ci-matrix` prints it as JSON).

A workflow job reads it with ``fromJSON`` and fans the sessions out over runners, one
``nox -s <session>`` per job (docs/provision.md has a complete workflow).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vllm_pin.names import Variant
from vllm_pin.provision.envs import EnvSpec


def matrix_entries(
    specs: Sequence[EnvSpec], variants: Sequence[Variant], tags: Sequence[str]
) -> list[dict[str, Any]]:
    """Sessions of the given variants (any; none = all) that carry every given tag."""
    chosen = [
        s
        for s in specs
        if (not variants or s.variant in variants) and all(t in s.tags for t in tags)
    ]
    return [
        {
            "session": s.session,
            "env": s.name,
            "variant": s.variant,
            "distribution": s.distribution,
            "release": str(s.release),
            "python": s.python,
            "tags": list(s.tags),
        }
        for s in chosen
    ]
