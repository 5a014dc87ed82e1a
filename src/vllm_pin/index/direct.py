"""Kept-alive HTTP/1.1 connections for GETs that need no proxy and no client certificate.

A cold refresh makes ~2700 small range requests; through urllib3's pools each costs about twice
the CPU of the same request on a bare `http.client` connection (its per-request checks, timeout
objects and response wrappers), and CPU, not the network, bounds a cold refresh. `Connections`
keeps bare connections per origin, shared by the threads of a client. The TLS context is the
caller's (`tls_context`: certificates required, host names checked). Requests through a proxy
or with a client certificate go through requests' adapters instead (`PyPIClient._open`).
"""

from __future__ import annotations

import functools
import http.client
import os
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

__all__ = ["Connections", "Response", "tls_context"]

#: the HTTP statuses that redirect, and keep the request a GET
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def tls_context(bundle: str | None) -> ssl.SSLContext:
    """A context that requires a certificate from `bundle` (a file or a directory of them)
    and checks the host name; `None`: no checks at all (requests' verify=False). One per
    bundle and process, made by the first thread that asks (loading a bundle costs tens of
    milliseconds, and a refresh's threads all ask at once)."""
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(bundle)
        if context is None:
            context = _CONTEXTS[bundle] = _new_context(bundle)
        return context


_CONTEXTS: dict[str | None, ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def _new_context(bundle: str | None) -> ssl.SSLContext:
    if bundle is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # loads no certificates
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


class Response:
    """A response being read, with the parts of urllib3's interface that the client uses."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        release: Callable[[bool], None],
    ) -> None:
        self._response = response
        self._release = release
        self.status = response.status
        self.headers = response.headers

    def read1(self, amount: int, decode_content: bool = False) -> bytes:
        """At most `amount` bytes, as soon as some arrive; b"" at the end."""
        return self._response.read1(amount)

    def get_redirect_location(self) -> str | None:
        """Where a redirect points; None for any other response."""
        return self.headers.get("Location") if self.status in REDIRECTS else None

    def drain_conn(self) -> None:
        """Read the rest of a short body (a redirect's), so the connection can be kept."""
        self._response.read(64 * 1024)

    def release_conn(self) -> None:
        """Give the connection back when the body was read whole; close it otherwise."""
        response = self._response
        # read whole: the last read1 said so (closed), or the length left is 0
        reusable = not response.will_close and (response.isclosed() or response.length == 0)
        response.close()
        self._release(reusable)


class Connections:
    """Idle connections per origin, handed to one request at a time."""

    def __init__(
        self, timeout: float, resolve: Callable[[str, int], list[str]] | None = None
    ) -> None:
        self.timeout = timeout
        self._resolve = resolve
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def get(self, url: str, headers: Mapping[str, str], context: ssl.SSLContext | None) -> Response:
        """Send a GET for `url` (already quoted) and read the status and headers. A kept
        connection that the server closed meanwhile is replaced once, at once."""
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        key = (scheme, host, port)
        for attempt in range(2):
            conn, reused = self._connection(key, context)
            try:
                conn.putrequest("GET", path, skip_accept_encoding=True)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.endheaders()
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused and attempt == 0:
                    continue  # the server had closed it while it waited here
                raise
            except BaseException:
                conn.close()
                raise
            return Response(response, functools.partial(self._put, key, conn))
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(
        self, key: tuple[str, str, int], context: ssl.SSLContext | None
    ) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, host, port = key
        if scheme == "https" and context is None:
            raise ValueError(f"{host}: an https connection needs a TLS context")
        tls = context if scheme == "https" else None
        return _Connection(host, port, self.timeout, self._resolve, tls), False

    def _put(self, key: tuple[str, str, int], conn: http.client.HTTPConnection, ok: bool) -> None:
        """Keep a connection whose response was read whole; close any other."""
        if not ok:
            conn.close()
            return
        with self._lock:
            self._idle.setdefault(key, []).append(conn)


class _Connection(http.client.HTTPConnection):
    """A connection whose host's addresses come from `resolve` (one lookup per host, not one
    per connection), each tried in turn; in TLS through `tls` when given (the host name is
    what that context checks)."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        resolve: Callable[[str, int], list[str]] | None,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.resolve = resolve
        self.tls = tls

    def _socket(self) -> socket.socket:
        if self.resolve is None:
            return socket.create_connection((self.host, self.port), self.timeout)
        error: OSError | None = None
        for address in self.resolve(self.host, self.port):
            try:
                return socket.create_connection((address, self.port), self.timeout)
            except OSError as exc:
                error = exc
        raise error or OSError(f"{self.host} has no address")

    def connect(self) -> None:
        sock = self._socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = (
            sock if self.tls is None else self.tls.wrap_socket(sock, server_hostname=self.host)
        )
