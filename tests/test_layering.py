"""The package's architecture, checked from its imports: layers, no cycles, argparse at the edge.

Read statically with ``ast`` (what each module imports, and where), then every module is
imported in a fresh interpreter so that an order-dependent import fails here, not for a user.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "vllm_pin"

#: subpackage -> subpackages it must never import (directly)
FORBIDDEN = {
    "matrix": {"index", "refresh", "pin", "verify", "doctor", "provision", "gpu", "commands"},
    "index": {"refresh", "pin", "verify", "doctor", "provision", "gpu", "commands"},
    "refresh": {"pin", "verify", "doctor", "provision", "gpu", "commands"},
    "pin": {"verify", "doctor", "provision", "gpu", "commands", "refresh"},
    "verify": {"doctor", "provision", "gpu", "commands", "refresh", "pin"},
    "doctor": {"provision", "gpu", "commands", "refresh", "pin"},
    "provision": {"gpu", "commands", "refresh"},
    "gpu": {"commands", "refresh", "pin", "provision"},
    "fit": {"commands", "refresh", "verify", "doctor", "provision", "gpu", "site"},
    "site": {"commands", "refresh", "provision", "gpu"},
}
#: the only places a function may import project code, and why
LAZY_IMPORTS_ALLOWED = {
    "vllm_pin.cli": "a command's module loads only when that command runs",
    "vllm_pin.pin.generate": "locks, pyproject edits and --all load when asked for",
    "vllm_pin.matrix.core": "build tables and known issues load when first read (not by pin)",
}
MAX_LAZY_IMPORTS = 10


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> list[tuple[str, bool, bool]]:
    """(imported module, inside a function, under TYPE_CHECKING) for each project import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool, bool]] = []

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            func = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            typed = type_only or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module == "vllm_pin":
                    for alias in child.names:
                        name = f"vllm_pin.{alias.name}"
                        found.append((name if name in MODULES else "vllm_pin", func, typed))
                elif child.module.startswith("vllm_pin."):
                    found.append((child.module, func, typed))
            elif isinstance(child, ast.Import):
                found.extend(
                    (a.name, func, typed) for a in child.names if a.name.startswith("vllm_pin")
                )
            visit(child, func, typed)

    visit(tree, False, False)
    return found


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and module in _PACKAGES) else ""


_PACKAGES = {m for m, p in MODULES.items() if p.name == "__init__.py" and m != "vllm_pin"}


def test_top_level_is_small_and_subpackages_exist() -> None:
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= 10, sorted(p.name for p in top)
    assert len(_PACKAGES) >= 6


@pytest.mark.parametrize("package", sorted(_PACKAGES))
def test_subpackage_says_what_it_owns(package: str) -> None:
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{package}/__init__.py needs a docstring saying what it owns"
    names = [
        n for n in tree.body if isinstance(n, ast.Assign) and "__all__" in ast.unparse(n.targets[0])
    ]
    assert names, f"{package}/__init__.py must declare __all__"


def test_no_import_cycle() -> None:
    """Module-level imports form a DAG (imports under TYPE_CHECKING or in functions excluded)."""
    graph = {
        m: {
            t
            for t, func, typed in _imports(p)
            if not func and not typed and t in MODULES and t != m
        }
        for m, p in MODULES.items()
    }
    state: dict[str, int] = {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])


def test_function_level_imports_only_where_start_up_needs_them() -> None:
    lazy = [(m, t) for m, p in MODULES.items() for t, func, _ in _imports(p) if func]
    assert all(m in LAZY_IMPORTS_ALLOWED for m, _ in lazy), lazy
    assert len(lazy) <= MAX_LAZY_IMPORTS, lazy


def test_a_deferred_import_says_so() -> None:
    """Outside cli (which loads commands by name), each one carries a `# deferred:` reason."""
    for module in LAZY_IMPORTS_ALLOWED.keys() - {"vllm_pin.cli"}:
        lines = MODULES[module].read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        found = [
            node.lineno
            for func in ast.walk(tree)
            if isinstance(func, ast.FunctionDef)
            for node in ast.walk(func)
            if isinstance(node, (ast.Import, ast.ImportFrom))
        ]
        assert found, f"{module} defers nothing: drop it from LAZY_IMPORTS_ALLOWED"
        # consecutive deferred imports share the first one's comment
        unexplained = [n for n in found if "# deferred:" not in lines[n - 1] and n - 1 not in found]
        assert not unexplained, f"{module} lines {unexplained}: say why with `# deferred:`"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_only_import_downward(package: str) -> None:
    bad = []
    for module, path in MODULES.items():
        if _subpackage(module) != package:
            continue
        for target, _, _ in _imports(path):
            if _subpackage(target) in FORBIDDEN[package]:
                bad.append(f"{module} imports {target}")
    assert not bad, bad


def test_in_env_scripts_import_nothing_of_the_project() -> None:
    """They run inside another interpreter, where vllm-pin need not be installed."""
    bad = [
        f"{m} imports {t}"
        for m, p in MODULES.items()
        if _subpackage(m) == "in_env"
        for t, _, _ in _imports(p)
        if _subpackage(t) != "in_env"
    ]
    assert not bad, bad


def test_argparse_only_in_the_command_layer() -> None:
    allowed = {"commands", "in_env"}
    bad = []
    for module, path in MODULES.items():
        if _subpackage(module) in allowed or module in ("vllm_pin.cli",):
            continue
        text = path.read_text(encoding="utf-8")
        if "import argparse" in text or "Namespace" in text:
            bad.append(module)
    assert not bad, f"argparse or a Namespace outside commands/: {bad}"


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    names = [m for m in MODULES if m != "vllm_pin.__main__"]
    result = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
