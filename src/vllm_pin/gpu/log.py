"""Reading a configuration's log: the root error signature and the cudagraph mode in force.

vLLM's engine process prints the real cause of a failure and the mode it fell back to; the
calling process only wraps the one and never learns the other, so the log is the record.
"""

from __future__ import annotations

import re

#: exception lines that only wrap the root cause, which the engine process printed earlier
_WRAPPERS = re.compile(
    r"Engine core initialization failed|EngineCore encountered|EngineDeadError|"
    r"EngineGenerateError|Worker proc \S+ died|WorkerProc initialization failed"
)
#: what vLLM prefixes to lines from its engine process, and to its own log records
_PREFIX = re.compile(
    r"^(?:\x1b\[[0-9;]*m)*(?:\((?:EngineCore|Worker|VllmWorker|APIServer)[\w ]*pid=\d+\) ?)?"
    r"(?:(?:\x1b\[[0-9;]*m)*(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)(?:\x1b\[[0-9;]*m)*\s+"
    r"\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+\[[^\]]*\]\s?)?"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MODE_SET = re.compile(r"setting cudagraph_mode=(\w+)")
_MAX_ERROR = 400


def exception_lines(log: str) -> list[str]:
    """The final line of every traceback in ``log``, in order, engine-process prefixes removed.

    A traceback's frames are indented; its exception line is the first unindented line after
    "Traceback (most recent call last):". Only that line counts, so warnings that merely
    contain "Error" are never taken for a failure.
    """
    found = []
    in_tb = False
    for raw in log.splitlines():
        line = _PREFIX.sub("", _ANSI.sub("", raw.rstrip()))
        if line.startswith("Traceback (most recent call last)"):
            in_tb = True
        elif in_tb and line and not line[0].isspace():
            found.append(line.strip())
            in_tb = False
    return found


def error_signature(log: str, fallback: str = "") -> str:
    """The root error of a failed run: the last exception that is not just a wrapper.

    vLLM's engine process prints the real cause (``ValueError: Selected backend ...``); the
    calling process then raises ``RuntimeError: Engine core initialization failed``.
    """
    lines = exception_lines(log)
    roots = [x for x in lines if not _WRAPPERS.search(x)]
    sig = (roots or lines or [fallback])[-1]
    sig = " ".join(sig.split())
    return sig if len(sig) <= _MAX_ERROR else sig[: _MAX_ERROR - 3] + "..."


def selected_mode(log: str, reported: str | None) -> tuple[str, str]:
    """The cudagraph mode in force and the warning that changed it, if vLLM changed it.

    The mode the smoke test reads is the caller's copy of the config; vLLM's engine process
    may lower it (``...; setting cudagraph_mode=PIECEWISE``) and only says so in its log.
    """
    note = ""
    mode = reported or ""
    for raw in log.splitlines():
        m = _MODE_SET.search(raw)
        if m:
            mode = m.group(1)
            note = " ".join(_PREFIX.sub("", _ANSI.sub("", raw)).split())[:_MAX_ERROR]
    return enum_name(mode), note


def enum_name(value: str | None) -> str:
    """``CUDAGraphMode.FULL`` / ``AttentionBackendEnum.FLASH_ATTN`` -> the member name."""
    return (value or "").rsplit(".", 1)[-1]
