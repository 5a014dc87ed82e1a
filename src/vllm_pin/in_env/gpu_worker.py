"""The process of one gpu-sweep configuration: the smoke test's generate, its result as JSON.

A module of its own so the process imports no more than it runs; vLLM re-imports it when it
spawns its engine process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from vllm_pin.fsutil import atomic_write_text


def main(spec_path: Path) -> NoReturn:
    """Run the configuration ``spec_path`` describes (written by vllm_pin.gpu.process.start).

    Ends with os._exit so vLLM's engine shutdown cannot hang the sweep; the parent kills
    what is left of the process group.
    """
    from vllm_pin.in_env.smoke import run_generate

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    result = run_generate(
        Path(spec["model_dir"]),
        device="cuda",
        llm_kwargs=spec["llm_kwargs"],
        prompts=spec["prompts"],
        max_tokens=spec["max_tokens"],
    )
    atomic_write_text(Path(spec["result"]), json.dumps(result, indent=1) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if result.get("status") == "passed" else 1)


if __name__ == "__main__":  # vLLM re-imports this module (as __mp_main__) when it spawns
    main(Path(sys.argv[1]))
