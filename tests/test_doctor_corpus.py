"""doctor on the corpus of real failure logs (tests/fixtures/doctor_corpus: excerpts of public
GitHub threads, each with its source, class and the fix the thread settled on).

Environment-caused logs must be diagnosed (exit 0) with a fix of the kind the thread settled
on; logs without an environment cause must stay quiet (exit 1). The misses are listed in
MISSES (strict xfail: a miss that starts passing must leave the list), and the hit rate
documented in docs/doctor.md is a floor.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.version import InvalidVersion, Version

from vllm_pin.cli import main
from vllm_pin.commands import doctor as command
from vllm_pin.doctor import diagnose as doctor
from vllm_pin.matrix.model import Matrix, load_matrix

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "fixtures" / "doctor_corpus"
CASES = {
    p.stem: tomllib.loads(p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("*.toml"))
}

#: words a fix of each kind contains (case-insensitive); "none": the thread settled no fix
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "pin-package": ("pip install '", "==", "pinned", "pins", "install the", "<"),
    "reinstall": ("reinstall", "rebuild", "build", "pip install", "uninstall"),
    "host": ("driver", "glibc", "container", "host", "docker", "wsl", "shm", "nvidia-smi"),
    "upgrade-vllm": ("upgrade vllm", "vllm to >=", "upgrade the vllm"),
    "engine-arg": ("max_model_len", "gpu_memory_utilization", "--", "engine argument"),
    "set-env": ("VLLM_", "unset", "export "),
    "none": ("",),
}

#: environment-caused logs doctor does not diagnose (yet), with why
MISSES: dict[str, str] = {
    "dist-name-vllm-pascal-xpu-version-check": "only importlib's StopIteration, no vllm message",
    "flashinfer-docker-no-flashinfer-gemma2": "the excerpt ends before the error line",
    "gpu-arch-lmcache-image-cu126": "versions only (the GPU is in the thread, not the log)",
    "gpu-arch-rtx5060ti-v0-engine": "diagnosed as sm_120; the thread settled on an env var",
    "memory-kv-cache-a800-v1-gpu-mem-04": "the excerpt ends before the error line",
    "nccl-docker-tp-ncclshmopen": "a title only, no error text",
    "no-platform-lumi-rocm-0.6.6": "the excerpt ends before the error line",
    "other-env-axolotl-vllm073-worker-extension-cls": "prose about a keyword argument",
    "pynvml-v066post1-pynvml-12": "a title and a cut frame, no error text",
    "removed-env-var-lmcache-vllm091-v0-engine": "a bare AssertionError in a connector",
    "triton-constexpr-function-vllm01011": "diagnosed (triton pin); the thread upgraded vllm",
    "triton-step3vl-vllm0111-pai": "diagnosed (triton pin); the thread upgraded vllm",
}


def held_out(name: str) -> bool:
    """~25% of the corpus, by file-name hash: kept out while the analyzers were written."""
    return hashlib.sha256(name.encode()).digest()[0] % 4 == 0


def _version_flag(case: dict[str, Any]) -> list[str]:
    try:
        Version(case["vllm"])
    except InvalidVersion:
        return []
    return ["--vllm", case["vllm"]]


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    """The committed matrix, parsed once for the whole corpus."""
    return load_matrix(ROOT / "matrix")


@pytest.fixture(autouse=True)
def committed_matrix(monkeypatch: pytest.MonkeyPatch, matrix: Matrix) -> None:
    monkeypatch.setattr(command, "load_matrix", lambda: matrix)
    monkeypatch.setattr(doctor, "installed_version", lambda *names: None)


def run_case(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and every fix text doctor printed for the case."""
    case = CASES[name]
    log = tmp_path / f"{name}.log"
    log.write_text(case["excerpt"], encoding="utf-8")
    code = main(["doctor", "--json", str(log), *_version_flag(case)])
    data = json.loads(capsys.readouterr().out)
    fixes = [i["fix"]["fix"] for i in data["issues"] if i["fix"]]
    fixes += [f["fix"] for i in data["issues"] for f in i["fixes"]]
    fixes += [f["fix"] for f in data["findings"]]
    fixes += [r for i in data["issues"] for r in i["replacements"].values()]
    return code, "\n".join(fixes)


def diagnosed(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> bool:
    code, fixes = run_case(name, tmp_path, capsys)
    words = KIND_WORDS[CASES[name]["fix_kind"]]
    return code == 0 and any(w.lower() in fixes.lower() for w in words)


ENV_CASES = sorted(n for n, c in CASES.items() if c["environment_cause"])
QUIET_CASES = sorted(n for n, c in CASES.items() if not c["environment_cause"])


def test_corpus_is_what_the_issue_asked_for() -> None:
    assert len(CASES) >= 60 and len(QUIET_CASES) >= 10
    for case in CASES.values():
        assert case["source"].startswith("https://github.com/") and case["excerpt"].strip()
        assert case["fix_kind"] in KIND_WORDS


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=MISSES[n], strict=True))
        if n in MISSES
        else n
        for n in ENV_CASES
    ],
)
def test_environment_cause_is_diagnosed(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert diagnosed(name, tmp_path, capsys)


@pytest.mark.parametrize("name", QUIET_CASES)
def test_no_environment_cause_stays_quiet(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, fixes = run_case(name, tmp_path, capsys)
    assert code == 1, fixes


def documented_rate() -> float:
    text = (ROOT / "docs" / "doctor.md").read_text(encoding="utf-8")
    found = re.search(r"diagnoses (\d+) of (\d+) environment-caused logs", text)
    assert found, "docs/doctor.md must state the corpus hit rate"
    return int(found.group(1)) / int(found.group(2))


def test_hit_rate_is_at_least_the_documented_one() -> None:
    hits = len(ENV_CASES) - len(MISSES)
    assert hits / len(ENV_CASES) >= documented_rate() >= 0.8
    assert set(MISSES) <= set(ENV_CASES)
