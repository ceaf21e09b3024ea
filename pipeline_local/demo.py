"""The whole pipeline on this machine, end to end, in one command (`make demo`).

    python -m pipeline_local.demo [--runtime python3.11|rust] [--keep] [--scale 1.0] [--seed N]
                                  [--dir build/demo]

1. starts the emulator (moto server) and applies the real Terraform configuration of lib/ to it
   (the same working copy mechanism as `make up`; max_file_bytes is set to 1 MiB so that the
   FILE_TOO_LARGE sample stays small);
2. starts the authorization gateway (pipeline_local.authz.gateway) in front of the emulator:
   every request of the producer, the functions, their event source mappings and the services
   acting for them is decided there against the applied policies, Deny statements and
   conditions included, with the calls AWS makes on the caller's behalf (KMS);
3. uploads the generated sample files as a producer role (created in the emulator with the
   stack's `producer_policy_json` output) over HTTPS, and runs the pipeline through the
   dispatcher, which reads its wiring from the emulator (each function with its own role);
4. prints, per file, what became of every row, the errors table grouped by code, and the alarms
   with the metric values that drive them;
5. destroys the stack and stops the emulator, or with --keep leaves both running for
   `make down`.

Exit status 1, with a banner, when any row is unaccounted for (rows in != stored + duplicates +
error rows, a row written twice, or a message left on a queue), when the results differ from
what design.md prescribes for the samples, or when the model refused any call (listing
principal, action, resource and why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from pipeline_local import accounting, file_status
from pipeline_local import samples as sample_files
from pipeline_local.accounting import banner, print_errors_table, print_file_status
from pipeline_local.alarms import evaluate_alarms, notify_alarm_actions
from pipeline_local.authz.gateway import Gateway
from pipeline_local.authz.store import EmulatorPolicyStore
from pipeline_local.clients import Clients
from pipeline_local.constants import BUILD_DIR, LAMBDA_SIZED_ENV, REPO_ROOT, TF_VAR_MAX_FILE_BYTES
from pipeline_local.dispatcher import Dispatcher
from pipeline_local.emulator import alive, load_state, start_emulator
from pipeline_local.function_config import variable_defaults
from pipeline_local.function_invokers import Execution
from pipeline_local.stores import empty_bucket
from pipeline_local.terraform import AppliedLib, TerraformError, apply_lib
from pipeline_local.terraform_wiring import dead_letter_targets_from_terraform
from pipeline_local.wiring import WiringError, read_wiring

DEMO_DIR = BUILD_DIR / "demo"
STATE_FILE = BUILD_DIR / "emulator.json"
KEEP_WORKDIR = BUILD_DIR / "tf-emulator"
# How the demo runs the functions unless told otherwise (README: figures for each choice).
DEMO_EXECUTION = Execution.LAMBDA_SIZED

_T0 = time.monotonic()


def say(message: str = "") -> None:
    print(message, flush=True)


def step(message: str) -> None:
    say(f"\n[{time.monotonic() - _T0:6.1f} s] {message}")


@contextmanager
def ticking(label: str, every_s: float = 15.0) -> Iterator[None]:
    """Print a line every `every_s` seconds while a long step runs."""
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(every_s):
            say(f"    ... {label}: {time.monotonic() - started:.0f} s")

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


# --------------------------------------------------------------------------------------------
# Stack lifecycle


@dataclass
class Stack(AppliedLib):
    """lib/ applied for the demo, and where the demo keeps what it leaves behind."""

    kept_state: bool
    # Where this run keeps its emulator log and the functions' logs (and, not kept, its
    # Terraform working copy).
    demo_dir: Path


def start_stack(runtime: str, keep: bool, demo_dir: Path = DEMO_DIR) -> Stack:
    if keep:
        if STATE_FILE.exists() and alive(load_state(STATE_FILE).pid):
            raise SystemExit(
                f"an emulator is already running ({STATE_FILE}): `make down` first, or use it "
                "with `python -m pipeline_local.dispatcher_cli run`"
            )
        workdir_path = KEEP_WORKDIR
    else:
        workdir_path = demo_dir / "tf"
    demo_dir.mkdir(parents=True, exist_ok=True)
    step("starting the emulator (moto server)")
    emu = start_emulator(log_path=demo_dir / "emulator.log")
    if keep:
        STATE_FILE.write_text(json.dumps({"port": emu.port, "pid": emu.pid}))
    say(f"    {emu.endpoint} (pid {emu.pid}, log {_rel(demo_dir / 'emulator.log')})")
    os.environ[TF_VAR_MAX_FILE_BYTES] = str(sample_files.SAMPLE_MAX_FILE_BYTES)
    step(f"terraform init, plan, apply of lib/ (lambda_runtime={runtime}) in {_rel(workdir_path)}")
    default_mib = int(variable_defaults()["max_file_bytes"]) // 2**20
    say(f"    -var max_file_bytes={sample_files.SAMPLE_MAX_FILE_BYTES} (default {default_mib} MiB)")
    t0 = time.monotonic()
    try:
        with ticking("terraform"):
            # Whatever goes wrong (or Ctrl-C), the emulator goes away with it.
            applied = apply_lib(emu, workdir_path, runtime)
    except BaseException:
        if keep:
            STATE_FILE.unlink(missing_ok=True)
        raise
    resources = len(applied.workdir.state_resources())
    say(f"    applied {resources} resources in {time.monotonic() - t0:.0f} s")
    if keep:
        outputs = json.dumps(applied.outputs, indent=2, sort_keys=True)
        (BUILD_DIR / "outputs.json").write_text(outputs)
    return Stack(**vars(applied), kept_state=keep, demo_dir=demo_dir)


def stop_stack(stack: Stack) -> bool:
    step("terraform destroy, emulator stop")
    t0 = time.monotonic()
    ok = True
    try:
        bucket = str(stack.outputs["s3_bucket_name"])
        removed = empty_bucket(Clients(stack.emulator.endpoint)("s3"), bucket)
        say(
            f"    emptied s3://{bucket} first ({removed} versions): against moto the provider's "
            "force_destroy cannot delete keys containing '+'"
        )
        with ticking("terraform destroy"):
            stack.workdir.run(
                "destroy", "-no-color", "-auto-approve", "-parallelism=20", capture=True
            )
        say(f"    destroyed and stopped in {time.monotonic() - t0:.0f} s")
    except (TerraformError, ClientError) as err:
        ok = False
        banner(
            [
                "TERRAFORM DESTROY FAILED (the emulator is stopped anyway)",
                *str(err).splitlines()[-10:],
            ]
        )
    finally:
        stack.emulator.stop()
        if stack.kept_state:
            STATE_FILE.unlink(missing_ok=True)
    return ok


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# Output


def print_alarms(clients: Clients, gateway: Gateway) -> bool:
    """Alarms as moto stores them and as CloudWatch would evaluate them (a firing one notifies
    its topic through the model); True when none fires."""
    quiet = True
    evaluations = evaluate_alarms(clients("cloudwatch"))
    for alarm in evaluations:
        say(f"    {alarm.name}")
        say(f"        metric     {alarm.metric} (period {alarm.period_s} s)")
        say(
            f"        rule       {alarm.comparison} {alarm.threshold:g} in "
            f"{alarm.datapoints_to_alarm} of {alarm.evaluation_periods} periods"
        )
        points = ", ".join(f"{t:%H:%M} -> {v:.2f}" for t, v in alarm.datapoints) or "none"
        say(f"        datapoints {points}")
        say(f"        emulator   {alarm.emulator_state} (moto never evaluates alarms)")
        say(f"        CloudWatch {alarm.state}: {alarm.reason}")
        quiet = quiet and alarm.state != "ALARM"
    for name, topic, allowed, reason in notify_alarm_actions(evaluations, gateway, clients):
        say(f"    {name} -> {topic}: {'published' if allowed else 'REFUSED: ' + reason}")
    return quiet


def print_pipeline_metrics(clients: Clients, namespace: str, environment: str) -> None:
    import datetime as dt

    cw = clients("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    names = ["RecordsProcessed", "RecordsDuplicate", "RecordsInvalid", "RecordsRetried",
             "FilesFailed", "ErrorsStored"]  # fmt: skip
    queries = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": name,
                    "Dimensions": [{"Name": "Environment", "Value": environment}],
                },
                "Period": 3600,
                "Stat": "Sum",
            },
        }
        for i, name in enumerate(names)
    ]
    result = cw.get_metric_data(
        MetricDataQueries=queries,
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now + dt.timedelta(minutes=5),
    )["MetricDataResults"]
    values = {r["Id"]: sum(r["Values"]) for r in result}
    say("    " + ", ".join(f"{n} {values.get(f'm{i}', 0):g}" for i, n in enumerate(names)))


# --------------------------------------------------------------------------------------------
# The run


PRODUCER_ROLE = "pipeline-local-producer"


def run_pipeline(
    stack: Stack,
    samples: sample_files.SampleSet,
    runtime: str,
    execution: Execution = DEMO_EXECUTION,
) -> bool:
    clients = Clients(stack.emulator.endpoint)
    store = EmulatorPolicyStore(clients, terraform_workdir=stack.workdir.path)
    gateway = Gateway(stack.emulator.endpoint, store).start()
    try:
        ok = _run_through(gateway, stack, samples, runtime, execution)
    finally:
        gateway.stop()
    refused = gateway.unexpected_denials()
    if refused:
        banner(
            [f"THE AUTHORIZATION MODEL REFUSED {len(refused)} CALL(S)", *Gateway.summarize(refused)]
        )
    return ok and not refused


def _run_through(
    gateway: Gateway,
    stack: Stack,
    samples: sample_files.SampleSet,
    runtime: str,
    execution: Execution,
) -> bool:
    clients = Clients(stack.emulator.endpoint)
    bucket = str(stack.outputs["s3_bucket_name"])

    step("bucket policy (evaluated by the model, conditions included)")
    policy = json.loads(clients("s3").get_bucket_policy(Bucket=bucket)["Policy"])
    statements = (
        policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    )
    for st in statements:
        say(f"    {st['Effect']:5} {st.get('Sid')}  {json.dumps(st.get('Condition', {}))}")

    step("authorization gateway")
    producer_policy = stack.outputs.get("producer_policy_json")
    if producer_policy is None:
        raise WiringError("the stack has no producer_policy_json output (lib/main.tf)")
    producer_arn = gateway.role_with_policy(PRODUCER_ROLE, producer_policy)
    producer = gateway.clients(gateway.assume_role(producer_arn, "demo-producer"))
    s3 = producer("s3")
    say(f"    {gateway.https_endpoint} (TLS, CA {gateway.ca_bundle}) and {gateway.http_endpoint}")
    say(f"    producer: {producer_arn} with the stack's producer_policy_json, over HTTPS")

    step("wiring, as the emulator reports it")
    wiring = read_wiring(
        clients, dead_letter_fallback=dead_letter_targets_from_terraform(stack.workdir.path)
    )
    for line in wiring.describe():
        say(f"    {line}")

    step(f"uploading {len(samples.files)} sample files (seed {samples.seed})")
    versions: dict[str, str] = {}
    for f in samples.files:
        versions[f.key] = s3.put_object(Bucket=bucket, Key=f.key, Body=f.body)["VersionId"]
    say(
        f"    {sum(len(f.body) for f in samples.files) / 1e6:.1f} MB to s3://{bucket}/"
        f"{sample_files.PREFIX}; {sum(1 for f in samples.files if not f.dispatched)} of them "
        "match no notification filter (.txt, upper-case .CSV)"
    )

    step("dispatching: S3 notifications (async invoke), then the queues' event source mappings")
    say(f"    functions run {execution.description}")
    dispatcher = Dispatcher(
        clients,
        wiring,
        gateway=gateway,
        log_dir=stack.demo_dir / "logs",
        log=say,
        # Kept stacks: `python -m pipeline_local.dispatcher_cli run` continues from here.
        dispatched_state=BUILD_DIR / "dispatched.json" if stack.kept_state else None,
        execution=execution,
    )
    try:
        pending = dispatcher.pending_events()
        say(f"    {len(pending)} new object versions match a notification")
        for f in samples.files:
            if f.delete_before_processing:
                clients("s3").delete_object(Bucket=bucket, Key=f.key, VersionId=versions[f.key])
                say(
                    f"    deleted {f.key} v{versions[f.key][:8]} after its notification "
                    "(-> OBJECT_NOT_FOUND)"
                )
        t0 = time.monotonic()
        dispatcher.deliver(pending)
        dlq_peak = dispatcher.sample_queue_metrics()
        say(f"    queue depth after the S3 events: {dlq_peak}")
        dispatcher.drain()
        dispatcher.sample_queue_metrics()
        data_seconds = time.monotonic() - t0
        dispatcher.publish_lambda_metrics()
        emf = dispatcher.sink.publish_emf()
        invocations = Counter(r.function_name for r in dispatcher.records)
        failed = sum(1 for r in dispatcher.records if r.error)
        per_function = ", ".join(f"{k} {v}" for k, v in invocations.items())
        say(
            f"    {sum(invocations.values())} invocations ({per_function}),"
            f" {failed} failed, {data_seconds:.1f} s; {emf} EMF metric values published; "
            f"logs in {_rel(stack.demo_dir / 'logs')}"
        )
        seconds = dispatcher.file_seconds()
        depths = dispatcher.queue_depths()
    finally:
        dispatcher.close()

    step("per file: what became of every row")
    ledger = sample_files.Ledger()
    uploads = [
        sample_files.Upload(f, versions[f.key], ledger.process(f)) for f in samples.dispatched
    ]
    acc, items, error_rows = accounting.collect(
        clients("dynamodb"),
        str(stack.outputs["transactions_table_name"]),
        str(stack.outputs["errors_table_name"]),
        uploads,
        depths,
    )
    # The per-file table is the status table's (one GetItem per file); the scans above stay as
    # the cross-check that every row is accounted for.
    statuses = file_status.read_statuses(
        clients("dynamodb"), str(stack.outputs["file_status_table_name"]), acc.files
    )
    acc.status_problems = file_status.problems(acc.files, statuses)
    print_file_status(acc, statuses, seconds)
    currencies = Counter(str(i.get("currency")) for i in items)
    say(
        f"    transactions table: {len(items)} items in {len(currencies)} currencies "
        f"(JPY {currencies.get('JPY', 0)}, KWD {currencies.get('KWD', 0)}, "
        f"EUR {currencies.get('EUR', 0)}, ...)"
    )

    step(f"errors table: {len(error_rows)} rows, grouped by code")
    print_errors_table(error_rows)

    step("alarms (and the metrics that drive them)")
    print_alarms(clients, gateway)
    allowed = sum(gateway.allowed.values())
    say(
        f"\n    authorization: {allowed} calls allowed by the model "
        f"({len(gateway.allowed)} distinct principal/action/resource), "
        f"{len(gateway.denials)} refused"
    )
    namespace = str(stack.outputs["metric_namespace"])
    say(f"    pipeline metrics from the handlers' EMF lines (namespace {namespace}):")
    print_pipeline_metrics(
        clients,
        namespace,
        str(
            wiring.function(str(stack.outputs["processor_function_name"])).environment.get(
                "ENVIRONMENT", "dev"
            )
        ),
    )

    ok = acc.ok and acc.matches_model
    accounting.report(acc, runtime)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=["python3.11", "rust"], default="python3.11")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--scale", type=float, default=1.0, help="size of the bulk sample files")
    parser.add_argument("--seed", type=int, default=sample_files.DEFAULT_SEED)
    parser.add_argument(
        "--lambda-sized",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run each function as its own process with its MemorySize's CPU share and memory "
        f"(default: {DEMO_EXECUTION.value}; also {LAMBDA_SIZED_ENV}=1/0)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEMO_DIR,
        help="where the run keeps its emulator log, the functions' logs and (without --keep) its"
        " Terraform working copy; two demos at once need one each (`make test` runs both"
        f" implementations side by side). Default {_rel(DEMO_DIR)}",
    )
    args = parser.parse_args(argv)
    if args.lambda_sized is None:
        execution = Execution.from_env(DEMO_EXECUTION)
    else:
        execution = Execution.LAMBDA_SIZED if args.lambda_sized else Execution.IN_PROCESS

    samples = sample_files.generate(args.seed, scale=args.scale)
    say(
        f"demo: {sum(len(f.rows) for f in samples.dispatched)} rows in {len(samples.dispatched)} "
        f"files (+{len(samples.files) - len(samples.dispatched)} that no notification matches), "
        f"runtime {args.runtime}"
    )
    try:
        stack = start_stack(args.runtime, args.keep, args.dir.resolve())
    except TerraformError as err:
        banner(["TERRAFORM FAILED", *str(err).splitlines()[-20:]])
        return 1
    ok = False
    try:
        ok = run_pipeline(stack, samples, args.runtime, execution)
    except WiringError as err:
        banner(["THE PIPELINE CANNOT RUN LOCALLY", str(err)])
    finally:
        if args.keep:
            step("kept running (--keep)")
            say(f"    emulator   {stack.emulator.endpoint} (state {_rel(STATE_FILE)})")
            say(f"    terraform  {_rel(stack.workdir.path)}; outputs in build/outputs.json")
            say('    use it     eval "$(.venv/bin/python -m pipeline_local.emulator env)"')
            say(f"               aws s3 ls s3://{stack.outputs['s3_bucket_name']}/ --recursive")
            say("               .venv/bin/python -m pipeline_local.dispatcher_cli run")
            say("    tear down  make down")
            stack.emulator.proc = None  # leave it running after this process exits
        else:
            ok = stop_stack(stack) and ok
    say(f"\ndemo finished in {time.monotonic() - _T0:.0f} s: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
