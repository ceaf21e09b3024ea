"""Command line for the dispatcher: print the emulator's wiring, or run every new upload.

After `make up`:
    python -m pipeline_local.dispatcher_cli wiring   # print what the emulator says
    python -m pipeline_local.dispatcher_cli run      # dispatch new uploads, drain the queues

`run` runs every function through the authorization gateway (pipeline_local.authz.gateway):
each with its execution role's credentials, every AWS call decided by the model; a refused call
is listed and makes the exit status 1. `--lambda-sized` runs each function as its own process
with its MemorySize's CPU share and memory (pipeline_local.sandbox).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline_local.clients import Clients
from pipeline_local.constants import BUILD_DIR
from pipeline_local.dispatcher import Dispatcher
from pipeline_local.function_invokers import Execution
from pipeline_local.terraform_wiring import dead_letter_targets_from_terraform
from pipeline_local.wiring import WiringError, read_wiring


def _emulator_clients(state: Path) -> Clients:
    from pipeline_local.emulator import load_state

    if not state.exists():
        raise SystemExit(f"no emulator state at {state}: run `make up` first")
    return Clients(endpoint=load_state(state).endpoint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the deployed Lambda functions locally")
    parser.add_argument("action", choices=["wiring", "run"])
    parser.add_argument("--state", type=Path, default=BUILD_DIR / "emulator.json")
    parser.add_argument("--workdir", type=Path, default=BUILD_DIR / "tf-emulator")
    parser.add_argument("--timeout-ms", type=int, default=None)
    parser.add_argument("--logs", type=Path, default=BUILD_DIR / "dispatcher-logs")
    parser.add_argument(
        "--dispatched",
        type=Path,
        default=BUILD_DIR / "dispatched.json",
        help="object versions already dispatched (kept between runs)",
    )
    parser.add_argument(
        "--lambda-sized",
        action="store_true",
        help="run each function as its own process with its MemorySize's CPU share and memory",
    )
    args = parser.parse_args(argv)
    clients = _emulator_clients(args.state)
    fallback = dead_letter_targets_from_terraform(args.workdir)
    wiring = read_wiring(clients, dead_letter_fallback=fallback)
    if args.action == "wiring":
        print("\n".join(wiring.describe()))
        return 0
    from pipeline_local.authz.gateway import Gateway
    from pipeline_local.authz.store import EmulatorPolicyStore

    store = EmulatorPolicyStore(clients, terraform_workdir=args.workdir)
    gateway = Gateway(clients.endpoint, store).start()
    dispatcher = Dispatcher(
        clients,
        wiring,
        timeout_ms=args.timeout_ms,
        log_dir=args.logs,
        log=print,
        dispatched_state=args.dispatched,
        gateway=gateway,
        execution=Execution.LAMBDA_SIZED if args.lambda_sized else Execution.IN_PROCESS,
    )
    try:
        report = dispatcher.run()
        dispatcher.publish_lambda_metrics()
        dispatcher.sink.publish_emf()
    except WiringError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        dispatcher.close()
        gateway.stop()
    refused = gateway.unexpected_denials()
    for line in Gateway.summarize(refused):
        print(f"REFUSED {line}", file=sys.stderr)
    for outcome in report.delivered:
        files = (outcome.response or {}).get("files", []) if outcome.result.error is None else []
        for f in files:
            print(
                f"{f.get('key')}: rows {f.get('rows')}, stored {f.get('stored')}, "
                f"duplicates {f.get('duplicates')}, invalid {f.get('invalid')}, "
                f"retried {f.get('retried')}"
                + (f", FILE ERROR {f['file_error']}" if f.get("file_error") else "")
            )
    depths = dispatcher.queue_depths()
    print(f"done in {report.seconds:.1f} s; queues: {depths}; logs in {args.logs}")
    return 0 if not any(depths.values()) and not refused else 1


if __name__ == "__main__":
    raise SystemExit(main())
