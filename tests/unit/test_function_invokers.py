"""The one invoker factory: which invoker a described function gets, and how wrappers are found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline_local.constants import LAMBDA_SIZED_ENV, LIB_DIR
from pipeline_local.function_invokers import (
    Execution,
    make_invoker,
    pipeline_function,
    rust_binary_for,
)
from pipeline_local.invokers import (
    Invoker,
    ProcessLog,
    PythonInvoker,
    Sandboxed,
    Wrapping,
    close_layers,
    layers,
)
from pipeline_local.python_runtime import PythonProcessInvoker
from pipeline_local.rust_runtime import RustInvoker
from pipeline_local.sandbox import Sandbox
from pipeline_local.wiring import FunctionConfig, WiringError

HANDLER = "def lambda_handler(event, context):\n    return {'ok': True}\n"


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "fn_module.py").write_text(HANDLER)
    return tmp_path


def _python(memory_mb: int = 512) -> FunctionConfig:
    return FunctionConfig.local(
        "fn-py", "python3.11", "fn_module.lambda_handler", memory_mb=memory_mb
    )


def test_in_process_python_is_imported_here(code_dir: Path) -> None:
    invoker = make_invoker(_python(), {}, code_dir=code_dir)
    assert type(invoker) is PythonInvoker
    assert invoker.invoke({}) == {"ok": True}
    assert invoker.memory_limit_in_mb == 512


def test_process_python_runs_under_the_runtime_client(code_dir: Path) -> None:
    invoker = make_invoker(_python(256), {}, code_dir=code_dir, execution=Execution.PROCESS)
    assert isinstance(invoker, PythonProcessInvoker)
    assert isinstance(invoker, Sandboxed) and invoker.sandbox is None
    assert invoker.memory_limit_in_mb == 256


def test_lambda_sized_takes_the_memory_size_from_the_function(code_dir: Path) -> None:
    said: list[str] = []
    invoker = make_invoker(
        _python(256), {}, code_dir=code_dir, execution=Execution.LAMBDA_SIZED, announce=said.append
    )
    assert isinstance(invoker, Sandboxed)
    if Sandbox.available():
        assert invoker.sandbox is not None and invoker.sandbox.memory_mb == 256
        assert said == []
    else:  # the fallback runs the process unlimited and says so (once per process)
        assert invoker.sandbox is None
    close_layers(invoker)


def test_rust_is_always_its_own_process(tmp_path: Path) -> None:
    binary = tmp_path / "processor" / "bootstrap"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    fn = FunctionConfig.local("lambda-processor", "provided.al2023", "bootstrap", memory_mb=128)
    invoker = make_invoker(fn, {}, rust_bin_dir=tmp_path)
    assert isinstance(invoker, RustInvoker) and invoker.binary_path == binary.resolve()
    assert invoker.sandbox is None and invoker.memory_limit_in_mb == 128


def test_a_benchmark_can_insist_on_its_own_build(tmp_path: Path) -> None:
    """only_there: a directory without the build is an error, not a quiet fallback to the
    usual places (where another build may be)."""
    fn = FunctionConfig.local("lambda-processor", "provided.al2023", "bootstrap", memory_mb=128)
    with pytest.raises(WiringError, match="no host build of the `processor` crate"):
        rust_binary_for(fn, tmp_path, only_there=True)
    binary = tmp_path / "processor"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    assert rust_binary_for(fn, tmp_path, only_there=True) == binary


def test_bad_descriptions_are_wiring_errors(code_dir: Path) -> None:
    with pytest.raises(WiringError, match=r"not module\.function"):
        make_invoker(
            FunctionConfig.local("f", "python3.11", "nohandler", memory_mb=128),
            {},
            code_dir=code_dir,
        )
    with pytest.raises(WiringError, match="does not exist"):
        make_invoker(
            FunctionConfig.local("f", "python3.11", "missing.handler", memory_mb=128),
            {},
            code_dir=code_dir,
        )
    with pytest.raises(WiringError, match="no local invoker"):
        make_invoker(FunctionConfig.local("f", "java21", "x.y", memory_mb=128), {})


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        ("", Execution.IN_PROCESS, Execution.IN_PROCESS),
        ("", Execution.LAMBDA_SIZED, Execution.LAMBDA_SIZED),
        ("1", Execution.IN_PROCESS, Execution.LAMBDA_SIZED),
        ("0", Execution.LAMBDA_SIZED, Execution.IN_PROCESS),
        ("0", Execution.PROCESS, Execution.PROCESS),
    ],
)
def test_execution_from_the_environment(
    value: str, default: Execution, expected: Execution
) -> None:
    assert Execution.from_env(default, {LAMBDA_SIZED_ENV: value}) is expected


def test_execution_switch_rejects_other_values() -> None:
    with pytest.raises(ValueError, match=LAMBDA_SIZED_ENV):
        Execution.from_env(Execution.IN_PROCESS, {LAMBDA_SIZED_ENV: "maybe"})


class _Wrapper:
    def __init__(self, inner: Invoker) -> None:
        self.inner = inner
        self.function_name = inner.function_name
        self.closed = False

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = 1000) -> Any:
        return self.inner.invoke(event, timeout_ms=timeout_ms)

    def close(self) -> None:
        self.closed = True


def test_wrappers_are_found_through_the_protocol(code_dir: Path) -> None:
    base = make_invoker(_python(), {}, code_dir=code_dir)
    outer = _Wrapper(_Wrapper(base))
    assert isinstance(outer, Wrapping) and not isinstance(base, Wrapping)
    assert list(layers(outer)) == [outer, outer.inner, base]
    assert not any(isinstance(layer, ProcessLog) for layer in layers(outer))
    close_layers(outer)
    assert outer.closed and outer.inner.closed  # type: ignore[attr-defined]


def test_metric_namespace_comes_from_the_function_environment() -> None:
    fn = _python()
    fn.environment.pop("METRIC_NAMESPACE", None)
    with pytest.raises(WiringError, match="METRIC_NAMESPACE"):
        _ = fn.metric_namespace
    fn.environment["METRIC_NAMESPACE"] = "Payments/Staging"
    assert fn.metric_namespace == "Payments/Staging"


def test_the_pipeline_functions_as_lib_deploys_them() -> None:
    """The benchmarks' description of lib/'s two functions: the handlers lib/main.tf names."""
    for function in ("processor", "dlq_processor"):
        fn = pipeline_function(function, "python", memory_mb=256)
        # As its own process: nothing is imported or started until the first invocation.
        invoker = make_invoker(fn, {}, execution=Execution.PROCESS)
        assert isinstance(invoker, PythonProcessInvoker)
        assert invoker.code.module_path == LIB_DIR / f"{function}_function.py"
        assert invoker.code.handler == "lambda_handler"
        assert invoker.memory_limit_in_mb == 256
        close_layers(invoker)
        rust = pipeline_function(function, "rust", memory_mb=256)
        assert (rust.runtime, rust.handler) == ("provided.al2023", "bootstrap")
    with pytest.raises(WiringError, match="no implementation 'java'"):
        pipeline_function("processor", "java", memory_mb=256)
