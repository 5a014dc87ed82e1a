"""Reading a configuration's log: the cudagraph mode in force.

vLLM's engine process prints the mode it fell back to; the calling process never learns it, so
the log is the record. The root error signature is read by the smoke test's own parser
(:func:`vllm_pin.in_env.smoke.error_signature`), which the environment under test runs too.
"""

from __future__ import annotations

import re

from vllm_pin.in_env.smoke import ANSI, MAX_ERROR, VLLM_PREFIX

_MODE_SET = re.compile(r"setting cudagraph_mode=(\w+)")


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
            note = " ".join(VLLM_PREFIX.sub("", ANSI.sub("", raw)).split())[:MAX_ERROR]
    return enum_name(mode), note


def enum_name(value: str | None) -> str:
    """``CUDAGraphMode.FULL`` / ``AttentionBackendEnum.FLASH_ATTN`` -> the member name."""
    return (value or "").rsplit(".", 1)[-1]
