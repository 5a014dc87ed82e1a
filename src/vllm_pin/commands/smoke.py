"""`vllm-pin smoke`: smoke-test the current environment (imports, then a tiny generate).

A thin command over :mod:`vllm_pin.in_env.smoke`, which also runs standalone inside an
environment where vllm-pin is not installed (`provision` runs it that way) and so defines its
own arguments; this command takes the same ones.
"""

from __future__ import annotations

import argparse

from vllm_pin.in_env import smoke


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin smoke`: those of the standalone script."""
    smoke.configure(parser)


def run(args: argparse.Namespace) -> int:
    """Run the smoke test in this interpreter; 1 when a step failed."""
    return smoke.run_options(smoke.options_from(args))
