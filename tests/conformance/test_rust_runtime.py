"""Checks of pipeline_local.rust_runtime.RustInvoker (the local Lambda Runtime API).

Beside the delivery harness's own tests; the conformance suite exercises the invoker with the
real binaries. Here a small Python "bootstrap" stands in for a custom runtime, so every path
can be driven: responses, function errors, init errors, crashes, timeouts (kill and fresh cold
start), the Runtime API headers and the environment Lambda sets; and the process-level crash
of pipeline_local.faults.CrashingInvoker.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline_local.faults import CrashingInvoker
from pipeline_local.invokers import InvocationError
from pipeline_local.logs import LogSink
from pipeline_local.records import RecordingInvoker
from pipeline_local.rust_runtime import RustInvoker
from pipeline_local.wiring import FunctionConfig

FAKE_BOOTSTRAP = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys, time, urllib.request
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    if os.environ.get("FAIL_INIT"):
        req = urllib.request.Request(api + "/init/error", method="POST",
            data=json.dumps({{"errorType": "Init.Boom", "errorMessage": "bad config"}}).encode())
        urllib.request.urlopen(req)
        sys.exit(1)
    pid = os.getpid()
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            headers = {{k: r.headers[k] for k in (
                "Lambda-Runtime-Deadline-Ms", "Lambda-Runtime-Invoked-Function-Arn",
                "Lambda-Runtime-Trace-Id")}}
            event = json.loads(r.read())
        if event.get("sleep"):
            time.sleep(event["sleep"])
        failed_puts = 0
        for i in range(event.get("puts", 0)):
            try:  # a refused call is survived, as an SDK retry would: only a kill stops it
                urllib.request.urlopen(urllib.request.Request(
                    os.environ["AWS_ENDPOINT_URL"] + "/", data=json.dumps({{"n": i}}).encode(),
                    method="POST", headers={{"X-Amz-Target": "DynamoDB_20120810.PutItem"}})).read()
            except OSError:
                failed_puts += 1
        if event.get("exit"):
            sys.exit(event["exit"])
        if event.get("fail"):
            body = {{"errorType": "ValueError", "errorMessage": "boom"}}
            url = api + "/invocation/" + rid + "/error"
        else:
            env = {{k: v for k, v in os.environ.items()
                   if k.startswith(("AWS_LAMBDA_", "_HANDLER", "LAMBDA_", "AWS_REGION", "MY_"))}}
            body = {{"event": event, "headers": headers, "env": env, "pid": pid,
                    "failed_puts": failed_puts}}
            url = api + "/invocation/" + rid + "/response"
        for i in range(event.get("lines", 0)):  # a chatty invocation, its metrics last
            print(json.dumps({{"level": "INFO", "message": "line", "n": i}}))
        if "lines" in event:
            print(json.dumps({{"_aws": {{"Timestamp": 0, "CloudWatchMetrics": []}},
                              "invocation": event["invocation"]}}))
        print(json.dumps({{"level": "INFO", "message": "handled"}}), flush=True)
        urllib.request.urlopen(urllib.request.Request(url, data=json.dumps(body).encode(),
                                                      method="POST"))
    """
)


@pytest.fixture()
def bootstrap(tmp_path: Path) -> Path:
    path = tmp_path / "fn" / "bootstrap"
    path.parent.mkdir()
    path.write_text(FAKE_BOOTSTRAP.format(python=sys.executable))
    path.chmod(0o755)
    return path


def test_response_headers_and_environment(bootstrap: Path) -> None:
    with RustInvoker(bootstrap, {"MY_VAR": "x"}, function_name="fn-a") as invoker:
        before = int(time.time() * 1000)
        out = invoker.invoke({"hello": "world"}, timeout_ms=5000)
        assert out["event"] == {"hello": "world"}
        deadline = int(out["headers"]["Lambda-Runtime-Deadline-Ms"])
        assert before + 4000 <= deadline <= before + 6000
        assert out["headers"]["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:fn-a")
        assert out["headers"]["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
        env = out["env"]
        assert env["MY_VAR"] == "x" and env["AWS_LAMBDA_FUNCTION_NAME"] == "fn-a"
        assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512" and env["_HANDLER"] == "bootstrap"
        assert env["AWS_REGION"] and env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fn-a"
        # Warm: the same process serves the next invocation.
        assert invoker.invoke({}, timeout_ms=5000)["pid"] == out["pid"]
        assert invoker.cold_starts == 1
        assert any(json.loads(line)["message"] == "handled" for line in invoker.log_lines)


def test_function_error(bootstrap: Path) -> None:
    with RustInvoker(bootstrap, {}) as invoker:
        with pytest.raises(InvocationError) as info:
            invoker.invoke({"fail": True}, timeout_ms=5000)
        assert info.value.error_type == "ValueError" and "boom" in str(info.value)
        assert invoker.invoke({"ok": 1}, timeout_ms=5000)["event"] == {"ok": 1}


def test_timeout_kills_and_restarts(bootstrap: Path) -> None:
    with RustInvoker(bootstrap, {}) as invoker:
        first = invoker.invoke({}, timeout_ms=5000)["pid"]
        started = time.monotonic()
        with pytest.raises(InvocationError) as info:
            invoker.invoke({"sleep": 5}, timeout_ms=500)
        assert info.value.error_type == "TimeoutError"
        assert time.monotonic() - started < 3
        again = invoker.invoke({}, timeout_ms=5000)
        assert again["pid"] != first and invoker.cold_starts == 2


def test_crash_and_init_error(bootstrap: Path) -> None:
    with RustInvoker(bootstrap, {}) as invoker:
        with pytest.raises(InvocationError) as info:
            invoker.invoke({"exit": 3}, timeout_ms=5000)
        assert info.value.error_type == "Runtime.ExitError"
        assert invoker.invoke({}, timeout_ms=5000)["event"] == {}
    with RustInvoker(bootstrap, {"FAIL_INIT": "1"}) as invoker:
        with pytest.raises(InvocationError) as info:
            invoker.invoke({}, timeout_ms=5000)
        assert info.value.error_type == "Init.Boom"


class _CountingEndpoint(BaseHTTPRequestHandler):
    """Stands in for DynamoDB: answers every call with 200 and remembers its body."""

    received: list[bytes]

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture()
def endpoint() -> Iterator[tuple[str, list[bytes]]]:
    handler = type("Endpoint", (_CountingEndpoint,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.received
    finally:
        server.shutdown()
        server.server_close()


def test_crashing_invoker_kills_the_process_after_n_calls(
    bootstrap: Path, endpoint: tuple[str, list[bytes]]
) -> None:
    url, received = endpoint
    invoker = RustInvoker(bootstrap, {"AWS_ENDPOINT_URL": url})
    crash = CrashingInvoker(invoker, after_calls=3, crashes=1, when=lambda e: "puts" in e)
    try:
        assert invoker.env["AWS_ENDPOINT_URL"] != url  # its calls now go through the proxy
        assert crash.invoke({"warm": 1}, timeout_ms=5000)["event"] == {"warm": 1}
        first_pid = invoker.pid
        with pytest.raises(InvocationError) as info:
            crash.invoke({"puts": 10}, timeout_ms=5000)
        assert info.value.error_type == "Runtime.ExitError"
        assert "killed after 3 PutItem calls" in str(info.value)
        assert crash.crashed == [3]
        # Sequential calls: the third was stored, the fourth never sent.
        assert [json.loads(b)["n"] for b in received] == [0, 1, 2]
        # The next invocation is a fresh process and runs to the end.
        out = crash.invoke({"puts": 10}, timeout_ms=5000)
        assert out["pid"] != first_pid and invoker.cold_starts == 2
        assert out["failed_puts"] == 0  # disarmed: the proxy passes every call on
        assert len(received) == 13 and crash.crashed == [3]
    finally:
        crash.close()
        invoker.close()


def test_every_line_written_before_the_response_belongs_to_that_invocation(
    bootstrap: Path, tmp_path: Path
) -> None:
    """The process writes its last lines (its EMF metrics) just before it posts the response;
    they must be in log_lines when invoke returns, not arrive during the next invocation or
    never. The log file is a FIFO read slowly here, so that a reader thread that merely keeps
    up with the pipe falls behind, as it does on a loaded machine."""
    fifo = tmp_path / "slow-log"
    os.mkfifo(fifo)
    copied: list[bytes] = []

    def read_slowly() -> None:
        with open(fifo, "rb") as fh:
            while chunk := fh.read(4096):
                copied.append(chunk)
                time.sleep(0.002)

    reader = threading.Thread(target=read_slowly, daemon=True)
    reader.start()
    lines_per_invocation = 3000  # about 150 KB: more than a pipe holds
    with RustInvoker(bootstrap, {}, log_path=fifo) as invoker:
        for n in range(6):
            before = len(invoker.log_lines)
            invoker.invoke({"lines": lines_per_invocation, "invocation": n}, timeout_ms=20_000)
            mine = [json.loads(line) for line in invoker.log_lines[before:]]
            assert len(mine) == lines_per_invocation + 2, n
            assert mine[-2] == {"_aws": {"Timestamp": 0, "CloudWatchMetrics": []}, "invocation": n}
            assert mine[-1]["message"] == "handled"
    reader.join(10)
    assert b"".join(copied).count(b"\n") == 6 * (lines_per_invocation + 2)


def test_recording_invoker_gets_the_process_log_through_wrappers(
    bootstrap: Path, endpoint: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    """The dispatcher's record of an invocation (its log lines, its EMF metrics) also when the
    process is wrapped, as the fault tests wrap it."""
    url, _ = endpoint
    fn = FunctionConfig(
        name="fn-logs", arn="arn:aws:lambda:eu-central-1:123456789012:function:fn-logs",
        runtime="provided.al2023", handler="bootstrap", timeout_s=20, memory_mb=512,
        environment={}, role="",
    )  # fmt: skip
    sink = LogSink(clients=None, log_dir=tmp_path / "logs", cloudwatch=False)  # type: ignore[arg-type]
    invoker = RustInvoker(bootstrap, {"AWS_ENDPOINT_URL": url})
    crash = CrashingInvoker(invoker, after_calls=1, crashes=0)
    recording = RecordingInvoker(crash, fn, sink)
    try:
        for n in range(3):
            recording.invoke({"lines": 500, "invocation": n}, timeout_ms=20_000)
        assert [doc["invocation"] for doc in sink.emf] == [0, 1, 2]
        written = (tmp_path / "logs" / "fn-logs.log").read_text().splitlines()
        assert len(written) == 3 * 502
    finally:
        crash.close()
        invoker.close()
