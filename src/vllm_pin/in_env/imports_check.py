"""One import check, run with the interpreter of the checked environment (stdlib only).

`vllm-pin verify --imports` starts this file once per check, each in a fresh process with a
timeout: a check must see the interpreter as vLLM does at start-up. In particular
`torch._inductor.config` is reached as an attribute after a plain `import torch`, exactly as
vLLM's env_override does (`torch._inductor.config.compile_threads = 1`); an explicit
`import torch._inductor.config` succeeds on torch 2.2.0 and would hide the failure.

The result is printed as one line `RESULT_PREFIX {json}` on stdout, after anything the imported
libraries print themselves.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import Callable

RESULT_PREFIX = "@@vllm-pin-imports@@"


def _torch() -> None:
    importlib.import_module("torch")


def _inductor_config() -> None:
    torch = importlib.import_module("torch")
    torch._inductor.config  # noqa: B018  (the attribute access vLLM makes)


def _torchvision_ops() -> None:
    torch = importlib.import_module("torch")
    torchvision = importlib.import_module("torchvision")
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    torchvision.ops.nms(boxes, torch.tensor([1.0]), 0.5)


def _torchaudio() -> None:
    importlib.import_module("torchaudio")


def _vllm() -> None:
    importlib.import_module("vllm").LLM  # noqa: B018  (`from vllm import LLM`)


CHECKS: dict[str, tuple[str, Callable[[], None]]] = {
    "torch": ("import torch", _torch),
    "torch._inductor.config": ("import torch; torch._inductor.config", _inductor_config),
    "torchvision.ops": ("torchvision.ops.nms on a 1-box tensor", _torchvision_ops),
    "torchaudio": ("import torchaudio", _torchaudio),
    "vllm": ("from vllm import LLM", _vllm),
}
"""name -> (what it runs, the check); verify picks the ones whose distributions are installed."""


def run_check(name: str) -> dict[str, object]:
    """Run one check here; the error is reduced to its last line, as a user would quote it."""
    code, check = CHECKS[name]
    try:
        check()
    except BaseException as exc:  # every failure, SystemExit included, is the answer
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return {"check": name, "code": code, "ok": False, "error": last}
    return {"check": name, "code": code, "ok": True, "error": ""}


def main(argv: list[str]) -> int:
    """`imports_check.py NAME`: run the check, print its result line."""
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: imports_check.py {{{','.join(CHECKS)}}}", file=sys.stderr)
        return 2
    result = run_check(argv[0])
    sys.stdout.flush()
    print(RESULT_PREFIX, json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
