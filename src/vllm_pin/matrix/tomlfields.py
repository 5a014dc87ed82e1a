"""Typed reads of parsed TOML tables, shared by every loader of the matrix files.

The matrix files are edited by hand (curated.toml) or sent in by users (observed/*.toml), so
a bad field must fail with one line that names the file, the table and the field, and says
what was expected. One reader does that for all of them, so the wording is the same
everywhere and no loader carries its own copy.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from vllm_pin.errors import MatrixError

T = TypeVar("T")

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SPECIFIER = 'version specifier (write e.g. ">=0.10.1,<0.20")'

# Memoized: the matrix repeats a few requires-python and glibc strings hundreds of times, and
# neither object is ever mutated, so every row may share one (a ValueError is not cached).
_specifier_set = functools.lru_cache(maxsize=None)(SpecifierSet)
_version = functools.lru_cache(maxsize=None)(Version)


def table_name(*keys: str) -> str:
    """``[vllm."0.10.1.1".platforms]``: the TOML header of a nested table ("" for the top)."""
    return (
        "[" + ".".join(k if _BARE_KEY.fullmatch(k) else f'"{k}"' for k in keys) + "]"
        if keys
        else ""
    )


class Fields:
    """One table of one file; every error names ``file table: field`` and what it must be.

    ``table`` is how the error names the table (``[meta]``, ``[[outcome]] #3``, see
    :func:`table_name`); ``hint`` is appended to every error (``regenerate it with ...``).
    """

    def __init__(self, file: str, data: object, table: str = "", hint: str = "") -> None:
        self.file = file
        self.where = f"{file} {table}" if table else file
        self.hint = hint
        if not isinstance(data, Mapping):
            raise self.fail("expected a table")
        self.data: Mapping[str, Any] = data

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def at(self, table: str, data: object) -> Fields:
        """Another table of the same file, with the same hint."""
        return Fields(self.file, data, table, self.hint)

    def fail(self, what: str) -> MatrixError:
        """The error for ``what`` is wrong here (for checks the reader does not make)."""
        return MatrixError(f"{self.where}: {what}" + (f"; {self.hint}" if self.hint else ""))

    def get(self, key: str, kind: type[T]) -> T:
        """A required field of one type; an int is read as a float, a bool is not an int."""
        value = self.data.get(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"field {key!r} must be a {kind.__name__}, got {value!r}")
        return value

    def opt(self, key: str, kind: type[T], default: T) -> T:
        """An optional field: ``default`` when absent, checked like :meth:`get` when present."""
        return self.get(key, kind) if key in self.data else default

    def text(self, key: str) -> str:
        """A required string that is not blank."""
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"field {key!r} must be a non-empty string, got {value!r}")
        return value

    def choice(self, key: str, choices: Sequence[str]) -> str:
        """A required string that is one of ``choices``."""
        value = self.get(key, str)
        if value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise self.fail(f"field {key!r} must be one of {allowed}, got {value!r}")
        return value

    def strings(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        """A list of strings; an absent optional one is empty."""
        value = self.data.get(key, None if required else [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"field {key!r} must be a list of strings")
        return tuple(value)

    def version(self, key: str) -> Version:
        """A required field holding a version."""
        return self._parse(self.get(key, str), _version, "version", key)

    def name_version(self, name: str) -> Version:
        """The table's own name (a key such as ``"0.10.1.1"``) as a version."""
        return self._parse(name, Version, "version", "")

    def specifier(self, key: str, default: str | None = None) -> SpecifierSet:
        """A version specifier; ``default`` (when given) stands in for an absent field."""
        text = self.get(key, str) if default is None or key in self.data else default
        return self._parse(text, _specifier_set, _SPECIFIER, key)

    def requirements(self, key: str, *, required: bool = True) -> tuple[Requirement, ...]:
        """A list of requirement strings (PEP 508); an absent optional one is empty."""
        items = self.strings(key, required=required)
        return tuple(self._parse(item, Requirement, "requirement", key) for item in items)

    def regex(self, key: str) -> re.Pattern[str]:
        """A required, non-blank regular expression."""
        return self._parse(self.text(key), re.compile, "regex", key)

    def _parse(self, text: str, parse: Callable[[str], T], expected: str, key: str) -> T:
        try:
            return parse(text)
        except (ValueError, re.error) as exc:
            field = f"field {key!r}: " if key else ""
            detail = f" ({exc})" if isinstance(exc, re.error) else ""
            raise self.fail(f"{field}{text!r} is not a valid {expected}{detail}") from None
