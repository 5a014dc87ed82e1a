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
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from packaging.utils import canonicalize_name
from requests.utils import DEFAULT_CA_BUNDLE_PATH, select_proxy

from vllm_pin.errors import PackageIndexError
from vllm_pin.fsutil import default_cache_dir, write_cache_file
from vllm_pin.index import direct, zipread
from vllm_pin.index.settings import redact, redact_text, split_credentials

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
DEFAULT_TIMEOUT = 30.0  # seconds one request may take in all
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0
MAX_REDIRECTS = 30  # as requests
METADATA_SOURCES = ("pep658", "range")
SHA256 = re.compile(r"[0-9a-f]{64}")
#: the most a response body may hold: a project page lists thousands of files (a few MiB);
#: a METADATA is KiB; a range read is what was asked for
MAX_PAGE_BYTES = 64 * 1024 * 1024
MAX_METADATA_BYTES = zipread.MAX_MEMBER_BYTES
_CHUNK = 64 * 1024
#: requests in flight: a cold refresh makes ~1400 small requests, so latency, not bandwidth,
#: bounds it (~1400 x 0.14 s / 64 = 3 s); each worker keeps its keep-alive connection pooled
DEFAULT_WORKERS = 64
#: what `PyPIClient.stats` counts requests under (benchmarks/refresh.py prints the breakdown)
REQUEST_KINDS = ("index", "metadata", "zip-tail", "members", "elf")

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs
    from requests.sessions import _Cert, _Settings, _TextMapping, _Verify

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class RequestStats:
    """Requests of one kind: how many, the bytes received, and the seconds spent in them
    (summed over threads, so several in flight add up)."""

    requests: int = 0
    bytes: int = 0
    seconds: float = 0.0


class Response(Protocol):
    """A response being read: urllib3's, or `direct`'s with the same parts."""

    status: int

    @property
    def headers(self) -> Any: ...  # case-insensitive: urllib3's HTTPHeaderDict, HTTPMessage

    def read1(self, amount: int, decode_content: bool = ...) -> bytes: ...

    def get_redirect_location(self) -> str | Literal[False] | None: ...

    def drain_conn(self) -> None: ...

    def release_conn(self) -> None: ...


@dataclass(frozen=True)
class Reply:
    """What `PyPIClient._get` keeps of a response besides its body."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive


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

    def __post_init__(self) -> None:
        # the sha256 names cache paths: only 64 lowercase hex digits can never leave the cache
        for what, value in (("sha256", self.sha256), ("metadata sha256", self.metadata_sha256)):
            if value and not SHA256.fullmatch(value):
                raise PackageIndexError(
                    f"{self.filename}: the index gives {what} {value[:80]!r}, not 64 hex "
                    "digits; refusing the file (a broken or hostile index)"
                )


def _parse_file(raw: Any, base_url: str) -> IndexFile:
    if not isinstance(raw, dict):
        raise TypeError(f"a file entry is a {type(raw).__name__}, not an object")
    yanked = raw.get("yanked", False)
    meta = raw.get("core-metadata", raw.get("data-dist-info-metadata"))
    hashes = raw.get("hashes") or {}
    if not isinstance(hashes, dict):
        raise TypeError(
            f"{raw.get('filename')!r}: hashes is a {type(hashes).__name__}, not a table"
        )
    url = requests.compat.urljoin(base_url, str(raw["url"]))
    if split_credentials(url)[1] is not None:
        raise ValueError(f"{raw.get('filename')!r}: the file URL carries credentials")
    return IndexFile(
        filename=str(raw["filename"]),
        url=url,
        sha256=str(hashes.get("sha256", "")),
        size=int(raw.get("size") or 0),
        upload_time=str(raw.get("upload-time") or ""),
        yanked=bool(yanked),
        yanked_reason=yanked if isinstance(yanked, str) else "",
        requires_python=str(raw.get("requires-python") or ""),
        core_metadata=None if meta is None else bool(meta),
        metadata_sha256=str(meta.get("sha256", "")) if isinstance(meta, dict) else "",
    )


class _Session(requests.Session):
    """A requests Session that reads the proxy and CA settings from the environment once per
    origin and arguments: requests reads them again for every request (walking os.environ
    twice), a quarter of a request's CPU; a cold refresh makes ~2700 requests."""

    def __init__(self) -> None:
        super().__init__()
        self._settings: dict[tuple[Any, ...], _Settings] = {}
        self._settings_lock = threading.Lock()

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: _TextMapping | None,
        stream: bool | None,
        verify: _Verify | None,
        cert: _Cert | None,
    ) -> _Settings:
        text = url.decode() if isinstance(url, bytes) else url or ""
        key = (_origin(text), tuple(sorted((proxies or {}).items())), stream, verify, cert)
        with self._settings_lock:
            settings = self._settings.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            with self._settings_lock:
                self._settings[key] = settings
        # a copy: requests may change what it is given
        return {**settings, "proxies": dict(settings["proxies"])}


class _Resolver:
    """Each host name resolved once per process (for `_RESOLVE_TTL` seconds), whatever the
    number of connections: a cold refresh opens ~100 at once, and a burst of lookups is what
    resolvers drop (seen here: 64 at once, each one a 5 s timeout in four)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._host_locks: dict[tuple[str, int], threading.Lock] = {}

    def addresses(self, host: str, port: int) -> list[str]:
        """The host's addresses in getaddrinfo's order; socket.gaierror when it has none."""
        key = (host, port)
        with self._lock:
            host_lock = self._host_locks.setdefault(key, threading.Lock())
        with host_lock:  # one lookup per host at a time; the others wait for its answer
            hit = self._hosts.get(key)
            if hit is not None and time.monotonic() - hit[0] < _RESOLVE_TTL:
                return hit[1]
            family = urllib3.util.connection.allowed_gai_family()
            found = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
            self._hosts[key] = (time.monotonic(), addresses)
            return addresses


_RESOLVE_TTL = 300.0
_RESOLVER = _Resolver()


class _ResolvedOnce(urllib3.connection.HTTPConnection):
    """A connection that takes the host's addresses from `_RESOLVER` and connects to each in
    turn, as urllib3 does with a fresh lookup (TLS still checks the host name)."""

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        if _is_ip(host.strip("[]")):
            return super()._new_conn()
        try:
            addresses = _RESOLVER.addresses(host, self.port)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        error: Exception | None = None
        try:
            for address in addresses:
                self._dns_host = address
                try:
                    return super()._new_conn()
                except (
                    urllib3.exceptions.NewConnectionError,
                    urllib3.exceptions.TimeoutError,
                ) as exc:
                    error = exc
        finally:
            self._dns_host = host
        raise error or urllib3.exceptions.NewConnectionError(self, f"{host} has no address")


class _HTTPSResolvedOnce(_ResolvedOnce, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _ResolvedOnce


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSResolvedOnce


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Adapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter whose verifying connections use the process's one SSL context per CA
    bundle (`_verify_context`), which loaded it once: requests has each new connection load
    the bundle again (~20 ms of CPU; a cold refresh opens ~100). The certificates trusted are
    the same: the bundle alone (the default one, or REQUESTS_CA_BUNDLE's)."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[_HostParams, _PoolKwargs]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if verify and host["scheme"] == "https":
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
            pool["ssl_context"] = _verify_context(verify)
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if conn.conn_kw.get("ssl_context") is not None:  # only ours set one
            conn.ca_certs = conn.ca_cert_dir = None  # its context holds the bundle already


def _verify_context(verify: bool | str) -> ssl.SSLContext:
    """The context that checks certificates as `verify` says (requests' meaning: True is its
    default bundle, a path another bundle, False no checks), one per process (`direct`)."""
    bundle = None if verify is False else DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    return direct.tls_context(bundle)


class PyPIClient:
    """Reads a PEP 691 simple index with retries, a disk cache and a bounded thread pool."""

    def __init__(
        self,
        index_url: str = DEFAULT_INDEX_URL,
        cache_dir: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 4,
        backoff: float = 0.5,
        max_workers: int = DEFAULT_WORKERS,
        session: requests.Session | None = None,
    ) -> None:
        clean, self._auth = split_credentials(index_url)
        #: the index URL without credentials: safe to print and to write into files
        self.index_url = clean if clean.endswith("/") else clean + "/"
        self._auth_origin = _origin(clean)
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_workers = max_workers
        #: what a worker process needs to build the same client (`settings`); None when the
        #: session was given (a test's stand-in cannot cross a process boundary)
        self._settings: dict[str, Any] | None = None
        #: bare kept-alive connections (`direct`) for requests that need no proxy and no
        #: client certificate; only with the client's own session (a given one is used as is)
        self._direct: direct.Connections | None = None
        if session is None:
            self._direct = direct.Connections(timeout, _RESOLVER.addresses)
            self._settings = {
                "index_url": index_url,
                "cache_dir": str(self.cache_dir),
                "timeout": timeout,
                "retries": retries,
                "backoff": backoff,
                "max_workers": max_workers,
            }
            session = _Session()
            adapter = _Adapter(pool_maxsize=max_workers)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        self._lock = threading.Lock()
        self.bytes_fetched = 0
        self.requests_made = 0
        self.stats = {kind: RequestStats() for kind in REQUEST_KINDS}
        #: the tail each wheel's zip was read through (sha256 -> (offset, bytes)), so members
        #: that lie in it (often the METADATA) cost no second request
        self._tails: dict[str, tuple[int, bytes]] = {}
        #: project -> sha256 of the index page last read for it: what a refresh read, so a
        #: later one can tell whether anything it depends on changed (refresh.memo)
        self.page_digests: dict[str, str] = {}
        #: project -> its files as first read: one refresh reads each page once, whoever asks
        #: (refresh.memo reads them before collect does)
        self._pages: dict[str, list[IndexFile]] = {}
        self._cancelled = False
        #: files whose `.metadata` the index answered 404 (what PEP 658 does not serve)
        self._unserved: set[str] = set()
        #: origin -> the ~/.netrc credentials for it (requests reads the file for each request)
        self._netrc_auth: dict[tuple[str, str], tuple[str, str] | None] = {}
        #: (sha256, want, hint) -> the entries `entries` found: refresh's ELF scan lists a
        #: wheel's libraries twice (once to fetch the directory early, once to scan)
        self._listings: dict[
            tuple[str, Callable[[str], bool], str | frozenset[str]], list[zipread.ZipEntry]
        ] = {}

    def cancel(self) -> None:
        """Send nothing more: every later request fails at once (what is in flight ends as
        it would). For work in the background that nobody waits for any longer."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        """Whether `cancel` was called."""
        return self._cancelled

    def settings(self) -> dict[str, Any] | None:
        """The arguments that build this client again (JSON; they hold the index URL's
        credentials, so they go to a worker process through a pipe, never argv or the
        environment); None when it was given its own session."""
        return dict(self._settings) if self._settings is not None else None

    def counts(self) -> dict[str, Any]:
        """`requests_made`, `bytes_fetched` and `stats` as JSON (a worker's, for `add_counts`)."""
        with self._lock:
            return {
                "requests": self.requests_made,
                "bytes": self.bytes_fetched,
                "stats": {kind: asdict(st) for kind, st in self.stats.items()},
            }

    def add_counts(self, counts: dict[str, Any]) -> None:
        """Count what another client (a worker process's) fetched as fetched by this one."""
        with self._lock:
            self.requests_made += int(counts["requests"])
            self.bytes_fetched += int(counts["bytes"])
            for kind, row in counts["stats"].items():
                st = self.stats[kind]
                st.requests += int(row["requests"])
                st.bytes += int(row["bytes"])
                st.seconds += float(row["seconds"])

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> PyPIClient:
        """The client that `settings` describes."""
        return cls(**{**settings, "cache_dir": Path(settings["cache_dir"])})

    # -- HTTP -----------------------------------------------------------------------------

    def _get(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        max_bytes: int = MAX_PAGE_BYTES,
        kind: str = "index",
    ) -> tuple[Reply, bytes]:
        """GET with a total deadline per attempt and exponential backoff; the response and its
        body (at most ``max_bytes``) for any non-retryable status.

        ``kind`` (one of REQUEST_KINDS) is what `stats` counts the request under."""
        why = ""
        delay = 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(delay)
            if self._cancelled:
                raise PackageIndexError(f"cannot read {url}: the work was cancelled")
            delay = self.backoff * (2**attempt)
            deadline = time.monotonic() + self.timeout
            started = time.perf_counter()
            try:
                resp = self._open(url, {"Accept-Encoding": "identity", **(headers or {})})
                if headers and "Range" in headers and resp.status == 200:
                    resp.release_conn()  # the whole file is coming: never read a 400 MiB wheel
                    raise PackageIndexError(
                        f"cannot range-read {url}: the server ignores HTTP range requests; "
                        "use an --index-url that supports them (or serves PEP 658 metadata)"
                    )
                body = _read_body(resp, url, max_bytes, deadline, self.timeout)
            except (
                requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidURL,
                urllib3.exceptions.LocationValueError,
            ) as exc:
                raise PackageIndexError(
                    f"bad URL {redact(url)!r} ({redact_text(str(exc))}); "
                    f"pass an --index-url like {DEFAULT_INDEX_URL}"
                ) from None
            except (OSError, urllib3.exceptions.HTTPError, requests.RequestException) as exc:
                why = redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0])
                continue
            with self._lock:
                self.bytes_fetched += len(body)
                self.requests_made += 1
                stats = self.stats[kind]
                stats.requests += 1
                stats.bytes += len(body)
                stats.seconds += time.perf_counter() - started
            if resp.status in RETRY_STATUSES:
                why = f"HTTP {resp.status}"
                retry_after = resp.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
                continue
            return Reply(resp.status, resp.headers), body
        raise PackageIndexError(
            f"cannot reach {url}: {why} (after {self.retries + 1} attempts); "
            "check the network or pass --index-url"
        )

    def _open(self, url: str, headers: dict[str, str]) -> Response:
        """Send a GET through the session's adapter, as `Session.get` would, without the work
        requests does around each request (cookies, hooks, response objects): that cost more
        CPU than the request itself (a cold refresh makes ~2700). The proxies, certificates
        and netrc credentials come from the environment as requests reads them (once per
        origin, `_Session`). Redirects are followed, with credentials sent only to the index's
        own origin."""
        for _ in range(MAX_REDIRECTS + 1):
            prepared = requests.PreparedRequest()
            prepared.prepare_url(url, None)  # requests' own checks and quoting
            url = prepared.url or url
            adapter = self.session.get_adapter(url)
            if not isinstance(adapter, requests.adapters.HTTPAdapter):
                raise TypeError(f"{type(adapter).__name__} is not an HTTPAdapter")
            settings = self.session.merge_environment_settings(url, {}, True, None, None)
            proxies, verify, cert = settings["proxies"], settings["verify"], settings["cert"]
            sent = {k: str(v) for k, v in self.session.headers.items()} | headers
            # credentials go only to the index's own origin, never to a file host elsewhere
            auth = self._auth if _origin(url) == self._auth_origin else None
            if auth is None and self.session.trust_env:
                auth = self._netrc(url)
            if auth is not None:
                sent["Authorization"] = requests.auth._basic_auth_str(*auth)
            resp: Response
            if self._direct is not None and cert is None and not select_proxy(url, proxies):
                https = url.startswith("https:")
                context = _verify_context(True if verify is None else verify) if https else None
                resp = self._direct.get(url, sent, context)
            else:
                pool = adapter.get_connection_with_tls_context(prepared, verify, proxies, cert)
                adapter.cert_verify(pool, url, verify, cert)  # type: ignore[no-untyped-call]
                assert isinstance(pool, urllib3.HTTPConnectionPool)
                resp = pool.urlopen(
                    "GET",
                    adapter.request_url(prepared, proxies),
                    headers=sent,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    decode_content=False,
                    retries=False,
                    timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
                )
            location = resp.get_redirect_location()
            if not location:
                return resp
            resp.drain_conn()
            resp.release_conn()
            url = requests.compat.urljoin(url, location)
        raise requests.exceptions.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def _netrc(self, url: str) -> tuple[str, str] | None:
        """The ~/.netrc credentials for the URL's host, read once per origin."""
        key = _origin(url)
        with self._lock:
            if key in self._netrc_auth:
                return self._netrc_auth[key]
        auth = requests.utils.get_netrc_auth(url)
        with self._lock:
            self._netrc_auth[key] = auth
        return auth

    def _fetch_range(self, f: IndexFile, start: int, end: int, kind: str) -> bytes:
        """Bytes [start, end) of a file, refusing servers that would send the whole file."""
        end = min(end, f.size) if f.size else end
        with self._lock:
            tail = self._tails.get(f.sha256) if f.sha256 else None
        if tail is not None and tail[0] <= start and end <= tail[0] + len(tail[1]):
            return tail[1][start - tail[0] : end - tail[0]]
        resp, body = self._get(
            f.url, {"Range": f"bytes={start}-{end - 1}"}, max(0, end - start), kind
        )
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
        return body

    # -- index ----------------------------------------------------------------------------

    def project(self, name: str) -> list[IndexFile]:
        """All files of a project (PEP 691 JSON), revalidated with a conditional GET the first
        time this client asks."""
        norm = canonicalize_name(name)
        with self._lock:
            known = self._pages.get(norm)
        if known is not None:
            return list(known)
        url = f"{self.index_url}{norm}/"
        cache = self.cache_dir / "simple" / f"{hashlib.sha256(url.encode()).hexdigest()}.json"
        cached: dict[str, str] = {}
        if cache.is_file():
            try:
                cached = json.loads(cache.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                cached = {}
        if not isinstance(cached, dict) or not all(isinstance(v, str) for v in cached.values()):
            cached = {}  # a damaged cache entry is read again from the index
        headers = {"Accept": JSON_ACCEPT}
        if cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        if cached.get("last-modified"):
            headers["If-Modified-Since"] = cached["last-modified"]
        resp, raw_body = self._get(url, headers)
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
            try:
                body = raw_body.decode("utf-8")
            except UnicodeDecodeError:
                raise PackageIndexError(f"{url}: the page is not UTF-8 JSON") from None
            if resp.headers.get("ETag") or resp.headers.get("Last-Modified"):
                record = {
                    "etag": resp.headers.get("ETag", ""),
                    "last-modified": resp.headers.get("Last-Modified", ""),
                    "body": body,
                }
                write_cache_file(cache, json.dumps(record).encode())
        try:
            data = json.loads(body)
            files = [_parse_file(raw, url) for raw in data["files"]]
            with self._lock:
                self.page_digests[norm] = hashlib.sha256(body.encode()).hexdigest()
                self._pages[norm] = files
            return list(files)
        except PackageIndexError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise PackageIndexError(f"{url}: malformed PEP 691 JSON: {why}") from None

    # -- files ----------------------------------------------------------------------------

    def _file_cache(self, f: IndexFile) -> Path | None:
        return self.cache_dir / "files" / f.sha256 if f.sha256 else None

    def core_metadata(self, f: IndexFile) -> tuple[bytes, str]:
        """The wheel's METADATA and where it came from: "pep658" or "range"."""
        cached = self.cached_core_metadata(f)
        if cached is not None:
            return cached
        data, source = self._fetch_core_metadata(f)
        cache = self._file_cache(f)
        if cache is not None:
            write_cache_file(cache / f"METADATA.{source}", data)
        return data, source

    def cached_core_metadata(self, f: IndexFile) -> tuple[bytes, str] | None:
        """`core_metadata` when it is in the cache (no request); None when it is not."""
        cache = self._file_cache(f)
        if cache is not None:
            for source in METADATA_SOURCES:
                data = _cached_bytes(cache / f"METADATA.{source}", MAX_METADATA_BYTES)
                if data is not None:
                    return data, source
        return None

    def map_uncached(
        self, cached: Callable[[T], R | None], fn: Callable[[T], R], items: Iterable[T]
    ) -> list[R]:
        """`map(fn, items)`, except that each item `cached` answers (a cache read, no request)
        is answered here: a refresh with nothing new starts no threads for them."""
        items = list(items)
        found = [cached(item) for item in items]
        fetched = iter(self.map(fn, [item for item, got in zip(items, found) if got is None]))
        return [next(fetched) if got is None else got for got in found]

    def served_core_metadata(self, f: IndexFile) -> bytes | None:
        """The wheel's METADATA when the index serves it alone (PEP 658); None when it does
        not (`core_metadata` then reads it out of the zip). Cached like `core_metadata`."""
        cached = self.cached_core_metadata(f)
        if cached is not None:
            return cached[0] if cached[1] == "pep658" else None
        data = self._fetch_served(f)
        cache = self._file_cache(f)
        if data is not None and cache is not None:
            write_cache_file(cache / "METADATA.pep658", data)
        return data

    def _fetch_served(self, f: IndexFile) -> bytes | None:
        with self._lock:
            if f.core_metadata is False or (f.url in self._unserved):
                return None
        resp, data = self._get(f.url + ".metadata", max_bytes=MAX_METADATA_BYTES, kind="metadata")
        if resp.status_code == 404:
            with self._lock:
                self._unserved.add(f.url)  # the range read that follows asks no more
            return None
        if resp.status_code != 200:
            raise PackageIndexError(f"cannot read {f.url}.metadata: HTTP {resp.status_code}")
        if f.metadata_sha256 and hashlib.sha256(data).hexdigest() != f.metadata_sha256:
            raise PackageIndexError(
                f"{f.url}.metadata does not match the sha256 the index gives for it"
            )
        return data

    def _fetch_core_metadata(self, f: IndexFile) -> tuple[bytes, str]:
        data = self._fetch_served(f)
        if data is not None:
            return data, "pep658"
        members = self.read_members(f, *METADATA_MEMBER)
        if len(members) != 1:
            raise PackageIndexError(
                f"{f.filename}: expected one *.dist-info/METADATA, found {len(members)}"
            )
        return next(iter(members.values())), "range"

    def read_members(
        self, f: IndexFile, want: Callable[[str], bool], hint: str | frozenset[str] = ""
    ) -> dict[str, bytes]:
        """Members of a wheel whose path matches `want` (and contains `hint`, see
        zipread.Selection), read through range requests. They are not cached: what is read
        out of them is (the METADATA, the timeline's facts)."""
        found = zipread.read_members(
            self.entries(f, want, hint), self._fetcher(f, "members"), f.filename
        )
        return dict(sorted(found.items()))

    def member_prefixes(self, f: IndexFile, entry: zipread.ZipEntry, limit: int) -> Iterator[bytes]:
        """Ever longer inflated starts of one member, at most `limit` bytes (see zipread)."""
        return zipread.iter_member_prefix(entry, self._fetcher(f, "elf"), f.filename, limit=limit)

    def entries(
        self, f: IndexFile, want: Callable[[str], bool], hint: str | frozenset[str] = ""
    ) -> list[zipread.ZipEntry]:
        """The central directory entries of a wheel whose path matches `want` and contains
        `hint` (see zipread.Selection). The directory is cached as its own bytes after its
        entry count (writing them costs nothing; JSON cost more than parsing)."""
        return self.select(f, [(want, hint)])[0]

    def select(
        self, f: IndexFile, selections: Sequence[zipread.Selection]
    ) -> list[list[zipread.ZipEntry]]:
        """`entries` of several selections, those not asked for before found in one walk of
        the directory (refresh selects what each of its scans of a wheel reads at once). What
        a selection found is kept for the client's life: it is small, and asked for again."""
        keys = [(f.sha256, want, hint) for want, hint in selections]
        with self._lock:
            known = [self._listings.get(key) if f.sha256 else None for key in keys]
        missing = [sel for sel, got in zip(selections, known) if got is None]
        found = iter(self._select(f, missing) if missing else [])
        out = [list(got) if got is not None else next(found) for got in known]
        if f.sha256:
            with self._lock:
                self._listings.update(zip(keys, out))
        return [list(entries) for entries in out]

    def _select(
        self, f: IndexFile, selections: Sequence[zipread.Selection]
    ) -> list[list[zipread.ZipEntry]]:
        cache = self._file_cache(f)
        path = cache / "central-directory.bin" if cache else None
        if path is not None:
            data = _cached_bytes(path, 8 + zipread.MAX_CENTRAL_DIRECTORY_BYTES)
            if data is not None and len(data) >= 8:
                try:
                    total = int.from_bytes(data[:8], "little")
                    return zipread.select_entries(data[8:], total, f.filename, selections)
                except zipread.ZipReadError:
                    pass  # a damaged cache entry is read again from the index
        tail: list[tuple[int, bytes]] = []
        fetch_tail = self._fetcher(f, "zip-tail")

        def fetch(start: int, end: int) -> bytes:
            data = fetch_tail(start, end)
            tail.append((start, data))
            return data

        cd, total = zipread.fetch_central_directory(f.size, fetch, f.filename)
        found = zipread.select_entries(cd, total, f.filename, selections)
        if tail and f.sha256:
            with self._lock:
                self._tails[f.sha256] = tail[0]
        if path is not None:
            write_cache_file(path, total.to_bytes(8, "little") + cd)
        return found

    def _fetcher(self, f: IndexFile, kind: str) -> zipread.RangeFetcher:
        def fetch(start: int, end: int) -> bytes:
            return self._fetch_range(f, start, end, kind)

        return fetch

    # -- concurrency ----------------------------------------------------------------------

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Apply fn to every item on a bounded thread pool; results keep the input order."""
        return list(self.imap(fn, items))

    def imap(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """`map`, yielding each result as soon as it and those before it are done: the caller
        works on the first ones while the pool still reads the rest."""
        items = list(items)
        if len(items) <= 1:
            yield from (fn(item) for item in items)
            return
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            yield from pool.map(fn, items)


def _read_body(resp: Response, url: str, max_bytes: int, deadline: float, timeout: float) -> bytes:
    """Read the body now, so read timeouts surface inside the retry loop; refuse one longer
    than ``max_bytes`` or one still arriving at ``deadline`` (a server that trickles a byte at
    a time never trips the socket timeout, which counts from the last byte)."""
    chunks: list[bytes] = []
    size = 0
    try:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise PackageIndexError(
                f"{url}: the response is {declared} bytes, more than the {max_bytes} allowed"
            )
        while True:
            if time.monotonic() > deadline:
                raise PackageIndexError(
                    f"{url}: the response took longer than {timeout:g} s in all; "
                    "the index is too slow (raise the timeout or use another --index-url)"
                )
            chunk = resp.read1(_CHUNK, decode_content=False)
            if not chunk:
                return _decoded(
                    b"".join(chunks), resp.headers.get("Content-Encoding"), url, max_bytes
                )
            size += len(chunk)
            if size > max_bytes:
                raise PackageIndexError(
                    f"{url}: the response is more than the {max_bytes} bytes allowed; refusing it"
                )
            chunks.append(chunk)
    finally:
        resp.release_conn()


def _decoded(body: bytes, encoding: str | None, url: str, max_bytes: int) -> bytes:
    """The body without its Content-Encoding (asked for identity; some servers compress anyway),
    inflated within the same cap, so a gzip bomb is refused like any other large body."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zipread.inflate_capped(body, max_bytes, url, wbits=47)  # 47: gzip or zlib
    raise PackageIndexError(f"{url}: unsupported Content-Encoding {encoding!r}")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()


def _cached_bytes(path: Path, max_bytes: int) -> bytes | None:
    """A cache file's bytes; None when it is missing, unreadable or larger than allowed (an
    older version's cache may hold what this one refuses), so it is read again."""
    try:
        if path.stat().st_size > max_bytes:
            return None
        return path.read_bytes()
    except OSError:
        return None


_DIST_INFO_METADATA = ".dist-info/METADATA"


def _is_dist_info_metadata(name: str) -> bool:
    """`X.dist-info/METADATA`, at the top of the wheel."""
    return name.endswith(_DIST_INFO_METADATA) and name.count("/") == 1


#: the METADATA member of a wheel, for `PyPIClient.select`
METADATA_MEMBER: zipread.Selection = (_is_dist_info_metadata, _DIST_INFO_METADATA)
