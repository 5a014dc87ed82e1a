"""doctor stays linear: every curated signature and every analyzer on a ~1 MB adversarial
log (cudagraph progress bars redrawn with carriage returns, megabyte lines, thousands of
prefixes of each error that never complete) and the whole command on a large progress-bar
log, under time limits. The 10 MB speed target is benchmarks/doctor_speed.py."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, reject, settings
from hypothesis import strategies as st

from vllm_pin.cli import main
from vllm_pin.commands.doctor import _read_log
from vllm_pin.doctor import analyzers
from vllm_pin.doctor.analyzers import Known
from vllm_pin.doctor.diagnose import literal_ends, literal_starts, search_signature
from vllm_pin.doctor.logtext import LogText
from vllm_pin.matrix.model import Matrix, load_matrix

ROOT = Path(__file__).parent.parent
LOGS = ROOT / "tests/fixtures/logs"
#: seconds one signature or analyzer may take on the adversarial log (quadratic takes minutes)
LIMIT_S = 2.0

BAR = (
    "Capturing CUDA graphs (mixed prefill-decode, FULL):  37%|###7 "
    "     | 19/51 [00:01<00:02, 12.30it/s]"
)
#: starts of every error the signatures and analyzers look for, never completed
PREFIXES = (
    "Capturing CUDA graphs (mixed prefill-decode, FULL) ",
    "torch._dynamo.exc.Unsupported: Observed exception ",
    "version `GLIBC_2.32' not ",
    "undefined symbol",
    "No module named 'vllm.",
    "No module named '",
    'File "/usr/lib/python3/site-packages/vllm/engine/x.py", line 1 ',
    "C:\\Users\\me\\",
    "NCCL error ",
    "has no attribute ",
    "VLLM_ATTENTION_BACKEND=",
    "export VLLM_X ",
    "model type ",
    "maximum context length is 10 tokens. ",
    "CUDAGraphMode.FULL is not supported ",
    "The NVIDIA driver on your system is too ",
    "Failed to import Triton",
    "capability sm_",
    "vllm ",
    "PyTorch version",
    "transformers ",
    "triton ",
    "is not subscriptable",
)


def adversarial_log(size: int = 1_000_000) -> str:
    # doctor reads with universal newlines (\r becomes \n); signatures also meet raw \r
    bars = "\r".join([BAR] * (size // 8 // len(BAR))) + "\n".join([BAR] * (size // 8 // len(BAR)))
    prefixes = "".join(PREFIXES) * (size // 4 // len("".join(PREFIXES)))
    lines = "\n".join(p + "x" * 200 for p in PREFIXES) * (size // 4 // (len(PREFIXES) * 220))
    return "\n".join([bars, prefixes, lines, "y" * (size // 4)])


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix(ROOT / "matrix")


@pytest.fixture(scope="module")
def log() -> str:
    text = adversarial_log()
    assert 900_000 < len(text) < 1_100_000
    return text


def test_every_signature_is_linear(matrix: Matrix, log: str) -> None:
    for issue in matrix.knowledge.issues:
        start = time.perf_counter()
        issue.signature.search(log)
        assert time.perf_counter() - start < LIMIT_S, issue.id


@pytest.mark.parametrize("analyzer", analyzers.ANALYZERS, ids=lambda a: a.__name__)
def test_every_analyzer_is_linear(matrix: Matrix, log: str, analyzer: analyzers.Analyzer) -> None:
    known = Known({"vllm": matrix.releases()[-1].version}, {"vllm": "--vllm"})
    text = LogText(log)
    start = time.perf_counter()
    analyzer(text, known, matrix)
    text.versions  # noqa: B018 - the printed-version scan is timed too
    assert time.perf_counter() - start < LIMIT_S


def test_large_progress_bar_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 MB of cudagraph progress bars (the shape that took 44 s on 527 kB) then the error."""
    monkeypatch.setenv("VLLM_PIN_MATRIX_DIR", str(ROOT / "matrix"))
    error = (ROOT / "tests/fixtures/logs/flash-attn-full-cudagraph-illegal-memory.log").read_text()
    path = tmp_path / "bars.log"
    path.write_text("\r".join([f"(EngineCore pid=1) {BAR}"] * 17_000) + "\n" + error)
    start = time.perf_counter()
    assert main(["doctor", str(path), "--vllm", "0.20.0"]) == 0
    assert time.perf_counter() - start < 10 * LIMIT_S
    assert "[flash-attn-full-cudagraph-0.20]" in capsys.readouterr().out


# -- the shortcuts are exact: the same answers as the plain scans -------------------------

#: few letters, so that needles overlap, contain each other, and are found or not
SMALL = st.text(alphabet="ab\n", max_size=60)


@settings(max_examples=300, deadline=None)
@given(SMALL, st.lists(st.text(alphabet="ab\n", min_size=1, max_size=4), max_size=12))
@example("abab", ["ab", "bab", "b", "abb"])
def test_first_is_str_find_in_any_order(text: str, needles: list[str]) -> None:
    """Remembered first positions, bounded by literals looked for earlier, are str.find's."""
    log = LogText(text)
    for needle in needles:
        assert log.first(needle) == text.find(needle), needle
        assert log.has(needle) == (needle in text)


#: pieces of undefined-symbol and GPU-architecture errors, joined in any order and number
PIECES = st.sampled_from(
    [
        *("undefined symbol: ", "undefined symbol", "/x/lib.so", ": ", " ", "x" * 450, "_Z"),
        *("capability sm_", "no sm_", "without sm_", "90", "sm_120", "abc", "\n"),
    ]
)
#: (pattern, its needles, within) as the analyzers search them
SEARCHES = [
    (analyzers.UNDEFINED, (analyzers.UNDEFINED_LITERAL,), analyzers.UNDEFINED_WITHIN),
    (analyzers.SM, ("capability sm_", "no sm_", "without sm_"), None),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=14).map("".join))
@example("/a/" + "x" * 500 + "y.so: undefined symbol: _Z")
@example("p.so: undefined symbol q.so : undefined symbol: _Z")
@example(("capability sm_" + "x" * 450 + "\n") * 70 + "no sm_90")
def test_search_is_the_plain_window_search(text: str) -> None:
    """LogText.search (from ``within`` before the literal, each repeated window once) finds
    what a regex search of every window around every needle finds."""
    log = LogText(text)
    for pattern, needles, within in SEARCHES:
        plain = next(
            (
                found
                for needle in needles
                for window in log.windows(needle)
                if (found := pattern.search(window)) is not None
            ),
            None,
        )
        fast = log.search(pattern, *needles, within=within)
        assert (fast and (fast.group(0), fast.groups())) == (
            plain and (plain.group(0), plain.groups())
        )


@pytest.mark.parametrize(
    ("pattern", "ends"),
    [
        (r"abc", [("abc", 0)]),
        (r"(?:a|bc)de", [("de", 2)]),
        (r"x[^\n]{0,40}\nq(?=z)y", [("y", 43)]),
        (r"a{2,}b|c?d", [("b", None), ("d", 1)]),
        (r"(?P<k>\w{1,5})'\.", [("'.", 5)]),
        (r"(?s)a(?!b{3})\(c\)", [("(c)", 1)]),
        (r"ab?", None),  # ends with an optional character
        (r"a(?:b|c)", None),  # ends with a group
        (r"(a)\1x", None),  # back reference
        (r"a(?i:b)c", None),  # scoped flags
        (r"a{b", None),  # a brace that is not a quantifier
        (r"a{}bc", None),  # nor is {}
        (r"a{,}bc", [("bc", None)]),
    ],
)
def test_literal_ends(pattern: str, ends: list[tuple[str, int | None]] | None) -> None:
    assert literal_ends(re.compile(pattern)) == ends


@pytest.mark.parametrize(
    ("pattern", "starts"),
    [
        (r"abc", ["abc"]),
        (r"a\.b(c)", ["a.b"]),
        (r"ab+c", ["ab"]),  # b occurs at least once
        (r"ab?c|ab*c", ["a", "a"]),  # b may be absent
        (r"ab{2}c", ["ab"]),
        (r"a\nb", ["a\nb"]),
        (r"x|yz+", ["x", "yz"]),
        (r"(?s)abc.*d", ["abc"]),
        (r"^abc", None),  # starts with an anchor
        (r"a|\bfoo", None),  # one branch starts with no literal
    ],
)
def test_literal_starts(pattern: str, starts: list[str] | None) -> None:
    assert literal_starts(re.compile(pattern)) == starts


@pytest.mark.parametrize("flags", [re.IGNORECASE, re.VERBOSE])
def test_literal_starts_give_up_on_flags_that_change_literals(flags: int) -> None:
    assert literal_starts(re.compile("\n  abc  # the literal is abc", flags)) is None


#: regex atoms and quantifiers over a three-letter alphabet, for random signatures
ATOMS = ["a", "b", "c", "\\.", "[ab]", "[^\\n]", "(?:a|bc)", "(?=a)", "(?!b)", "^", "\\b", "."]
QUANTIFIERS = ["", "", "", "?", "{0,3}", "{2}", "{,2}", "*", "{1,}?", "+"]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(ATOMS), st.sampled_from(QUANTIFIERS)), max_size=6),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map("".join),
    st.text(alphabet="abc.\n", max_size=40),
)
def test_search_signature_on_random_signatures(
    atoms: list[tuple[str, str]], end: str, text: str
) -> None:
    """Random regexes ending with a literal: search_signature finds pattern.search's match."""
    try:
        pattern = re.compile("".join(a + q for a, q in atoms) + end, re.M)
    except re.error:  # a quantified anchor
        reject()
    fast = search_signature(pattern, LogText(text))
    plain = pattern.search(text)
    assert (fast and fast.span()) == (plain and plain.span())


@pytest.mark.parametrize("flags", [re.IGNORECASE, re.VERBOSE])
def test_literal_ends_give_up_on_flags_that_change_literals(flags: int) -> None:
    assert literal_ends(re.compile("abc", flags)) is None


def _signature_pieces(pattern: re.Pattern[str]) -> list[str]:
    ends = [literal for literal, _ in literal_ends(pattern) or []]
    return [*(literal_starts(pattern) or []), *ends, *FILLERS]


#: what lies between the literals of a signature in a log
FILLERS = ["\n", " ", "x" * 30, "x" * 700, "FULL)", "mixed prefill-decode, ", "12", ".so", "'"]


@pytest.mark.parametrize(
    "issue", load_matrix(ROOT / "matrix").knowledge.issues, ids=lambda issue: issue.id
)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_search_signature_is_the_plain_regex_search(issue: Any, data: st.DataObject) -> None:
    """Every curated signature, on texts made of its own literals and fillers in any order
    and number, and on every recorded log: the same match as pattern.search."""
    pieces = _signature_pieces(issue.signature)
    text = "".join(data.draw(st.lists(st.sampled_from(pieces), max_size=30)))
    texts = [text, *(p.read_text(encoding="utf-8") for p in sorted(LOGS.glob("*.log")))]
    for t in texts:
        fast = search_signature(issue.signature, LogText(t))
        plain = issue.signature.search(t)
        assert (fast and fast.span()) == (plain and plain.span())


#: the longest match of each curated signature whose literal end is bounded: its start
#: lies exactly as far before its literal end as literal_ends allows
LONGEST = {
    "flash-attn-full-cudagraph-0.20": "Capturing CUDA graphs (mixed prefill-decode, FULL)"
    + "a" * 400
    + "\n"
    + ("b" * 400 + "\n") * 80
    + "c" * 400
    + "an illegal memory access was encountered",
    "flex-attention-dynamo-valueerror": "torch._dynamo.exc.Unsupported: Observed exception"
    + "a" * 300
    + "\n"
    + ("b" * 1000 + "\n") * 30
    + "c" * 1000
    + "nn/attention/flex_attention.py",
    "vllm-c-glibc-2.32-before-0.5.3": "GLIBC_2.32' not found (required by " + "p" * 300 + "vllm/_C",
    "transformers-5-tokenizer-attributes": "has no attribute 'all_special_tokens_extended",
}


@pytest.mark.parametrize(("issue_id", "longest"), LONGEST.items(), ids=list(LONGEST))
def test_search_signature_finds_the_longest_match(
    matrix: Matrix, issue_id: str, longest: str
) -> None:
    (pattern,) = (i.signature for i in matrix.knowledge.issues if i.id == issue_id)
    text = "noise\n" + longest + "\n"
    found = search_signature(pattern, LogText(text))
    assert found is not None
    assert found.span() == (len("noise\n"), len("noise\n") + len(longest))


@pytest.mark.parametrize(
    "data",
    [
        b"a\r\nb\rc\nd",
        b"bar\r" * 3 + b"\r\n\n",
        b"bad \xff\xfe bytes\r\n",
        b"cut \xe2\x82",
        b"\xe2\r\x82\n",
        "caf\u00e9 \u2588\u2588 \U0001f600\r\n".encode(),
        b"",
    ],
)
def test_read_log_is_read_text_with_universal_newlines(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(data)
    assert _read_log(str(path)) == path.read_text(encoding="utf-8", errors="replace")
