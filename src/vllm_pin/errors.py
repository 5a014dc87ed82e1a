"""Precise error types. Each message is one line that says what went wrong and what to do."""

from __future__ import annotations


class VllmPinError(ValueError):
    """Base class: the CLI prints the message on one line and exits 2."""


class MatrixError(VllmPinError):
    """The committed matrix files are missing, malformed or inconsistent."""


class UnknownReleaseError(VllmPinError):
    """A requested vLLM version is not in the matrix."""


class PackageIndexError(VllmPinError):
    """The package index could not be read (network down, HTTP error, bad response).

    The message may quote what the index sent (a file name, a zip member's name), so its
    control characters are shown escaped: a hostile name cannot break the one-line error
    or drive the terminal.
    """

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


def printable(text: str) -> str:
    """``text`` with each non-printable character (newline, escape, NUL) as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class PyprojectError(VllmPinError):
    """A pyproject.toml could not be parsed or edited."""


#: what reading a Python source text from a wheel or an environment can raise when the text is
#: not UTF-8, not Python, or nested too deeply for the parser (a broken or hostile file)
UNPARSABLE_SOURCE = (UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError)


class RequirementSetError(VllmPinError):
    """A requirements file, pyproject.toml or lock file given to verify cannot be read."""
