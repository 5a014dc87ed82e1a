"""A log read in linear time: the lines around a literal, and the versions the log prints.

Every lookup starts with ``str.find`` of a literal over the whole text and then runs a regex
on a bounded window around each hit (at most WINDOW characters either side, within the
line), so the work is linear in the log size whatever it holds: progress bars redrawn with
carriage returns, megabyte lines, thousands of repeated warnings.

Scanning a 10 MB log for an absent literal takes a few milliseconds, and doctor looks for
about a hundred, many of them more than once (an analyzer's literal, a curated signature's
start, a second analyzer's guard). So the first position of each literal is remembered, and
a literal that contains one already looked for is not scanned where that one rules it out:
nowhere when it is absent, only after its first position when it is present.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

#: characters kept either side of a hit, within its line
WINDOW = 2000
#: hits of one literal that are looked at (the first ones: a log repeats itself)
MAX_HITS = 64


@dataclass
class LogText:
    """The log, with literal-anchored windows and a cache of what was found."""

    text: str
    _versions: dict[str, Version] | None = field(default=None, repr=False)
    _first: dict[str, int] = field(default_factory=dict, repr=False)

    def first(self, needle: str) -> int:
        """``text.find(needle)``, remembered; a literal inside ``needle`` that was looked for
        already bounds where the scan starts (or rules it out)."""
        found = self._first.get(needle)
        if found is not None:
            return found
        start = 0
        for part, at in self._first.items():
            if part in needle:
                if at < 0:
                    start = -1
                    break
                start = max(start, at - needle.rfind(part))
        found = -1 if start < 0 else self.text.find(needle, start)
        self._first[needle] = found
        return found

    def windows(self, needle: str, after_lines: int = 0) -> Iterator[str]:
        """The line around each of the first MAX_HITS occurrences of ``needle`` (bounded to
        WINDOW characters either side), plus ``after_lines`` following lines."""
        text = self.text
        i, pos = self.first(needle), 0
        for hit in range(MAX_HITS):
            if hit:
                i = text.find(needle, pos)
            if i < 0:
                return
            lo = max(0, i - WINDOW)
            start = max(text.rfind("\n", lo, i) + 1, lo)
            end = i
            for _ in range(after_lines + 1):
                nl = text.find("\n", end + 1, end + 1 + WINDOW)
                end = nl if nl >= 0 else min(len(text), end + 1 + WINDOW)
            yield text[start:end]
            pos = max(end, i + len(needle))

    def search(
        self,
        pattern: re.Pattern[str],
        *needles: str,
        after_lines: int = 0,
        within: int | None = None,
    ) -> re.Match[str] | None:
        """The first match of ``pattern`` in a window around one of ``needles``.

        ``within``: every match of ``pattern`` holds its needle at most this many characters
        after the match's start, so no match starts earlier in the window than that before
        the needle's first occurrence there, and the regex starts from there (the same
        match, without trying each earlier position).

        A window already searched in vain is not searched again: a log repeats its lines
        (the same traceback from every worker, the same warning at every step)."""
        searched: set[tuple[int, str]] = set()
        for needle in needles:
            for window in self.windows(needle, after_lines):
                start = 0 if within is None else max(0, window.find(needle) - within)
                if (start, window) in searched:
                    continue
                searched.add((start, window))
                found = pattern.search(window, start)
                if found is not None:
                    return found
        return None

    def has(self, *needles: str) -> bool:
        return any(self.first(n) >= 0 for n in needles)

    @property
    def versions(self) -> dict[str, Version]:
        """Package versions the log prints (collect_env, pip list, pip freeze, vLLM banners)."""
        if self._versions is None:
            self._versions = _printed_versions(self)
        return self._versions


_V = r"v?(\d+(?:\.\d+)+(?:[.\-]?(?:post|dev|rc|a|b)\d*)?(?:\+[\w.]+)?)"

#: package -> (literals to look near, pattern whose group 1 is the version)
PRINTED: dict[str, tuple[tuple[str, ...], re.Pattern[str]]] = {
    "vllm": (
        ("vLLM API server version", "LLM engine (v", "vllm", "vLLM version", "VLLM version"),
        re.compile(
            r"(?:vLLM API server version|LLM engine \(|\bvllm\s*[:=]{0,2}\s*|"
            r"vLLM version\W{0,6}|VLLM version\W{0,6})" + _V,
            re.IGNORECASE,
        ),
    ),
    "torch": (
        ("PyTorch version", "torch"),
        re.compile(r"(?:PyTorch version\W{0,6}|^\s*[-*]?\s*torch\s*[:=]{0,2}\s*)" + _V, re.M),
    ),
    "transformers": (
        ("ransformers",),
        re.compile(r"[Tt]ransformers(?: version)?\W{0,6}" + _V),
    ),
    "triton": (("triton",), re.compile(r"^\s*[-*]?\s*triton\s*[:=]{0,2}\s*" + _V, re.M)),
    "numpy": (
        ("NumPy", "numpy"),
        re.compile(r"(?:Got NumPy|run in\s+NumPy|^numpy\s*[:=]{0,2}\s*) ?" + _V, re.M),
    ),
    "glibc": (("glibc",), re.compile(r"(?:Libc version: glibc-|with-glibc)(\d+\.\d+)")),
    "driver": (
        ("river version",),
        re.compile(r"[Dd]river version\W{0,6}(\d+\.\d+(?:\.\d+)?)"),
    ),
}


def _printed_versions(log: LogText) -> dict[str, Version]:
    out: dict[str, Version] = {}
    for name, (needles, pattern) in PRINTED.items():
        found = log.search(pattern, *needles)
        if found is None:
            continue
        try:
            out[name] = Version(found.group(1))
        except InvalidVersion:
            continue
    return out
