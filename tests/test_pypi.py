"""PyPIClient against a local fake index serving recorded responses (and injected faults)."""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from conftest import FakeIndex, Route, Sparse
from vllm_pin.errors import PackageIndexError
from vllm_pin.fsutil import default_cache_dir
from vllm_pin.index import pypi
from vllm_pin.index.pypi import IndexFile, PyPIClient
from vllm_pin.index.zipread import TAIL_BYTES

PEP658_WHEEL = "vllm-0.10.1.1-cp38-abi3-manylinux1_x86_64.whl"
RANGE_WHEEL = "vllm-0.1.4-cp311-cp311-manylinux1_x86_64.whl"


@pytest.fixture
def index(fake_index: FakeIndex) -> FakeIndex:
    return fake_index.load_recorded()


def client_for(index: FakeIndex, tmp_path: Path, **kw: float) -> PyPIClient:
    options: dict[str, float] = {"timeout": 5.0, "backoff": 0.01, **kw}
    return PyPIClient(
        index_url=f"{index.url}/simple/",
        cache_dir=tmp_path / "cache",
        timeout=options["timeout"],
        retries=int(options.get("retries", 4)),
        backoff=options["backoff"],
    )


def file_named(client: PyPIClient, project: str, filename: str) -> IndexFile:
    return next(f for f in client.project(project) if f.filename == filename)


def test_project_reads_pep691_json_and_resolves_relative_urls(
    index: FakeIndex, tmp_path: Path
) -> None:
    files = {f.filename: f for f in client_for(index, tmp_path).project("vLLM")}
    assert "vllm-0.1.3.tar.gz" in files
    f = files[PEP658_WHEEL]
    assert f.url == f"{index.url}/files/{PEP658_WHEEL}"
    assert f.sha256 == "8ca0dd985e1ceac8540e7719c654f1553b3ba8a43c685ac8d3fa1366ffb6443a"
    assert f.size == 414400912
    assert f.requires_python == "<3.13,>=3.9"
    assert f.upload_time.startswith("2025-08-20T23:17:09")
    assert (f.yanked, f.yanked_reason, f.core_metadata) == (False, "", None)


def test_yanked_and_core_metadata_fields(fake_index: FakeIndex, tmp_path: Path) -> None:
    page = {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "https://example.invalid/demo-1.0-py3-none-any.whl",
                "hashes": {"sha256": "ab" * 32},
                "yanked": "broken build",
                "core-metadata": {"sha256": "cd" * 32},
            }
        ],
    }
    fake_index.routes["/simple/demo/"] = Route(
        json.dumps(page).encode(), "application/vnd.pypi.simple.v1+json"
    )
    (f,) = client_for(fake_index, tmp_path).project("demo")
    assert (f.yanked, f.yanked_reason) == (True, "broken build")
    assert (f.core_metadata, f.metadata_sha256) == (True, "cd" * 32)
    assert f.url == "https://example.invalid/demo-1.0-py3-none-any.whl"


def test_pep658_metadata(index: FakeIndex, tmp_path: Path) -> None:
    client = client_for(index, tmp_path)
    data, source = client.core_metadata(file_named(client, "vllm", PEP658_WHEEL))
    assert source == "pep658"
    assert b"Requires-Dist: torch==2.7.1" in data
    assert index.requests_to(f"/files/{PEP658_WHEEL}") == []  # the wheel itself: never touched


def test_404_on_metadata_falls_back_to_range_reads(index: FakeIndex, tmp_path: Path) -> None:
    client = client_for(index, tmp_path)
    f = file_named(client, "vllm", RANGE_WHEEL)
    data, source = client.core_metadata(f)
    assert source == "range"
    assert b"Requires-Dist: torch >=2.0.0" in data
    assert index.requests_to(f"/files/{RANGE_WHEEL}.metadata") == [""]
    ranges = index.requests_to(f"/files/{RANGE_WHEEL}")
    # the zip tail holds the central directory and the METADATA: one range request in all
    assert ranges == [f"bytes={f.size - TAIL_BYTES}-{f.size - 1}"]
    assert client.bytes_fetched < 0.01 * f.size
    counts = {kind: s.requests for kind, s in client.stats.items()}
    assert counts == {"index": 1, "metadata": 1, "zip-tail": 1, "members": 0, "elf": 0}


def test_metadata_hash_from_the_index_is_verified(index: FakeIndex, tmp_path: Path) -> None:
    client = client_for(index, tmp_path)
    f = file_named(client, "vllm", PEP658_WHEEL)
    bad = IndexFile(**{**f.__dict__, "metadata_sha256": "0" * 64, "core_metadata": True})
    with pytest.raises(PackageIndexError, match="does not match the sha256"):
        client.core_metadata(bad)


def test_500_is_retried(index: FakeIndex, tmp_path: Path) -> None:
    index.faults[f"/files/{PEP658_WHEEL}.metadata"] = [500, 503]
    client = client_for(index, tmp_path)
    _, source = client.core_metadata(file_named(client, "vllm", PEP658_WHEEL))
    assert source == "pep658"
    assert len(index.requests_to(f"/files/{PEP658_WHEEL}.metadata")) == 3


def test_persistent_5xx_gives_one_line_error(index: FakeIndex, tmp_path: Path) -> None:
    index.faults["/simple/vllm/"] = [502] * 3
    client = client_for(index, tmp_path, retries=2)
    with pytest.raises(PackageIndexError) as info:
        client.project("vllm")
    message = str(info.value)
    assert message == (
        f"cannot reach {index.url}/simple/vllm/: HTTP 502 (after 3 attempts); "
        "check the network or pass --index-url"
    )


def test_timeout_is_retried_then_reported(index: FakeIndex, tmp_path: Path) -> None:
    index.faults["/simple/vllm/"] = [1.0]
    client = client_for(index, tmp_path, timeout=0.2)
    assert client.project("vllm")  # the second attempt is answered in time
    index.faults["/simple/vllm/"] = [1.0, 1.0]
    client = client_for(index, tmp_path, timeout=0.2, retries=1)
    with pytest.raises(PackageIndexError, match=r"cannot reach .*Timeout.*--index-url"):
        client.project("vllm")


def test_unreachable_index(tmp_path: Path) -> None:
    client = PyPIClient("http://127.0.0.1:9/simple/", tmp_path, timeout=1, retries=1, backoff=0)
    with pytest.raises(PackageIndexError, match=r"^cannot reach http://127.0.0.1:9/simple/torch/"):
        client.project("torch")


@pytest.mark.parametrize("url", ["pypi.org/simple/", "ftp://example.invalid/simple/"])
def test_malformed_index_url_fails_at_once(url: str, tmp_path: Path) -> None:
    with pytest.raises(PackageIndexError, match=r"^bad URL .*pass an --index-url like"):
        PyPIClient(url, tmp_path, backoff=10).project("vllm")


def test_unknown_project_and_non_json_index(fake_index: FakeIndex, tmp_path: Path) -> None:
    fake_index.routes["/simple/html/"] = Route(b"<html></html>", "text/html")
    client = client_for(fake_index, tmp_path)
    with pytest.raises(PackageIndexError, match="no project 'nope'"):
        client.project("nope")
    with pytest.raises(PackageIndexError, match="not PEP 691 JSON"):
        client.project("html")


def test_truncated_wheel_on_the_server(index: FakeIndex, tmp_path: Path) -> None:
    """The index lists a size the server cannot deliver: the zip tail comes back short."""
    route = index.routes[f"/files/{RANGE_WHEEL}"]
    assert isinstance(route.body, Sparse)
    index.routes[f"/files/{RANGE_WHEEL}"] = Route(
        Sparse(route.body.size - 5000, route.body.tail[:-5000])
    )
    client = client_for(index, tmp_path)
    with pytest.raises(PackageIndexError, match="truncated zip"):
        client.core_metadata(file_named(client, "vllm", RANGE_WHEEL))


def test_server_ignoring_ranges_is_refused_without_reading_the_wheel(
    index: FakeIndex, tmp_path: Path
) -> None:
    route = index.routes[f"/files/{RANGE_WHEEL}"]
    route.ranges = False
    client = client_for(index, tmp_path)
    with pytest.raises(PackageIndexError, match="ignores HTTP range requests"):
        client.core_metadata(file_named(client, "vllm", RANGE_WHEEL))
    assert client.bytes_fetched < 1_000_000  # not the 18 MiB the server started to send


def test_released_files_are_cached_by_sha256(index: FakeIndex, tmp_path: Path) -> None:
    """Their METADATA and central directories; other members are read again (what refresh
    reads out of them is cached by its scans)."""
    client = client_for(index, tmp_path)
    for name in (PEP658_WHEEL, RANGE_WHEEL):
        client.core_metadata(file_named(client, "vllm", name))
    members = client.read_members(
        file_named(client, "vllm", RANGE_WHEEL), lambda n: n.endswith("RECORD")
    )
    assert list(members) == ["vllm-0.1.4.dist-info/RECORD"]
    before = len(index.log)
    again = client_for(index, tmp_path)  # a new process, the same cache directory
    wheels = {f.filename: f for f in again.project("vllm")}
    assert again.core_metadata(wheels[RANGE_WHEEL])[1] == "range"
    assert again.core_metadata(wheels[PEP658_WHEEL])[1] == "pep658"
    assert again.read_members(wheels[RANGE_WHEEL], lambda n: n.endswith("RECORD")) == members
    # the member itself, with no request for the directory
    assert [p for p, _ in index.log[before:]] == ["/simple/vllm/", f"/files/{RANGE_WHEEL}"]


def test_index_pages_use_conditional_get(index: FakeIndex, tmp_path: Path) -> None:
    route = index.routes["/simple/vllm/"]
    route.headers["ETag"] = '"v1"'
    first = client_for(index, tmp_path).project("vllm")
    route.body = b"{}"  # a 304 must be answered from the cache, never from this body
    assert client_for(index, tmp_path).project("vllm") == first


def test_map_keeps_order_and_propagates_errors(tmp_path: Path) -> None:
    client = PyPIClient(cache_dir=tmp_path, max_workers=4)
    assert client.map(lambda x: x * x, range(20)) == [x * x for x in range(20)]

    def boom(x: int) -> int:
        raise PackageIndexError(f"bad {x}")

    with pytest.raises(PackageIndexError, match="bad"):
        client.map(boom, [1, 2])


def test_default_cache_dir_respects_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "vllm-pin"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "vllm-pin"


@pytest.mark.parametrize("damage", [b"", b"\x07" * 8, b"\x01" + b"\x00" * 7 + b"PK\x01\x02"])
def test_a_damaged_central_directory_cache_is_read_again(
    index: FakeIndex, tmp_path: Path, damage: bytes
) -> None:
    client = client_for(index, tmp_path)
    wheel = file_named(client, "vllm", RANGE_WHEEL)
    first = client.entries(wheel, lambda n: n.endswith("METADATA"))
    (cached,) = (tmp_path / "cache" / "files" / wheel.sha256).glob("central-directory.*")
    cached.write_bytes(damage)
    again = client_for(index, tmp_path)
    before = len(index.log)
    assert again.entries(wheel, lambda n: n.endswith("METADATA")) == first
    assert len(index.log) > before  # read from the index, and cached again
    assert client_for(index, tmp_path).entries(wheel, lambda n: n.endswith("METADATA")) == first
    assert cached.read_bytes() != damage


def test_a_host_name_is_resolved_once_for_all_connections(
    index: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many connections opened at once make one lookup: resolvers drop bursts of them."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def counting(host: str, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    monkeypatch.setattr(pypi, "_RESOLVER", pypi._Resolver())
    url = index.url.replace("127.0.0.1", "localhost")  # ::1 first, where nothing listens
    client = PyPIClient(f"{url}/simple/", tmp_path / "cache", timeout=5, max_workers=8)
    pages = client.map(lambda _: client.project("vllm"), range(16))
    assert pages[0] and all(page == pages[0] for page in pages)
    assert looked_up.count("localhost") == 1


@pytest.mark.parametrize(
    ("verify", "shared"), [(True, True), (DEFAULT_CA_BUNDLE_PATH, True), (False, False)]
)
def test_verifying_pools_share_one_ssl_context_per_bundle(verify: bool | str, shared: bool) -> None:
    """The bundle is loaded once per client, not once per connection; the trust is the same."""
    adapter = PyPIClient().session.get_adapter("https://pypi.org/")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    request = requests.Request("GET", "https://pypi.org/simple/vllm/").prepare()
    keys = [adapter.build_connection_pool_key_attributes(request, verify)[1] for _ in range(2)]
    context = keys[0].get("ssl_context")
    assert (context is not None, context is keys[1].get("ssl_context")) == (shared, True)
    assert "ca_certs" not in keys[0] or not shared
    if shared:
        assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
        assert context.cert_store_stats()["x509_ca"] > 0


# -- what requests did around each request, kept by the lean path ---------------------------


def _file(index: FakeIndex, path: str, size: int) -> IndexFile:
    return IndexFile(path.rsplit("/", 1)[1], f"{index.url}{path}", "", size, "", False, "", "")


@pytest.mark.parametrize(
    ("target", "credentials"),
    [("{url}/files/moved.whl", True), ("{other}/files/moved.whl", False)],
    ids=["same-origin", "other-origin"],
)
def test_redirects_are_followed_with_the_range_and_credentials_only_to_the_index(
    fake_index: FakeIndex, tmp_path: Path, target: str, credentials: bool
) -> None:
    """A mirror that sends its files elsewhere: the Range goes along, the index's
    credentials only where the index is (127.0.0.1 and localhost are other origins)."""
    data = bytes(range(256)) * 8
    other = fake_index.url.replace("127.0.0.1", "localhost")
    fake_index.routes["/files/x.whl"] = Route(
        b"", redirect=target.format(url=fake_index.url, other=other)
    )
    fake_index.routes["/files/moved.whl"] = Route(data)
    url = fake_index.url.replace("://", "://user:s3cret@") + "/simple/"
    client = PyPIClient(url, tmp_path, timeout=5, backoff=0.01)
    assert (
        client._fetch_range(_file(fake_index, "/files/x.whl", len(data)), 10, 20, "elf")
        == (data[10:20])
    )
    assert fake_index.log == [("/files/x.whl", "bytes=10-19"), ("/files/moved.whl", "bytes=10-19")]
    sent = "Basic dXNlcjpzM2NyZXQ="
    assert fake_index.auth == [sent, sent if credentials else ""]


def test_a_redirect_loop_is_an_error(fake_index: FakeIndex, tmp_path: Path) -> None:
    fake_index.routes["/simple/loop/"] = Route(b"", redirect="/simple/loop/")
    client = client_for(fake_index, tmp_path, retries=0)
    with pytest.raises(PackageIndexError, match=r"^cannot reach .*TooManyRedirects"):
        client.project("loop")


def test_netrc_credentials_are_sent_as_requests_would(
    index: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = client_for(index, tmp_path)
    client.project("vllm")
    client.project("torch")
    assert index.auth == ["Basic dXNlcjpzM2NyZXQ="] * 2


# -- direct connections ---------------------------------------------------------------------


def test_connections_are_kept_alive(index: FakeIndex, tmp_path: Path) -> None:
    index.keep_alive = 5.0
    client = client_for(index, tmp_path)
    wheel = file_named(client, "vllm", RANGE_WHEEL)
    chunks = [client._fetch_range(wheel, i * 100, i * 100 + 100, "elf") for i in range(1, 6)]
    assert [len(c) for c in chunks] == [100] * 5
    assert len(index.ports) == 6 and len(set(index.ports)) == 1  # one connection: page + 5


def test_a_connection_the_server_closed_is_replaced_at_once(
    index: FakeIndex, tmp_path: Path
) -> None:
    index.keep_alive = 0.2
    client = client_for(index, tmp_path, retries=0)  # no retry but the replacement
    wheel = file_named(client, "vllm", RANGE_WHEEL)
    first = client._fetch_range(wheel, 100, 200, "elf")
    time.sleep(0.6)  # the server closes the idle connection
    assert client._fetch_range(wheel, 100, 200, "elf") == first
    assert len(set(index.ports)) == 2


def test_an_index_behind_a_proxy_is_read_through_it(
    fake_index: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy from the environment, as requests reads it: the fake index plays it."""
    monkeypatch.setenv("HTTP_PROXY", fake_index.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = PyPIClient("http://index.invalid/simple/", tmp_path, timeout=5, retries=0)
    with pytest.raises(PackageIndexError, match="no project"):
        client.project("vllm")
    assert [path for path, _ in fake_index.log] == ["http://index.invalid/simple/vllm/"]


@pytest.mark.parametrize(
    ("verify", "mode", "hostname"),
    [
        (True, ssl.CERT_REQUIRED, True),
        (DEFAULT_CA_BUNDLE_PATH, ssl.CERT_REQUIRED, True),
        (False, ssl.CERT_NONE, False),
    ],
)
def test_direct_tls_checks_certificates_and_host_names_as_requests_would(
    verify: bool | str, mode: ssl.VerifyMode, hostname: bool, tmp_path: Path
) -> None:
    context = pypi._verify_context(verify)
    assert (context.verify_mode, context.check_hostname) == (mode, hostname)
    assert pypi._verify_context(verify) is context  # loaded once
    if mode == ssl.CERT_REQUIRED:
        assert context.cert_store_stats()["x509_ca"] > 0
