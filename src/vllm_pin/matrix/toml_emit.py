"""A deterministic TOML writer for the generated matrix files.

A general-purpose writer would not promise byte-identical output from run to run, and a refresh
with nothing new must leave the committed files untouched.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_LITERAL_OK = re.compile(r"^[^'\x00-\x08\x0a-\x1f\x7f]*$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


@cache
def _toml_string(value: str) -> str:
    """A literal string when the text has double quotes (markers read better), else basic."""
    if '"' in value and _LITERAL_OK.match(value):
        return f"'{value}'"
    return _basic_string(value)


def _basic_string(value: str) -> str:
    # a JSON string is a valid TOML basic string (same escapes), except that TOML wants DEL
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_inline(value: Any) -> str:
    """A one-line TOML value (bool, int, finite float, basic string, or an array of them)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    if isinstance(value, str):
        return _basic_string(value)
    return _toml_number(value)


def _toml_number(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def _toml_value(value: Any) -> str:
    if isinstance(value, (bool, int, float)):
        return _toml_number(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [_toml_value(v) for v in value]
        one_line = "[" + ", ".join(items) + "]"
        if len(items) == 1 and len(one_line) <= 80:
            return one_line
        return "[\n" + "".join(f"  {item},\n" for item in items) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def toml_dumps(doc: Mapping[str, Any]) -> str:
    """Deterministic TOML for nested dicts of str/int/bool/list: keys in the dicts' order.

    Small on purpose: the output must be byte-identical from run to run, and
    `toml_dumps(tomllib.loads(text)) == text` for text it wrote.
    """
    out: list[str] = []
    _emit_table(out, (), doc)
    return "\n".join(block.rstrip("\n") + "\n" for block in out if block)


def _emit_table(out: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)}
    lines = "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in scalars.items())
    header = ".".join(map(_toml_key, path))
    if path and (scalars or not table):
        out.append(f"[{header}]\n{lines}")
    elif lines:
        out.append(lines)
    for key, value in table.items():
        if isinstance(value, dict):
            _emit_table(out, (*path, key), value)
        elif _is_table_array(value):
            name = ".".join(map(_toml_key, (*path, key)))
            for item in value:
                body = "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in item.items())
                out.append(f"[[{name}]]\n{body}")
