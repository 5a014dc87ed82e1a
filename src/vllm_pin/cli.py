"""The `vllm-pin` command: a thin dispatcher over one module per job.

Each command module defines ``configure(parser)`` (adds its arguments) and ``run(args) -> int``
(returns the exit code). Modules are imported lazily so `vllm-pin --help` stays fast.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from vllm_pin import __version__
from vllm_pin.errors import VllmPinError
from vllm_pin.index.settings import redact_text

#: where an unexpected exception (a bug) should be reported
BUG_REPORTS = "https://github.com/OWNER/vllm-pin/issues"

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "refresh": (
        "vllm_pin.commands.refresh",
        "re-read every vLLM release's pins from the package index",
    ),
    "matrix": ("vllm_pin.commands.matrix", "print the compatibility matrix as a table (or --json)"),
    "show": ("vllm_pin.commands.show", "show one release with the provenance of every field"),
    "fit": ("vllm_pin.commands.fit", "which vLLM releases run on this host, why not, what would"),
    "pin": (
        "vllm_pin.commands.pin",
        "write requirements-vllm.txt, pyproject extras and hashed locks",
    ),
    "verify": (
        "vllm_pin.commands.verify",
        "check an environment (or a requirements file) for breakage",
    ),
    "timeline": (
        "vllm_pin.commands.timeline",
        "first and last release that has an env var/backend/mode",
    ),
    "doctor": (
        "vllm_pin.commands.doctor",
        "map a log or traceback to the fix valid for your versions",
    ),
    "provision": (
        "vllm_pin.commands.provision",
        "build .envs/<name> with uv, verify and smoke-test it",
    ),
    "smoke": (
        "vllm_pin.commands.smoke",
        "smoke-test the current environment: imports, tiny generate",
    ),
    "ci-matrix": (
        "vllm_pin.commands.ci_matrix",
        "print a GitHub Actions matrix of provision sessions",
    ),
    "gpu-sweep": (
        "vllm_pin.commands.gpu_sweep",
        "run every attention backend x cudagraph mode on a GPU",
    ),
    "site": ("vllm_pin.commands.site", "write the matrix as a static site (needs vllm-pin[site])"),
}

EXAMPLES = """examples:
  vllm-pin pin --vllm 0.10.1.1          exact pins -> requirements-vllm.txt (offline)
  vllm-pin pin --vllm 0.10 --explain    the series default, and where every pin came from
  vllm-pin show 0.10.1.1                one release with the provenance of every fact
  vllm-pin verify --python .venv/bin/python --imports
  vllm-pin doctor vllm.log --vllm 0.33.0
  vllm-pin timeline VLLM_USE_V1

'vllm-pin COMMAND --help' explains each command. The data lives in matrix/ (see docs/)."""


class _Parser(argparse.ArgumentParser):
    """A usage error is one line (and exit 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser. Given ``commands`` (the one being run), only those get a
    sub-parser: the other twelve would cost more start-up than the command's own options."""
    parser = _Parser(
        prog="vllm-pin",
        description="Pin, provision and verify vLLM environments from exact per-release data.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    parser.add_argument("--version", action="version", version=f"vllm-pin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if commands and name not in commands:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        if commands is None or name in commands:
            importlib.import_module(module).configure(p)
    return parser


def console(argv: Sequence[str] | None = None) -> NoReturn:
    """The `vllm-pin` script (and `python -m vllm_pin`, `tools/*.py`): :func:`main` as a
    process of its own.

    Loading a command's modules makes ~100k objects that live until exit and next to no
    garbage, yet the cyclic collector would walk them some 30 times, then again in each
    later collection: a tenth of what a `pin` costs. So the collector pauses while they
    load and leaves them out of later passes (``gc.freeze``). Only a process of its own
    may do that (tests call :func:`main`, whose earlier objects must stay collectable).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(args_list)
    if command is not None:
        gc.disable()
        try:
            importlib.import_module(COMMANDS[command][0])
        finally:
            gc.enable()
        gc.freeze()
    sys.exit(main(args_list))


def _command_of(args: Sequence[str]) -> str | None:
    """The command named on the line (its first positional argument), if it is one."""
    first = next((a for a in args if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(args_list)
    parser = build_parser([command] if command is not None else [])
    args = parser.parse_args(args_list)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    prefix = f"vllm-pin {args.command}"
    try:
        code: int = module.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _broken_pipe()
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:  # the edge: every failure gets its one line
        return _report(prefix, exc)
    return code


def _report(prefix: str, exc: BaseException) -> int:
    """One line for bad input (exit 2); a bug gets its line, then the traceback (exit 2 too)."""
    why = _bad_input(exc)
    if why is not None:
        line = " ".join(redact_text(why).split())
        print(f"{prefix}: error: {line}", file=sys.stderr)
        return 2
    if isinstance(exc, SystemExit):
        raise exc
    print(
        f"{prefix}: internal error ({type(exc).__name__}): this is a bug in vllm-pin; "
        f"please report it at {BUG_REPORTS} with the traceback below",
        file=sys.stderr,
    )
    import traceback  # deferred: only a bug needs it

    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return 2


def _bad_input(exc: BaseException) -> str | None:
    """The one-line message when ``exc`` means bad input or environment, not a bug."""
    if isinstance(exc, VllmPinError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"an input file is not UTF-8 ({exc.reason} at byte {exc.start}); fix or regenerate it"
        )
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}; check the path and its permissions"
    if isinstance(exc, RecursionError):
        return "an input is nested too deeply to read (a hostile or broken file?)"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "a number in the input has thousands of digits; that is no version"
    return None


def _broken_pipe() -> int:
    """The reader went away (`vllm-pin matrix | head`): stop quietly, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it


def run_tool(command: str) -> NoReturn:
    """Run one command as a script (`tools/*.py`): `tools/pin.py ...` == `vllm-pin pin ...`."""
    console([command, *sys.argv[1:]])
