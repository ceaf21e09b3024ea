"""Serve the Lambda Runtime API (2018-06-01) on loopback to one function process, event by event.

The process asks for its next event (`GET /runtime/invocation/next`) and posts the response or
the error of each (`POST /runtime/invocation/{id}/response|error`, or `/runtime/init/error`).
`RuntimeState` is the hand-off with the invoker (pipeline_local.rust_runtime.RustInvoker): it
puts `Invocation`s on `pending` and waits on each one's `done`.
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PREFIX = "/2018-06-01/runtime"


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    response: bytes | None = None
    error: dict[str, Any] | None = None


class RuntimeState:
    """What the HTTP handler threads share with the invoker."""

    def __init__(self, function_arn: str) -> None:
        self.function_arn = function_arn
        self.pending: queue.Queue[Invocation | None] = queue.Queue()
        self.active: dict[str, Invocation] = {}
        self.lock = threading.Lock()
        self.init_error: dict[str, Any] | None = None
        self.polled = threading.Event()  # the process asked for an event (init finished)


class _Handler(BaseHTTPRequestHandler):
    server: RuntimeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _reply(self, status: int, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        state = self.server.state
        if self.path != f"{API_PREFIX}/invocation/next":
            self._reply(HTTPStatus.NOT_FOUND, {"errorType": "NotFound", "errorMessage": self.path})
            return
        state.polled.set()
        item = state.pending.get()
        if item is None:  # shutting down
            self._reply(HTTPStatus.GONE, {"errorType": "ShuttingDown"})
            return
        with state.lock:
            state.active[item.request_id] = item
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(item.payload)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", item.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(item.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", state.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", _trace_id())
        self.end_headers()
        self.wfile.write(item.payload)

    def do_POST(self) -> None:
        state = self.server.state
        body = self._body()
        if self.path == f"{API_PREFIX}/init/error":
            state.init_error = _error_body(body, self.headers)
            self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        parts = self.path[len(API_PREFIX) :].strip("/").split("/")
        if (
            not self.path.startswith(API_PREFIX)
            or len(parts) != 3
            or parts[0] != "invocation"
            or parts[2] not in {"response", "error"}
        ):
            self._reply(HTTPStatus.NOT_FOUND, {"errorType": "NotFound", "errorMessage": self.path})
            return
        with state.lock:
            item = state.active.pop(parts[1], None)
        if item is None:
            self._reply(
                HTTPStatus.BAD_REQUEST,
                {"errorType": "InvalidRequestID", "errorMessage": "unknown request id"},
            )
            return
        if parts[2] == "response":
            item.response = body
        else:
            item.error = _error_body(body, self.headers)
        item.done.set()
        self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})


def _error_body(body: bytes, headers: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        parsed = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(parsed, dict):
        parsed = {"errorMessage": str(parsed)}
    parsed.setdefault("errorType", headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled")
    parsed.setdefault("errorMessage", "")
    return parsed


def _trace_id() -> str:
    epoch = f"{int(time.time()):08x}"
    return f"Root=1-{epoch}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"


class RuntimeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: RuntimeState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A killed process (timeout, close) leaves its /next request behind: not an error.
        pass
