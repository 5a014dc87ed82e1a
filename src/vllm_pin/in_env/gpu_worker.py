"""The process of one gpu-sweep configuration: the smoke test's generate, its result as JSON.

A module of its own so the process imports no more than it runs; vLLM re-imports it when it
spawns its engine process. Like the rest of in_env it needs only the standard library and the
environment's own vLLM: run it as ``python -m vllm_pin.in_env.gpu_worker SPEC.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from vllm_pin.in_env.smoke import run_generate


def main(spec_path: Path) -> NoReturn:
    """Run the configuration ``spec_path`` describes (written by vllm_pin.gpu.process.start).

    Ends with os._exit so vLLM's engine shutdown cannot hang the sweep; the parent kills
    what is left of the process group.
    """
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    result = run_generate(
        Path(spec["model_dir"]),
        device="cuda",
        llm_kwargs=spec["llm_kwargs"],
        prompts=spec["prompts"],
        max_tokens=spec["max_tokens"],
    )
    _write_atomic(Path(spec["result"]), json.dumps(result, indent=1) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if result.get("status") == "passed" else 1)


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temp file in the same directory + os.replace: never half a result."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


if __name__ == "__main__":  # vLLM re-imports this module (as __mp_main__) when it spawns
    main(Path(sys.argv[1]))
