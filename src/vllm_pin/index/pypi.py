"""The one client through which vllm-pin reads the package index.

Everything that touches the network for data goes through `PyPIClient`, so tests can point it at
a local fake index and a mirror or private proxy can be used with `--index-url`. It reads the
PEP 691 JSON simple index (conditional GET, cached on disk), core metadata through PEP 658
(`<wheel-url>.metadata`) with a fallback to HTTP range reads of the wheel's zip, and single
zip members. Anything read from a released file is cached by the file's sha256, because a
released file never changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from packaging.utils import canonicalize_name

from vllm_pin.errors import PackageIndexError
from vllm_pin.index import zipread

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0
METADATA_SOURCES = ("pep658", "range")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class IndexFile:
    """One file of a project as the simple index lists it."""

    filename: str
    url: str
    sha256: str
    size: int
    upload_time: str
    yanked: bool
    yanked_reason: str
    requires_python: str
    core_metadata: bool | None = None  # None: the index does not say whether .metadata exists
    metadata_sha256: str = ""  # hash of the PEP 658 file, when the index gives one


def default_cache_dir() -> Path:
    """~/.cache/vllm-pin, honouring XDG_CACHE_HOME."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vllm-pin"


def write_cache_file(path: Path, data: bytes) -> None:
    """Write a cache file so that concurrent readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parse_file(raw: dict[str, Any], base_url: str) -> IndexFile:
    yanked = raw.get("yanked", False)
    meta = raw.get("core-metadata", raw.get("data-dist-info-metadata"))
    hashes = raw.get("hashes") or {}
    return IndexFile(
        filename=str(raw["filename"]),
        url=requests.compat.urljoin(base_url, str(raw["url"])),
        sha256=str(hashes.get("sha256", "")),
        size=int(raw.get("size") or 0),
        upload_time=str(raw.get("upload-time") or ""),
        yanked=bool(yanked),
        yanked_reason=yanked if isinstance(yanked, str) else "",
        requires_python=str(raw.get("requires-python") or ""),
        core_metadata=None if meta is None else bool(meta),
        metadata_sha256=str(meta.get("sha256", "")) if isinstance(meta, dict) else "",
    )


class PyPIClient:
    """Reads a PEP 691 simple index with retries, a disk cache and a bounded thread pool."""

    def __init__(
        self,
        index_url: str = DEFAULT_INDEX_URL,
        cache_dir: Path | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_workers: int = 16,
        session: requests.Session | None = None,
    ) -> None:
        self.index_url = index_url if index_url.endswith("/") else index_url + "/"
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_workers = max_workers
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=max_workers)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        self._lock = threading.Lock()
        self.bytes_fetched = 0
        self.requests_made = 0

    # -- HTTP -----------------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str] | None = None) -> requests.Response:
        """GET with timeout and exponential backoff; returns any non-retryable response."""
        why = ""
        delay = 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(delay)
            delay = self.backoff * (2**attempt)
            try:
                resp = self.session.get(url, headers=headers, timeout=self.timeout, stream=True)
                if headers and "Range" in headers and resp.status_code == 200:
                    resp.close()  # the whole file is coming: never read a 400 MiB wheel
                    raise PackageIndexError(
                        f"cannot range-read {url}: the server ignores HTTP range requests; "
                        "use an --index-url that supports them (or serves PEP 658 metadata)"
                    )
                body = _read_body(resp)
            except (
                requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidURL,
            ) as exc:
                raise PackageIndexError(
                    f"bad URL {url!r} ({exc}); pass an --index-url like {DEFAULT_INDEX_URL}"
                ) from None
            except requests.exceptions.RequestException as exc:
                why = f"{type(exc).__name__}: {exc}".splitlines()[0]
                continue
            with self._lock:
                self.bytes_fetched += len(body)
                self.requests_made += 1
            if resp.status_code in RETRY_STATUSES:
                why = f"HTTP {resp.status_code}"
                retry_after = resp.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
                continue
            return resp
        raise PackageIndexError(
            f"cannot reach {url}: {why} (after {self.retries + 1} attempts); "
            "check the network or pass --index-url"
        )

    def _fetch_range(self, f: IndexFile, start: int, end: int) -> bytes:
        """Bytes [start, end) of a file, refusing servers that would send the whole file."""
        end = min(end, f.size) if f.size else end
        resp = self._get(f.url, {"Range": f"bytes={start}-{end - 1}"})
        if resp.status_code == 416:
            return b""
        if resp.status_code != 206:
            raise PackageIndexError(f"cannot range-read {f.url}: HTTP {resp.status_code}")
        content_range = resp.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {start}-"):
            raise PackageIndexError(
                f"cannot range-read {f.url}: asked for bytes {start}-{end - 1}, "
                f"got {content_range or 'no Content-Range'}"
            )
        return resp.content

    # -- index ----------------------------------------------------------------------------

    def project(self, name: str) -> list[IndexFile]:
        """All files of a project (PEP 691 JSON), revalidated with a conditional GET."""
        norm = canonicalize_name(name)
        url = f"{self.index_url}{norm}/"
        cache = self.cache_dir / "simple" / f"{hashlib.sha256(url.encode()).hexdigest()}.json"
        cached: dict[str, str] = {}
        if cache.is_file():
            try:
                cached = json.loads(cache.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                cached = {}
        headers = {"Accept": JSON_ACCEPT}
        if cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        if cached.get("last-modified"):
            headers["If-Modified-Since"] = cached["last-modified"]
        resp = self._get(url, headers)
        if resp.status_code == 304 and "body" in cached:
            body = cached["body"]
        elif resp.status_code == 404:
            raise PackageIndexError(f"no project {norm!r} on {self.index_url}; check --index-url")
        elif resp.status_code != 200:
            raise PackageIndexError(f"cannot read {url}: HTTP {resp.status_code}")
        else:
            ctype = resp.headers.get("Content-Type", "")
            if "json" not in ctype:
                raise PackageIndexError(
                    f"{url} answered {ctype or 'no content type'}, not PEP 691 JSON; "
                    "pass an --index-url that serves the JSON simple API"
                )
            body = resp.content.decode("utf-8")
            if resp.headers.get("ETag") or resp.headers.get("Last-Modified"):
                record = {
                    "etag": resp.headers.get("ETag", ""),
                    "last-modified": resp.headers.get("Last-Modified", ""),
                    "body": body,
                }
                write_cache_file(cache, json.dumps(record).encode())
        try:
            data = json.loads(body)
            return [_parse_file(raw, url) for raw in data["files"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise PackageIndexError(f"{url}: malformed PEP 691 JSON: {exc}") from exc

    # -- files ----------------------------------------------------------------------------

    def _file_cache(self, f: IndexFile) -> Path | None:
        return self.cache_dir / "files" / f.sha256 if f.sha256 else None

    def core_metadata(self, f: IndexFile) -> tuple[bytes, str]:
        """The wheel's METADATA and where it came from: "pep658" or "range"."""
        cache = self._file_cache(f)
        if cache is not None:
            for source in METADATA_SOURCES:
                path = cache / f"METADATA.{source}"
                if path.is_file():
                    return path.read_bytes(), source
        data, source = self._fetch_core_metadata(f)
        if cache is not None:
            write_cache_file(cache / f"METADATA.{source}", data)
        return data, source

    def _fetch_core_metadata(self, f: IndexFile) -> tuple[bytes, str]:
        if f.core_metadata is not False:
            resp = self._get(f.url + ".metadata")
            if resp.status_code == 200:
                data = resp.content
                if f.metadata_sha256 and hashlib.sha256(data).hexdigest() != f.metadata_sha256:
                    raise PackageIndexError(
                        f"{f.url}.metadata does not match the sha256 the index gives for it"
                    )
                return data, "pep658"
            if resp.status_code != 404:
                raise PackageIndexError(f"cannot read {f.url}.metadata: HTTP {resp.status_code}")
        members = self.read_members(f, _is_dist_info_metadata)
        if len(members) != 1:
            raise PackageIndexError(
                f"{f.filename}: expected one *.dist-info/METADATA, found {len(members)}"
            )
        return next(iter(members.values())), "range"

    def read_members(self, f: IndexFile, want: Callable[[str], bool]) -> dict[str, bytes]:
        """Members of a wheel whose path matches `want`, read through range requests."""
        entries = [e for e in self._central_directory(f) if want(e.name)]
        cache = self._file_cache(f)
        out: dict[str, bytes] = {}
        missing: list[zipread.ZipEntry] = []
        for entry in entries:
            path = cache / "members" / _member_key(entry.name) if cache else None
            if path is not None and path.is_file():
                out[entry.name] = path.read_bytes()
            else:
                missing.append(entry)
        fetched = zipread.read_members(missing, self._fetcher(f), f.filename)
        for name, data in fetched.items():
            if cache is not None:
                write_cache_file(cache / "members" / _member_key(name), data)
        out.update(fetched)
        return dict(sorted(out.items()))

    def entries(self, f: IndexFile, want: Callable[[str], bool]) -> list[zipread.ZipEntry]:
        """The central directory entries of a wheel whose path matches `want` (cached)."""
        return [e for e in self._central_directory(f) if want(e.name)]

    def member_prefixes(self, f: IndexFile, entry: zipread.ZipEntry, limit: int) -> Iterator[bytes]:
        """Ever longer inflated starts of one member, at most `limit` bytes (see zipread)."""
        return zipread.iter_member_prefix(entry, self._fetcher(f), f.filename, limit=limit)

    def _central_directory(self, f: IndexFile) -> list[zipread.ZipEntry]:
        cache = self._file_cache(f)
        path = cache / "central-directory.json" if cache else None
        if path is not None and path.is_file():
            return [zipread.ZipEntry(*row) for row in json.loads(path.read_bytes())]
        entries = zipread.read_central_directory(f.size, self._fetcher(f), f.filename)
        if path is not None:
            rows = [
                [e.name, e.header_offset, e.compressed_size, e.uncompressed_size, e.method, e.crc]
                for e in entries
            ]
            write_cache_file(path, json.dumps(rows).encode())
        return entries

    def _fetcher(self, f: IndexFile) -> zipread.RangeFetcher:
        def fetch(start: int, end: int) -> bytes:
            return self._fetch_range(f, start, end)

        return fetch

    # -- concurrency ----------------------------------------------------------------------

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Apply fn to every item on a bounded thread pool; results keep the input order."""
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            return list(pool.map(fn, items))


def _read_body(resp: requests.Response) -> bytes:
    """Read the whole body now, so read timeouts surface inside the retry loop."""
    try:
        return resp.content
    finally:
        resp.close()


def _member_key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _is_dist_info_metadata(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA"
