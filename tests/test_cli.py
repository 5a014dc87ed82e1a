"""The process entry (`vllm-pin`, `python -m vllm_pin`, `tools/*.py`): main() in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vllm_pin.cli import main

#: run console() and report, at exit, what it left of the collector's state
PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("gc", gc.isenabled(), gc.get_freeze_count() > 0))
from vllm_pin.cli import console
console(sys.argv[1:])
"""


@pytest.mark.parametrize(
    ("argv", "code", "frozen"),
    [
        (["pin", "--vllm", "0.10.1.1"], 0, True),  # a command: its modules loaded, then frozen
        (["pin", "--vllm", "nope"], 2, True),  # bad input: the same one-line error as main()
        (["--version"], 0, False),  # no command: nothing to load, nothing frozen
    ],
)
def test_console_is_main_with_the_collector_back_on(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    frozen: bool,
) -> None:
    out = ["-o", str(tmp_path / "a.txt")] if argv[0] == "pin" else []
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv, *out], capture_output=True, text=True, check=False
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"gc True {frozen}"
    if argv[0] != "pin":
        return
    assert main([*argv, "-o", str(tmp_path / "b.txt")]) == code
    assert proc.stderr == capsys.readouterr().err.replace("b.txt", "a.txt")
    if not code:
        first = (tmp_path / "a.txt").read_text().replace("a.txt", "X")
        assert "vllm==0.10.1.1" in first
        assert first == (tmp_path / "b.txt").read_text().replace("b.txt", "X")
