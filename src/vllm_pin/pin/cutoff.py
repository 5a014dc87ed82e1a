"""The upload-time cutoff of a lock (uv ``--exclude-newer``) and the rule that chose it.

Resolving today's index breaks old releases, so by default a lock sees only what was
uploaded up to a month after the release itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from vllm_pin.errors import VllmPinError

if TYPE_CHECKING:
    from vllm_pin.matrix.core import Release

EXCLUDE_NEWER_DAYS = 30  # a lock sees uploads up to this long after the release's own
NO_CUTOFF, DEFAULT_CUTOFF = "none", "default"  # --exclude-newer words besides a date


@dataclass(frozen=True)
class Cutoff:
    """uv's ``--exclude-newer`` for a lock, and the rule that chose it."""

    value: str  # RFC 3339 UTC time; "" = no cutoff
    rule: str
    packages: tuple[str, ...] = ()  # "name=time" exceptions (--exclude-newer-package)

    def describe(self) -> str:
        """The lock header's words: the cutoff, its rule and the per-package exceptions."""
        text = f"{self.value or NO_CUTOFF} ({self.rule})"
        return text + (f"; except {', '.join(self.packages)}" if self.packages else "")

    @property
    def given(self) -> str:
        """The --exclude-newer value that chose it, or '' when the default rule did."""
        return self.rule[len("--exclude-newer ") :] if self.rule.startswith("--") else ""


def lock_cutoff(release: Release, given: str = "", packages: Sequence[str] = ()) -> Cutoff:
    """The newest upload a lock may use: by default the release's upload time + 30 days.

    Resolving today's index breaks old releases (vllm 0.10.1.1 would get transformers 5.x),
    so a lock sees what existed when the release was current, plus a month of bug-fix
    releases. ``given`` (``--exclude-newer DATE|none``) overrides the rule; ``default`` or
    '' keeps it. Wheels from find-links carry no upload time and are never excluded.
    ``packages`` (``NAME=DATE``, or ``none`` for no exceptions) move the cutoff of single
    packages: pyairports, which outlines needs, was deleted and only re-uploaded in 2025.
    """
    exceptions = tuple(_package_cutoff(p) for p in packages if p != NO_CUTOFF)
    if given == NO_CUTOFF:
        return Cutoff("", f"--exclude-newer {NO_CUTOFF}", exceptions)
    if given and given != DEFAULT_CUTOFF:
        when = _rfc3339(_parse_time(given, "--exclude-newer"))
        return Cutoff(when, f"--exclude-newer {given}", exceptions)
    name = f"{release.distribution} {release.version}"
    if not release.upload_time:
        return Cutoff("", f"none: the matrix records no upload time of {name}", exceptions)
    uploaded = _parse_time(release.upload_time, f"the upload time of {name}")
    return Cutoff(
        _rfc3339(uploaded + timedelta(days=EXCLUDE_NEWER_DAYS)),
        f"upload of {name} ({release.upload_time}) + {EXCLUDE_NEWER_DAYS} days",
        exceptions,
    )


def check_options(given: str, packages: Sequence[str]) -> None:
    """Reject a malformed --exclude-newer or --exclude-newer-package before any work."""
    if given not in ("", NO_CUTOFF, DEFAULT_CUTOFF):
        _parse_time(given, "--exclude-newer")
    for exception in packages:
        if exception != NO_CUTOFF:
            _package_cutoff(exception)


def _package_cutoff(text: str) -> str:
    """``NAME=DATE`` as uv's ``--exclude-newer-package`` wants it: canonical name, UTC time."""
    name, sep, when = text.partition("=")
    if not (sep and name.strip() and when.strip()):
        raise VllmPinError(
            f"--exclude-newer-package {text!r} is not NAME=DATE, e.g. pyairports=2025-10-01"
        )
    when = _rfc3339(_parse_time(when, f"--exclude-newer-package {name}="))
    return f"{canonicalize_name(name.strip())}={when}"


def _parse_time(text: str, what: str) -> datetime:
    """A date or RFC 3339 time; one without a zone is UTC (reproducible on any machine)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise VllmPinError(
            f"{what} {text!r} is not a date like 2025-09-19 or 2025-09-19T12:00:00Z "
            f"(or '{NO_CUTOFF}' for no cutoff)"
        ) from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
