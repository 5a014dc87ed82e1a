"""`vllm-pin doctor LOG`: map a log or traceback to the fix valid for the vllm release in use."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vllm_pin.commands._options import add_json
from vllm_pin.doctor.analyzers import Finding, Known, analyze, known_versions
from vllm_pin.doctor.diagnose import Context, Diagnosis, diagnose, make_context, render
from vllm_pin.doctor.logtext import LogText
from vllm_pin.doctor.ranking import Ranked, rank
from vllm_pin.errors import VllmPinError
from vllm_pin.matrix.model import load_matrix
from vllm_pin.verify.env import inspect_interpreter


@dataclass(frozen=True)
class DoctorOptions:
    """What `vllm-pin doctor` was asked."""

    log: str
    """A log file, or "-" for standard input."""
    vllm: str | None = None
    torch: str | None = None
    python: str | None = None
    """Another interpreter whose installed packages are joined to the log."""
    json: bool = False


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin doctor`."""
    parser.add_argument("log", help="log or traceback file; - reads standard input")
    parser.add_argument("--vllm", help="vllm version to advise for (default: the installed one)")
    parser.add_argument("--torch", help="torch version (default: the installed one)")
    parser.add_argument(
        "--python",
        metavar="PATH",
        help=(
            "inspect this interpreter's environment (without importing vllm) and join it to the log"
        ),
    )
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when a known issue matched, 1 when none did."""
    return doctor(
        DoctorOptions(
            log=args.log, vllm=args.vllm, torch=args.torch, python=args.python, json=args.json
        )
    )


def doctor(opts: DoctorOptions) -> int:
    """Diagnose the log and print the fixes; 0 when something matched, 1 when nothing did."""
    matrix = load_matrix()
    env = inspect_interpreter(opts.python) if opts.python else None
    log = LogText(_read_log(opts.log))
    known = known_versions(log, make_context(matrix, opts.vllm, opts.torch), env)
    vllm, torch = known.get("vllm"), known.get("torch")
    ctx = make_context(matrix, str(vllm) if vllm else None, str(torch) if torch else None)
    # the analyzers first: their short literals, remembered by the log, bound the scans for
    # the curated signatures' longer literals that contain them
    findings = analyze(log, known, matrix)
    diagnoses = diagnose(
        log, matrix.knowledge, matrix.timelines, ctx, observations=lambda: matrix.observations
    )
    answers = rank(diagnoses, findings)
    if opts.json:
        print(
            json.dumps(
                {
                    "vllm": str(ctx.vllm) if ctx.vllm else None,
                    "torch": str(ctx.torch) if ctx.torch else None,
                    "versions": {n: f"{v} ({known.origin[n]})" for n, v in known.versions.items()},
                    "knobs-checked-against": str(ctx.entry_version) if ctx.entry_version else None,
                    "issues": [d.as_json() for d in diagnoses],
                    "findings": [a.finding.as_json() for a in answers if a.finding],
                    "ranking": [{"id": a.id, "rank": a.rank, "why": a.why} for a in answers],
                },
                indent=2,
            )
        )
    elif answers:
        if ctx.vllm is None:
            print("vllm is not installed here and --vllm was not given: showing every fix")
        elif ctx.entry_version is not None and ctx.entry_version != ctx.vllm:
            print(
                f"note: {ctx.vllm} is not in timeline.toml; knobs checked against "
                f"{ctx.entry_version}"
            )
        _print_versions(known)
        _print_ranked(answers, ctx)
    else:
        print("no known issue matches this log; run `vllm-pin verify` to check the environment")
    return 0 if answers else 1


def _print_versions(known: Known) -> None:
    """The versions the answers are for, where they did not come from the command line."""
    origin = known.origin
    shown = [f"{n} {v} ({origin[n]})" for n, v in known.versions.items() if origin[n] != f"--{n}"]
    if shown:
        print("versions: " + "; ".join(shown))


def _print_ranked(answers: Sequence[Ranked], ctx: Context) -> None:
    if len(answers) > 1:
        print(
            f"{len(answers)} matches, most specific first; [{answers[0].id}] ranks first: "
            f"{answers[0].why}"
        )
    for a in answers:
        if a.diagnosis is not None:
            _print_text([a.diagnosis], ctx)
        elif a.finding is not None:
            _print_finding(a.finding)


def _print_finding(f: Finding) -> None:
    print(f"[{f.id}] found: {f.matched.splitlines()[0] if f.matched else ''}")
    for name, value in f.facts:
        print(f"  {name}: {value}")
    print(f"  cause: {f.cause}")
    print(f"  fix: {f.fix}")
    print(f"  from: {f.source}")


def _read_log(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise VllmPinError(
            f"cannot read {path}: {exc.strerror or exc}; pass a log file or -"
        ) from None
    # what read_text does with universal newlines, in a third less time on a 10 MB log
    text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _print_text(diagnoses: Sequence[Diagnosis], ctx: Context) -> None:
    for d in diagnoses:
        print(f"[{d.issue.id}] matched: {d.matched.splitlines()[0] if d.matched else ''}")
        if ctx.vllm is not None:
            state = {True: "affected", False: "outside the affected range", None: "?"}[d.affected]
            print(
                f"  vllm {ctx.vllm}: {state} (affected: vllm {d.issue.vllm or 'all'}"
                + (f", torch {d.issue.torch}" if d.issue.torch is not None else "")
                + ")"
            )
        print(f"  cause: {d.issue.cause}")
        if d.fix is not None:
            print(f"  fix for vllm {d.fix.vllm or 'all'}: {d.fix_text}")
            if d.fix.why:
                print(f"  why: {d.fix.why}")
        elif ctx.vllm is not None:
            print(f"  no curated fix covers vllm {ctx.vllm}; fixes exist for:")
        if d.fix is None:
            for f in d.issue.fixes:
                print(f"    vllm {f.vllm or 'all'}: {render(f.fix, ctx)}")
        for name in d.problems:
            print(
                f"  warning: the fix names {name}, which vllm {ctx.vllm} lacks"
                + (f"; use {d.replacements[name]}" if name in d.replacements else "")
            )
        for name, line in d.knobs.items():
            print(f"  {name}: {line}")
            if name in d.replacements and name not in d.problems:
                print(f"    instead: {d.replacements[name]}")
        for fact in d.facts:
            print(f"  fact ({fact.id}, vllm {fact.vllm}): {fact.fact}")
        for line in d.observed:
            print(f"  observed on GPU: {line}")
        print(f"  source: {d.issue.source}")
