"""A small HTTP/1.1 proxy on 127.0.0.1 that forwards to the emulator unless an interceptor answers.

The handlers reach it through the standard `AWS_ENDPOINT_URL` (the dispatcher's
`handler_endpoint`), so they run unmodified; interceptors see each request classified
(`proxy_messages.classify`) and may answer it, rewrite it, or let it through.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pipeline_local.proxy_messages import (
    AnswerWatcher,
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    classify,
)

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: LoopbackProxy, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy
        self.tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the connection's own thread, never in the accept loop.
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust the CA, or went away
        try:
            super().finish_request(conn, client_address)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"
    # The status line and headers go out before the body: without TCP_NODELAY, Nagle's
    # algorithm holds the body until the client's delayed ACK (about 40 ms per request).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            return self.rfile.read(int(length))
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return b""

    def _handle(self) -> None:
        req = ProxyRequest(
            method=self.command,
            path=self.path,
            headers=list(self.headers.items()),
            body=self._read_body(),
            secure=self.server.tls is not None,
        )
        try:
            resp = self.server.proxy.handle(req)
        except Exception as exc:  # answer, never hang the client
            resp = ProxyResponse(502, [("Content-Type", "text/plain")], str(exc).encode())
        self.send_response(resp.status)
        for key, value in resp.headers:
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle


_SERVING: dict[str, LoopbackProxy] = {}  # endpoint -> the proxy listening there
_SERVING_LOCK = threading.Lock()


class LoopbackProxy:
    """An HTTP proxy on 127.0.0.1 in front of `upstream` (the emulator's endpoint).

    `start()` opens the plain-HTTP listener (`endpoint`); `start(tls=context)` opens a TLS
    listener as well (`tls_endpoint`), whose requests carry `secure=True`. Both feed the same
    interceptor chain. `add_interceptor`/`remove_interceptor` change the chain while it serves
    (a test's fault injector, a crash injector's counter)."""

    def __init__(self, upstream: str, interceptors: Sequence[Interceptor] = ()) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.interceptors: list[Interceptor] = list(interceptors)
        self.forwarded: Counter[tuple[str, str]] = Counter()
        self.answered: Counter[tuple[str, str]] = Counter()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._server: _ProxyServer | None = None
        self._tls_server: _ProxyServer | None = None

    @staticmethod
    def _url(server: _ProxyServer | None, scheme: str) -> str:
        if server is None:
            raise RuntimeError(f"proxy has no {scheme} listener")
        host, port = server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else host
        return f"{scheme}://{host_text}:{port}"

    @property
    def endpoint(self) -> str:
        return self._url(self._server, "http")

    @property
    def tls_endpoint(self) -> str:
        return self._url(self._tls_server, "https")

    @staticmethod
    def serving(endpoint: str) -> LoopbackProxy | None:
        """The proxy of this process listening at `endpoint`, if any."""
        with _SERVING_LOCK:
            return _SERVING.get(endpoint.rstrip("/"))

    def add_interceptor(self, interceptor: Interceptor) -> None:
        with self._lock:
            self.interceptors = [*self.interceptors, interceptor]

    def remove_interceptor(self, interceptor: Interceptor) -> None:
        with self._lock:
            self.interceptors = [i for i in self.interceptors if i is not interceptor]

    def start(self, tls: ssl.SSLContext | None = None) -> LoopbackProxy:
        servers = [(_ProxyServer(self), "http")]
        if tls is not None:
            servers.append((_ProxyServer(self, tls), "https"))
        for server, scheme in servers:
            if scheme == "http":
                self._server = server
            else:
                self._tls_server = server
            with _SERVING_LOCK:
                _SERVING[self._url(server, scheme)] = self
            threading.Thread(
                target=server.serve_forever, name=f"loopback-proxy-{scheme}", daemon=True
            ).start()
        return self

    def stop(self) -> None:
        for server, scheme in ((self._server, "http"), (self._tls_server, "https")):
            if server is not None:
                with _SERVING_LOCK:
                    _SERVING.pop(self._url(server, scheme), None)
                server.shutdown()
                server.server_close()
        self._server = self._tls_server = None

    def __enter__(self) -> LoopbackProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, req: ProxyRequest) -> ProxyResponse:
        classify(req)
        chain = self.interceptors  # replaced, never mutated: a consistent snapshot
        for interceptor in chain:
            outcome = interceptor(req)
            if isinstance(outcome, ProxyResponse):
                with self._lock:
                    self.answered[(req.service, req.operation)] += 1
                return outcome
            if isinstance(outcome, ProxyRequest):
                req = outcome
        with self._lock:
            self.forwarded[(req.service, req.operation)] += 1
        resp = self.forward(req)
        for interceptor in chain:
            if isinstance(interceptor, AnswerWatcher):
                interceptor.after(req, resp)
        return resp

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
            self._local.conn = conn
        return conn

    def forward(self, req: ProxyRequest) -> ProxyResponse:
        for attempt in range(2):
            conn = self._connection(fresh=attempt > 0)
            try:
                conn.putrequest(req.method, req.path, skip_host=True, skip_accept_encoding=True)
                for key, value in req.headers:
                    if key.lower() not in HOP_BY_HOP:
                        conn.putheader(key, value)
                conn.putheader("Content-Length", str(len(req.body)))
                conn.endheaders(req.body)
                resp = conn.getresponse()
                body = resp.read()
                return ProxyResponse(resp.status, list(resp.getheaders()), body)
            except (http.client.HTTPException, ConnectionError, TimeoutError):
                if attempt:
                    raise
        raise AssertionError("unreachable")
