"""The per-release timeline: collection from wheels (refresh.timeline_scan, matrix.vllm_source),
the file format (matrix.timeline), and `vllm-pin timeline`."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from packaging.version import Version

from vllm_pin.cli import main
from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.index.pypi import IndexFile, PyPIClient
from vllm_pin.index.wheels import group_by_version, representatives
from vllm_pin.matrix import timeline as tl
from vllm_pin.matrix import vllm_source
from vllm_pin.refresh import timeline_scan as scan

FIXTURES = Path(__file__).parent / "fixtures" / "vllm_source"
MATRIX = Path(__file__).parent.parent / "matrix"
T = TypeVar("T")
R = TypeVar("R")


def src(name: str) -> str:
    return (FIXTURES / f"{name}.py.txt").read_text(encoding="utf-8")


class ZipClient:
    """Serves `read_members` from real wheel-shaped zips on disk (the range reads themselves are
    tested in test_pypi.py/test_zipread.py); records which members were asked for."""

    def __init__(self, wheels: dict[str, Path], cache_dir: Path) -> None:
        self.wheels = wheels
        self.cache_dir = cache_dir
        self.asked: list[str] = []

    def read_members(
        self, f: IndexFile, want: Callable[[str], bool], hint: str | frozenset[str] = ""
    ) -> dict[str, bytes]:
        with zipfile.ZipFile(self.wheels[f.filename]) as z:
            names = [
                n
                for n in z.namelist()
                if (hint in n if isinstance(hint, str) else n in hint) and want(n)
            ]
            self.asked += names
            return {n: z.read(n) for n in names}

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return [fn(i) for i in items]

    def imap(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        return (fn(i) for i in items)


def make_wheel(tmp_path: Path, name: str, members: dict[str, str]) -> tuple[IndexFile, Path]:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, text in {**members, "vllm/model_executor/big.py": "x = 1\n"}.items():
            z.writestr(member, text)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    f = IndexFile(
        name, f"https://example.invalid/{name}", sha256, path.stat().st_size, "", False, "", ""
    )
    return f, path


def test_collect_reads_only_the_parsed_members(tmp_path: Path) -> None:
    old, old_path = make_wheel(
        tmp_path,
        "vllm-0.4.1-cp311-cp311-manylinux1_x86_64.whl",
        {
            "vllm/attention/selector.py": src("selector_0_4"),
            "vllm/engine/arg_utils.py": src("arg_utils"),
        },
    )
    new, new_path = make_wheel(
        tmp_path,
        "vllm-0.13.0-cp38-abi3-manylinux1_x86_64.whl",
        {
            "vllm/envs.py": src("envs_choices"),
            "vllm/attention/backends/registry.py": src("registry_0_11"),
            "vllm/config/compilation.py": src("compilation_0_10"),
            "vllm/engine/arg_utils.py": src("arg_utils"),
        },
    )
    client = ZipClient({old.filename: old_path, new.filename: new_path}, tmp_path / "cache")
    entries = scan.collect(client, {Version("0.13.0"): new, Version("0.4.1"): old})  # type: ignore[arg-type]
    assert "vllm/model_executor/big.py" not in client.asked
    e_old, e_new = entries[Version("0.4.1")], entries[Version("0.13.0")]
    assert e_old.env_vars == frozenset() and not e_old.known("env-vars")
    assert e_old.attention_backends == {"FLASH_ATTN", "XFORMERS", "ROCM_FLASH", "TORCH_SDPA"}
    assert e_old.cudagraph_modes == frozenset() and e_old.known("cudagraph-modes")
    assert e_new.sources["attention-backends"] == "vllm/attention/backends/registry.py"
    assert "FULL" in e_new.cudagraph_modes
    assert e_new.env_var_choices["VLLM_WORKER_MULTIPROC_METHOD"] == {"fork", "spawn"}
    assert e_new.wheel == new.filename


def _entries() -> dict[Version, tl.TimelineEntry]:
    files_new = {
        "vllm/envs.py": src("envs_choices"),
        "vllm/v1/attention/backends/registry.py": src("registry_0_11"),
        "vllm/config/compilation.py": src("compilation_0_10"),
        "vllm/engine/arg_utils.py": src("arg_utils"),
    }
    files_old = {
        "vllm/envs.py": src("envs_annotated"),
        "vllm/platforms/interface.py": src("interface_0_10"),
    }
    return {
        Version("0.10.0"): vllm_source.entry_from_files(files_old, "a.whl"),
        Version("0.9.1"): vllm_source.entry_from_files(files_old, "b.whl"),
        Version("0.33.0"): vllm_source.entry_from_files(files_new, "c.whl"),
    }


def test_dumps_is_deterministic_sorted_and_round_trips(tmp_path: Path) -> None:
    entries = _entries()
    text = tl.dumps(entries)
    assert text == tl.dumps(dict(reversed(list(entries.items()))))
    assert (
        text.startswith("# Generated by `tools/refresh_matrix.py --write`")
        and "DO NOT EDIT" in text.splitlines()[0]
    )
    assert (
        text.index('[vllm."0.9.1"]') < text.index('[vllm."0.10.0"]') < text.index('[vllm."0.33.0"]')
    )
    path = tmp_path / "timeline.toml"
    path.write_text(text, encoding="utf-8")
    assert tl.load_timeline(path) == entries
    assert tl.dumps(tl.load_timeline(path)) == text


def test_merged_text_keeps_other_releases(tmp_path: Path) -> None:
    path = tmp_path / "timeline.toml"
    path.write_text(tl.dumps(_entries()), encoding="utf-8")
    f, wheel = make_wheel(
        tmp_path,
        "vllm-0.4.1-cp311-cp311-manylinux1_x86_64.whl",
        {"vllm/attention/selector.py": src("selector_0_4")},
    )
    client = ZipClient({f.filename: wheel}, tmp_path / "cache")
    merged = tl.loads(scan.merged_text(client, {Version("0.4.1"): f}, path))  # type: ignore[arg-type]
    assert sorted(merged) == [
        Version("0.4.1"),
        Version("0.9.1"),
        Version("0.10.0"),
        Version("0.33.0"),
    ]
    # a full refresh (no committed file to keep) has only the releases it read
    full = tl.loads(scan.merged_text(client, {Version("0.4.1"): f}, None))  # type: ignore[arg-type]
    assert sorted(full) == [Version("0.4.1")]


def _members_0_13() -> dict[str, str]:
    return {
        "vllm/envs.py": src("envs_choices"),
        "vllm/config/compilation.py": src("compilation_0_10"),
    }


def _cached_release(tmp_path: Path) -> tuple[ZipClient, dict[Version, IndexFile], Path]:
    """A release collected once, so its parsed entry sits in the cache."""
    f, wheel = make_wheel(
        tmp_path,
        "vllm-0.13.0-cp38-abi3-manylinux1_x86_64.whl",
        _members_0_13(),
    )
    client = ZipClient({f.filename: wheel}, tmp_path / "cache")
    scan.collect(client, {Version("0.13.0"): f})  # type: ignore[arg-type]
    (entry_path,) = (tmp_path / "cache" / "timeline").iterdir()
    assert entry_path.name == f"{f.sha256}-{vllm_source.PARSER_VERSION}.json"
    client.asked.clear()
    return client, {Version("0.13.0"): f}, entry_path


def test_collect_parses_each_wheel_once(tmp_path: Path) -> None:
    client, files, _ = _cached_release(tmp_path)
    fresh = vllm_source.entry_from_files(_members_0_13(), files[Version("0.13.0")].filename)
    assert scan.collect(client, files) == {Version("0.13.0"): fresh}  # type: ignore[arg-type]
    assert client.asked == []  # nothing read, nothing parsed


def test_a_new_parser_version_invalidates_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, files, old_entry = _cached_release(tmp_path)
    bumped = vllm_source.PARSER_VERSION + 1
    monkeypatch.setattr(vllm_source, "PARSER_VERSION", bumped)
    scan.collect(client, files)  # type: ignore[arg-type]
    assert sorted(client.asked) == ["vllm/config/compilation.py", "vllm/envs.py"]
    assert (old_entry.parent / f"{files[Version('0.13.0')].sha256}-{bumped}.json").is_file()


@pytest.mark.parametrize(
    "corrupt", [b"", b"{not json", b"[]", b'{"env-vars": "VLLM_X"}', b"\xff\xfe"]
)
def test_a_corrupt_cache_entry_is_reparsed_and_rewritten(tmp_path: Path, corrupt: bytes) -> None:
    client, files, entry_path = _cached_release(tmp_path)
    good = entry_path.read_bytes()
    entry_path.write_bytes(corrupt)
    entries = scan.collect(client, files)  # type: ignore[arg-type]
    assert client.asked and "FULL" in entries[Version("0.13.0")].cudagraph_modes
    assert entry_path.read_bytes() == good


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[vllm."not-a-version"]\nenv-vars = []\n',
            r"\[vllm\.not-a-version\]: 'not-a-version' is not a valid version",
        ),
        (
            '[vllm."0.1.0"]\nenv-vars = "VLLM_X"\n',
            r"""timeline\.toml \[vllm\."0\.1\.0"\]: field 'env-vars' must be a list of strings""",
        ),
        ("[vllm\n", "cannot read"),
    ],
)
def test_load_timeline_rejects_malformed(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "timeline.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MatrixError, match=message):
        tl.load_timeline(path)


def test_presence_spans_gaps_and_unknown_start() -> None:
    v = [Version(x) for x in ("0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0")]

    def entry(envs: set[str], known: bool = True) -> tl.TimelineEntry:
        return tl.TimelineEntry(
            env_vars=frozenset(envs),
            env_var_choices={},
            attention_backends=frozenset(),
            cudagraph_modes=frozenset(),
            sources={"env-vars": "vllm/envs.py" if known else ""},
        )

    entries = {
        v[0]: entry(set(), known=False),
        v[1]: entry({"VLLM_X"}),
        v[2]: entry(set()),
        v[3]: entry({"VLLM_X"}),
        v[4]: entry({"VLLM_X"}),
    }
    (p,) = tl.presence(entries, "VLLM_X")
    assert p.spans == ((v[1], v[1]), (v[3], v[4]))
    assert (p.first, p.last, p.unknown_before) == (v[1], v[4], v[1])
    line = tl.describe(p, newest=v[4])
    assert "disappeared and came back" in line and "still in the newest release" in line
    assert tl.presence(entries, "VLLM_Y") == []


# -- against the committed matrix/timeline.toml (facts read from the real wheels) ---------


@pytest.fixture()
def real_timeline(monkeypatch: pytest.MonkeyPatch) -> dict[Version, tl.TimelineEntry]:
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(MATRIX))
    return tl.load_default()


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("VLLM_USE_V1", "0.6.4", "0.11.0"),
        ("VLLM_ATTENTION_BACKEND", "0.4.2", "0.14.1"),
        ("XFORMERS", "0.4.1", "0.11.2"),
        ("FLEX_ATTENTION", "0.9.1", "0.33.0"),
        ("FULL", "0.10.1", "0.33.0"),
        ("cudagraph_mode", "0.10.1", "0.33.0"),
        ("attention_backend", "0.13.0", "0.33.0"),
        ("VLLM_BATCH_INVARIANT", "0.19.0", "0.33.0"),
    ],
)
def test_real_timeline_first_and_last(
    real_timeline: dict[Version, tl.TimelineEntry], name: str, first: str, last: str
) -> None:
    (p,) = tl.presence(real_timeline, name)
    assert (str(p.first), str(p.last)) == (first, last)


def test_real_timeline_covers_every_wheel_release(
    real_timeline: dict[Version, tl.TimelineEntry],
) -> None:
    assert min(real_timeline) == Version("0.1.4") and max(real_timeline) >= Version("0.33.0")
    assert all(e.wheel.endswith(".whl") for e in real_timeline.values())


def test_cli_timeline_names_last_release(
    real_timeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["timeline", "VLLM_USE_V1"]) == 0
    out = capsys.readouterr().out
    assert "first 0.6.4, last 0.11.0" in out


def test_cli_timeline_unknown_name_suggests(
    real_timeline: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["timeline", "VLLM_CUDAGRAPH_MODE"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("no release has VLLM_CUDAGRAPH_MODE")
    assert "did you mean" in out
    # the real knob, from curated [[knob-replacements]]
    assert 'instead, for vllm >=0.10.1: compilation_config={"cudagraph_mode": "PIECEWISE"}' in out


def test_cli_timeline_json(real_timeline: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["timeline", "--json", "FLEX_ATTENTION"]) == 0
    data = json.loads(capsys.readouterr().out)
    (found,) = data["found"]
    assert found["first"] == "0.9.1" and found["still-present"] is True
    assert main(["timeline", "--json", "VLLM_ATTENTION_CHUNK_SIZE"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["found"] == []
    assert [i["vllm"] for i in data["instead"]] == [">=0.8.3"]
    assert "attention_chunk_size in the model's config.json" in data["instead"][0]["instead"]


def test_cli_timeline_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(tmp_path))
    assert main(["timeline", "VLLM_USE_V1"]) == 2
    assert "refresh_matrix.py --write" in capsys.readouterr().err
    with pytest.raises(VllmPinError):
        tl.load_default(tmp_path / "timeline.toml")


@pytest.mark.network
def test_collect_from_the_real_index(tmp_path: Path) -> None:
    """Range-reads the real 0.10.1.1 wheel (a few hundred KiB of a 414 MB file)."""
    client = PyPIClient(cache_dir=tmp_path)
    wanted = Version("0.10.1.1")
    files = group_by_version(client.project("vllm"))[wanted]
    wheel = representatives(files)["x86_64"][0].file
    entry = scan.collect(client, {wanted: wheel})[wanted]
    assert client.bytes_fetched < 1_000_000 < wheel.size
    assert {"VLLM_USE_V1", "VLLM_ATTENTION_BACKEND"} <= entry.env_vars
    assert {"XFORMERS", "FLEX_ATTENTION"} <= entry.attention_backends
    assert "FULL" in entry.cudagraph_modes
    assert entry == tl.load_timeline(MATRIX / "timeline.toml")[wanted]
