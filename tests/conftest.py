"""Shared fixtures. `fake_index`: a real local HTTP server standing in for a package index."""

from __future__ import annotations

import base64
import functools
import io
import json
import re
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

INDEX_FIXTURES = Path(__file__).parent / "fixtures" / "index"


@dataclass
class Sparse:
    """A large file of which only the tail is stored; the bytes before it read as zeros."""

    size: int
    tail: bytes

    def read(self, start: int, end: int) -> bytes:
        cut = self.size - len(self.tail)
        head = b"\0" * max(0, min(end, cut) - start)
        return head + self.tail[max(start, cut) - cut : max(end, cut) - cut]


@dataclass
class Stream:
    """A body made as it is sent: ``size`` bytes of ``fill`` in ``chunk``-byte writes, each after
    ``delay`` seconds (a trickling server); ``length=False`` sends no Content-Length."""

    size: int
    fill: bytes = b"x"
    chunk: int = 1024 * 1024
    delay: float = 0.0
    length: bool = True

    def chunks(self) -> Iterator[bytes]:
        block = (self.fill * (self.chunk // len(self.fill) + 1))[: self.chunk]
        for start in range(0, self.size, self.chunk):
            if self.delay:
                time.sleep(self.delay)
            yield block[: min(self.chunk, self.size - start)]


@dataclass
class Route:
    body: bytes | Sparse | Stream
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    ranges: bool = True  # False: ignore Range headers, like some proxies
    redirect: str = ""  # answer 302 to this location instead


@dataclass
class FakeIndex:
    """Routes by path; `faults[path]` holds one-shot actions: an HTTP status or a delay (s)."""

    url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    faults: dict[str, list[int | float]] = field(default_factory=lambda: defaultdict(list))
    log: list[tuple[str, str]] = field(default_factory=list)
    #: the Authorization header of every request ("" for none)
    auth: list[str] = field(default_factory=list)
    #: the client's port of every request (one per connection)
    ports: list[int] = field(default_factory=list)
    #: HTTP/1.1 with kept-alive connections (the default: one request per connection), closed
    #: by the server after this many idle seconds
    keep_alive: float | None = None

    def requests_to(self, path: str) -> list[str]:
        """Range headers ("" for none) of the requests made to `path`."""
        return [rng for p, rng in self.log if p == path]

    def load_recorded(self, root: Path = INDEX_FIXTURES) -> FakeIndex:
        """Serve tests/fixtures/index: simple/*.json pages, files/*.metadata, files/*.tail."""
        sizes: dict[str, int] = {}
        for page in sorted((root / "simple").glob("*.json")):
            data = json.loads(page.read_bytes())
            sizes.update({f["filename"]: f["size"] for f in data["files"]})
            self.routes[f"/simple/{page.stem}/"] = Route(
                page.read_bytes(), "application/vnd.pypi.simple.v1+json"
            )
        for path in sorted((root / "files").iterdir()):
            if path.suffix == ".metadata":
                self.routes[f"/files/{path.name}"] = Route(path.read_bytes())
            elif path.suffix == ".tail":
                self.routes[f"/files/{path.stem}"] = Route(
                    Sparse(sizes[path.stem], path.read_bytes())
                )
        for path in sorted((root / "elf").glob("*.json")):
            if path.stem in sizes:  # the wheel's libraries, in a zip at the end of the file
                size = sizes[path.stem]
                self.routes[f"/files/{path.stem}"] = Route(Sparse(size, library_zip(path, size)))
        return self


def sparse_library(row: dict[str, Any]) -> bytes:
    """A library from its tests/fixtures/index/elf record: the recorded chunks, zeros between."""
    data = bytearray(row["length"])
    for start, chunk in row["chunks"]:
        raw = base64.b64decode(chunk)
        data[start : start + len(raw)] = raw
    return bytes(data)


class _ZipAt(io.BytesIO):
    """A BytesIO whose positions read `base` bytes further on, so a zip written into it has
    the offsets of one that ends a file of `base + len(zip)` bytes."""

    def __init__(self, base: int) -> None:
        super().__init__()
        self.base = base

    def tell(self) -> int:
        return super().tell() + self.base

    def seek(self, pos: int, whence: int = 0) -> int:
        return super().seek(pos - self.base if whence == 0 else pos, whence) + self.base


@functools.cache
def library_zip(path: Path, size: int) -> bytes:
    """The last bytes of a `size`-byte wheel: a zip of the libraries recorded at `path`."""
    record = json.loads(path.read_bytes())
    length = 0
    for _ in range(2):  # the zip's length decides where it starts
        buf = _ZipAt(size - length)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, row in sorted(record["libraries"].items()):
                zf.writestr(name, sparse_library(row))
        length = len(buf.getvalue())
    return buf.getvalue()


def _handler(index: FakeIndex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        @property  # type: ignore[override]
        def protocol_version(self) -> str:
            return "HTTP/1.1" if index.keep_alive is not None else "HTTP/1.0"

        @property  # type: ignore[override]
        def timeout(self) -> float | None:
            return index.keep_alive

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            index.log.append((self.path, self.headers.get("Range", "")))
            index.auth.append(self.headers.get("Authorization", ""))
            index.ports.append(self.client_address[1])
            faults = index.faults.get(self.path)
            action = faults.pop(0) if faults else None
            if isinstance(action, float):
                time.sleep(action)
            elif action is not None:
                self.send_error(action)
                return
            route = index.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.redirect:
                self.send_response(302)
                self.send_header("Location", route.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if isinstance(route.body, Stream):
                self._stream(route.body, route.content_type)
                return
            etag = route.headers.get("ETag")
            if etag and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            size = route.body.size if isinstance(route.body, Sparse) else len(route.body)
            status, start, end = 200, 0, size
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
            if m and route.ranges:
                status = 206
                if m[1]:
                    start, end = int(m[1]), min(size, int(m[2]) + 1 if m[2] else size)
                else:
                    start = max(0, size - int(m[2]))
            if isinstance(route.body, Sparse):
                body = route.body.read(start, end)
            else:
                body = route.body[start:end]
            self.send_response(status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            for key, value in route.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, body: Stream, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if body.length:
                self.send_header("Content-Length", str(body.size))
            else:
                self.close_connection = True
            self.end_headers()
            try:
                for chunk in body.chunks():
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:
                pass  # the client refused the body and hung up: that is the point

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out and hung up is part of the test, not an error


@pytest.fixture
def fake_index() -> Iterator[FakeIndex]:
    """An empty fake index on 127.0.0.1; call `.load_recorded()` for the recorded pages."""
    index = FakeIndex()
    server = _Server(("127.0.0.1", 0), _handler(index))
    index.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True, scope="session")
def _matrix_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The matrix loader's parse cache lives in a temporary dir, never the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("VLLM_PIN_MATRIX_CACHE", str(tmp_path_factory.mktemp("matrix-cache")))
    yield
    patch.undo()
