"""The README opens with the two set-up commands, and .ci/run runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert first_block is not None and text.index("```sh") < text.index("\n## ")
    return [line for line in first_block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    main_job, tests = setup_commands()
    assert "vllm-pin pin --vllm" in main_job
    assert "nox" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = setup_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci_lines
