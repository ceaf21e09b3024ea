"""Run the deployed pipeline's Lambda functions locally, wired exactly as the emulator says.

The emulator (moto server) stores the functions, the bucket notifications and the event source
mappings that Terraform applied, but never runs Lambda code. The `Dispatcher` does what the
Lambda and S3 services would do, reading every piece of wiring from the emulator's own APIs:

- `read_wiring()`: the bucket notification configuration (function ARN, prefix/suffix filters,
  events), each function's runtime, handler, environment, timeout and memory
  (GetFunctionConfiguration), its asynchronous invoke configuration (MaximumRetryAttempts from
  GetFunctionEventInvokeConfig; 2 when there is none, as on AWS), its dead-letter target
  (DeadLetterConfig), the event source mappings (queue -> function, batch size,
  FunctionResponseTypes, state) and every mapped queue's visibility timeout and redrive policy.
  moto 5.2.1 drops a function's DeadLetterConfig (CreateFunction accepts it, nothing returns
  it), so that one attribute can come from the Terraform state instead; the wiring says where
  each value came from.
- S3 notifications: the emulator sends none that Python can see, so the dispatcher lists the
  bucket's object versions and delivers one `ObjectCreated:Put` event (built by
  `pipeline_local.delivery`, keys URL-encoded as S3 does, with the versionId) for every version
  it has not dispatched yet that matches a notification's filters, oldest first.
- Asynchronous invocation (how S3 invokes): a function error is retried up to the function's
  MaximumRetryAttempts, then the original event goes to the function's dead-letter queue.
- Event source mappings: `pipeline_local.delivery.QueuePoller`s, drained until every mapped
  queue is empty (ReportBatchItemFailures, visibility, redrive by the queue itself).
- What the Lambda service adds around the code: a context whose remaining time counts down from
  the function's timeout (a shorter override is allowed for tests), the function's environment
  plus the variables Lambda sets, stdout shipped to the function's log group, Embedded Metric
  Format lines turned into metrics, and AWS/Lambda Invocations/Errors/Duration metrics.

CLI (after `make up`):
    python -m pipeline_local.dispatcher wiring   # print what the emulator says
    python -m pipeline_local.dispatcher run      # dispatch new uploads, drain the queues

`run` runs every function through the authorization gateway (pipeline_local.authz.gateway):
each with its execution role's credentials, every AWS call decided by the model; a refused call
is listed and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import io
import json
import os
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from pipeline_local.delivery import (
    AsyncResult,
    DrainStats,
    QueuePoller,
    drain,
    invoke_async,
    queue_depth,
    s3_event_for_object,
)
from pipeline_local.invokers import DEFAULT_TIMEOUT_MS, InvocationError, Invoker, PythonInvoker

if TYPE_CHECKING:
    from pipeline_local.authz.gateway import Gateway

REPO_ROOT = Path(__file__).resolve().parent.parent
LIB_DIR = REPO_ROOT / "lib"
BUILD_DIR = REPO_ROOT / "build"
REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"
# Lambda's default for asynchronous invocation when no event invoke config exists.
DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
# Host builds of the Rust functions, by crate (the deployed zips hold aarch64 binaries).
RUST_CRATES = {"dlq-processor": "dlq-processor", "processor": "processor"}

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class WiringError(RuntimeError):
    """The emulator's configuration cannot be run as it stands."""


# --------------------------------------------------------------------------------------------
# Clients


@dataclass
class Clients:
    """boto3 clients for one emulator endpoint (the operator's own, not a function's)."""

    endpoint: str
    access_key: str = "test"
    secret_key: str = "test"
    session_token: str | None = None
    region: str = REGION
    verify: str | bool | None = None  # CA bundle for an HTTPS endpoint (the authz gateway)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                aws_session_token=self.session_token,
                verify=self.verify,
                config=BotoConfig(
                    retries={"mode": "standard", "max_attempts": 5},
                    # moto server mis-handles gzip-compressed PutMetricData bodies.
                    disable_request_compression=True,
                ),
            )
        return self._cache[service]


# --------------------------------------------------------------------------------------------
# Wiring, as the emulator reports it


@dataclass(frozen=True)
class Notification:
    """One LambdaFunctionConfiguration of a bucket's notification configuration."""

    bucket: str
    config_id: str
    function_arn: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str, event_name: str = "s3:ObjectCreated:Put") -> bool:
        """S3's rule: the event is listed (or its wildcard), and the key filters match
        (case-sensitively)."""
        family = event_name.rsplit(":", 1)[0] + ":*"
        if event_name not in self.events and family not in self.events:
            return False
        return key.startswith(self.prefix) and key.endswith(self.suffix)


@dataclass
class FunctionConfig:
    name: str
    arn: str
    runtime: str
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    role: str
    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age_s: int | None = None
    retry_attempts_from: str = "default (no event invoke config)"
    dead_letter_target_arn: str | None = None
    dead_letter_from: str = "none"


@dataclass
class QueueConfig:
    name: str
    url: str
    arn: str
    visibility_timeout_s: int
    redrive_target_arn: str | None = None
    max_receive_count: int | None = None


@dataclass
class MappingConfig:
    uuid: str
    queue_arn: str
    function_arn: str
    batch_size: int
    report_batch_item_failures: bool
    enabled: bool


@dataclass
class Wiring:
    notifications: list[Notification]
    functions: dict[str, FunctionConfig]  # by unqualified ARN
    queues: dict[str, QueueConfig]  # by ARN
    mappings: list[MappingConfig]

    @property
    def buckets(self) -> list[str]:
        return sorted({n.bucket for n in self.notifications})

    def function(self, name_or_arn: str) -> FunctionConfig:
        for fn in self.functions.values():
            if name_or_arn in (fn.name, fn.arn):
                return fn
        raise KeyError(name_or_arn)

    def queue_by_name(self, name: str) -> QueueConfig:
        for queue in self.queues.values():
            if queue.name == name:
                return queue
        raise KeyError(name)

    def describe(self) -> list[str]:
        """Human-readable lines, one fact per line."""
        out: list[str] = []
        for n in self.notifications:
            out.append(
                f"s3://{n.bucket} {'/'.join(n.events)} prefix={n.prefix!r} suffix={n.suffix!r}"
                f" -> {_fn_name(n.function_arn)} (async, id {n.config_id})"
            )
        for m in self.mappings:
            queue = self.queues.get(m.queue_arn)
            redrive = ""
            if queue and queue.redrive_target_arn:
                redrive = (
                    f", redrive to {_arn_name(queue.redrive_target_arn)} after "
                    f"{queue.max_receive_count} receives"
                )
            out.append(
                f"sqs {_arn_name(m.queue_arn)} -> {_fn_name(m.function_arn)} (batch {m.batch_size}"
                f"{', ReportBatchItemFailures' if m.report_batch_item_failures else ''}"
                f", visibility {queue.visibility_timeout_s if queue else '?'} s{redrive}"
                f"{'' if m.enabled else ', DISABLED'})"
            )
        for fn in self.functions.values():
            dlq = (
                f", dead-letter {_arn_name(fn.dead_letter_target_arn)} ({fn.dead_letter_from})"
                if fn.dead_letter_target_arn
                else ", no dead-letter target"
            )
            out.append(
                f"function {fn.name}: {fn.runtime} {fn.handler}, timeout {fn.timeout_s} s, "
                f"{fn.memory_mb} MB, async retries {fn.maximum_retry_attempts}{dlq}, "
                f"env {sorted(fn.environment)}"
            )
        return out


def _arn_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _fn_name(arn: str) -> str:
    # arn:aws:lambda:region:account:function:name[:qualifier]
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


def lambda_service_session(function_name: str) -> str:
    """The role-session name the Lambda service acts with for a function (its event source
    mappings' polling, dead-letter sends, log shipping); the code's session is the function's
    name."""
    return f"awslambda-{function_name}"[:64]


def _unqualified(arn: str) -> str:
    return ":".join(arn.split(":")[:7])


def _notifications(s3: Any, bucket: str) -> list[Notification]:
    conf = s3.get_bucket_notification_configuration(Bucket=bucket)
    out: list[Notification] = []
    for entry in conf.get("LambdaFunctionConfigurations", []):
        rules = {
            r["Name"].lower(): r["Value"]
            for r in entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        }
        out.append(
            Notification(
                bucket=bucket,
                config_id=entry.get("Id", ""),
                function_arn=entry["LambdaFunctionArn"],
                events=tuple(entry.get("Events", [])),
                prefix=rules.get("prefix", ""),
                suffix=rules.get("suffix", ""),
            )
        )
    return out


def _queue_config(sqs: Any, arn: str) -> QueueConfig:
    _, _, _, _region, account, name = arn.split(":", 5)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else {}
    return QueueConfig(
        name=name,
        url=url,
        arn=attrs.get("QueueArn", arn),
        visibility_timeout_s=int(attrs.get("VisibilityTimeout", 30)),
        redrive_target_arn=redrive.get("deadLetterTargetArn"),
        max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
    )


def _function_config(lam: Any, arn: str, dead_letter_fallback: Mapping[str, str]) -> FunctionConfig:
    conf = lam.get_function_configuration(FunctionName=arn)
    fn = FunctionConfig(
        name=conf["FunctionName"],
        arn=_unqualified(conf["FunctionArn"]),
        runtime=conf.get("Runtime") or "",
        handler=conf.get("Handler") or "",
        timeout_s=int(conf.get("Timeout") or 3),
        memory_mb=int(conf.get("MemorySize") or 128),
        environment=dict(conf.get("Environment", {}).get("Variables", {})),
        role=conf.get("Role", ""),
    )
    try:
        invoke_conf = lam.get_function_event_invoke_config(FunctionName=fn.name)
        if invoke_conf.get("MaximumRetryAttempts") is not None:
            fn.maximum_retry_attempts = int(invoke_conf["MaximumRetryAttempts"])
            fn.retry_attempts_from = "GetFunctionEventInvokeConfig"
        if invoke_conf.get("MaximumEventAgeInSeconds") is not None:
            fn.maximum_event_age_s = int(invoke_conf["MaximumEventAgeInSeconds"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    target = conf.get("DeadLetterConfig", {}).get("TargetArn")
    if target:
        fn.dead_letter_target_arn, fn.dead_letter_from = target, "GetFunctionConfiguration"
    elif fn.name in dead_letter_fallback:
        fn.dead_letter_target_arn = dead_letter_fallback[fn.name]
        fn.dead_letter_from = "Terraform working copy: moto 5.2.1 drops DeadLetterConfig"
    return fn


def read_wiring(
    clients: Clients,
    *,
    buckets: Sequence[str] | None = None,
    dead_letter_fallback: Mapping[str, str] | None = None,
) -> Wiring:
    """Everything the dispatcher needs, from the emulator's APIs.

    `dead_letter_fallback` (function name -> target ARN) is consulted only for functions whose
    configuration has no DeadLetterConfig (see the module docstring)."""
    s3, sqs, lam = clients("s3"), clients("sqs"), clients("lambda")
    names = list(buckets) if buckets else [b["Name"] for b in s3.list_buckets()["Buckets"]]
    notifications = [n for bucket in names for n in _notifications(s3, bucket)]
    mappings: list[MappingConfig] = []
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for m in page["EventSourceMappings"]:
            if not m.get("EventSourceArn", "").startswith("arn:aws:sqs:"):
                continue
            mappings.append(
                MappingConfig(
                    uuid=m["UUID"],
                    queue_arn=m["EventSourceArn"],
                    function_arn=_unqualified(m["FunctionArn"]),
                    batch_size=int(m.get("BatchSize") or 10),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (m.get("FunctionResponseTypes") or []),
                    enabled=m.get("State", "Enabled") in ("Enabled", "Enabling", "Updating"),
                )
            )
    fallback = dict(dead_letter_fallback or {})
    arns = {_unqualified(n.function_arn) for n in notifications} | {
        m.function_arn for m in mappings
    }
    functions = {arn: _function_config(lam, arn, fallback) for arn in sorted(arns)}
    queue_arns = {m.queue_arn for m in mappings}
    for fn in functions.values():
        if fn.dead_letter_target_arn and fn.dead_letter_target_arn.startswith("arn:aws:sqs:"):
            queue_arns.add(fn.dead_letter_target_arn)
    queues = {arn: _queue_config(sqs, arn) for arn in sorted(queue_arns)}
    for queue in list(queues.values()):
        target = queue.redrive_target_arn
        if target and target not in queues:
            queues[target] = _queue_config(sqs, target)
    return Wiring(notifications, functions, queues, mappings)


def dead_letter_targets_from_terraform(workdir: Path) -> dict[str, str]:
    """function name -> dead-letter target ARN, from the Terraform working copy the emulator was
    applied from: the state's `dead_letter_config` when it has one; otherwise the configuration's
    `dead_letter_config { target_arn = <type>.<name>.arn }` resolved against the state (with
    moto the state holds none either: the provider reads the function back from moto)."""
    return function_arns_from_terraform(workdir, "target_arn", within="dead_letter_config")


def function_arns_from_terraform(
    workdir: Path, attribute: str, *, within: str | None = None
) -> dict[str, str]:
    """function name -> the ARN an `aws_lambda_function` argument names (`attribute`, inside the
    nested block `within` if given), from the Terraform working copy: the state's value when it
    has one, otherwise the configuration's `<type>.<name>.arn` reference resolved against the
    state. For what moto drops from a function (DeadLetterConfig, KMSKeyArn)."""
    state_path = workdir / "terraform.tfstate"
    if not state_path.exists():
        return {}
    state = json.loads(state_path.read_text())
    attrs_by_address: dict[str, dict[str, Any]] = {}
    for res in state.get("resources", []):
        if res.get("mode") != "managed" or res.get("module"):
            continue
        for inst in res.get("instances", []):
            if "index_key" not in inst:
                attrs_by_address[f"{res['type']}.{res['name']}"] = inst.get("attributes", {})
    out: dict[str, str] = {}
    for address, attrs in attrs_by_address.items():
        if address.startswith("aws_lambda_function."):
            holder = (attrs.get(within) or [{}])[0] if within else attrs
            if holder and holder.get(attribute):
                out[attrs["function_name"]] = holder[attribute]
    block_re = re.compile(r'^resource\s+"aws_lambda_function"\s+"([\w-]+)"\s*\{', re.M)
    opening = rf"{within}\s*\{{\s*" if within else r"^\s*"
    target_re = re.compile(
        opening + attribute + r"\s*=\s*(?:([a-z0-9_]+)\.([\w-]+)\.arn|\"([^\"]+)\")", re.M
    )
    for tf in sorted(workdir.glob("*.tf")):
        text = tf.read_text()
        starts = [(m.start(), m.group(1)) for m in block_re.finditer(text)]
        for i, (pos, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            nxt = re.search(r"^(resource|data|output|locals|module)\b", text[pos + 1 : end], re.M)
            body = text[pos : pos + 1 + nxt.start()] if nxt else text[pos:end]
            match = target_re.search(body)
            fn_attrs = attrs_by_address.get(f"aws_lambda_function.{name}")
            if not match or not fn_attrs or fn_attrs.get("function_name") in out:
                continue
            if match.group(3):
                out[fn_attrs["function_name"]] = match.group(3)
                continue
            target = attrs_by_address.get(f"{match.group(1)}.{match.group(2)}", {}).get("arn")
            if target:
                out[fn_attrs["function_name"]] = target
    return out


# --------------------------------------------------------------------------------------------
# The bucket in the emulator


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; returns how many.

    Needed before `terraform destroy` against moto when a key contains "+": the provider lists
    with encoding-type=url and decodes the keys, moto returns them unencoded, so "a+b.csv" is
    deleted as "a b.csv" and force_destroy loops forever on a bucket that never empties."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objs = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for i in range(0, len(objs), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objs[i : i + 1000], "Quiet": True})
        deleted += len(objs)
    return deleted


# --------------------------------------------------------------------------------------------
# Invocations, as the Lambda service records them


@dataclass
class InvocationRecord:
    function_name: str
    source: str  # "s3" | "sqs" | "other"
    started: float  # epoch seconds
    duration_ms: float
    error: str | None
    files: list[tuple[str, str | None]]  # (key, version_id) the event concerns
    records: int = 0


def files_in_event(event: Mapping[str, Any]) -> tuple[str, list[tuple[str, str | None]], int]:
    """Which object versions an event concerns: S3 records, or the pipeline's queue messages
    (retry_record, resume_file, record/file errors, a dead-lettered S3 event)."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records:
        return "other", [], 0
    files: list[tuple[str, str | None]] = []
    source = "other"
    for rec in records:
        if not isinstance(rec, Mapping):
            continue
        if rec.get("eventSource") == "aws:s3":
            source = "s3"
            obj = rec.get("s3", {}).get("object", {})
            files.append((unquote_plus(obj.get("key", "")), obj.get("versionId")))
        elif rec.get("eventSource") == "aws:sqs":
            source = "sqs"
            try:
                body = json.loads(rec.get("body") or "")
            except ValueError:
                continue
            files.extend(_files_in_body(body))
    return source, list(dict.fromkeys(files)), len(records)


def _files_in_body(body: Any) -> list[tuple[str, str | None]]:
    if not isinstance(body, Mapping):
        return []
    if isinstance(body.get("source"), Mapping):
        src = body["source"]
        return [(str(src.get("key")), src.get("version_id"))]
    if body.get("kind") == "resume_file":
        return [(str(body.get("key")), body.get("version_id"))]
    if "Records" in body:
        return files_in_event(body)[1]
    return []


def _layers(invoker: Any) -> Iterator[Any]:
    """An invoker and what it wraps: the wrappers first, the execution environment last."""
    layer = invoker
    while layer is not None:
        yield layer
        layer = getattr(layer, "inner", None)


def _process_log(invoker: Any) -> list[str]:
    """The output of a function that runs as its own process (RustInvoker.log_lines), also
    behind wrappers such as faults.CrashingInvoker; empty for an in-process handler."""
    for layer in _layers(invoker):
        lines = getattr(layer, "log_lines", None)
        if isinstance(lines, list):
            return lines
    return []


class RecordingInvoker:
    """Wraps an invoker the way the Lambda service wraps a function: records every invocation,
    captures what the code writes to stdout (its log), and hands the log lines on."""

    def __init__(
        self,
        inner: Invoker,
        function: FunctionConfig,
        sink: LogSink,
    ) -> None:
        self.inner = inner
        self.function = function
        self.function_name = function.name
        self.sink = sink
        self.records: list[InvocationRecord] = []

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = 300_000) -> Any:
        source, files, count = files_in_event(event)
        started = time.time()
        t0 = time.monotonic()
        out = io.StringIO()
        error: str | None = None
        process_log = _process_log(self.inner)
        process_lines_before = len(process_log)
        try:
            with contextlib.redirect_stdout(out):
                return self.inner.invoke(event, timeout_ms=timeout_ms)
        except InvocationError as exc:
            error = str(exc)
            raise
        finally:
            duration = (time.monotonic() - t0) * 1000
            self.records.append(
                InvocationRecord(self.function_name, source, started, duration, error, files, count)
            )
            lines = out.getvalue().splitlines()
            lines += process_log[process_lines_before:]
            if error:
                lines.append(json.dumps({"level": "ERROR", "message": error[:2000]}))
            self.sink.write(self.function, lines, started)


class LogSink:
    """Where function output goes: a local file per function, CloudWatch Logs in the emulator
    (the function's /aws/lambda/<name> group, as Lambda ships stdout), and Embedded Metric
    Format lines turned into metrics (as CloudWatch does with EMF)."""

    def __init__(
        self,
        clients: Clients,
        log_dir: Path | None = None,
        cloudwatch: bool = True,
        clients_for: Callable[[FunctionConfig], Clients] | None = None,
    ) -> None:
        self.clients = clients
        # Lambda ships a function's output with the function's execution role.
        self.clients_for = clients_for
        self.log_dir = log_dir
        self.cloudwatch = cloudwatch
        self.streams: dict[str, str] = {}
        self.emf: list[dict[str, Any]] = []
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)

    def write(self, fn: FunctionConfig, lines: Sequence[str], started: float) -> None:
        if not lines:
            return
        for line in lines:
            if '"_aws"' in line:
                with contextlib.suppress(ValueError):
                    doc = json.loads(line)
                    if isinstance(doc, dict) and "_aws" in doc:
                        self.emf.append(doc)
        if self.log_dir:
            with open(self.log_dir / f"{fn.name}.log", "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
        if self.cloudwatch:
            self._ship(fn, lines, started)

    def _ship(self, fn: FunctionConfig, lines: Sequence[str], started: float) -> None:
        logs = (self.clients_for(fn) if self.clients_for else self.clients)("logs")
        group = f"/aws/lambda/{fn.name}"
        stream = self.streams.get(fn.name)
        try:
            if stream is None:
                stream = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self.streams[fn.name] = stream
            ts = int(started * 1000)
            for i in range(0, len(lines), 5000):
                logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=[{"timestamp": ts, "message": m} for m in lines[i : i + 5000]],
                )
        except ClientError:
            self.cloudwatch = False  # no log group (or not allowed): keep the local file only

    def publish_emf(self) -> int:
        """Put the EMF lines' metrics (what CloudWatch extracts from the log group)."""
        cw = self.clients("cloudwatch")
        data: list[tuple[str, dict[str, Any]]] = []
        for doc in self.emf:
            meta = doc["_aws"]
            when = dt.datetime.fromtimestamp(meta.get("Timestamp", 0) / 1000, dt.UTC)
            for directive in meta.get("CloudWatchMetrics", []):
                for dims in directive.get("Dimensions", [[]]):
                    dimensions = [{"Name": d, "Value": str(doc.get(d, ""))} for d in dims]
                    for metric in directive.get("Metrics", []):
                        value = doc.get(metric["Name"])
                        if not isinstance(value, int | float):
                            continue
                        data.append(
                            (
                                directive["Namespace"],
                                {
                                    "MetricName": metric["Name"],
                                    "Dimensions": dimensions,
                                    "Timestamp": when,
                                    "Value": float(value),
                                    "Unit": metric.get("Unit", "None"),
                                },
                            )
                        )
        by_ns: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for ns, datum in data:
            by_ns[ns].append(datum)
        for ns, datums in by_ns.items():
            for i in range(0, len(datums), 500):
                cw.put_metric_data(Namespace=ns, MetricData=datums[i : i + 500])
        self.emf.clear()
        return len(data)


# --------------------------------------------------------------------------------------------
# Invokers by runtime


def rust_binary_for(fn: FunctionConfig, rust_bin_dir: Path | None = None) -> Path:
    """The host build of a Rust function's bootstrap (the deployed zip is aarch64)."""
    crate = "dlq-processor" if "dlq" in fn.name else "processor"
    candidates: list[Path] = []
    if rust_bin_dir:
        candidates += [rust_bin_dir / crate / "bootstrap", rust_bin_dir / crate]
    env_dir = os.environ.get("RUST_HOST_BIN_DIR")
    if env_dir:
        candidates += [Path(env_dir) / crate / "bootstrap", Path(env_dir) / crate]
    candidates += [
        BUILD_DIR / "lambda" / "rust-host" / crate / "bootstrap",
        REPO_ROOT / "target" / "release" / crate,
        REPO_ROOT / "target" / "debug" / crate,
    ]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise WiringError(
        f"{fn.name} runs on {fn.runtime} (Rust): no host build of the `{crate}` crate found "
        f"(looked at {', '.join(str(c) for c in candidates)}). Build it with "
        f"`cargo build --release -p {crate}`."
    )


class IsolatedPythonInvoker(PythonInvoker):
    """A PythonInvoker whose code gets its own boto3 default session.

    boto3's default session is process-wide and caches the credentials it resolved first: the
    second handler module loaded in this process would sign with the first function's
    credentials (the first role's, once roles are in play). Each function gets its own default
    session, created under its own environment, swapped in while its module is imported and
    while it runs, as it would have its own process on Lambda."""

    def _load(self) -> Any:
        self._boto_session: Any = None
        with self._own_boto_session():
            return super()._load()

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        with self._own_boto_session():
            return super().invoke(event, timeout_ms=timeout_ms)

    @contextlib.contextmanager
    def _own_boto_session(self) -> Iterator[None]:
        saved = boto3.DEFAULT_SESSION
        boto3.DEFAULT_SESSION = getattr(self, "_boto_session", None)
        try:
            yield
        finally:
            self._boto_session = boto3.DEFAULT_SESSION
            boto3.DEFAULT_SESSION = saved


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
) -> Invoker:
    """The local stand-in for one function's execution environment, chosen by its runtime."""
    if fn.runtime.startswith("python"):
        module, _, attr = fn.handler.rpartition(".")
        if not module or not attr:
            raise WiringError(f"{fn.name}: handler {fn.handler!r} is not module.function")
        path = code_dir / (module.replace(".", "/") + ".py")
        if not path.exists():
            raise WiringError(f"{fn.name}: handler module {path} does not exist")
        return IsolatedPythonInvoker(
            path, env, handler=attr, function_name=fn.name, memory_limit_in_mb=fn.memory_mb
        )
    if fn.runtime.startswith("provided"):
        try:
            from pipeline_local.rust_runtime import RustInvoker
        except ImportError as exc:  # pragma: no cover - depends on the Rust engineer's module
            raise WiringError(
                f"{fn.name} runs on {fn.runtime}: pipeline_local.rust_runtime.RustInvoker "
                f"is not available ({exc})"
            ) from exc
        binary = rust_binary_for(fn, rust_bin_dir)
        log_path = (log_dir / f"{fn.name}.rust.log") if log_dir else None
        return RustInvoker(
            binary, env, function_name=fn.name, memory_limit_in_mb=fn.memory_mb, log_path=log_path
        )
    raise WiringError(f"{fn.name}: runtime {fn.runtime!r} has no local invoker")


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


# --------------------------------------------------------------------------------------------
# The dispatcher


@dataclass
class PendingEvent:
    """An S3 notification S3 would have sent: one object version, one matching configuration."""

    notification: Notification
    key: str
    version_id: str | None
    event: dict[str, Any]


@dataclass
class AsyncOutcome:
    pending: PendingEvent
    result: AsyncResult
    response: Any


@dataclass
class RunReport:
    delivered: list[AsyncOutcome]
    drain: DrainStats
    seconds: float


class Dispatcher:
    """The Lambda/S3 services' part of the pipeline, for one emulator."""

    def __init__(
        self,
        clients: Clients,
        wiring: Wiring,
        *,
        handler_endpoint: str | None = None,
        credentials: Mapping[str, Mapping[str, str]] | None = None,
        timeout_ms: int | None = None,
        code_dir: Path = LIB_DIR,
        rust_bin_dir: Path | None = None,
        log_dir: Path | None = None,
        ship_logs: bool = True,
        log: Log = _quiet,
        dispatched_state: Path | None = None,
        poll_as_function: bool = False,
        gateway: Gateway | None = None,
    ) -> None:
        self.clients = clients
        self.wiring = wiring
        # With the authorization gateway every function runs with its execution role's session
        # credentials and reaches AWS only through the gateway's HTTPS listener; its pollers,
        # its asynchronous dead-letter sends and its log shipping use that role too.
        self.gateway = gateway
        self.handler_endpoint = handler_endpoint or (
            gateway.https_endpoint if gateway else clients.endpoint
        )
        self.credentials = dict(credentials or {})
        # The Lambda service's own session of each execution role (pollers, dead-letter sends,
        # log shipping): its calls do not leave from the function's VPC, the code's do (the
        # gateway tells them apart by the session name, see EmulatorPolicyStore.network_path).
        self.service_credentials: dict[str, Mapping[str, str]] = {}
        if gateway is not None:
            poll_as_function = True
            for fn in wiring.functions.values():
                if fn.name not in self.credentials:
                    self.credentials[fn.name] = gateway.assume_role(fn.role, fn.name[:64])
                self.service_credentials[fn.name] = gateway.assume_role(
                    fn.role, lambda_service_session(fn.name)
                )
        self.timeout_ms_override = timeout_ms
        self.code_dir = code_dir
        self.rust_bin_dir = rust_bin_dir
        self.log_dir = log_dir
        self.log = log
        self.sink = LogSink(
            clients,
            log_dir,
            cloudwatch=ship_logs,
            clients_for=self.function_clients if gateway is not None else None,
        )
        self.invokers: dict[str, RecordingInvoker] = {}
        self._wrappers: dict[str, list[Callable[[Invoker], Invoker]]] = defaultdict(list)
        self.dispatched_state = dispatched_state
        self.dispatched: set[tuple[str, str, str]] = set()
        if dispatched_state and dispatched_state.exists():
            self.dispatched = {tuple(x) for x in json.loads(dispatched_state.read_text())}  # type: ignore[misc]
        self.outcomes: list[AsyncOutcome] = []
        # On AWS an event source mapping polls with the function's execution role; with
        # `poll_as_function` (and credentials for the function) the pollers do too, through
        # `handler_endpoint`.
        self.poll_as_function = poll_as_function
        self._paused = 0
        self._told_pause = False
        self._past_records: list[InvocationRecord] = []

    # -- functions ---------------------------------------------------------------------------

    def timeout_ms(self, fn: FunctionConfig) -> int:
        configured = fn.timeout_s * 1000
        if self.timeout_ms_override is None:
            return configured
        return min(configured, self.timeout_ms_override)

    def wrap(self, function: str, wrapper: Callable[[Invoker], Invoker]) -> None:
        """Put `wrapper` around a function's code (fault injection); applies to the current
        execution environment and to every later one."""
        fn = self.wiring.function(function)
        self._wrappers[fn.arn].append(wrapper)
        if fn.arn in self.invokers:
            rec = self.invokers[fn.arn]
            rec.inner = wrapper(rec.inner)

    def unwrap(self, function: str) -> None:
        """Drop every wrapper and start a fresh execution environment (a cold start)."""
        fn = self.wiring.function(function)
        self._wrappers.pop(fn.arn, None)
        self.reset(function)

    def reset(self, function: str | None = None) -> None:
        """Forget execution environments (the next invocation is a cold start)."""
        for arn in list(self.invokers):
            if function is None or self.wiring.function(function).arn == arn:
                recording = self.invokers.pop(arn)
                self._past_records += recording.records
                for layer in _layers(recording.inner):
                    close = getattr(layer, "close", None)
                    if callable(close):
                        close()

    def invoker(self, function_arn: str) -> RecordingInvoker:
        arn = _unqualified(function_arn)
        if arn not in self.invokers:
            fn = self.wiring.functions.get(arn)
            if fn is None:
                raise WiringError(f"no function {arn} in the emulator")
            creds = self.credentials.get(fn.name)
            env = lambda_environment(fn, endpoint=self.handler_endpoint, credentials=creds)
            inner: Invoker
            refused = self._init_refusal(fn)
            if refused is not None:
                inner = RefusedInit(fn.name, refused)
            else:
                if self.gateway is not None and creds is not None:
                    secure = self.handler_endpoint.startswith("https:")
                    env.update(self.gateway.client_env(creds, secure=secure))
                    env["AWS_ENDPOINT_URL"] = self.handler_endpoint
                inner = make_invoker(
                    fn,
                    env,
                    code_dir=self.code_dir,
                    rust_bin_dir=self.rust_bin_dir,
                    log_dir=self.log_dir,
                )
            for wrapper in self._wrappers.get(arn, []):
                inner = wrapper(inner)
            self.invokers[arn] = RecordingInvoker(inner, fn, self.sink)
        return self.invokers[arn]

    def _init_refusal(self, fn: FunctionConfig) -> str | None:
        """What Lambda does before a cold start's code runs, decided by the model (the
        environment variables' decryption with the function's key); why it was refused, or
        None."""
        if self.gateway is None or fn.name not in self.credentials:
            return None
        decision = self.gateway.function_init(fn.arn)
        if decision is None or decision.allowed:
            return None
        return decision.reason

    def function_clients(self, fn: FunctionConfig) -> Clients:
        """boto3 clients with the function's execution role (through the gateway when there
        is one): what the Lambda service itself uses on the function's behalf."""
        creds = self.service_credentials.get(fn.name) or self.credentials.get(fn.name)
        if creds is None:
            return self.clients
        if self.gateway is not None:
            return self.gateway.clients(creds, secure=self.handler_endpoint.startswith("https:"))
        return Clients(
            endpoint=self.handler_endpoint,
            access_key=creds["AWS_ACCESS_KEY_ID"],
            secret_key=creds["AWS_SECRET_ACCESS_KEY"],
            session_token=creds.get("AWS_SESSION_TOKEN") or None,
        )

    @property
    def records(self) -> list[InvocationRecord]:
        """Every invocation so far, of every execution environment (also closed ones)."""
        current = [r for inv in self.invokers.values() for r in inv.records]
        return sorted(self._past_records + current, key=lambda r: r.started)

    def close(self) -> None:
        self.reset()

    # -- moto's own event source mapping emulation ---------------------------------------------

    @contextlib.contextmanager
    def emulator_mappings_paused(self) -> Iterator[None]:
        """EMULATOR ONLY: disable the SQS event source mappings in the emulator while the
        dispatcher runs them, and enable them again afterwards.

        On every SendMessage to a queue with an enabled mapping, moto itself receives up to
        BatchSize visible messages and tries to run the function in Docker; that fails here and
        the messages become visible again, but each of them has been received once more. On
        the main queue that moves messages to the DLQ (maxReceiveCount 3) before any consumer
        saw them, and on the DLQ it inflates the receive count stored in the error rows."""
        lam = self.clients("lambda")
        enabled = [m for m in self.wiring.mappings if m.enabled]
        if self._paused == 0:
            for m in enabled:
                lam.update_event_source_mapping(UUID=m.uuid, Enabled=False)
            if enabled and not self._told_pause:
                self.log(
                    "    EMULATOR ONLY: event source mappings disabled in moto while the "
                    "dispatcher runs them (moto's own Docker-based polling would count receives)"
                )
                self._told_pause = True
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            if self._paused == 0:
                for m in enabled:
                    lam.update_event_source_mapping(UUID=m.uuid, Enabled=True)

    # -- S3 notifications ---------------------------------------------------------------------

    def pending_events(self) -> list[PendingEvent]:
        """A notification for every object version not dispatched yet that matches a bucket
        notification, oldest first (LastModified, then key, then version age)."""
        s3 = self.clients("s3")
        found: list[tuple[Any, str, int, PendingEvent]] = []
        for bucket in self.wiring.buckets:
            notifications = [n for n in self.wiring.notifications if n.bucket == bucket]
            versions: list[dict[str, Any]] = []
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                versions += page.get("Versions", [])
            age: Counter[str] = Counter(v["Key"] for v in versions)
            for v in versions:  # newest first per key
                age[v["Key"]] -= 1
                vid = v.get("VersionId")
                ident = (bucket, v["Key"], str(vid))
                if ident in self.dispatched:
                    continue
                for n in notifications:
                    if not n.matches(v["Key"]):
                        continue
                    event = s3_event_for_object(
                        s3,
                        bucket,
                        v["Key"],
                        vid if vid and vid != "null" else None,
                        configuration_id=n.config_id,
                    )
                    pending = PendingEvent(n, v["Key"], vid, event)
                    found.append((v["LastModified"], v["Key"], age[v["Key"]], pending))
        found.sort(key=lambda x: (x[0], x[1], x[2]))
        return [p for *_, p in found]

    def deliver(self, pending: Iterable[PendingEvent]) -> list[AsyncOutcome]:
        """Invoke asynchronously, as S3 does: retries, then the function's dead-letter queue."""
        with self.emulator_mappings_paused():
            return self._deliver(pending)

    def _deliver(self, pending: Iterable[PendingEvent]) -> list[AsyncOutcome]:
        out: list[AsyncOutcome] = []
        for p in pending:
            fn = self.wiring.functions[_unqualified(p.notification.function_arn)]
            refused = self._s3_invoke_refusal(p.notification.bucket, fn)
            if refused is not None:
                # S3 cannot invoke the function: the event is lost (S3 retries, then gives up).
                self.dispatched.add((p.notification.bucket, p.key, str(p.version_id)))
                error = InvocationError(f"AccessDenied: {refused}", error_type="AccessDenied")
                self.log(f"    s3 event -> {fn.name}: {p.key} NOT INVOKED ({refused})")
                outcome = AsyncOutcome(p, AsyncResult(attempts=0, error=error), None)
                out.append(outcome)
                continue
            # Lambda sends an exhausted event to the dead-letter queue with the function's role.
            sqs = self.function_clients(fn)("sqs")
            dlq_url = None
            if fn.dead_letter_target_arn:
                queue = self.wiring.queues.get(fn.dead_letter_target_arn)
                dlq_url = queue.url if queue else None
            result = invoke_async(
                self.invoker(fn.arn),
                p.event,
                timeout_ms=self.timeout_ms(fn),
                maximum_retry_attempts=fn.maximum_retry_attempts,
                sqs=sqs,
                dead_letter_queue_url=dlq_url,
            )
            self.dispatched.add((p.notification.bucket, p.key, str(p.version_id)))
            note = ""
            if result.error is not None:
                note = (
                    f" FAILED {result.attempts}x ({result.error}); event sent to "
                    f"{_arn_name(fn.dead_letter_target_arn or '')}"
                    if result.sent_to_dead_letter_queue
                    else f" FAILED {result.attempts}x and DROPPED (no dead-letter target)"
                )
            elif result.attempts > 1:
                note = f" (succeeded on attempt {result.attempts})"
            self.log(f"    s3 event -> {fn.name}: {p.key}{note}")
            outcome = AsyncOutcome(p, result, result.response)
            out.append(outcome)
        self.outcomes += out
        self._save_state()
        return out

    def _s3_invoke_refusal(self, bucket: str, fn: FunctionConfig) -> str | None:
        """S3 invokes the function as s3.amazonaws.com: the function's resource policy must
        allow it for this bucket and account (aws:SourceArn, aws:SourceAccount)."""
        if self.gateway is None:
            return None
        decision = self.gateway.s3_invokes(bucket, fn.arn)
        return None if decision.allowed else decision.reason

    def _save_state(self) -> None:
        if self.dispatched_state:
            self.dispatched_state.parent.mkdir(parents=True, exist_ok=True)
            self.dispatched_state.write_text(json.dumps(sorted(self.dispatched)))

    # -- event source mappings ----------------------------------------------------------------

    def _poller_sqs(self, fn: FunctionConfig) -> Any:
        if not (self.poll_as_function and fn.name in self.credentials):
            return self.clients("sqs")
        return self.function_clients(fn)("sqs")

    def pollers(self) -> list[QueuePoller]:
        out: list[QueuePoller] = []
        for m in self.wiring.mappings:
            if not m.enabled:
                continue
            fn = self.wiring.functions[m.function_arn]
            queue = self.wiring.queues[m.queue_arn]
            if self.gateway is not None:
                # What the mapping needs of the execution role (the poller's own calls below
                # go through the gateway with that role and are decided one by one as well).
                self.gateway.mapping_polls(fn.arn, queue.arn)
            out.append(
                QueuePoller(
                    self._poller_sqs(fn),
                    queue.url,
                    self.invoker(fn.arn),
                    batch_size=min(m.batch_size, 10),
                    report_batch_item_failures=m.report_batch_item_failures,
                    timeout_ms=self.timeout_ms(fn),
                )
            )
        return out

    def drain(self, *, max_rounds: int = 5000) -> DrainStats:
        """Run every event source mapping until every mapped queue is empty."""
        pollers = self.pollers()
        with self.emulator_mappings_paused():
            stats = drain(pollers, max_rounds=max_rounds, idle_wait_s=0.05)
        by_queue = Counter(_arn_name(p.arn) for p in pollers for _ in p.deliveries)
        if stats.deliveries:
            self.log(
                f"    queues drained in {stats.rounds} rounds: "
                + ", ".join(f"{q} {n} batch(es)" for q, n in sorted(by_queue.items()))
                + (f", {stats.failed_messages} message(s) failed and redelivered"
                   if stats.failed_messages else "")
            )  # fmt: skip
        return stats

    def queue_depths(self) -> dict[str, int]:
        """Messages on every queue the wiring knows (visible, in flight, delayed)."""
        sqs = self.clients("sqs")
        return {q.name: queue_depth(sqs, q.url) for q in self.wiring.queues.values()}

    def run(self, *, max_rounds: int = 5000) -> RunReport:
        """Dispatch every new upload, then drain the queues."""
        t0 = time.monotonic()
        pending = self.pending_events()
        self.log(f"    {len(pending)} new object version(s) match a notification")
        with self.emulator_mappings_paused():
            delivered = self.deliver(pending)
            self.sample_queue_metrics()
            stats = self.drain(max_rounds=max_rounds)
            self.sample_queue_metrics()
        return RunReport(delivered, stats, time.monotonic() - t0)

    # -- metrics the services would publish -----------------------------------------------------

    def publish_lambda_metrics(self, records: Sequence[InvocationRecord] | None = None) -> int:
        """AWS/Lambda Invocations, Errors and Duration per function and minute, as Lambda
        publishes them (each attempt of an asynchronous retry counts)."""
        records = self.records if records is None else records
        return put_lambda_metrics(self.clients("cloudwatch"), records)

    def sample_queue_metrics(self, when: dt.datetime | None = None) -> dict[str, int]:
        """AWS/SQS ApproximateNumberOfMessagesVisible/NotVisible now, as SQS publishes them."""
        return put_queue_metrics(self.clients("sqs"), self.clients("cloudwatch"), self.wiring, when)

    def file_seconds(self) -> dict[tuple[str, str | None], float]:
        """Invocation time per object version; a batch's time is shared among its files."""
        out: dict[tuple[str, str | None], float] = defaultdict(float)
        for rec in self.records:
            if rec.files:
                share = rec.duration_ms / 1000 / len(rec.files)
                for f in rec.files:
                    out[f] += share
        return dict(out)


def put_lambda_metrics(
    cloudwatch: Any, records: Sequence[InvocationRecord], *, at: dt.datetime | None = None
) -> int:
    """One datapoint per function and minute of the invocations (or all at `at`, which tests
    use to place invocations in a given alarm period)."""
    buckets: dict[tuple[str, dt.datetime], list[InvocationRecord]] = defaultdict(list)
    for rec in records:
        minute = at or dt.datetime.fromtimestamp(rec.started, dt.UTC).replace(
            second=0, microsecond=0
        )
        buckets[(rec.function_name, minute)].append(rec)
    data: list[dict[str, Any]] = []
    for (name, minute), recs in sorted(buckets.items()):
        dims = [{"Name": "FunctionName", "Value": name}]
        durations = [r.duration_ms for r in recs]
        for metric, values, unit in (
            ("Invocations", [1.0] * len(recs), "Count"),
            ("Errors", [1.0 if r.error else 0.0 for r in recs], "Count"),
            ("Duration", durations, "Milliseconds"),
        ):
            data.append(
                {
                    "MetricName": metric,
                    "Dimensions": dims,
                    "Timestamp": minute,
                    "StatisticValues": {
                        "SampleCount": float(len(values)),
                        "Sum": float(sum(values)),
                        "Minimum": float(min(values)),
                        "Maximum": float(max(values)),
                    },
                    "Unit": unit,
                }
            )
    for i in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[i : i + 500])
    return len(data)


def put_queue_metrics(
    sqs: Any, cloudwatch: Any, wiring: Wiring, when: dt.datetime | None = None
) -> dict[str, int]:
    when = when or dt.datetime.now(dt.UTC)
    visible: dict[str, int] = {}
    data: list[dict[str, Any]] = []
    for q in wiring.queues.values():
        attrs = sqs.get_queue_attributes(
            QueueUrl=q.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        visible[q.name] = int(attrs["ApproximateNumberOfMessages"])
        for metric, attr in (
            ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessages"),
            ("ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesNotVisible"),
        ):
            data.append(
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "QueueName", "Value": q.name}],
                    "Timestamp": when,
                    "Value": float(attrs[attr]),
                    "Unit": "Count",
                }
            )
    if data:
        cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=data)
    return visible


# --------------------------------------------------------------------------------------------
# Alarms: moto stores them but never evaluates them (and does not compute metric math)


@dataclass
class AlarmEvaluation:
    name: str
    emulator_state: str  # what moto reports (it never changes by itself)
    state: str  # what CloudWatch would decide from the datapoints
    reason: str
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    period_s: int
    metric: str  # the metric or expression evaluated
    datapoints: list[tuple[dt.datetime, float]]  # newest last, one per period with data
    actions: list[str]


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def eval_metric_math(expression: str, values: Mapping[str, float]) -> float | None:
    """The subset of CloudWatch metric math the alarms use: + - * /, comparisons, IF(c, a, b)."""
    tree = ast.parse(expression.strip(), mode="eval")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise KeyError(node.id)
            return values[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                return left / right if right else float("nan")
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = ev(node.left), ev(node.comparators[0])
            ops = {
                ast.Gt: left > right,
                ast.GtE: left >= right,
                ast.Lt: left < right,
                ast.LtE: left <= right,
                ast.Eq: left == right,
                ast.NotEq: left != right,
            }
            return 1.0 if ops[type(node.ops[0])] else 0.0
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "IF"
            and len(node.args) == 3
        ):
            return ev(node.args[1]) if ev(node.args[0]) else ev(node.args[2])
        raise ValueError(f"unsupported metric math: {ast.dump(node)}")

    try:
        result = ev(tree)
    except KeyError:
        return None
    return None if result != result else float(result)  # NaN -> no datapoint


def _metric_stat_query(qid: str, metric: Mapping[str, Any], period: int, stat: str) -> dict:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": metric["Namespace"],
                "MetricName": metric["MetricName"],
                "Dimensions": metric.get("Dimensions", []),
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def evaluate_alarms(
    cloudwatch: Any, *, now: dt.datetime | None = None, lookback_periods: int = 6
) -> list[AlarmEvaluation]:
    """Evaluate every metric alarm the way CloudWatch would, from the stored datapoints."""
    now = now or dt.datetime.now(dt.UTC)
    out: list[AlarmEvaluation] = []
    for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
        metrics = alarm.get("Metrics")
        period = int(alarm.get("Period") or 0)
        queries: list[dict[str, Any]] = []
        expression = ""
        result_id = "m"
        if metrics:
            for q in metrics:
                if "MetricStat" in q:
                    ms = q["MetricStat"]
                    period = int(ms["Period"])
                    queries.append(_metric_stat_query(q["Id"], ms["Metric"], period, ms["Stat"]))
                elif q.get("ReturnData", True):
                    expression, result_id = q["Expression"], q["Id"]
        else:
            metric = {
                "Namespace": alarm["Namespace"],
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            }
            queries.append(_metric_stat_query("m", metric, period, alarm.get("Statistic", "Sum")))
        epoch = int(now.timestamp())
        end = dt.datetime.fromtimestamp(epoch - epoch % period + period, dt.UTC)
        start = end - dt.timedelta(seconds=period * lookback_periods)
        result = cloudwatch.get_metric_data(
            MetricDataQueries=queries, StartTime=start, EndTime=end
        )["MetricDataResults"]
        series: dict[str, dict[dt.datetime, float]] = {
            r["Id"]: dict(zip(r["Timestamps"], r["Values"], strict=True)) for r in result
        }
        stamps = sorted({t for s in series.values() for t in s})
        points: list[tuple[dt.datetime, float]] = []
        for t in stamps:
            if expression:
                values = {qid: s[t] for qid, s in series.items() if t in s}
                # Lambda publishes Errors whenever it publishes Invocations.
                value = eval_metric_math(expression, values)
            else:
                value = series.get(result_id, {}).get(t)
            if value is not None:
                points.append((t, value))
        n = int(alarm["EvaluationPeriods"])
        m = int(alarm.get("DatapointsToAlarm") or n)
        window_start = end - dt.timedelta(seconds=period * n)
        window = [(t, v) for t, v in points if t >= window_start]
        compare = _COMPARE[alarm["ComparisonOperator"]]
        threshold = float(alarm["Threshold"])
        breaching = [(t, v) for t, v in window if compare(v, threshold)]
        treat_missing = alarm.get("TreatMissingData", "missing")
        if len(breaching) >= m:
            state = "ALARM"
            reason = f"{len(breaching)} of the last {n} periods breach {threshold:g}"
        elif window or treat_missing in ("notBreaching", "ignore"):
            state = "OK"
            reason = f"{len(breaching)} of the last {n} periods breach {threshold:g} (need {m})"
        else:
            state = "INSUFFICIENT_DATA"
            reason = "no datapoints in the evaluation window"
        out.append(
            AlarmEvaluation(
                name=alarm["AlarmName"],
                emulator_state=alarm.get("StateValue", "?"),
                state=state,
                reason=reason,
                threshold=threshold,
                comparison=alarm["ComparisonOperator"],
                evaluation_periods=n,
                datapoints_to_alarm=m,
                period_s=period,
                metric=expression or f"{alarm.get('MetricName')} {alarm.get('Statistic')}",
                datapoints=points,
                actions=list(alarm.get("AlarmActions", [])),
            )
        )
    return out


def notify_alarm_actions(
    evaluations: Sequence[AlarmEvaluation], gateway: Gateway, clients: Clients
) -> list[tuple[str, str, bool, str]]:
    """What CloudWatch does for an alarm in ALARM (moto never does it): publish to every SNS
    topic among its actions, as the service principal cloudwatch.amazonaws.com, which the
    topic policy and the topic's KMS key policy must allow (decided by the gateway's model).
    Returns (alarm, topic, allowed, reason) per notification; allowed ones are published."""
    out: list[tuple[str, str, bool, str]] = []
    for alarm in evaluations:
        if alarm.state != "ALARM":
            continue
        alarm_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{alarm.name}"
        for topic in alarm.actions:
            if ":sns:" not in topic:
                continue
            decision = gateway.alarm_publishes(alarm_arn, topic)
            if decision.allowed:
                clients("sns").publish(
                    TopicArn=topic,
                    Subject=f"ALARM: {alarm.name}"[:100],
                    Message=json.dumps(
                        {
                            "AlarmName": alarm.name,
                            "NewStateValue": "ALARM",
                            "NewStateReason": alarm.reason,
                        }
                    ),
                )
            out.append((alarm.name, topic, decision.allowed, decision.reason))
    return out


# --------------------------------------------------------------------------------------------
# Table helpers (the demo and the tests read the tables through these)


def scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table as plain Python values (numbers as int or str)."""
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for raw in page.get("Items", []):
            item = {k: des.deserialize(v) for k, v in raw.items()}
            items.append(
                {
                    k: (int(v) if hasattr(v, "as_integer_ratio") and v == int(v) else v)
                    for k, v in item.items()
                }
            )
    return items


# --------------------------------------------------------------------------------------------
# CLI


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
