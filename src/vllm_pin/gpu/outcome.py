"""What one configuration did, as an observation's outcome: ok, error, timeout or skipped.

A backend whose probe fails for a reason that has nothing to do with CUDA graphs (a ROCm or MLA
backend on a CUDA GPU and a plain Llama) is not run again with every mode: its other
configurations become ``skipped`` outcomes that quote the probe's error.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from vllm_pin.gpu.log import enum_name, selected_mode
from vllm_pin.gpu.plan import Config
from vllm_pin.in_env.smoke import _attention_backend, error_signature
from vllm_pin.matrix.observed import Outcome

#: a probe error that mentions CUDA graphs says nothing about the other modes: run them anyway
_CUDAGRAPH_ERROR = re.compile(r"cuda ?graph", re.IGNORECASE)
_NOT_RUN = "not run: "


def outcome_from_run(
    config: Config,
    log: str,
    result: Mapping[str, Any] | None,
    *,
    returncode: int | None,
    wall_s: float,
    timeout_s: float,
) -> Outcome:
    """Turn one process's log and smoke result (None if it wrote none) into an outcome."""
    timings = (result or {}).get("timings", {})
    status, error = "error", ""
    ids: tuple[tuple[int, ...], ...] = ()
    if result is not None and result.get("status") == "passed":
        status = "ok"
        ids = tuple(tuple(int(t) for t in row) for row in result["token_ids"])
    elif returncode is None:
        status, error = "timeout", f"timeout after {timeout_s:.0f} s"
    else:
        error = (result or {}).get("error") or _exit_reason(returncode)
    outcome = Outcome(
        config=config.name,
        run=config.run,
        backend=config.backend,
        cudagraph_mode=config.mode,
        batch_invariant=config.batch_invariant,
        enforce_eager=config.enforce_eager,
        status=status,
        error=error,
        selected_backend="",
        selected_mode="",
        mode_note="",
        token_ids=ids,
        import_s=float(timings.get("import", 0.0)),
        engine_start_s=float(timings.get("engine_start", 0.0)),
        generate_s=float(timings.get("generate", 0.0)),
        wall_s=round(wall_s, 1),
    )
    return read_log(outcome, log, result)


def read_log(outcome: Outcome, log: str, result: Mapping[str, Any] | None) -> Outcome:
    """Fill in what the log says: root error signature, backend and cudagraph mode in force.

    Kept apart from the run so `--from-work-dir` can re-read recorded logs with this version's
    parsers. ``outcome.error`` is the fallback when the log holds no traceback. The selected
    backend is the one vLLM announced; a run that went ok without announcing one used the
    backend it asked for (vLLM raises when it cannot), and a timeout keeps its error.
    """
    if outcome.status == "skipped":
        return outcome
    result = result or {}
    # smoke caught the calling process's exception: its traceback is in the result
    text = log + "\n" + str(result.get("traceback", ""))
    error = error_signature(text, outcome.error) if outcome.status == "error" else outcome.error
    mode, note = selected_mode(log, result.get("cudagraph_mode"))
    backend = result.get("attention_backend") or smoke_backend(log)
    if not backend and outcome.status == "ok":
        backend = outcome.backend
    return replace(
        outcome,
        error=error,
        selected_backend=enum_name(backend),
        selected_mode=mode if outcome.status == "ok" else "",
        mode_note=note,
    )


def smoke_backend(log: str) -> str | None:
    """The backend vLLM announced, read by the smoke test's own parser."""
    return _attention_backend(log)


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}, no traceback"
    return f"exit status {returncode}, no traceback"


def skipped(config: Config, reason: str) -> Outcome:
    """An outcome for a configuration that was not run, and why."""
    return Outcome(
        config.name,
        config.run,
        config.backend,
        config.mode,
        config.batch_invariant,
        config.enforce_eager,
        "skipped",
        reason,
        "",
        "",
        "",
        (),
        0.0,
        0.0,
        0.0,
        0.0,
    )


def skip_reason(probe: Outcome) -> str:
    """Why a backend's other configurations were not run."""
    return f"{_NOT_RUN}{probe.config} failed: {probe.error}"


def requote_probe(outcome: Outcome, probe: Outcome | None) -> Outcome:
    """A configuration skipped for its probe's failure, quoting the probe's error as it is now.

    A probe's error read again with this version's parsers can differ from the one recorded.
    """
    if outcome.status == "skipped" and outcome.error.startswith(_NOT_RUN) and probe is not None:
        return replace(outcome, error=skip_reason(probe))
    return outcome


def unlocks_dependents(probe: Outcome) -> bool:
    """Whether a backend's probe result says its other modes are worth running."""
    return probe.status == "ok" or bool(_CUDAGRAPH_ERROR.search(probe.error))
