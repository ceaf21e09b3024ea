"""Start and stop the local AWS emulator (moto server) on a free loopback port.

Used by the tests, the Makefile (through the CLI below) and the demo. Everything that talks to
the emulator gets its address from `Emulator.aws_env()`, i.e. the standard `AWS_ENDPOINT_URL`
variable, so the same code runs unchanged against AWS.

CLI:
    python -m pipeline_local.emulator start --state build/emulator.json
    python -m pipeline_local.emulator stop --state build/emulator.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_local.constants import REGION

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def aws_env_for(endpoint: str) -> dict[str, str]:
    """Environment that points boto3, aws-sdk-rust and Terraform at the emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class Emulator:
    """A running moto server, owned by this process (proc set) or found through a state file."""

    port: int
    pid: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def aws_env(self) -> dict[str, str]:
        return aws_env_for(self.endpoint)

    def _post(self, path: str, body: bytes = b"") -> bytes:
        # Without a content type urllib sends a form, and moto then reads an empty body.
        req = urllib.request.Request(
            self.endpoint + path,
            data=body,
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bytes(resp.read())

    def reset(self) -> None:
        """Wipe every resource in the emulator."""
        self._post("/moto-api/reset")

    def set_auth_enforcement(self, enforce: bool) -> None:
        """Turn moto's IAM enforcement on (every following request checked) or off."""
        self._post("/moto-api/reset-auth", b"0" if enforce else b"inf")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and alive(self.pid):
            time.sleep(0.1)
        if alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether process `pid` is running (one of another user counts; a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def spawn_server(
    cmd: list[str], log_path: Path | None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a server child process, its output appended to `log_path` (discarded without)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    finally:
        if not isinstance(out, int):  # a log file, not subprocess.DEVNULL
            out.close()


def wait_ready(
    what: str,
    endpoint: str,
    proc: subprocess.Popen[bytes],
    log: Path | None,
    probe: Callable[[], object],
    *,
    timeout_s: float,
    poll_s: float,
) -> None:
    """Return once `probe` (a request to the server) connects. Raises with the log's tail when
    the process exits first, and kills it when `timeout_s` passes without an answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"{what} exited with code {proc.returncode}: {tail}")
        try:
            probe()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(poll_s)
    proc.kill()
    raise RuntimeError(f"{what} did not answer on {endpoint} within {timeout_s} s")


def probe_moto(endpoint: str, timeout_s: float = 2) -> None:
    """Raise OSError unless the moto server at `endpoint` answers. It asks for moto's dashboard
    page (10 kB, milliseconds): its data.json holds every resource, about 4 MB and 3 s once an
    applied stack's IAM managed policies are loaded."""
    with urllib.request.urlopen(endpoint + "/moto-api/", timeout=timeout_s):
        return


def start_emulator(port: int | None = None, log_path: Path | None = None) -> Emulator:
    """Start `moto_server` as a child process on a free loopback port and wait for it."""
    port = port or free_port()
    env = dict(os.environ)
    # Attaching AWS-managed policies (AWSLambdaBasicExecutionRole, ...) needs moto to know them.
    env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    env.setdefault("AWS_DEFAULT_REGION", REGION)
    # Lambda code never runs inside moto here (no Docker); the local dispatcher runs it.
    env.setdefault("MOTO_DOCKER_NETWORK_MODE", "host")
    # moto_server with its bucket-policy check off: the authorization model decides
    # (pipeline_local.authz), with the policies' conditions, which moto ignores.
    cmd = [sys.executable, "-m", "pipeline_local.authz.moto_server", "-H", HOST, "-p", str(port)]
    repo_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH")) if p)
    proc = spawn_server(cmd, log_path, env)
    endpoint = f"http://{HOST}:{port}"
    wait_ready(
        "moto server",
        endpoint,
        proc,
        log_path,
        lambda: probe_moto(endpoint),
        timeout_s=READY_TIMEOUT_S,
        poll_s=0.2,
    )
    return Emulator(port=port, pid=proc.pid, proc=proc)


def load_state(state: Path) -> Emulator:
    data = json.loads(state.read_text())
    return Emulator(port=int(data["port"]), pid=int(data["pid"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "env"])
    parser.add_argument("--state", type=Path, default=Path("build/emulator.json"))
    parser.add_argument("--log", type=Path, default=Path("build/emulator.log"))
    args = parser.parse_args(argv)

    if args.action == "start":
        if args.state.exists():
            old = load_state(args.state)
            if alive(old.pid):
                print(f"emulator already running at {old.endpoint} (pid {old.pid})")
                return 0
        args.state.parent.mkdir(parents=True, exist_ok=True)
        emu = start_emulator(log_path=args.log)
        # Detach: the Makefile stops it later through the state file.
        emu.proc = None
        args.state.write_text(json.dumps({"port": emu.port, "pid": emu.pid}))
        print(f"emulator started at {emu.endpoint} (pid {emu.pid}, log {args.log})")
    elif args.action == "stop":
        if not args.state.exists():
            print("emulator not running")
            return 0
        emu = load_state(args.state)
        emu.stop()
        args.state.unlink()
        print(f"emulator stopped (pid {emu.pid})")
    else:
        emu = load_state(args.state)
        for key, value in emu.aws_env().items():
            print(f"export {key}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
