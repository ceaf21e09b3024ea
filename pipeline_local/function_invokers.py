"""The one way to get an invoker for a described function: runtime, process model and Lambda size.

A function is described by its `pipeline_local.wiring.FunctionConfig` (what the emulator holds:
runtime, handler, MemorySize, timeout, environment; `pipeline_function(...)` describes one of
lib/'s two without an emulator, for the benchmarks) and run with an `Execution`:

- `IN_PROCESS`: a Python handler imported into this process (`PythonInvoker`); fastest, cannot
  be killed. A Rust function always runs as its own process.
- `PROCESS`: every function as its own process, as Lambda runs it (`PythonProcessInvoker` with
  AWS's runtime interface client, `RustInvoker` with the host-built bootstrap).
- `LAMBDA_SIZED`: `PROCESS`, held to the function's MemorySize: CPU quota MemorySize/1769 of a
  core and a memory limit of MemorySize (pipeline_local.sandbox, cgroup v1). An invocation over
  its memory is killed and reported as `Runtime.OutOfMemory`. Where the cgroup controllers are
  not writable, one line says so and the function runs as a plain `PROCESS`.

`Execution.from_env()` reads the harness switch (`PIPELINE_LAMBDA_SIZED`, constants.py).
Wrappers (fault injection, `records.RecordingInvoker`) go around what `make_invoker` returns.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline_local.constants import (
    BUILD_DIR,
    DEFAULT_TIMEOUT_MS,
    LAMBDA_SIZED_ENV,
    LIB_DIR,
    REGION,
    RUST_HOST_BIN_DIR_ENV,
)
from pipeline_local.function_config import deployed_code
from pipeline_local.host_builds import cargo_builds, first_executable
from pipeline_local.invokers import InvocationError, Invoker, PythonHandler, PythonInvoker
from pipeline_local.python_runtime import PythonProcessInvoker
from pipeline_local.rust_runtime import RustInvoker
from pipeline_local.sandbox import sandbox_for
from pipeline_local.wiring import FunctionConfig, WiringError


class Execution(enum.Enum):
    """How a function's code runs on this machine (see the module docstring)."""

    IN_PROCESS = "in-process"
    PROCESS = "process"
    LAMBDA_SIZED = "lambda-sized"

    @property
    def description(self) -> str:
        """What the choice means, for a line of output."""
        return {
            Execution.IN_PROCESS: "in-process (Python imported into this process; Rust as "
            "its own process), without Lambda's CPU and memory limits",
            Execution.PROCESS: "as their own processes, without Lambda's CPU and memory limits",
            Execution.LAMBDA_SIZED: "Lambda-sized: each as its own process with CPU quota "
            "MemorySize/1769 of a core and a memory limit of MemorySize (cgroup v1)",
        }[self]

    @classmethod
    def from_env(cls, default: Execution, environ: Mapping[str, str] = os.environ) -> Execution:
        """`PIPELINE_LAMBDA_SIZED=1` asks for LAMBDA_SIZED, `=0` for `default` without it
        (IN_PROCESS when `default` is LAMBDA_SIZED); unset keeps `default`."""
        value = environ.get(LAMBDA_SIZED_ENV, "").strip().lower()
        if value in ("1", "true", "yes"):
            return cls.LAMBDA_SIZED
        if value in ("0", "false", "no"):
            return cls.IN_PROCESS if default is cls.LAMBDA_SIZED else default
        if value:
            raise ValueError(f"{LAMBDA_SIZED_ENV}={value!r}: expected 1 or 0")
        return default


def rust_binary_for(
    fn: FunctionConfig, rust_bin_dir: Path | None = None, *, only_there: bool = False
) -> Path:
    """The host build of a Rust function's bootstrap (the deployed zip is aarch64): in
    `rust_bin_dir` first, then the usual places, unless `only_there` (a benchmark of one
    build must not measure another one silently)."""
    crate = "dlq-processor" if "dlq" in fn.name else "processor"
    candidates: list[Path] = []
    if rust_bin_dir:
        candidates += [rust_bin_dir / crate / "bootstrap", rust_bin_dir / crate]
    env_dir = os.environ.get(RUST_HOST_BIN_DIR_ENV)
    if not (rust_bin_dir and only_there):
        if env_dir:
            candidates += [Path(env_dir) / crate / "bootstrap", Path(env_dir) / crate]
        candidates += [
            BUILD_DIR / "lambda" / "rust-host" / crate / "bootstrap",
            *cargo_builds(crate),
        ]
    found = first_executable(candidates)
    if found is not None:
        return found
    raise WiringError(
        f"{fn.name} runs on {fn.runtime} (Rust): no host build of the `{crate}` crate found "
        f"(looked at {', '.join(str(c) for c in candidates)}). Build it with "
        f"`cargo build --release -p {crate}`."
    )


def python_handler(fn: FunctionConfig, code_dir: Path = LIB_DIR) -> PythonHandler:
    """A Python function's code: its handler ("module.function") under `code_dir`, its name and
    MemorySize."""
    module, _, attr = fn.handler.rpartition(".")
    if not module or not attr:
        raise WiringError(f"{fn.name}: handler {fn.handler!r} is not module.function")
    path = code_dir / (module.replace(".", "/") + ".py")
    if not path.exists():
        raise WiringError(f"{fn.name}: handler module {path} does not exist")
    return PythonHandler(path, attr, function_name=fn.name, memory_limit_in_mb=fn.memory_mb)


def pipeline_function(function: str, impl: str, *, memory_mb: int) -> FunctionConfig:
    """One of lib/'s two functions ("processor", "dlq_processor") described without an emulator:
    its Python handler (impl "python") or its Rust bootstrap (impl "rust"), on the runtime and
    with the handler lib/main.tf deploys it with (function_config.deployed_code)."""
    try:
        runtime, handler = deployed_code(function, impl)
    except LookupError as err:
        raise WiringError(f"{function}: {err}") from err
    return FunctionConfig.local(function, runtime, handler, memory_mb=memory_mb)


class RefusedInit:
    """A function whose execution environment cannot start: Lambda could not do what a cold
    start needs (decrypt the environment variables with the function's key). Every
    invocation fails, as on AWS (KMSAccessDeniedException)."""

    def __init__(self, function_name: str, reason: str) -> None:
        self.function_name = function_name
        self.reason = reason

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        raise InvocationError(
            f"KMSAccessDeniedException: Lambda was unable to decrypt the environment variables "
            f"because KMS access was denied: {self.reason}",
            error_type="KMSAccessDeniedException",
        )


def make_invoker(
    fn: FunctionConfig,
    env: Mapping[str, str],
    *,
    code_dir: Path = LIB_DIR,
    rust_bin_dir: Path | None = None,
    log_dir: Path | None = None,
    execution: Execution = Execution.IN_PROCESS,
    announce: Callable[[str], None] = print,
) -> Invoker:
    """The local stand-in for one execution environment of `fn`, chosen by its runtime and
    `execution` (MemorySize from `fn`, i.e. from the applied configuration)."""
    python = fn.runtime.startswith("python")
    if not python and not fn.runtime.startswith("provided"):
        raise WiringError(f"{fn.name}: runtime {fn.runtime!r} has no local invoker")
    code = python_handler(fn, code_dir) if python else None
    if code is not None and execution is Execution.IN_PROCESS:
        return PythonInvoker(code, env)
    sandbox = None
    if execution is Execution.LAMBDA_SIZED:
        sandbox = sandbox_for(fn.name, fn.memory_mb, announce=announce)
    if code is not None:
        log_path = (log_dir / f"{fn.name}.process.log") if log_dir else None
        return PythonProcessInvoker(code, env, log_path=log_path, sandbox=sandbox)
    binary = rust_binary_for(fn, rust_bin_dir)
    log_path = (log_dir / f"{fn.name}.rust.log") if log_dir else None
    return RustInvoker(
        binary,
        env,
        function_name=fn.name,
        memory_limit_in_mb=fn.memory_mb,
        log_path=log_path,
        sandbox=sandbox,
    )


def lambda_environment(
    fn: FunctionConfig,
    *,
    endpoint: str,
    credentials: Mapping[str, str] | None = None,
    region: str = REGION,
) -> dict[str, str]:
    """The function's variables plus what the Lambda service sets for every function."""
    creds = dict(credentials or {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    env = {
        **fn.environment,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
        "_HANDLER": fn.handler,
        "AWS_EC2_METADATA_DISABLED": "true",
        **creds,
    }
    if "AWS_SESSION_TOKEN" not in creds:
        env["AWS_SESSION_TOKEN"] = ""  # never inherit a stray token from this process
    return env
