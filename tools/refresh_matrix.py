#!/usr/bin/env python3
"""Same as `vllm-pin refresh`; runs from a checkout without installing."""

import _bootstrap  # noqa: F401  (puts ../src on sys.path)
from vllm_pin.cli import run_tool

run_tool("refresh")
