"""Start and stop the DynamoDB-faithful endpoint (crates/ddb-faithful) on a free loopback port.

The endpoint models AWS's per-partition and on-demand table capacity, GSI back-pressure,
latency and throttle answers. It runs either in front of an upstream DynamoDB API (the moto
server, for e2e: `upstream=emulator.endpoint`) or on its own in-memory store (`memory=True`,
for benchmarks). Point a DynamoDB client at `FaithfulDynamoDB.endpoint`, e.g. through
`AWS_ENDPOINT_URL_DYNAMODB`.

CLI:
    python -m pipeline_local.ddb_faithful start --memory --state build/ddb-faithful.json
    python -m pipeline_local.ddb_faithful start --upstream http://127.0.0.1:5000 --state ...
    python -m pipeline_local.ddb_faithful stop --state build/ddb-faithful.json
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pipeline_local.constants import DDB_FAITHFUL_BIN_ENV
from pipeline_local.emulator import HOST, Emulator, free_port, spawn_server, wait_ready
from pipeline_local.host_builds import cargo_builds, first_executable

READY_TIMEOUT_S = 30.0
BINARY = "ddb-faithful"


def binary_path() -> Path:
    """The host build of the endpoint: $DDB_FAITHFUL_BIN, else target/{release,debug}."""
    candidates: list[Path] = []
    if os.environ.get(DDB_FAITHFUL_BIN_ENV):
        candidates.append(Path(os.environ[DDB_FAITHFUL_BIN_ENV]))
    candidates += cargo_builds(BINARY)
    found = first_executable(candidates)
    if found is not None:
        return found
    raise FileNotFoundError(
        f"no {BINARY} binary (looked at {', '.join(str(c) for c in candidates)}); "
        f"build it with `cargo build --release -p {BINARY}`"
    )


class FaithfulDynamoDB(Emulator):
    """A running endpoint: a loopback server process like the emulator (same endpoint and
    stop), with its own admin calls."""

    def _call(self, method: str, path: str) -> dict[str, Any]:
        req = urllib.request.Request(
            self.endpoint + path, data=b"" if method == "POST" else None, method=method
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def stats(self) -> dict[str, Any]:
        """Admitted/throttled counts by operation and reason, consumed units per table/index."""
        return self._call("GET", "/_faithful/stats")

    def reset(self) -> None:
        """Forget capacity state and counters (tables start again as new on-demand tables)."""
        self._call("POST", "/_faithful/reset")

    def advance(self, ms: int) -> int:
        """Move a `clock="manual"` endpoint's clock forward; returns the clock in ms."""
        return int(self._call("POST", f"/_faithful/advance?ms={int(ms)}")["clock_ms"])

    def set_auth_enforcement(self, enforce: bool) -> None:
        raise NotImplementedError("IAM enforcement is the emulator's; call it on the emulator")


def start_ddb_faithful(
    *,
    upstream: str | None = None,
    memory: bool = False,
    latency: str = "4:15",
    clock: str = "real",
    threads: int = 1,
    port: int | None = None,
    log_path: Path | None = None,
    extra_args: list[str] | None = None,
) -> FaithfulDynamoDB:
    """Start the endpoint as a child process and wait until it answers."""
    if (upstream is None) == (not memory):
        raise ValueError("give exactly one of upstream=URL or memory=True")
    port = port or free_port()
    cmd = [str(binary_path()), "--listen", f"{HOST}:{port}", "--latency", latency, "--clock", clock]
    cmd += ["--threads", str(threads)]
    cmd += ["--memory"] if memory else ["--upstream", str(upstream)]
    cmd += extra_args or []
    proc = spawn_server(cmd, log_path)
    ddb = FaithfulDynamoDB(port=port, pid=proc.pid, proc=proc)
    wait_ready(
        BINARY,
        ddb.endpoint,
        proc,
        log_path,
        lambda: ddb._call("GET", "/_faithful/health"),
        timeout_s=READY_TIMEOUT_S,
        poll_s=0.05,
    )
    return ddb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--state", type=Path, default=Path("build/ddb-faithful.json"))
    parser.add_argument("--log", type=Path, default=Path("build/ddb-faithful.log"))
    parser.add_argument("--upstream")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--latency", default="4:15")
    args = parser.parse_args(argv)

    if args.action == "start":
        args.state.parent.mkdir(parents=True, exist_ok=True)
        ddb = start_ddb_faithful(
            upstream=args.upstream, memory=args.memory, latency=args.latency, log_path=args.log
        )
        ddb.proc = None  # detach: stopped later through the state file
        args.state.write_text(json.dumps({"port": ddb.port, "pid": ddb.pid}))
        print(f"{BINARY} started at {ddb.endpoint} (pid {ddb.pid}, log {args.log})")
    else:
        if not args.state.exists():
            print(f"{BINARY} not running")
            return 0
        data = json.loads(args.state.read_text())
        FaithfulDynamoDB(port=int(data["port"]), pid=int(data["pid"])).stop()
        args.state.unlink()
        print(f"{BINARY} stopped (pid {data['pid']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
