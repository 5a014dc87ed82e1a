"""`vllm-pin refresh`: rebuild matrix/releases.toml and timeline.toml from the package index.

The options, the progress display, the summary of what changed, and the all-or-nothing
write; reading the index and building the texts is :mod:`vllm_pin.refresh.releases`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from packaging.version import Version

from vllm_pin.commands._options import add_matrix_dir
from vllm_pin.errors import VllmPinError
from vllm_pin.fsutil import finish_pending, write_all
from vllm_pin.index.pypi import DEFAULT_INDEX_URL, DEFAULT_TIMEOUT
from vllm_pin.index.settings import ENV_INDEX_URL, redact
from vllm_pin.matrix.paths import default_matrix_dir
from vllm_pin.refresh.prefetch import MAX_PROCESSES, default_processes
from vllm_pin.refresh.releases import Progress, refresh_outputs

Mode = Literal["print", "write", "check"]


@dataclass(frozen=True)
class RefreshOptions:
    """What `vllm-pin refresh` was asked to do, typed."""

    matrix_dir: Path
    #: refresh only these releases (None: all)
    only: frozenset[Version] | None
    index_url: str
    cache_dir: Path | None
    mode: Mode
    timeout: float = DEFAULT_TIMEOUT
    #: what releases.toml records as meta.index-url: never a URL from the environment
    recorded_index_url: str = ""
    #: processes that read the wheels (this one included)
    processes: int = 1


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin refresh`."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the matrix files")
    mode.add_argument(
        "--check", action="store_true", help="exit 1 when the committed files are stale"
    )
    parser.add_argument(
        "--index-url",
        help=f"PEP 691 simple index (env {ENV_INDEX_URL}; default {DEFAULT_INDEX_URL})",
    )
    parser.add_argument("--cache-dir", type=Path, help="default ~/.cache/vllm-pin")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"the most one request may take in all (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=default_processes(),
        metavar="N",
        help=(
            "read the wheels on N processes, this one included: parsing what a cold refresh "
            f"reads keeps a core busy each (default: the CPUs here, at most {MAX_PROCESSES})"
        ),
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="VERSION[,VERSION]",
        help="refresh only these releases; keep every other row of the committed files",
    )
    add_matrix_dir(parser)


def options_from(args: argparse.Namespace) -> RefreshOptions:
    """The parsed arguments as :class:`RefreshOptions`; a bad --only value is an error."""
    mode: Mode = "write" if args.write else "check" if args.check else "print"
    return RefreshOptions(
        matrix_dir=args.matrix_dir or default_matrix_dir(),
        only=parse_only(args.only),
        index_url=args.index_url or os.environ.get(ENV_INDEX_URL) or DEFAULT_INDEX_URL,
        cache_dir=args.cache_dir,
        mode=mode,
        timeout=_positive(args.timeout),
        processes=_at_least_one(args.processes),
        recorded_index_url=(
            redact(args.index_url)
            if args.index_url
            else f"${ENV_INDEX_URL}"
            if os.environ.get(ENV_INDEX_URL)
            else DEFAULT_INDEX_URL
        ),
    )


def _positive(timeout: float) -> float:
    if not timeout > 0:
        raise VllmPinError(f"--timeout {timeout:g}: give a number of seconds above 0")
    return timeout


def _at_least_one(processes: int) -> int:
    if processes < 1:
        raise VllmPinError(f"--processes {processes}: give 1 or more")
    return processes


def parse_only(values: Sequence[str] | None) -> frozenset[Version] | None:
    """``--only 0.10.1.1,0.11.0 --only 0.12.0`` as versions; None when not given."""
    if not values:
        return None
    out = set()
    for raw in (part.strip() for value in values for part in value.split(",")):
        try:
            out.add(Version(raw))
        except ValueError:  # InvalidVersion, or thousands of digits
            raise VllmPinError(
                f"--only {raw[:40]!r} is not a version; e.g. --only 0.10.1.1"
            ) from None
    return frozenset(out)


def progress_printer(stream: TextIO) -> Progress:
    """Live counts on a terminal; one line per finished stage otherwise."""
    tty = stream.isatty()

    def show(stage: str, done: int, total: int) -> None:
        if tty:
            end = "\n" if done == total else ""
            stream.write(f"\r\033[Krefresh: {stage} {done}/{total}{end}")
            stream.flush()
        elif done == total:
            stream.write(f"refresh: {stage} {done}/{total}\n")

    return show


def run(args: argparse.Namespace) -> int:
    """Refresh; print what changed; write only with --write, all files or none."""
    return refresh(options_from(args))


def refresh(options: RefreshOptions) -> int:
    """The command's work on typed options; the exit code."""
    for path in finish_pending(options.matrix_dir):
        print(f"refresh: finished the interrupted write of {path}", file=sys.stderr)
    outputs = refresh_outputs(
        options.matrix_dir,
        only=options.only,
        index_url=options.index_url,
        recorded_index_url=options.recorded_index_url,
        cache_dir=options.cache_dir,
        timeout=options.timeout,
        progress=progress_printer(sys.stderr),
        processes=options.processes,
    )
    stale = [o for o in outputs if o.new != o.old]
    if not stale:
        print(f"no changes: {', '.join(str(o.path) for o in outputs)} up to date")
        return 0
    for o in stale:
        lines = o.changes() or ["(formatting only)"]
        print(f"{o.path}: {len(lines)} change(s)")
        print("".join(f"  {line}\n" for line in lines), end="")
    if options.mode == "write":
        write_all({o.path: o.new for o in stale}, options.matrix_dir, "vllm-pin refresh --write")
        print("".join(f"wrote {o.path}\n" for o in stale), end="")
        return 0
    if options.mode == "check":
        print("the matrix is stale; run tools/refresh_matrix.py --write")
        return 1
    print("nothing written; run with --write to apply")
    return 0
