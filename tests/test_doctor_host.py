"""doctor's host facts: `GLIBC_x not found` answered from each release's glibc floor (the
wheel's ELF .gnu.version_r, else its manylinux tag, as `vllm-pin fit` reads it) and
`sm_XX is not compatible` / `no kernel image` from the curated torch CUDA build tables.

The log lines are real ones from tests/fixtures/doctor_corpus (each case names its file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib

from vllm_pin.cli import main

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "fixtures" / "doctor_corpus"


@pytest.fixture(autouse=True)
def committed_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(ROOT / "matrix"))


def finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, argv: list[str], id: str
) -> dict[str, object]:
    excerpt = "".join(
        tomllib.loads((CORPUS / f"{name}.toml").read_text(encoding="utf-8"))["excerpt"]
        for name in case.split("+")
    )
    log = tmp_path / "case.log"
    log.write_text(excerpt, encoding="utf-8")
    assert main(["doctor", "--json", str(log), *argv]) == 0
    data = json.loads(capsys.readouterr().out)
    (found,) = [f for f in data["findings"] if f["id"] == id]
    return dict(found)


# (corpus case(s), joined by +; extra argv; facts that must hold; texts the fix must contain;
#  texts it must not)
GLIBC = [
    (
        "glibc-vllm052-trl-rloo",
        ["--vllm", "0.5.2"],
        {"release-needs": "glibc 2.32 (GLIBC_2.32 needed by vllm/_C.abi3.so (ELF .gnu.version_r"},
        [
            "vllm 0.5.2 needs glibc 2.32 (GLIBC_2.32 needed by vllm/_C.abi3.so",
            "upgrade vllm to >= 0.5.3, the first later release whose install needs less",
            "glibc >= 2.28: vllm 0.33.0; glibc >= 2.14: vllm 0.8.5.post1",
        ],
        ["tag floor", "claims glibc 2.5"],
    ),
    (
        # the same line with a release whose PyPI wheel needs less than the log's GLIBC_2.32
        "glibc-vllm052-gemma2-lib64",
        ["--vllm", "0.10.1.1"],
        {"release-needs": "glibc 2.29 (GLIBC_2.29 needed by vllm/_moe_C.abi3.so"},
        ["vllm 0.10.1.1's PyPI wheel needs only glibc 2.29", "reinstall vllm==0.10.1.1"],
        ["upgrade vllm to >="],
    ),
    (
        # the floor from the manylinux tag, which is above what the libraries need
        "glibc-v0200-manylinux231-glibc234",
        ["--vllm", "0.20.0"],
        {"release-needs": "glibc 2.35 (manylinux tag manylinux_2_35_x86_64"},
        ["vllm 0.20.0 needs glibc 2.35", "upgrade vllm to >= 0.21.0"],
        [],
    ),
    (
        # two CentOS 7 logs: collect_env's glibc 2.17 and vllm 0.7.3's GLIBC_2.25 line; the
        # newest release whose vllm and torch floors glibc 2.17 reaches
        "glibc-centos7-glibc217+glibc-centos7-vllm073-glibc225",
        ["--vllm", "0.7.3"],
        {
            "glibc": "2.17 (printed in the log)",
            "release-needs": "glibc 2.14",
            "newest-fitting-vllm": "0.8.5.post1",
        },
        ["on glibc 2.17, vllm 0.8.5.post1 is the newest release that loads"],
        ["upgrade vllm to >="],
    ),
    (
        # flash-attn's own wheel: no vllm release is the answer
        "glibc-openrlhf-flash-attn-rhel8",
        [],
        {"owner": "flash-attn"},
        ["build flash-attn on this host"],
        ["newest release", "vllm 0.33.0"],
    ),
]


GPU = [
    (
        # vllm 0.10.0 pins torch 2.7.1, whose PyPI build is cu126; cu128 has sm_120
        "gpu-arch-v0100-docker-sm120",
        ["--vllm", "0.10.0"],
        {"torch-build": "torch 2.7.1+cu126 has no kernels for sm_120", "first-vllm": "0.10.2"},
        [
            "its cu128 build has them: vllm-pin pin --vllm 0.10.0 --cuda 12.8",
            "upgrade vllm to >= 0.10.2, the first release whose torch (2.8.0+cu128",
        ],
        [],
    ),
    (
        # the same line on 0.10.1.1 (also torch 2.7.1)
        "gpu-arch-rtx5090-early-2025",
        ["--vllm", "0.10.1.1"],
        {"covering-build": "torch 2.7.1+cu128"},
        ["vllm-pin pin --vllm 0.10.1.1 --cuda 12.8"],
        [],
    ),
    (
        # 0.11.0's torch 2.8.0+cu128 has sm_120: the torch that ran is another build
        "gpu-arch-rtx5090-early-2025",
        ["--vllm", "0.11.0"],
        {"torch-build": "torch 2.8.0+cu128 has kernels for sm_120"},
        ["so the torch that ran is another build", "torch==2.8.0"],
        ["upgrade vllm", "--cuda"],
    ),
    (
        # no release given: the first release whose default torch has the sm
        "gpu-arch-ocrflux-rtx5090",
        [],
        {"first-vllm": "0.10.2"},
        ["upgrade vllm to >= 0.10.2"],
        ["--cuda"],
    ),
    (
        # aarch64 (Jetson Thor): PyPI's torch 2.10.0 there is CPU-only; cu130 torch 2.11.0 has it
        "gpu-arch-jetson-thor-sm110-cu130",
        ["--vllm", "0.19.0"],
        {"torch-build": "torch 2.10.0+cpu (a CPU-only build) has no kernels for sm_110"},
        ["upgrade vllm to >= 0.20.0, the first release whose torch (2.11.0+cu130"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("analyzer", "case", "argv", "facts", "must", "must_not"),
    [("glibc-too-old", *c) for c in GLIBC] + [("gpu-arch-unsupported", *c) for c in GPU],
)
def test_answers_from_the_release_floor_and_the_torch_build_tables(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    analyzer: str,
    case: str,
    argv: list[str],
    facts: dict[str, str],
    must: list[str],
    must_not: list[str],
) -> None:
    """glibc: the ELF floor of the release; GPU arch: the sm lists of the torch builds."""
    found = finding(tmp_path, capsys, case, argv, analyzer)
    have = found["facts"]
    assert isinstance(have, dict)
    for name, start in facts.items():
        assert str(have.get(name, "")).startswith(start), (name, have)
    fix = str(found["fix"])
    for text in must:
        assert text in fix, fix
    for text in must_not:
        assert text not in fix, fix
