"""What invoking one function's execution environment means locally, and its in-process form.

An `Invoker` is one deployed function: it is created once (a cold start) and then invoked many
times (warm invocations reuse module-level state, as Lambda reuses an execution environment).

- `PythonHandler` is a Python function's code (module file, handler, name, MemorySize), what
  both Python invokers run.
- `PythonInvoker` loads a handler module from its file, under a unique module name, with the
  function's environment applied to `os.environ` while the module is imported and while each
  invocation runs (module-level boto3 clients read the environment at import time).
- Wrappers (fault injection, recording) hold the invoker they wrap as `.inner` (the `Wrapping`
  protocol); `layers()` walks from the outermost wrapper to the execution environment.
- `PythonProcessInvoker` (pipeline_local/python_runtime.py) runs a Python handler as its own
  process, like the python3.11 runtime; `pipeline_local.function_invokers.make_invoker` is the
  one place that chooses an invoker for a function.
- `RustInvoker` (pipeline_local/rust_runtime.py): runs the function's `bootstrap` binary
  against a local Lambda Runtime API server and posts each event to it. It keeps the same
  contract: `invoke(event, timeout_ms=...)` returns the handler's decoded JSON response,
  or raises `InvocationError` when the function reports an error (or times out / crashes).

Timeouts: the deadline is real (`LambdaContext.get_remaining_time_in_millis()` counts down from
`timeout_ms`). An in-process Python handler cannot be killed, so an invocation that runs past
its deadline is reported as failed ("Task timed out") when it returns, like Lambda reports it;
its side effects up to then remain, as they would on AWS.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import boto3

from pipeline_local.constants import ACCOUNT_ID, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS, REGION

if TYPE_CHECKING:
    from pipeline_local.sandbox import Sandbox


class InvocationError(Exception):
    """The function invocation failed (the handler raised, timed out, or returned garbage)."""

    def __init__(self, message: str, *, error_type: str = "Unhandled", cause: Any = None):
        super().__init__(message)
        self.error_type = error_type
        self.cause = cause


@dataclass
class LambdaContext:
    """The subset of the Lambda context object that handlers use, with a real deadline."""

    function_name: str = "local-function"
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    memory_limit_in_mb: int = DEFAULT_MEMORY_MB
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    invoked_function_arn: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = (
                f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"
            )
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"
        if not self.log_stream_name:
            self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + self.timeout_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    @property
    def deadline_ms(self) -> int:
        """Deadline as epoch milliseconds (what the Runtime API's Lambda-Runtime-Deadline-Ms is)."""
        return int(time.time() * 1000) + self.get_remaining_time_in_millis()


@runtime_checkable
class Invoker(Protocol):
    """One deployed function that the delivery harness can invoke."""

    function_name: str

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        """Invoke synchronously; return the JSON-compatible response or raise InvocationError."""
        ...


@runtime_checkable
class Wrapping(Protocol):
    """An invoker around another one (fault injection, the Lambda service's recording)."""

    inner: Invoker


@runtime_checkable
class ProcessLog(Protocol):
    """An invoker whose function runs as its own process: its output, line by line."""

    log_lines: list[str]


@runtime_checkable
class Sandboxed(Protocol):
    """An invoker whose process may be held to its Lambda size (pipeline_local.sandbox)."""

    sandbox: Sandbox | None


@runtime_checkable
class Closeable(Protocol):
    """An invoker that holds something to release (a process, a cgroup, a server)."""

    def close(self) -> None: ...


def layers(invoker: Invoker) -> Iterator[Invoker]:
    """An invoker and what it wraps: the wrappers first, the execution environment last."""
    layer = invoker
    while True:
        yield layer
        if not isinstance(layer, Wrapping):
            return
        layer = layer.inner


def close_layers(invoker: Invoker) -> None:
    """Close every layer of an invoker that holds something (wrappers and environment)."""
    for layer in layers(invoker):
        if isinstance(layer, Closeable):
            layer.close()


_ENV_LOCK = threading.RLock()
_module_counter = itertools.count()


@contextlib.contextmanager
def applied_env(env: Mapping[str, str]) -> Iterator[None]:
    """Apply `env` on top of os.environ for the duration of the block, then restore."""
    with _ENV_LOCK:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update({key: str(value) for key, value in env.items()})
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def load_handler_module(
    path: Path, env: Mapping[str, str] | None = None, *, name: str | None = None
) -> ModuleType:
    """Import a handler file as a module of its own, as a runtime does at a cold start, with
    `env` over os.environ while its module-level code runs (the handlers read their environment
    then). Given a `name`, it stays in sys.modules under it; without one, it gets a fresh name
    and is registered only while it runs (dataclasses look their module up there), so that
    every caller gets its own copy. The one loader of handler files in this repository."""
    module_name = name or f"_lambda_{path.stem}_{next(_module_counter)}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load handler module from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    loaded = False
    try:
        with applied_env(env or {}):
            spec.loader.exec_module(module)
        loaded = True
    finally:
        # A failed import never stays registered; an unnamed one only while it ran.
        if not loaded or name is None:
            sys.modules.pop(module_name, None)
    return module


@dataclass(frozen=True)
class PythonHandler:
    """A Python function's code, as both Python invokers run it: the handler module's file, the
    function in it, and the function name (the module's by default) and MemorySize its context
    reports. Refuses a path that is not a .py file and a handler that is not a name."""

    module_path: Path
    handler: str = "lambda_handler"
    function_name: str = ""
    memory_limit_in_mb: int = DEFAULT_MEMORY_MB

    def __post_init__(self) -> None:
        path = Path(self.module_path).resolve()
        if not path.is_file() or path.suffix != ".py":
            raise FileNotFoundError(f"no Python handler module at {path}")
        if not self.handler.isidentifier():
            raise ValueError(f"handler must be a function name, got {self.handler!r}")
        object.__setattr__(self, "module_path", path)
        object.__setattr__(self, "function_name", self.function_name or path.stem)


class PythonInvoker:
    """A Python handler module loaded fresh from its file (one cold start per instance).

    The code gets its own boto3 default session: boto3's default session is process-wide and
    caches the credentials it resolved first, so the second handler module loaded in this
    process would sign with the first function's credentials (the first role's). Each invoker's
    default session is created under its own environment and swapped in while its module is
    imported and while it runs, as it would have its own process on Lambda."""

    def __init__(self, code: PythonHandler, env: Mapping[str, str]) -> None:
        self.code = code
        self.env = dict(env)
        self.function_name = code.function_name
        self.memory_limit_in_mb = code.memory_limit_in_mb
        self._boto_session: boto3.Session | None = None
        with self._own_boto_session():
            self.module = self._load()

    @contextlib.contextmanager
    def _own_boto_session(self) -> Iterator[None]:
        saved = boto3.DEFAULT_SESSION
        boto3.DEFAULT_SESSION = self._boto_session
        try:
            yield
        finally:
            self._boto_session = boto3.DEFAULT_SESSION
            boto3.DEFAULT_SESSION = saved

    def _load(self) -> ModuleType:
        # Every invoker gets its own copy of the module (its own module-level state).
        module = load_handler_module(self.code.module_path, self.env)
        if not callable(getattr(module, self.code.handler, None)):
            raise ImportError(f"{self.code.module_path} has no callable {self.code.handler}")
        return module

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        context = LambdaContext(
            function_name=self.function_name,
            timeout_ms=timeout_ms,
            memory_limit_in_mb=self.memory_limit_in_mb,
        )
        # Lambda hands the handler a freshly decoded copy of the JSON payload.
        payload = json.loads(json.dumps(event))
        handler = getattr(self.module, self.code.handler)
        with applied_env(self.env), self._own_boto_session():
            try:
                result = handler(payload, context)
            except Exception as exc:  # the function error, as Lambda reports it
                raise InvocationError(
                    f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__, cause=exc
                ) from exc
        if context.get_remaining_time_in_millis() <= 0:
            raise InvocationError(
                f"Task timed out after {timeout_ms / 1000:.2f} seconds", error_type="TimeoutError"
            )
        try:
            # The response must be JSON-serialisable, or Lambda reports a Runtime.MarshalError.
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise InvocationError(
                f"Unable to marshal response: {exc}", error_type="Runtime.MarshalError"
            ) from exc
