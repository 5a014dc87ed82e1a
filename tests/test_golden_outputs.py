"""Every command's output on fixed inputs, compared with outputs recorded before a refactor.

The recordings in tests/fixtures/golden/ were made with the code as it stood before the move to
subpackages (issue "layout"); a refactor must leave them byte-identical. When a change of
behaviour is intended, re-record with
``VLLM_PIN_RECORD_GOLDEN=1 pytest tests/test_golden_outputs.py`` and review the diff.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path

import pytest

from vllm_pin.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "fixtures" / "golden"
LOGS = Path(__file__).parent / "fixtures" / "logs"
RECORD = os.environ.get("VLLM_PIN_RECORD_GOLDEN") == "1"

CASES: dict[str, list[str]] = {
    "show-0.10.1.1": ["show", "0.10.1.1"],
    "show-0.5.2-json": ["show", "0.5.2", "--json"],
    "show-0.32-cpu": ["show", "0.32", "--variant", "cpu"],
    "show-0.20.0": ["show", "0.20.0"],
    "show-aarch64": ["show", "0.11.0", "--machine", "aarch64"],
    "matrix": ["matrix"],
    "matrix-json-since": ["matrix", "--json", "--since", "0.25"],
    "matrix-cpu": ["matrix", "--variant", "cpu"],
    "timeline-use-v1": ["timeline", "VLLM_USE_V1"],
    "timeline-flex-json": ["timeline", "FLEX_ATTENTION", "--json"],
    "timeline-invented": ["timeline", "VLLM_CUDAGRAPH_MODE"],
    "pin-explain-0.10": ["pin", "--vllm", "0.10", "--explain", "-o", "{tmp}/r.txt"],
    "pin-unknown": ["pin", "--vllm", "0.10.99", "-o", "{tmp}/r.txt"],
    "pin-check-all": ["pin", "--all", "--check"],
    "verify-r-torch-wrong": ["verify", "-r", "{tmp}/bad.txt", "--vllm", "0.10.1.1"],
    "verify-r-json": ["verify", "-r", "{tmp}/bad.txt", "--vllm", "0.10.1.1", "--json"],
    "verify-r-github": [
        "verify",
        "-r",
        "{tmp}/bad.txt",
        "--vllm",
        "0.10.1.1",
        "--format",
        "github",
    ],
    "verify-r-ok": ["verify", "-r", "{tmp}/r.txt", "--vllm", "0.10.1.1", "-v"],
}
for log in sorted(LOGS.glob("*.log")):
    for version in ("0.10.1.1", "0.33.0"):
        CASES[f"doctor-{log.stem}-{version}"] = ["doctor", str(LOGS / log.name), "--vllm", version]


def _run(argv: list[str], tmp: Path) -> str:
    argv = [a.replace("{tmp}", str(tmp)) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    text = f"exit {code}\n--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}"
    return text.replace(str(tmp), "<tmp>").replace(str(ROOT), "<root>")


def _prepare(tmp: Path) -> None:
    """Inputs some cases read: a good requirements file and one with the seed-004 torch."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["pin", "--vllm", "0.10.1.1", "-o", str(tmp / "r.txt")])
    good = (tmp / "r.txt").read_text()
    (tmp / "bad.txt").write_text(good.replace("torch==2.7.1", "torch==2.2.0"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_command_output_unchanged(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    for var in ("VLLM_PIN_INDEX_URL", "VLLM_PIN_EXTRA_INDEX_URL", "VLLM_PIN_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)
    _prepare(tmp_path)
    got = _run(CASES[name], tmp_path)
    path = GOLDEN / f"{name}.txt"
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert got == path.read_text()


def _every_release() -> list[tuple[str, str, str]]:
    """(variant, machine, version) for every release with pins, read from `matrix --json`."""
    import json

    cases = []
    for variant in ("cuda", "cpu"):
        for machine in ("x86_64", "aarch64"):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                main(["matrix", "--json", "--variant", variant, "--machine", machine])
            rows = json.loads(out.getvalue())
            rows = rows["releases"] if isinstance(rows, dict) else rows
            for row in rows:
                cases.append((variant, machine, row["version"]))
    return cases


def test_pins_of_every_release_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pin --vllm X` for every release, variant and machine: the same requirements as before."""
    monkeypatch.chdir(ROOT)
    parts = []
    for variant, machine, version in _every_release():
        argv = ["pin", "--vllm", version, "--variant", variant, "--machine", machine]
        got = _run([*argv, "-o", "{tmp}/p.txt"], tmp_path)
        written = (tmp_path / "p.txt").read_text() if (tmp_path / "p.txt").exists() else ""
        written = written.replace(str(tmp_path), "<tmp>")
        parts.append(f"=== {' '.join(argv)}\n{got}{written}")
        with contextlib.suppress(FileNotFoundError):
            (tmp_path / "p.txt").unlink()
    got_all = "".join(parts)
    path = GOLDEN / "pins-every-release.txt"
    if RECORD:
        path.write_text(got_all)
    assert got_all == path.read_text()


def test_pyproject_extra_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    target = tmp_path / "pyproject.toml"
    shutil.copy(Path(__file__).parent / "fixtures" / "pyproject" / "commented.toml", target)
    log = _run(
        ["pin", "--vllm", "0.10.1.1", "--pyproject", str(target), "--extra", "vllm"], tmp_path
    )
    got = log + "--- pyproject\n" + target.read_text()
    path = GOLDEN / "pyproject-extra-0.10.1.1.txt"
    if RECORD:
        path.write_text(got)
    assert got == path.read_text()
