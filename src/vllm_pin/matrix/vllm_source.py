"""Static facts read out of vLLM's own source files, with `ast` and never by importing vllm.

The same parsers serve two callers: refresh, which reads the files out of each released wheel
(so the matrix knows every release's configuration knobs before anything is installed), and
verify and gpu-sweep, which read them from an installed vllm. `entry_from_files` turns the texts
into the timeline's TimelineEntry. vLLM moved these registries between files over
its history; the paths below were found by listing every released wheel (0.1.4 .. 0.33.0).
"""

from __future__ import annotations

import ast
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping

from vllm_pin.matrix.timeline import TimelineEntry

PARSER_VERSION = 1
"""Version of what these parsers (and entry_from_files) extract from a release.

Bump it with every change to their output: refresh caches each wheel's parsed entry under
`<cache>/timeline/<sha256>-<PARSER_VERSION>.json`, and only a new version makes it re-parse.
"""

ENVS_PY = "vllm/envs.py"
"""The `environment_variables` registry; first shipped in 0.4.2."""

ENGINE_ARGS_PY = "vllm/engine/arg_utils.py"
"""The `EngineArgs` dataclass: the keyword arguments `LLM(...)` and `vllm serve` accept."""

BACKEND_PATHS: tuple[str, ...] = (
    "vllm/v1/attention/backends/registry.py",  # AttentionBackendEnum, 0.14 ..
    "vllm/attention/backends/registry.py",  # AttentionBackendEnum (+ alias), 0.11.1 .. 0.13
    "vllm/platforms/interface.py",  # _Backend, 0.6.5 .. 0.11.0
    "vllm/attention/selector.py",  # _Backend, 0.4.1 .. 0.6.4.post1
)
"""Where the attention backend enum lived, newest first; the first file that defines it wins."""

CUDAGRAPH_PATHS: tuple[str, ...] = ("vllm/config/compilation.py", "vllm/config.py")
"""Where `CUDAGraphMode` can live: the config package (0.10.1 ..) or the old single module."""

MEMBER_PATTERNS: frozenset[str] = frozenset(
    {ENVS_PY, ENGINE_ARGS_PY, *BACKEND_PATHS, *CUDAGRAPH_PATHS}
)
"""Every wheel member the parsers below read (exact ASCII paths inside the wheel)."""

_BACKEND_CLASSES = ("AttentionBackendEnum", "_Backend")
_CHOICE_HELPERS = frozenset({"env_with_choices", "env_list_with_choices", "env_set_with_choices"})


def wanted_member(name: str) -> bool:
    """Predicate for `PyPIClient.read_members`: is this wheel member one the parsers read?"""
    return name in MEMBER_PATTERNS


def _module(source: str) -> ast.Module:
    return ast.parse(source)


#: facts per file text: neighbouring releases often ship the same file (a refresh parses ~100
#: releases' files in version order; a quarter of the texts repeat), so each is parsed once
_memo = functools.lru_cache(maxsize=32)


def _class_statements(source: str, class_name: str) -> list[ast.ClassDef]:
    """The module-level `class NAME` statements, parsed alone when they can be.

    A class statement at module level starts a line, so a file without such a line is not
    parsed at all (`vllm/config.py` is ~100 kB and has no `CUDAGraphMode` before 0.10.1). With
    one such line, the text from it to the next line that starts a statement at column 0 is
    parsed alone: a cut inside a string, brackets or a continued line leaves text that does not
    parse, and the whole module is parsed instead. An enum in a 100 kB module then costs a
    fiftieth of a whole parse; a refresh parses ~300 such files.
    """
    starts = [
        m.start() for m in re.finditer(rf"^class[ \t\\\n]+{class_name}\b", source, re.MULTILINE)
    ]
    if len(starts) == 1:
        end = _NEXT_STATEMENT.search(source, source.find("\n", starts[0]) + 1)
        alone = _class_alone(source[starts[0] : end.start() if end else len(source)])
        if alone is not None:
            return [alone] if alone.name == class_name else []
    if not starts:
        return []
    body = _module(source).body
    return [node for node in body if isinstance(node, ast.ClassDef) and node.name == class_name]


def _class_alone(text: str) -> ast.ClassDef | None:
    """The class statement that is `text`, parsed up to its first method when it can be;
    None when the text does not parse alone.

    The callers read only the class's own assignments (enum members, dataclass fields), which
    come before its methods; `EngineArgs` is nine tenths methods. The text is cut at the first
    `def`, `@` or nested `class` at the body's indentation, when no line at that indentation
    after it looks like an assignment and the part before parses into a body at that
    indentation; otherwise the whole text is parsed.
    """
    first = _MEMBER_DEFINITION.search(text, text.find("\n") + 1)
    if first is not None:
        indent = first.group(1)
        later = re.compile(rf"^{re.escape(indent)}\(?[^\W\d]\w*\)?[ \t]*[:=]", re.MULTILINE)
        if later.search(text, first.start()) is None:
            head = _parsed(text[: first.start()])
            if head is not None and all(stmt.col_offset == len(indent) for stmt in head.body):
                return head
    return _parsed(text)


def _parsed(text: str) -> ast.ClassDef | None:
    """A class statement's text parsed; None when it is not one class statement alone."""
    try:
        body = ast.parse(text).body
    except SyntaxError:
        return None
    return body[0] if len(body) == 1 and isinstance(body[0], ast.ClassDef) else None


#: a line that starts a statement at column 0 (not a comment, a blank or a closing bracket)
_NEXT_STATEMENT = re.compile(r"^[^\s#)\]}]", re.MULTILINE)
#: an indented line that starts a method, a decorator or a nested class
_MEMBER_DEFINITION = re.compile(r"^([ \t]+)(?:@|(?:async[ \t]+)?def[ \t]|class[ \t])", re.MULTILINE)


#: what may separate the tokens of `environment_variables.update`: blanks, line continuations
#: and (inside brackets) comments
_GAP = r"(?:[ \t\f\r\n\\]|#[^\n]*)*"
_UPDATE_CALL = re.compile(rf"\benvironment_variables{_GAP}\.{_GAP}update\b")


def _registry_dicts(tree: ast.Module, source: str) -> Iterator[ast.Dict]:
    """Dict literals that populate `environment_variables`, in every shape vLLM used.

    `environment_variables: dict[...] = {...}` and the plain assignment, `{**other, ...}` where
    `other` is a module-level dict, `environment_variables.update({...})`. The tree is walked
    for the `.update` calls only when the text has one (walking costs more than parsing).
    """
    top_dicts: dict[str, ast.Dict] = {}
    for node in tree.body:
        target, value = _assignment(node)
        if target is not None and isinstance(value, ast.Dict):
            top_dicts[target] = value
    registry = top_dicts.get("environment_variables")
    if registry is not None:
        yield from _expand(registry, top_dicts)
    # identifiers are NFKC-normalised: a non-ASCII spelling of the names is still these names
    text = source if source.isascii() else unicodedata.normalize("NFKC", source)
    if _UPDATE_CALL.search(text) is None:
        return
    for call in ast.walk(tree):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "update"
            and _is_name(call.func.value, "environment_variables")
        ):
            for arg in call.args:
                if isinstance(arg, ast.Dict):
                    yield from _expand(arg, top_dicts)


def _expand(d: ast.Dict, top_dicts: Mapping[str, ast.Dict]) -> Iterator[ast.Dict]:
    yield d
    for key, value in zip(d.keys, d.values):
        if key is None and isinstance(value, ast.Name) and value.id in top_dicts:
            yield from _expand(top_dicts[value.id], top_dicts)


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name):
            return target.id, node.value
    return None, None


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _statements(tree: ast.Module) -> Iterator[ast.AST]:
    """Every statement at any depth (an assignment is a statement: it never sits inside an
    expression), without walking the expressions, which are most of the tree."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            stack.extend(getattr(node, name, ()))


def _subscript_keys(tree: ast.Module) -> Iterator[str]:
    """Keys added one at a time: `environment_variables["VLLM_X"] = ...`."""
    for node in _statements(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and _is_name(
                    target.value, "environment_variables"
                ):
                    key = _str(target.slice)
                    if key is not None:
                        yield key


def env_var_names(envs_py: str) -> frozenset[str]:
    """The variable names a vLLM release knows: the keys of `vllm.envs.environment_variables`.

    Returns an empty set for a file without the registry (releases before 0.4.2 have no
    envs.py at all; the caller records that the fact is unknown there, not "no variables").
    """
    return _envs_facts(envs_py)[0]


def env_var_choices(envs_py: str) -> dict[str, frozenset[str]]:
    """Values vLLM itself validates, from `env_with_choices(NAME, default, [choices...])`.

    Only literal choice lists are recorded; choices computed at run time are left out, since a
    lint must never reject a value the release would accept.
    """
    return dict(_envs_facts(envs_py)[1])


@_memo
def _envs_facts(
    envs_py: str,
) -> tuple[frozenset[str], tuple[tuple[str, frozenset[str]], ...]]:
    """(env_var_names, env_var_choices as items) from one parse of envs.py."""
    tree = _module(envs_py)
    dicts = list(_registry_dicts(tree, envs_py))
    names = {key for d in dicts for key in map(_str, d.keys) if key is not None}
    names.update(_subscript_keys(tree))
    return frozenset(names), tuple(_choices(dicts).items())


def _choices(dicts: Iterable[ast.Dict]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for d in dicts:
        for key_node, value in zip(d.keys, d.values):
            key = _str(key_node)
            if key is None or not isinstance(value, ast.Call):
                continue
            choices = _literal_choices(value)
            if choices is not None:
                out[key] = choices
    return out


def _literal_choices(call: ast.Call) -> frozenset[str] | None:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name not in _CHOICE_HELPERS:
        return None
    node: ast.expr | None = call.args[2] if len(call.args) > 2 else None
    for kw in call.keywords:
        if kw.arg == "choices":
            node = kw.value
    if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return None
    values = [_str(elt) for elt in node.elts]
    if any(v is None for v in values):
        return None
    return frozenset(v for v in values if v is not None)


@_memo
def _enum_members(source: str, class_name: str) -> frozenset[str] | None:
    """Member names of a module-level enum class, or None when the class has no members."""
    for node in _class_statements(source, class_name):
        members = {
            target.id
            for stmt in node.body
            if isinstance(stmt, (ast.Assign, ast.AnnAssign))
            for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
            if isinstance(target, ast.Name) and not target.id.startswith("_")
        }
        if members:
            return frozenset(members)
    return None


def _first_enum(
    files: Mapping[str, str], paths: Iterable[str], class_names: Iterable[str]
) -> tuple[frozenset[str], str]:
    for path in paths:
        source = files.get(path)
        if source is None:
            continue
        for class_name in class_names:
            members = _enum_members(source, class_name)
            if members is not None:
                return members, path
    return frozenset(), ""


def find_attention_backends(files: Mapping[str, str]) -> tuple[frozenset[str], str]:
    """Attention backend names and the file they came from ("" when none defines them)."""
    return _first_enum(files, BACKEND_PATHS, _BACKEND_CLASSES)


def find_cudagraph_modes(files: Mapping[str, str]) -> tuple[frozenset[str], str]:
    """`CUDAGraphMode` members and their file; empty before the enum existed (< 0.10.1)."""
    return _first_enum(files, CUDAGRAPH_PATHS, ("CUDAGraphMode",))


@_memo
def engine_arg_names(arg_utils_py: str) -> frozenset[str]:
    """Fields of the `EngineArgs` dataclass: the keyword arguments of `LLM(...)`."""
    for node in _class_statements(arg_utils_py, "EngineArgs"):
        return frozenset(
            stmt.target.id
            for stmt in node.body
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
        )
    return frozenset()


def entry_from_files(files: Mapping[str, str], wheel: str = "") -> TimelineEntry:
    """Build an entry from source texts keyed by their path inside the wheel/site-packages."""
    envs = files.get(ENVS_PY)
    arg_utils = files.get(ENGINE_ARGS_PY)
    backends, backend_src = find_attention_backends(files)
    modes, mode_src = find_cudagraph_modes(files)
    env_vars = env_var_names(envs) if envs is not None else frozenset()
    engine_args = engine_arg_names(arg_utils) if arg_utils is not None else frozenset()
    return TimelineEntry(
        env_vars=env_vars,
        env_var_choices=env_var_choices(envs) if envs is not None else {},
        attention_backends=backends,
        cudagraph_modes=modes,
        engine_args=engine_args,
        sources={
            "env-vars": ENVS_PY if env_vars else "",
            "attention-backends": backend_src,
            # CUDAGraphMode is looked for in every release; its absence is a fact, not a gap.
            "cudagraph-modes": mode_src,
            "engine-args": ENGINE_ARGS_PY if engine_args else "",
        },
        wheel=wheel,
    )
