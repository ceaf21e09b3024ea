"""Run a Lambda handler locally, the way the Lambda service would call it.

An `Invoker` is one deployed function: it is created once (a cold start) and then invoked many
times (warm invocations reuse module-level state, as Lambda reuses an execution environment).

- `PythonInvoker` loads a handler module from its file, under a unique module name, with the
  function's environment applied to `os.environ` while the module is imported and while each
  invocation runs (module-level boto3 clients read the environment at import time).
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
from typing import Any, Protocol, runtime_checkable

REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"
DEFAULT_TIMEOUT_MS = 300_000
DEFAULT_MEMORY_MB = 512


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


class PythonInvoker:
    """A Python handler module loaded fresh from its file (one cold start per instance)."""

    def __init__(
        self,
        module_path: str | os.PathLike[str],
        env: Mapping[str, str],
        *,
        handler: str = "lambda_handler",
        function_name: str | None = None,
        memory_limit_in_mb: int = DEFAULT_MEMORY_MB,
    ) -> None:
        self.module_path = Path(module_path).resolve()
        self.env = dict(env)
        self.handler_name = handler
        self.function_name = function_name or self.module_path.stem
        self.memory_limit_in_mb = memory_limit_in_mb
        self.module = self._load()

    def _load(self) -> ModuleType:
        name = f"_lambda_{self.module_path.stem}_{next(_module_counter)}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(name, self.module_path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load handler module from {self.module_path}")
        module = importlib.util.module_from_spec(spec)
        # Registered while executing so that dataclasses and the like can resolve the module;
        # removed afterwards so that every invoker gets its own copy.
        sys.modules[name] = module
        try:
            with applied_env(self.env):
                spec.loader.exec_module(module)
        finally:
            sys.modules.pop(name, None)
        if not callable(getattr(module, self.handler_name, None)):
            raise ImportError(f"{self.module_path} has no callable {self.handler_name}")
        return module

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        context = LambdaContext(
            function_name=self.function_name,
            timeout_ms=timeout_ms,
            memory_limit_in_mb=self.memory_limit_in_mb,
        )
        # Lambda hands the handler a freshly decoded copy of the JSON payload.
        payload = json.loads(json.dumps(event))
        handler = getattr(self.module, self.handler_name)
        with applied_env(self.env):
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


# The Rust implementation's invoker, RustInvoker(bootstrap_path, env, *, function_name=...),
# lives in pipeline_local/rust_runtime.py: it runs the `bootstrap` binary against a local Lambda
# Runtime API server and keeps the same `invoke(event, timeout_ms=...)` contract.
