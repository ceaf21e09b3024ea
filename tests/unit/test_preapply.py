"""tests/preapply.py's hand-over: which stacks applied ahead a fixture takes, and which it
leaves (then it applies its own, as without `make test`)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import preapply


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"moto")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(preapply, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(preapply, "WAIT_S", 5.0)
    for key in [k for k in preapply.os.environ if k.startswith("TF_VAR_")]:
        monkeypatch.delenv(key)
    return tmp_path


@pytest.fixture
def server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Something that answers on a port, and a process standing for the emulator's pid."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield httpd.server_address[1], proc
    finally:
        httpd.shutdown()
        proc.kill()
        proc.wait()


def _handover(build: Path, data: dict[str, object]) -> Path:
    path = build / "tf-test-stack" / preapply.HANDOVER_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_nothing_applied_ahead_is_none(build: Path) -> None:
    assert preapply.take("tf-test-stack", "python3.11") is None


def test_an_apply_whose_process_died_is_not_waited_for(build: Path) -> None:
    path = _handover(build, {"state": "applying", "pid": _dead_pid()})
    assert preapply.take("tf-test-stack", "python3.11") is None
    assert not path.exists()


def test_a_failed_apply_is_not_taken(build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _handover(build, {"state": "failed", "error": "TerraformError: boom"})
    assert preapply.take("tf-test-stack", "python3.11") is None
    assert not path.exists()
    assert "boom" in capsys.readouterr().out


def test_a_stack_whose_emulator_is_gone_is_not_taken(build: Path) -> None:
    ready = {"state": "ready", "port": 9, "pid": _dead_pid(), "runtime": "python3.11"}
    _handover(build, {**ready, "tf_vars": {}})
    assert preapply.take("tf-test-stack", "python3.11") is None


@pytest.mark.parametrize(
    ("runtime", "tf_vars"),
    [("rust", {}), ("python3.11", {"TF_VAR_max_file_bytes": "1048576"})],
    ids=["other-runtime", "other-variables"],
)
def test_a_stack_applied_otherwise_is_stopped_not_taken(
    build: Path,
    server: tuple[int, subprocess.Popen[bytes]],
    runtime: str,
    tf_vars: dict[str, str],
) -> None:
    port, emulator = server
    ready = {"state": "ready", "port": port, "pid": emulator.pid, "runtime": runtime}
    _handover(build, {**ready, "tf_vars": tf_vars})
    assert preapply.take("tf-test-stack", "python3.11") is None
    assert emulator.wait(timeout=15) is not None  # stopped, not left running


def test_the_matching_stack_is_taken_once(
    build: Path, server: tuple[int, subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, emulator = server
    path = _handover(
        build,
        {"state": "ready", "port": port, "pid": emulator.pid, "runtime": "rust", "tf_vars": {}},
    )
    (path.parent / "plan.json").write_text('{"format_version": "1.2"}')
    monkeypatch.setattr(preapply.Workdir, "outputs", lambda self: {"s3_bucket_name": "b"})
    taken = preapply.take("tf-test-stack", "rust")
    assert taken is not None
    assert (taken.emulator.port, taken.emulator.pid) == (port, emulator.pid)
    assert (taken.workdir.path, taken.workdir.lambda_runtime) == (path.parent, "rust")
    assert taken.plan == {"format_version": "1.2"}
    assert taken.outputs == {"s3_bucket_name": "b"}
    assert emulator.poll() is None  # still running: the fixture stops it when done
    assert preapply.take("tf-test-stack", "rust") is None
