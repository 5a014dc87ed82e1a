"""`--without`: the warning when a left-out dependency is one every engine start needs.

Its own module because it reads the curated knowledge, which a plain `pin` never loads.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vllm_pin.matrix.knowledge import parse_knowledge

if TYPE_CHECKING:
    from vllm_pin.matrix.core import Release, ReleaseMatrix


def warn_without(m: ReleaseMatrix, release: Release, without: Sequence[str]) -> None:
    """A stderr line per `--without` distribution every engine start of the release needs
    (curated `[[config-facts]]` `requires`); nothing is written differently."""
    if not without:
        return
    knowledge = parse_knowledge(m.curated)
    for line in knowledge.without_warnings(release.distribution, release.version, without):
        print(line, file=sys.stderr)
