"""`vllm-pin provision`: build ``.envs/<name>`` with uv, verify it, smoke-test it, report.

The nox sessions run it as ``python -m vllm_pin provision --root <checkout> <name>``. The
sequence itself is :func:`vllm_pin.provision.session.provision`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from vllm_pin.commands._options import (
    add_index_options,
    add_variant,
    add_without,
    index_from,
    variant_from,
)
from vllm_pin.errors import VllmPinError
from vllm_pin.index.settings import IndexConfig
from vllm_pin.names import Variant
from vllm_pin.provision.checks import SMOKE_TIMEOUT_S
from vllm_pin.provision.envs import BUILD_DIR, EnvSpec, env_specs, resolve_request
from vllm_pin.provision.report import summary
from vllm_pin.provision.session import REPORT_FILE, provision

RELEASE_ENV = "VLLM_PIN_RELEASE"


@dataclass(frozen=True)
class ProvisionOptions:
    """What `vllm-pin provision` was asked to do, typed."""

    root: Path
    #: environment name or exact release; "" = $VLLM_PIN_RELEASE
    request: str
    variant: Variant
    require_generate: bool
    smoke_env: tuple[str, ...]
    llm_kwargs: str | None
    smoke_timeout: float
    without: tuple[str, ...]
    force: bool
    list_only: bool


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin provision` (and the nox sessions)."""
    parser.add_argument(
        "request",
        nargs="?",
        help=f"environment (0.10, 0.32-cpu) or exact release (0.10.1.1); default ${RELEASE_ENV}",
    )
    add_variant(parser)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="checkout with envs/")
    parser.add_argument(
        "--require-generate",
        action="store_true",
        help="fail when the generate is skipped (use on GPU runners)",
    )
    parser.add_argument(
        "--smoke-env",
        action="append",
        default=[],
        metavar="K=V",
        help="environment variable for the smoke test; repeatable",
    )
    parser.add_argument(
        "--llm-kwargs", metavar="JSON", help="extra LLM(...) arguments for the smoke test"
    )
    parser.add_argument("--smoke-timeout", type=float, default=SMOKE_TIMEOUT_S, metavar="S")
    add_without(
        parser,
        help="for an env with no committed lock: leave this declared dependency out (repeatable)",
    )
    parser.add_argument(
        "--force", action="store_true", help="remake an on-demand lock and rebuild the venv"
    )
    parser.add_argument("--list", action="store_true", help="list the environments and exit")
    add_index_options(parser)


def options_from(args: argparse.Namespace) -> ProvisionOptions:
    """The parsed arguments as :class:`ProvisionOptions`."""
    return ProvisionOptions(
        root=Path(args.root).resolve(),
        request=args.request or "",
        variant=variant_from(args),
        require_generate=args.require_generate,
        smoke_env=tuple(args.smoke_env),
        llm_kwargs=args.llm_kwargs,
        smoke_timeout=args.smoke_timeout,
        without=tuple(args.without),
        force=args.force,
        list_only=args.list,
    )


def run(args: argparse.Namespace) -> int:
    """Provision one environment; 0 when it works (generate skipped without a GPU), else 1."""
    options = options_from(args)
    if options.list_only:
        list_envs(options.root)
        return 0
    spec = choose_spec(options)
    # read after the request is checked, so a bad index setting does not hide a bad name
    return provision_env(spec, options, index_from(args))


def list_envs(root: Path) -> None:
    """One line per environment: its nox session and what it builds."""
    for spec in env_specs(root):
        print(f"{spec.session:<24} {spec.description}")


def choose_spec(options: ProvisionOptions) -> EnvSpec:
    """The environment the request (else $VLLM_PIN_RELEASE) names, with its --without."""
    request = options.request or os.environ.get(RELEASE_ENV, "")
    if not request:
        raise VllmPinError(
            f"name an environment or release (e.g. 0.10, 0.32-cpu, 0.10.1.1) or set ${RELEASE_ENV}"
        )
    spec = resolve_request(options.root, request, options.variant)
    if options.without:
        if spec.committed:
            raise VllmPinError(
                f"{spec.name} has a committed lock; --without belongs to "
                f"`vllm-pin pin --all --only {spec.name} --without ...`"
            )
        spec = dataclasses.replace(spec, without=tuple(sorted(set(options.without))))
    return spec


def provision_env(spec: EnvSpec, options: ProvisionOptions, index: IndexConfig) -> int:
    """Build, verify and smoke-test ``spec``; print the summary; the exit code."""
    report = provision(
        spec,
        options.root,
        index,
        require_generate=options.require_generate,
        smoke_env=options.smoke_env,
        llm_kwargs=options.llm_kwargs,
        smoke_timeout=options.smoke_timeout,
        force=options.force,
    )
    print(summary(report))
    print(f"  report   {options.root / BUILD_DIR / spec.name / REPORT_FILE}")
    return 1 if report["result"] == "failed" else 0
