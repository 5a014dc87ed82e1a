"""Property-based tests of the parsers that take outside input.

Whatever the input, each parser returns a value or raises the project's one-line error: never
another exception (a traceback), never a message of several lines, never unbounded memory.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.version import Version

from vllm_pin.commands.refresh import parse_only
from vllm_pin.doctor.diagnose import diagnose, make_context
from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.index import zipread
from vllm_pin.matrix.model import Matrix, load_matrix
from vllm_pin.matrix.tomlfields import Fields
from vllm_pin.verify.requirement_sets import read_requirements_file

SETTINGS = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
# text that looks like what the parsers read, plus anything else (but no lone surrogates,
# which no file on disk can hold)
CHARS = st.characters(blacklist_categories=("Cs",))
LIKELY = "abcxyz0123456789.=<>!~;,[]()@ '\"#-_:/\\+*\t\n"
TEXT = st.text(st.one_of(st.sampled_from(LIKELY), CHARS), max_size=120)


def one_line(exc: BaseException) -> None:
    assert str(exc) and "\n" not in str(exc)


# -- requirement lines ----------------------------------------------------------------------


@SETTINGS
@given(st.lists(TEXT, max_size=6))
@example(["torch==2.7.1 --hash=sha256:ab \\", "  # comment", "-r missing.txt"])
@example(["torch==" + "1" * 5000])
def test_requirement_files(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requirements.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        try:
            out = read_requirements_file(path)
        except VllmPinError as exc:
            one_line(exc)
        else:
            assert all(isinstance(entry.req, Requirement) for entry in out)


# -- version strings ------------------------------------------------------------------------


@SETTINGS
@given(st.lists(TEXT, min_size=1, max_size=3))
@example(["1" * 5000])
@example(["0.10.1.1,", " ,v1.0"])
def test_version_options(values: list[str]) -> None:
    try:
        out = parse_only(values)
    except VllmPinError as exc:
        one_line(exc)
    else:
        assert out is None or all(isinstance(v, Version) for v in out)


# -- TOML fields ----------------------------------------------------------------------------

TOML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
READERS: list[tuple[str, Any]] = [
    ("get-str", lambda f: f.get("k", str)),
    ("get-int", lambda f: f.get("k", int)),
    ("get-float", lambda f: f.get("k", float)),
    ("opt", lambda f: f.opt("k", str, "")),
    ("text", lambda f: f.text("k")),
    ("choice", lambda f: f.choice("k", ("a", "b"))),
    ("strings", lambda f: f.strings("k")),
    ("version", lambda f: f.version("k")),
    ("name-version", lambda f: f.name_version(str(f.data.get("k")))),
    ("specifier", lambda f: f.specifier("k")),
    ("requirements", lambda f: f.requirements("k")),
    ("regex", lambda f: f.regex("k")),
    ("at", lambda f: f.at("[t]", f.data.get("k"))),
]


@SETTINGS
@given(st.sampled_from(READERS), TOML_VALUES)
@example(READERS[7], "1" * 5000)
@example(READERS[11], "(a")
def test_toml_fields(reader: tuple[str, Any], value: object) -> None:
    try:
        reader[1](Fields("matrix/x.toml", {"k": value}, "[t]"))
    except MatrixError as exc:
        one_line(exc)


# -- the zip central directory --------------------------------------------------------------


def fetcher(data: bytes) -> zipread.RangeFetcher:
    return lambda start, end: data[start:end]


def a_wheel() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("vllm-1.0.dist-info/METADATA", "Name: vllm\nVersion: 1.0\n" * 20)
        z.writestr("vllm/envs.py", "environment_variables = {}\n")
        z.writestr("vllm/é.py", "x = 1\n")
    return buf.getvalue()


WHEEL = a_wheel()


def read_everything(data: bytes) -> None:
    try:
        entries = zipread.read_central_directory(len(data), fetcher(data), "w.whl")
        for entry in entries:
            content = zipread.read_member(entry, fetcher(data), "w.whl", max_bytes=4096)
            assert len(content) <= 4096
    except zipread.ZipReadError as exc:
        one_line(exc)


@SETTINGS
@given(st.binary(max_size=3000))
def test_zip_of_random_bytes(data: bytes) -> None:
    read_everything(data)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(WHEEL) - 1), st.integers(0, 255)), max_size=8))
@example([(WHEEL.rindex("é".encode()), 0xFF)])  # a name flagged UTF-8 that is not
@example([(223, 0), (253, 10)])  # a member name with a newline in a corrupt zip's message
def test_zip_with_corrupted_bytes(flips: list[tuple[int, int]]) -> None:
    data = bytearray(WHEEL)
    for at, value in flips:
        data[at] = value
    read_everything(bytes(data))


@SETTINGS
@given(st.binary(max_size=2000), st.integers(1, 10_000))
def test_inflate_is_capped(data: bytes, cap: int) -> None:
    try:
        assert len(zipread.inflate_capped(data, cap, "m")) <= cap
    except zipread.ZipReadError as exc:
        one_line(exc)


# -- log lines ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix(None)


LOG_LINES = st.lists(
    st.one_of(
        TEXT,
        st.sampled_from(
            [
                "Traceback (most recent call last):",
                "RuntimeError: CUDA error: an illegal memory access was encountered",
                "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|" + "#" * 200,
                "ImportError: libcudart.so.13: cannot open shared object file",
                "VLLM_ATTENTION_BACKEND=XFORMERS",
                "\r" * 50,
            ]
        ),
    ),
    max_size=12,
)


@SETTINGS
@given(LOG_LINES)
def test_doctor_reads_any_log(matrix: Matrix, lines: list[str]) -> None:
    ctx = make_context(matrix, "0.10.1.1", None)
    found = diagnose("\n".join(lines), matrix.knowledge, matrix.timelines, ctx)
    assert isinstance(found, list)


@SETTINGS
@given(st.binary(max_size=5000), st.integers(1, 6000))
def test_inflate_prefix_is_the_start_of_the_whole(data: bytes, cap: int) -> None:
    packed = zlib.compress(data, 6)[2:-4]  # raw deflate
    head = zipread.inflate_capped(packed[: len(packed) // 2 + 1], cap, "m", prefix=True)
    assert data.startswith(head) and len(head) <= cap
    assert zipread.inflate_capped(packed, max(cap, len(data)), "m") == data
