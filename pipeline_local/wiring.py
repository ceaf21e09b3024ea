"""Read the deployed pipeline's wiring from the emulator's own APIs (what Lambda and S3 would use).

`read_wiring()` returns the bucket notification configuration (function ARN, prefix/suffix
filters, events), each function's runtime, handler, environment, timeout and memory
(GetFunctionConfiguration), its asynchronous invoke configuration (MaximumRetryAttempts from
GetFunctionEventInvokeConfig; 2 when there is none, as on AWS), its dead-letter target
(DeadLetterConfig), the event source mappings (queue -> function, batch size,
FunctionResponseTypes, state) and every mapped queue's visibility timeout and redrive policy.
moto 5.2.1 drops a function's DeadLetterConfig (CreateFunction accepts it, nothing returns it),
so that one attribute can come from the Terraform working copy instead
(`pipeline_local.terraform_wiring`); the wiring says where each value came from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline_local.clients import Clients
from pipeline_local.constants import (
    ACCOUNT_ID,
    DEFAULT_MAXIMUM_RETRY_ATTEMPTS,
    LAMBDA_DEFAULT_MEMORY_MB,
    LAMBDA_DEFAULT_TIMEOUT_S,
    METRIC_NAMESPACE_ENV,
    REGION,
)


class WiringError(RuntimeError):
    """The emulator's configuration cannot be run as it stands."""


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

    @property
    def metric_namespace(self) -> str:
        """The CloudWatch namespace of the function's EMF metrics: what Terraform passes it
        (METRIC_NAMESPACE; lib/ owns the value, there is no default here)."""
        namespace = self.environment.get(METRIC_NAMESPACE_ENV)
        if not namespace:
            raise WiringError(f"{self.name}: no {METRIC_NAMESPACE_ENV} in its environment")
        return namespace

    @classmethod
    def local(
        cls,
        name: str,
        runtime: str,
        handler: str,
        *,
        memory_mb: int,
        timeout_s: int = LAMBDA_DEFAULT_TIMEOUT_S,
        environment: Mapping[str, str] | None = None,
    ) -> FunctionConfig:
        """A function described without an emulator (benchmarks, runtime tests)."""
        return cls(
            name=name,
            arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
            runtime=runtime,
            handler=handler,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            environment=dict(environment or {}),
            role="",
        )


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
                    f", redrive to {arn_name(queue.redrive_target_arn)} after "
                    f"{queue.max_receive_count} receives"
                )
            out.append(
                f"sqs {arn_name(m.queue_arn)} -> {_fn_name(m.function_arn)} (batch {m.batch_size}"
                f"{', ReportBatchItemFailures' if m.report_batch_item_failures else ''}"
                f", visibility {queue.visibility_timeout_s if queue else '?'} s{redrive}"
                f"{'' if m.enabled else ', DISABLED'})"
            )
        for fn in self.functions.values():
            dlq = (
                f", dead-letter {arn_name(fn.dead_letter_target_arn)} ({fn.dead_letter_from})"
                if fn.dead_letter_target_arn
                else ", no dead-letter target"
            )
            out.append(
                f"function {fn.name}: {fn.runtime} {fn.handler}, timeout {fn.timeout_s} s, "
                f"{fn.memory_mb} MB, async retries {fn.maximum_retry_attempts}{dlq}, "
                f"env {sorted(fn.environment)}"
            )
        return out


def arn_name(arn: str) -> str:
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


def unqualified(arn: str) -> str:
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
        arn=unqualified(conf["FunctionArn"]),
        runtime=conf.get("Runtime") or "",
        handler=conf.get("Handler") or "",
        timeout_s=int(conf.get("Timeout") or LAMBDA_DEFAULT_TIMEOUT_S),
        memory_mb=int(conf.get("MemorySize") or LAMBDA_DEFAULT_MEMORY_MB),
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
                    function_arn=unqualified(m["FunctionArn"]),
                    batch_size=int(m.get("BatchSize") or 10),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (m.get("FunctionResponseTypes") or []),
                    enabled=m.get("State", "Enabled") in ("Enabled", "Enabling", "Updating"),
                )
            )
    fallback = dict(dead_letter_fallback or {})
    arns = {unqualified(n.function_arn) for n in notifications} | {m.function_arn for m in mappings}
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
