"""`python -m vllm_pin` is the `vllm-pin` console script."""

from vllm_pin.cli import console

console()
