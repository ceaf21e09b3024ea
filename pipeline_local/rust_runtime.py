"""Run a Rust Lambda `bootstrap` binary locally, behind a small Lambda Runtime API server.

`RustInvoker(binary_path, env)` implements the `Invoker` protocol of `pipeline_local.invokers`:

- The binary runs as one long-lived process (one execution environment): it is started on the
  first invocation (a cold start) and then serves every following invocation (warm), exactly as
  a `provided.al2023` function does. Its environment is `os.environ` with the function's own
  variables on top, plus what the Lambda service sets: `AWS_LAMBDA_RUNTIME_API`,
  `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`,
  `AWS_LAMBDA_LOG_GROUP_NAME`, `AWS_LAMBDA_LOG_STREAM_NAME`, `AWS_REGION`, `_HANDLER`,
  `LAMBDA_TASK_ROOT`, `TZ`.
- The Runtime API server (a threaded `http.server` on 127.0.0.1, free port) implements the
  2018-06-01 interface the `lambda_runtime` crate uses: `GET .../runtime/invocation/next`
  (blocks until an event is queued; headers `Lambda-Runtime-Aws-Request-Id`,
  `Lambda-Runtime-Deadline-Ms`, `Lambda-Runtime-Invoked-Function-Arn`,
  `Lambda-Runtime-Trace-Id`), `POST .../runtime/invocation/{id}/response`,
  `POST .../runtime/invocation/{id}/error` and `POST .../runtime/init/error`.
- With `sandbox=` (a `pipeline_local.sandbox.Sandbox`), the process runs inside that execution
  environment's cgroups: the CPU share and memory limit of its Lambda size. A process the OOM
  killer ends fails its invocation with `Runtime.OutOfMemory`, as Lambda reports it; the next
  invocation is a cold start. Without (the default) the process runs unlimited.
- `invoke(event, timeout_ms=...)` returns the decoded JSON response, or raises
  `InvocationError` when the function reports an error, its process exits, or the deadline
  passes. On a timeout the process is killed and the next invocation starts a fresh one (a new
  cold start), as Lambda does.

Everything the process writes to stdout/stderr (its JSON log lines and EMF metrics) is kept in
`log_lines` (and copied to `log_path` when given), so tests can inspect the logs.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_local.constants import ACCOUNT_ID, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS, REGION
from pipeline_local.invokers import InvocationError
from pipeline_local.runtime_api import Invocation, RuntimeServer, RuntimeState
from pipeline_local.sandbox import OUT_OF_MEMORY_ERROR_TYPE, OUT_OF_MEMORY_MESSAGE, Sandbox

# How long a freshly started process may take to ask for its first event (its init phase).
INIT_TIMEOUT_S = 10.0


class _LogPump:
    """Reads one process's stdout into `lines` (and `log_path`).

    A reader thread keeps the pipe from filling up while the process runs; `drain()` reads,
    under the same lock, everything the process has written so far. The invoker drains when an
    invocation ends: the lines a function wrote before it posted its response (its last log
    line, its EMF metrics) are then in `lines` before `invoke` returns, never attributed to
    the next invocation or lost."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        lines: list[str],
        log_path: Path | None,
    ) -> None:
        assert proc.stdout is not None
        # Our own descriptor, closed by us at end of file: never a reused number.
        self._fd = os.dup(proc.stdout.fileno())
        proc.stdout.close()
        os.set_blocking(self._fd, False)
        self._lines = lines
        self._sink = log_path.open("a", encoding="utf-8") if log_path else None
        self._partial = b""
        self._lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._run, name=f"logs-{proc.pid}", daemon=True).start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLHUP)
        while not self.closed:
            poller.poll(200)
            self.drain()

    def drain(self) -> None:
        """Take in whatever the process has written; at end of file, close."""
        with self._lock:
            while not self.closed:
                try:
                    chunk = os.read(self._fd, 1 << 16)
                except BlockingIOError:
                    return
                if not chunk:
                    self._close()
                    return
                self._partial += chunk
                *complete, self._partial = self._partial.split(b"\n")
                for raw in complete:
                    self._emit(raw)

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self._lines.append(line)
        if self._sink is not None:
            self._sink.write(line + "\n")
            self._sink.flush()

    def _close(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = b""
        self.closed = True
        os.close(self._fd)
        if self._sink is not None:
            self._sink.close()


def _kill_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


class RustInvoker:
    """A Rust `bootstrap` binary run as a Lambda execution environment on this machine."""

    def __init__(
        self,
        binary_path: str | os.PathLike[str],
        env: Mapping[str, str],
        *,
        function_name: str | None = None,
        memory_limit_in_mb: int = DEFAULT_MEMORY_MB,
        log_path: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.binary_path = Path(binary_path).resolve()
        if not os.access(self.binary_path, os.X_OK):
            raise FileNotFoundError(f"no executable bootstrap at {self.binary_path}")
        # What _HANDLER and LAMBDA_TASK_ROOT say (a subclass runs another kind of runtime).
        self.handler = "bootstrap"
        self.task_root = self.binary_path.parent
        # The execution environment's cgroups; closed with the invoker.
        self.sandbox = sandbox
        self._oom_kills_at_start = 0
        self.env = dict(env)
        self.function_name = function_name or self.binary_path.parent.name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.log_path = Path(log_path) if log_path else None
        self.function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"
        self.log_lines: list[str] = []
        self.cold_starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._logs: _LogPump | None = None
        # One Runtime API server per process: a request left blocked by a dead process can
        # never take an event meant for its successor.
        self._state = RuntimeState(self.function_arn)
        self._server: RuntimeServer | None = None
        self._invoke_lock = threading.Lock()
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], RustInvoker] | None = None

    # -- process management ------------------------------------------------------------------

    def _serve(self) -> RuntimeServer:
        self._state = RuntimeState(self.function_arn)
        server = RuntimeServer(self._state)
        thread = threading.Thread(
            target=server.serve_forever, name=f"runtime-api-{self.function_name}", daemon=True
        )
        thread.start()
        self._server = server
        return server

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        for _ in range(4):  # release /next requests still blocked in handler threads
            server.state.pending.put(None)
        server.shutdown()
        server.server_close()

    def process_env(self, runtime_api: str) -> dict[str, str]:
        log_stream = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        env = dict(os.environ)
        env.update({key: str(value) for key, value in self.env.items()})
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": runtime_api,
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_limit_in_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "_HANDLER": self.handler,
                "LAMBDA_TASK_ROOT": str(self.task_root),
                "LAMBDA_RUNTIME_DIR": str(self.task_root),
                "TZ": ":UTC",
            }
        )
        env.setdefault("AWS_REGION", env.get("AWS_DEFAULT_REGION", REGION))
        env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
        return env

    def command(self) -> list[str]:
        """The process's command line (a subclass runs another kind of runtime)."""
        return [str(self.binary_path)]

    def _start(self) -> subprocess.Popen[bytes]:
        self._kill()
        server = self._serve()
        host, port = str(server.server_address[0]), int(server.server_address[1])
        argv = self.command()
        if self.sandbox is not None:
            argv = self.sandbox.wrap(argv)
            self._oom_kills_at_start = self.sandbox.oom_kills()
        proc = subprocess.Popen(
            argv,
            env=self.process_env(f"{host}:{port}"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(self.task_root),
        )
        self.cold_starts += 1
        # The reader thread must not hold the invoker: an invoker that is no longer used is
        # garbage-collected and its process killed (weakref.finalize below).
        self._logs = _LogPump(proc, self.log_lines, self.log_path)
        self._proc = proc
        self._finalizer = weakref.finalize(self, _kill_process, proc)
        return proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._stop_server()

    def kill_process(self) -> bool:
        """SIGKILL the running process, as Lambda does on a timeout or an out-of-memory kill:
        nothing more runs in it, the invocation in flight fails with Runtime.ExitError, and
        the next invocation starts a fresh process (a cold start). True when a live process
        was signalled."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return False
        proc.kill()
        return True

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def close(self) -> None:
        self._kill()
        self._stop_server()
        if self.sandbox is not None:
            self.sandbox.close()

    def _out_of_memory(self) -> bool:
        """Whether the OOM killer ended the process (of this execution environment)."""
        return self.sandbox is not None and self.sandbox.oom_kills() > self._oom_kills_at_start

    def __enter__(self) -> RustInvoker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Invoker protocol ----------------------------------------------------------------

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        with self._invoke_lock:
            try:
                return self._invoke(event, timeout_ms)
            finally:
                # This invocation's output (also of a process that just died) is in log_lines.
                if self._logs is not None:
                    self._logs.drain()

    def _invoke(self, event: dict[str, Any], timeout_ms: int) -> Any:
        started = time.monotonic()
        proc = self._proc
        if proc is None or proc.poll() is not None:
            proc = self._start()
        item = Invocation(
            request_id=str(uuid.uuid4()),
            payload=json.dumps(event).encode(),
            deadline_ms=int(time.time() * 1000) + timeout_ms,
        )
        self._state.pending.put(item)
        limit = started + timeout_ms / 1000.0
        init_limit = started + INIT_TIMEOUT_S
        while not item.done.wait(0.02):
            if self._state.init_error is not None:
                err = self._state.init_error
                self._kill()
                raise InvocationError(
                    f"{err['errorType']}: {err['errorMessage']}",
                    error_type=str(err["errorType"]),
                    cause=err,
                )
            if proc.poll() is not None:
                code = proc.returncode
                self._kill()
                if self._out_of_memory():
                    raise InvocationError(
                        OUT_OF_MEMORY_MESSAGE, error_type=OUT_OF_MEMORY_ERROR_TYPE
                    )
                raise InvocationError(
                    f"Runtime exited with error: exit status {code}",
                    error_type="Runtime.ExitError",
                )
            now = time.monotonic()
            if not self._state.polled.is_set() and now > init_limit:
                self._kill()
                raise InvocationError(
                    "Runtime did not ask for an event during init", error_type="Runtime.InitError"
                )
            if now > limit:
                self._kill()
                raise InvocationError(
                    f"Task timed out after {timeout_ms / 1000:.2f} seconds",
                    error_type="TimeoutError",
                )
        if item.error is not None:
            raise InvocationError(
                f"{item.error['errorType']}: {item.error['errorMessage']}",
                error_type=str(item.error["errorType"]),
                cause=item.error,
            )
        raw = item.response or b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise InvocationError(
                f"Unable to decode response: {exc}", error_type="Runtime.MarshalError"
            ) from exc
