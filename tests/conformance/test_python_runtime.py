"""Checks of Lambda-sized local function processes (pipeline_local.python_runtime, .sandbox).

- `PythonProcessInvoker` runs the real lib/processor_function.py under awslambdaric, in its own
  process, against the moto server, with the CPU share and memory of its 512 MB size: the
  same `invoke(event, timeout_ms=...)` contract as PythonInvoker and RustInvoker.
- An invocation over its memory is killed, reported as Lambda reports it
  (`Runtime.OutOfMemory`), retried as an asynchronous invocation is retried, and the next
  invocation is a cold start; for Python handlers and for a custom runtime (`RustInvoker`).
- A timeout kills the process; a function error carries the exception's type.

The limits need the cgroup v1 controllers (root on this machine and CI); where they are not
usable, the tests that need them skip and say why.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_local.delivery import invoke_async, s3_event_for_object
from pipeline_local.emulator import Emulator
from pipeline_local.invokers import InvocationError, PythonHandler
from pipeline_local.python_runtime import PythonProcessInvoker
from pipeline_local.rust_runtime import RustInvoker
from pipeline_local.samples import bulk_file
from pipeline_local.sandbox import OUT_OF_MEMORY_ERROR_TYPE, Sandbox
from pipeline_local.scratch_stack import Stack, create_stack, delete_stack, processor_env

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSOR = REPO_ROOT / "lib" / "processor_function.py"
AVAILABLE = Sandbox.available()
needs_cgroups = pytest.mark.skipif(not AVAILABLE, reason=f"no cgroup v1 limits: {AVAILABLE.reason}")

# A handler that allocates (and writes) `hog` MiB when asked, once per marker file when given.
HANDLER = textwrap.dedent(
    """\
    import os, time
    def lambda_handler(event, context):
        marker = event.get("once")
        if event.get("hog") and not (marker and os.path.exists(marker)):
            if marker:
                open(marker, "w").close()
            data = b"x" * (event["hog"] << 20)
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("fail"):
            raise KeyError("no such thing")
        return {"pid": os.getpid(), "left_ms": context.get_remaining_time_in_millis(),
                "memory": context.memory_limit_in_mb, "request_id": context.aws_request_id}
    """
)

# The same as a custom runtime (the Runtime API loop a `bootstrap` runs), for RustInvoker.
BOOTSTRAP = textwrap.dedent(
    """\
    #!{python}
    import json, os, urllib.request
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(r.read())
        if event.get("hog"):
            data = b"x" * (event["hog"] << 20)
        body = json.dumps({{"pid": os.getpid()}}).encode()
        urllib.request.urlopen(urllib.request.Request(
            api + "/invocation/" + rid + "/response", data=body, method="POST"))
    """
)


@pytest.fixture()
def handler_module(tmp_path: Path) -> Path:
    path = tmp_path / "fn" / "hog_function.py"
    path.parent.mkdir()
    path.write_text(HANDLER)
    return path


@pytest.fixture()
def stack(emulator: Emulator) -> Iterator[Stack]:
    made = create_stack(emulator)
    try:
        yield made
    finally:
        delete_stack(made)


def _count(ddb: object, table: str) -> int:
    return int(ddb.scan(TableName=table, Select="COUNT")["Count"])  # type: ignore[attr-defined]


@needs_cgroups
def test_processor_runs_end_to_end_in_a_512_mb_process(stack: Stack) -> None:
    sample = bulk_file("incoming/sandboxed.csv", 40)
    stack.s3.put_object(Bucket=stack.bucket, Key=sample.key, Body=sample.body)
    env = processor_env(stack, "conformance")
    event = s3_event_for_object(stack.s3, stack.bucket, sample.key)
    box = Sandbox(512, name="processor")
    code = PythonHandler(PROCESSOR, function_name="processor")
    with PythonProcessInvoker(code, env, sandbox=box) as invoker:
        started = time.monotonic()
        cold = invoke_async(invoker, event, timeout_ms=60_000)
        cold_s = time.monotonic() - started
        assert cold.error is None and cold.attempts == 1
        (result,) = cold.response["files"]
        assert (result["rows"], result["stored"], result["invalid"]) == (40, 40, 0)
        assert _count(stack.ddb, stack.table) == 40
        # In its cgroups while it runs; the same process serves the next invocation (warm).
        pid = invoker.pid
        assert pid is not None
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        assert f":memory:/pipeline-local/{box.group}\n" in cgroups
        started = time.monotonic()
        warm = invoker.invoke(event, timeout_ms=60_000)
        warm_s = time.monotonic() - started
        assert warm["files"][0]["duplicates"] == 40 and invoker.pid == pid
        assert invoker.cold_starts == 1
        # Its JSON log lines and EMF metrics arrive as the runtime writes them.
        assert any('"_aws"' in line for line in invoker.log_lines)
        print(f"processor at 512 MB: cold invocation {cold_s:.2f} s, warm {warm_s:.2f} s")
    assert not box.memory_path.exists()


@needs_cgroups
def test_out_of_memory_is_killed_reported_retried_and_cold_started(
    handler_module: Path, tmp_path: Path
) -> None:
    box = Sandbox(128, name="oom-python")
    code = PythonHandler(handler_module, memory_limit_in_mb=128)
    with PythonProcessInvoker(code, {}, sandbox=box) as invoker:
        first = invoker.invoke({}, timeout_ms=10_000)
        assert first["memory"] == "128"
        with pytest.raises(InvocationError) as info:
            invoker.invoke({"hog": 300}, timeout_ms=20_000)
        assert info.value.error_type == OUT_OF_MEMORY_ERROR_TYPE == "Runtime.OutOfMemory"
        assert "signal: killed" in str(info.value)
        assert invoker.pid is None  # the process is gone
        # Within its memory the next invocation runs, in a fresh process (a cold start).
        again = invoker.invoke({"hog": 20}, timeout_ms=10_000)
        assert again["pid"] != first["pid"] and invoker.cold_starts == 2
        # Lambda retries an asynchronous invocation that failed so: here the retry fits.
        marker = tmp_path / "ran-out-once"
        result = invoke_async(invoker, {"hog": 300, "once": str(marker)}, timeout_ms=20_000)
        assert result.error is None and result.attempts == 2 and invoker.cold_starts == 3
        assert box.oom_kills() == 2


@needs_cgroups
def test_custom_runtime_out_of_memory(tmp_path: Path) -> None:
    bootstrap = tmp_path / "fn" / "bootstrap"
    bootstrap.parent.mkdir()
    bootstrap.write_text(BOOTSTRAP.format(python=sys.executable))
    bootstrap.chmod(0o755)
    box = Sandbox(128, name="oom-custom")
    with RustInvoker(bootstrap, {}, memory_limit_in_mb=128, sandbox=box) as invoker:
        first = invoker.invoke({}, timeout_ms=10_000)["pid"]
        with pytest.raises(InvocationError) as info:
            invoker.invoke({"hog": 300}, timeout_ms=20_000)
        assert info.value.error_type == "Runtime.OutOfMemory"
        assert invoker.invoke({}, timeout_ms=10_000)["pid"] != first
        assert invoker.cold_starts == 2
    assert not box.cpu_path.exists() and not box.memory_path.exists()


def test_unsandboxed_process_is_not_limited(handler_module: Path) -> None:
    """Without a sandbox (the fallback) the same 300 MiB invocation succeeds."""
    with PythonProcessInvoker(PythonHandler(handler_module, memory_limit_in_mb=128), {}) as invoker:
        assert invoker.invoke({"hog": 300}, timeout_ms=20_000)["memory"] == "128"


def test_timeout_kills_the_process_and_errors_carry_their_type(handler_module: Path) -> None:
    with PythonProcessInvoker(PythonHandler(handler_module, function_name="fn-t"), {}) as invoker:
        first = invoker.invoke({}, timeout_ms=10_000)
        assert 5_000 < first["left_ms"] <= 10_000
        started = time.monotonic()
        with pytest.raises(InvocationError) as info:
            invoker.invoke({"sleep": 30}, timeout_ms=1_000)
        assert info.value.error_type == "TimeoutError"
        assert time.monotonic() - started < 5
        assert invoker.pid is None
        with pytest.raises(InvocationError) as info:
            invoker.invoke({"fail": True}, timeout_ms=10_000)
        assert info.value.error_type == "KeyError" and "no such thing" in str(info.value)
        again = invoker.invoke({}, timeout_ms=10_000)
        assert again["pid"] != first["pid"] and invoker.cold_starts == 2
        assert again["request_id"] != first["request_id"]


def test_bad_handler_paths_are_refused(tmp_path: Path, handler_module: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Python handler module"):
        PythonHandler(tmp_path / "missing.py")
    with pytest.raises(ValueError, match="handler must be a function name"):
        PythonHandler(handler_module, handler="x; import os")
    # A handler the module does not define fails at init, as Lambda reports it.
    with PythonProcessInvoker(PythonHandler(handler_module, handler="nope"), {}) as invoker:
        with pytest.raises(InvocationError) as info:
            invoker.invoke({}, timeout_ms=10_000)
        assert info.value.error_type == "Runtime.HandlerNotFound"
