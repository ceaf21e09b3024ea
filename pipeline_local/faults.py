"""Fault injection for the local pipeline: an HTTP proxy in front of the emulator, and crashes.

`LoopbackProxy` is a small HTTP/1.1 proxy on 127.0.0.1 (free port) that forwards every request
to the emulator unchanged unless one of its interceptors answers it. The handlers reach it
through the standard `AWS_ENDPOINT_URL` (the dispatcher's `handler_endpoint`), so they run
unmodified. Interceptors see the AWS service (from the SigV4 credential scope), the operation
(from `X-Amz-Target`, a query `Action`, or the S3 method), the access key and the body.

- `FaultInjector`: with a fixed seed, answers a configurable share of DynamoDB and SQS calls
  with the errors those services really return under load: DynamoDB `ThrottlingException` or
  `ProvisionedThroughputExceededException` (HTTP 400) and `InternalServerError` (500) /
  `ServiceUnavailable` (503); SQS `InternalError` (500) / `ServiceUnavailable` (503). The
  seeded generator fixes the sequence of decisions; which request meets which decision follows
  the order requests arrive in (the processor writes from 16 threads).
  `fail_matching()` adds deterministic rules: fail the next N calls of an operation whose body
  contains a marker (e.g. one transaction id), so that boto3's retries run out and the
  handler's own retry path (retry_record -> main queue) is taken.
- `CrashingInvoker`: kills a handler mid-invocation, as a timeout or an out-of-memory kill
  does, after N successful calls of an operation (default DynamoDB PutItem). A Python handler
  runs in this process: every further AWS call of that invocation raises `SimulatedCrash` (a
  BaseException the handler cannot catch). A Rust `bootstrap` runs in its own process: its
  calls go through a LoopbackProxy that SIGKILLs it at the limit. Either way the invocation
  fails and what was written before stays written.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import socket
import ssl
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from pipeline_local.invokers import DEFAULT_TIMEOUT_MS, InvocationError, Invoker
from pipeline_local.rust_runtime import RustInvoker

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
_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


# --------------------------------------------------------------------------------------------
# Requests and responses as the interceptors see them


@dataclass
class ProxyRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    service: str = ""
    region: str = ""
    access_key: str = ""
    operation: str = ""
    secure: bool = False  # arrived on a TLS listener (aws:SecureTransport)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def json_body(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}


@dataclass
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def classify(req: ProxyRequest) -> None:
    """Fill in service, region, access key and operation from the request itself."""
    auth = req.header("Authorization") or ""
    match = _SCOPE_RE.search(auth)
    if match:
        req.access_key, req.region, req.service = match.group(1), match.group(2), match.group(3)
    target = req.header("X-Amz-Target")
    if target:
        req.operation = target.rsplit(".", 1)[-1]
        return
    query = parse_qs(urlsplit(req.path).query)
    if "Action" in query:
        req.operation = query["Action"][0]
        return
    ctype = req.header("Content-Type") or ""
    if "x-www-form-urlencoded" in ctype and req.body:
        form = parse_qs(req.body.decode("utf-8", "replace"))
        if "Action" in form:
            req.operation = form["Action"][0]
            return
    if req.service == "s3":
        req.operation = (
            f"{req.method} object"
            if urlsplit(req.path).path.count("/") > 1
            else (f"{req.method} bucket")
        )


def json_error(
    status: int, type_name: str, message: str, *, query_code: str | None = None
) -> ProxyResponse:
    """An AWS JSON-protocol error response (DynamoDB, SQS JSON)."""
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if query_code:
        headers.append(("x-amzn-query-error", query_code))
    body = json.dumps({"__type": type_name, "message": message}).encode()
    return ProxyResponse(status, headers, body)


def xml_error(status: int, code: str, message: str, sender: str = "Receiver") -> ProxyResponse:
    """An AWS query-protocol error response."""
    body = (
        f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return ProxyResponse(status, [("Content-Type", "text/xml")], body.encode())


class Interceptor(Protocol):
    """Looks at a request before it is forwarded: returns a response to answer it locally, a
    (changed) request to forward instead, or None to forward it unchanged. An interceptor may
    also have `after(req, resp)`, called with the emulator's answer to a forwarded request."""

    def __call__(self, req: ProxyRequest) -> ProxyResponse | ProxyRequest | None: ...


# --------------------------------------------------------------------------------------------
# The proxy


class _ProxyServer(ThreadingHTTPServer):
    server_address: tuple[str, int]  # bound to 127.0.0.1 (typeshed allows any socket address)
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
        return f"{scheme}://{host}:{port}"

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
            after = getattr(interceptor, "after", None)
            if callable(after):
                after(req, resp)
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


# --------------------------------------------------------------------------------------------
# Faults


@dataclass
class _Rule:
    service: str
    operation: str
    contains: tuple[bytes, ...]
    times: int
    status: int
    code: str
    used: int = 0


@dataclass
class FaultInjector:
    """Seeded random faults on DynamoDB and SQS calls, plus deterministic targeted rules."""

    seed: int = 7
    rate: float = 0.05
    dynamodb_throttle_share: float = 0.5  # of DynamoDB faults; the rest are 5xx
    services: tuple[str, ...] = ("dynamodb", "sqs")
    operations: tuple[str, ...] = ()  # empty: every operation of those services
    injected: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    enabled: bool = True
    _rules: list[_Rule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def fail_matching(
        self,
        service: str,
        operation: str,
        contains: str | bytes | Sequence[str | bytes],
        times: int,
        *,
        status: int = 500,
        code: str = "InternalServerError",
    ) -> _Rule:
        """Answer the next `times` calls of `operation` whose body contains every marker."""
        items = [contains] if isinstance(contains, str | bytes) else list(contains)
        markers = tuple(m.encode() if isinstance(m, str) else m for m in items)
        rule = _Rule(service, operation, markers, times, status, code)
        with self._lock:
            self._rules.append(rule)
        return rule

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def __call__(self, req: ProxyRequest) -> ProxyResponse | None:
        if not self.enabled:
            return None
        with self._lock:
            for rule in self._rules:
                if (
                    rule.used < rule.times
                    and req.service == rule.service
                    and req.operation == rule.operation
                    and all(m in req.body for m in rule.contains)
                ):
                    rule.used += 1
                    self.injected[(req.service, req.operation, rule.code)] += 1
                    return self._error(req, rule.status, rule.code)
            if req.service not in self.services:
                return None
            if self.operations and req.operation not in self.operations:
                return None
            if self._rng.random() >= self.rate:
                return None
            pick = self._rng.random()
            if req.service == "dynamodb" and pick < self.dynamodb_throttle_share:
                code = (
                    "ThrottlingException"
                    if self._rng.random() < 0.5
                    else "ProvisionedThroughputExceededException"
                )
                status = 400
            else:
                status = 500 if self._rng.random() < 0.7 else 503
                code = "InternalServerError" if status == 500 else "ServiceUnavailable"
                if req.service == "sqs" and status == 500:
                    code = "InternalError"
            self.injected[(req.service, req.operation, code)] += 1
        return self._error(req, status, code)

    @staticmethod
    def _error(req: ProxyRequest, status: int, code: str) -> ProxyResponse:
        message = f"injected by pipeline_local.faults ({code})"
        if req.service == "dynamodb":
            return json_error(status, f"com.amazonaws.dynamodb.v20120810#{code}", message)
        if req.service == "sqs" and (req.header("X-Amz-Target") or "").startswith("AmazonSQS."):
            sender = "Sender" if status < 500 else "Receiver"
            return json_error(
                status, f"com.amazonaws.sqs#{code}", message, query_code=f"{code};{sender}"
            )
        return xml_error(status, code, message)


@contextlib.contextmanager
def fault_proxy(
    upstream: str, *, seed: int = 7, rate: float = 0.05, **kwargs: Any
) -> Iterator[tuple[LoopbackProxy, FaultInjector]]:
    """A started proxy with one FaultInjector; stopped on exit."""
    injector = FaultInjector(seed=seed, rate=rate, **kwargs)
    proxy = LoopbackProxy(upstream, [injector]).start()
    try:
        yield proxy, injector
    finally:
        proxy.stop()


# --------------------------------------------------------------------------------------------
# Crashes: an execution environment killed mid-invocation


class SimulatedCrash(BaseException):
    """The execution environment died (timeout kill, OOM): nothing after it runs."""


_PATCH_LOCK = threading.Lock()


class _ProcessKiller:
    """A LoopbackProxy between one Rust process and its endpoint that SIGKILLs the process
    after `limit` successful calls of `operation` during an armed invocation.

    When the process's endpoint is itself a LoopbackProxy of this process (the authorization
    gateway, pipeline_local.authz.gateway, which serves TLS), the killer joins that proxy's
    interceptor chain instead, for the requests signed with the process's access key.

    The kill happens before the limit-th call's answer is passed back, so the process never
    learns that this write succeeded (it is stored all the same); calls the process had already
    sent are forwarded, later ones are refused."""

    def __init__(self, target: RustInvoker, operation: str) -> None:
        upstream = target.env.get("AWS_ENDPOINT_URL")
        if not upstream:
            raise ValueError(
                f"{target.function_name}: no AWS_ENDPOINT_URL to put the crash proxy in front of"
            )
        self.target = target
        self.operation = operation
        self._lock = threading.Lock()
        self.access_key = target.env.get("AWS_ACCESS_KEY_ID", "")
        self.host = LoopbackProxy.serving(upstream)
        self.proxy: LoopbackProxy | None = None
        if self.host is not None:
            self.host.add_interceptor(self)
        else:
            self.proxy = LoopbackProxy(upstream, [self]).start()
            if target.pid is not None:
                target.close()  # the next invocation starts a process that talks to the proxy
            target.env["AWS_ENDPOINT_URL"] = self.proxy.endpoint
        self.armed = False
        self.limit = 0
        self.calls = 0
        self.killed_after: int | None = None
        self.signalled = False  # a live process was SIGKILLed (not merely refused calls)

    def arm(self, limit: int) -> None:
        with self._lock:
            self.armed, self.limit, self.calls, self.killed_after = True, limit, 0, None
            self.signalled = False

    def disarm(self) -> None:
        with self._lock:
            self.armed = False

    def _mine(self, req: ProxyRequest) -> bool:
        return self.host is None or req.access_key == self.access_key

    def __call__(self, req: ProxyRequest) -> ProxyResponse | None:
        if not self._mine(req):
            return None
        with self._lock:
            if self.armed and self.killed_after is not None:
                return ProxyResponse(502, [("Content-Type", "text/plain")], b"process killed")
        return None

    def after(self, req: ProxyRequest, resp: ProxyResponse) -> None:
        if not self._mine(req) or req.operation != self.operation or not 200 <= resp.status < 300:
            return
        with self._lock:
            if not self.armed or self.killed_after is not None:
                return
            self.calls += 1
            if self.calls < self.limit:
                return
            self.killed_after = self.calls
            # Under the lock: whoever sees the process dead and then asks `killed_after_calls()`
            # learns that it was this kill.
            self.signalled = self.target.kill_process()

    def killed_after_calls(self) -> int | None:
        """The calls counted when this invocation's process was SIGKILLed; None if it was not."""
        with self._lock:
            return self.killed_after if self.signalled else None

    def close(self) -> None:
        if self.host is not None:
            self.host.remove_interceptor(self)
        if self.proxy is not None:
            self.proxy.stop()


class CrashingInvoker:
    """Kills the wrapped function's invocation after `after_calls` successful calls of
    `operation` (the AWS operation name, e.g. "PutItem"), for the first `crashes` invocations
    (those whose event `when(event)` accepts); later invocations run normally.

    A Python handler (in this process) is killed by patching botocore: after the limit every
    further AWS call raises `SimulatedCrash`, which the handler cannot catch. A Rust `bootstrap`
    (its own process, `RustInvoker`) is killed for real: its AWS calls go through a proxy that
    counts them and SIGKILLs the process at the limit. Either way the invocation fails with
    Runtime.ExitError and what was written before stays written."""

    def __init__(
        self,
        inner: Invoker,
        *,
        after_calls: int,
        operation: str = "PutItem",
        crashes: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        if after_calls < 1:
            raise ValueError("after_calls must be at least 1")
        self.inner = inner
        self.function_name = inner.function_name
        self.after_calls = after_calls
        self.operation = operation
        self.crashes_left = crashes
        self.when = when
        self.crashed: list[int] = []  # calls made before each crash
        self._killer = _ProcessKiller(inner, operation) if isinstance(inner, RustInvoker) else None

    def close(self) -> None:
        if self._killer is not None:
            self._killer.close()

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        if self.crashes_left <= 0 or (self.when is not None and not self.when(event)):
            return self.inner.invoke(event, timeout_ms=timeout_ms)
        self.crashes_left -= 1
        if self._killer is not None:
            return self._invoke_killing_process(self._killer, event, timeout_ms)
        return self._invoke_patching_botocore(event, timeout_ms)

    def _crash(self, calls: int, cause: str) -> InvocationError:
        self.crashed.append(calls)
        return InvocationError(
            f"Runtime.ExitError: killed after {calls} {self.operation} calls ({cause})",
            error_type="Runtime.ExitError",
        )

    def _invoke_killing_process(
        self, killer: _ProcessKiller, event: dict[str, Any], timeout_ms: int
    ) -> Any:
        killer.arm(self.after_calls)
        try:
            result = self.inner.invoke(event, timeout_ms=timeout_ms)
        except InvocationError as exc:
            # Only a process that was signalled and then exited counts as killed; one that
            # failed on its own (before the limit, or on the refused calls after it) is
            # reported as the failure it was.
            killed_after = killer.killed_after_calls()
            if killed_after is None or exc.error_type != "Runtime.ExitError":
                raise
            raise self._crash(killed_after, "SIGKILL") from None
        finally:
            killer.disarm()
        killed_after = killer.killed_after_calls()
        if killed_after is not None:
            # Killed while it was posting its response: Lambda would report the crash.
            raise self._crash(killed_after, "SIGKILL")
        return result

    def _invoke_patching_botocore(self, event: dict[str, Any], timeout_ms: int) -> Any:
        import botocore.client

        # _make_api_call is private: botocore-stubs types only the public API.
        original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        state = {"calls": 0, "dead": False}
        lock = threading.Lock()
        operation = self.operation
        limit = self.after_calls

        def patched(client: Any, operation_name: str, api_params: Any) -> Any:
            with lock:
                if state["dead"]:
                    raise SimulatedCrash(f"killed after {state['calls']} {operation} calls")
            result = original(client, operation_name, api_params)
            if operation_name == operation:
                with lock:
                    state["calls"] += 1
                    if state["calls"] >= limit:
                        state["dead"] = True
            return result

        with _PATCH_LOCK:
            botocore.client.BaseClient._make_api_call = patched  # type: ignore[attr-defined]
            try:
                result = self.inner.invoke(event, timeout_ms=timeout_ms)
            except SimulatedCrash:
                raise self._crash(state["calls"], "simulated") from None
            finally:
                botocore.client.BaseClient._make_api_call = original  # type: ignore[attr-defined]
        if state["dead"]:
            # The limit was reached on the very last call: the process died right after it.
            raise self._crash(state["calls"], "simulated")
        return result
