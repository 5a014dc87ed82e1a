"""The shared typed TOML reader: every operation on good input, and the exact error text."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from vllm_pin.errors import MatrixError
from vllm_pin.matrix.tomlfields import Fields, table_name

TABLE: dict[str, Any] = {
    "name": "flash",
    "blank": "  ",
    "size": 3,
    "flag": True,
    "seconds": 2,
    "ratio": 0.5,
    "tags": ["a", "b"],
    "mixed": ["a", 1],
    "release": "0.10.1.1",
    "bad-release": "ten",
    "range": ">=0.10,<0.20",
    "bad-range": "0.10",
    "pins": ["torch==2.7.1", "numpy; python_version < '3.12'"],
    "bad-pins": ["torch==>2.7.1"],
    "pattern": r"CUDA error: (\w+)",
    "bad-pattern": "(unclosed",
    "status": "ok",
}
WHERE = 'curated.toml [vllm."0.10"]'


def fields(hint: str = "") -> Fields:
    return Fields("curated.toml", TABLE, table_name("vllm", "0.10"), hint)


GOOD: list[tuple[str, Callable[[Fields], object], object]] = [
    ("get str", lambda f: f.get("name", str), "flash"),
    ("get int", lambda f: f.get("size", int), 3),
    ("get bool", lambda f: f.get("flag", bool), True),
    ("get float from int", lambda f: f.get("seconds", float), 2.0),
    ("get float", lambda f: f.get("ratio", float), 0.5),
    ("opt present", lambda f: f.opt("size", int, 0), 3),
    ("opt absent", lambda f: f.opt("nope", int, 7), 7),
    ("text", lambda f: f.text("name"), "flash"),
    ("choice", lambda f: f.choice("status", ("ok", "error")), "ok"),
    ("strings", lambda f: f.strings("tags"), ("a", "b")),
    ("strings absent optional", lambda f: f.strings("nope", required=False), ()),
    ("version", lambda f: f.version("release"), Version("0.10.1.1")),
    ("name_version", lambda f: f.name_version("0.10"), Version("0.10")),
    ("specifier", lambda f: f.specifier("range"), SpecifierSet(">=0.10,<0.20")),
    ("specifier default", lambda f: f.specifier("nope", ""), SpecifierSet("")),
    ("specifier present wins", lambda f: f.specifier("range", ""), SpecifierSet(">=0.10,<0.20")),
    (
        "requirements",
        lambda f: f.requirements("pins"),
        (Requirement("torch==2.7.1"), Requirement("numpy; python_version < '3.12'")),
    ),
    ("requirements absent optional", lambda f: f.requirements("nope", required=False), ()),
    ("regex", lambda f: f.regex("pattern").pattern, r"CUDA error: (\w+)"),
    ("contains", lambda f: ("size" in f, "nope" in f), (True, False)),
]


@pytest.mark.parametrize(("read", "expected"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_input_is_read_typed(read: Callable[[Fields], object], expected: object) -> None:
    assert read(fields()) == expected


BAD: list[tuple[str, Callable[[Fields], object], str]] = [
    ("get missing", lambda f: f.get("nope", str), "field 'nope' must be a str, got None"),
    ("get wrong type", lambda f: f.get("name", int), "field 'name' must be a int, got 'flash'"),
    ("bool is no int", lambda f: f.get("flag", int), "field 'flag' must be a int, got True"),
    (
        "str is no float",
        lambda f: f.get("name", float),
        "field 'name' must be a float, got 'flash'",
    ),
    ("opt wrong type", lambda f: f.opt("size", str, ""), "field 'size' must be a str, got 3"),
    (
        "text missing",
        lambda f: f.text("nope"),
        "field 'nope' must be a non-empty string, got None",
    ),
    ("text blank", lambda f: f.text("blank"), "field 'blank' must be a non-empty string, got '  '"),
    (
        "choice",
        lambda f: f.choice("name", ("ok", "error")),
        "field 'name' must be one of 'ok', 'error', got 'flash'",
    ),
    ("strings not list", lambda f: f.strings("name"), "field 'name' must be a list of strings"),
    ("strings item", lambda f: f.strings("mixed"), "field 'mixed' must be a list of strings"),
    ("strings missing", lambda f: f.strings("nope"), "field 'nope' must be a list of strings"),
    (
        "version",
        lambda f: f.version("bad-release"),
        "field 'bad-release': 'ten' is not a valid version",
    ),
    ("name_version", lambda f: f.name_version("ten"), "'ten' is not a valid version"),
    (
        "specifier",
        lambda f: f.specifier("bad-range"),
        "field 'bad-range': '0.10' is not a valid version specifier"
        ' (write e.g. ">=0.10.1,<0.20")',
    ),
    ("specifier missing", lambda f: f.specifier("nope"), "field 'nope' must be a str, got None"),
    (
        "requirements",
        lambda f: f.requirements("bad-pins"),
        "field 'bad-pins': 'torch==>2.7.1' is not a valid requirement",
    ),
    (
        "regex",
        lambda f: f.regex("bad-pattern"),
        "field 'bad-pattern': '(unclosed' is not a valid regex"
        " (missing ), unterminated subpattern at position 0)",
    ),
    ("fail", lambda f: f.fail("duplicate id"), "duplicate id"),
]


@pytest.mark.parametrize(("read", "what"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
@pytest.mark.parametrize("hint", ["", "regenerate it with `vllm-pin gpu-sweep --write`"])
def test_bad_input_names_file_table_and_field(
    read: Callable[[Fields], object], what: str, hint: str
) -> None:
    suffix = f"; {hint}" if hint else ""
    with pytest.raises(MatrixError) as err:
        error = read(fields(hint))
        raise error if isinstance(error, MatrixError) else AssertionError(f"read {error!r}")
    assert str(err.value) == f"{WHERE}: {what}{suffix}"


@pytest.mark.parametrize(
    ("keys", "name"),
    [
        ((), ""),
        (("meta",), "[meta]"),
        (("vllm", "0.10.1.1", "platforms", "x86_64"), '[vllm."0.10.1.1".platforms.x86_64]'),
        (("packages", "torch", "2.7.1+cu126"), '[packages.torch."2.7.1+cu126"]'),
        (("vllm", "not-a-version"), "[vllm.not-a-version]"),
    ],
)
def test_table_name_quotes_only_keys_that_need_it(keys: tuple[str, ...], name: str) -> None:
    assert table_name(*keys) == name


@pytest.mark.parametrize("data", [None, "text", ["a"], 3])
def test_a_table_that_is_not_a_table_is_refused(data: object) -> None:
    with pytest.raises(
        MatrixError, match=re.escape("observed/x.toml [[outcome]] #2: expected a table")
    ):
        Fields("observed/x.toml", data, "[[outcome]] #2")


def test_at_keeps_file_and_hint_and_the_top_table_has_no_label() -> None:
    top = Fields("observed/x.toml", {"meta": {"gpu": 1}}, hint="regenerate it")
    assert top.where == "observed/x.toml"
    meta = top.at("[meta]", top.get("meta", dict))
    with pytest.raises(MatrixError) as err:
        meta.get("gpu", str)
    assert (
        str(err.value) == "observed/x.toml [meta]: field 'gpu' must be a str, got 1; regenerate it"
    )
