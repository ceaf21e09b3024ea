"""Run one conformance case against an applied stack: deliveries, queues, tables, refusals seen.

`make_invoker` is the one place that turns an applied function into an Invoker; `run_case`
empties the stack, uploads and delivers as the case says, drains the queues through
pipeline_local.delivery, and returns what the tables, queues and authorization model saw (`Run`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from pipeline_local.authz.engine import Decision
from pipeline_local.authz.gateway import Gateway
from pipeline_local.delivery import (
    AsyncResult,
    DrainError,
    QueuePoller,
    drain,
    invoke_async,
    s3_event_for_object,
    s3_put_event,
)
from pipeline_local.function_invokers import RefusedInit
from pipeline_local.function_invokers import make_invoker as dispatcher_invoker
from pipeline_local.invokers import DEFAULT_TIMEOUT_MS, InvocationError, Invoker, close_layers
from pipeline_local.scratch_stack import Stack
from pipeline_local.stores import scan_items
from pipeline_local.wiring import FunctionConfig, WiringError
from tests.applied_stack import IMPLEMENTATIONS, AppliedStack
from tests.conformance import file_status
from tests.conformance.conformance_cases import Case
from tests.conformance.spec_rules import spec_record_hash

# --------------------------------------------------------------------------------------------
# The one place that knows how to run each implementation.


def make_invoker(applied: AppliedStack, fn: FunctionConfig, env: dict[str, str]) -> Invoker:
    """An Invoker for the applied function `fn` of implementation `applied.impl`, with `env`.

    The runtime the emulator holds chooses the invoker (function_invokers.make_invoker:
    the Python handler module in-process, or the Rust function's host-built bootstrap)."""
    runtimes = {runtime for runtime, _ in IMPLEMENTATIONS[applied.impl][1]}
    if fn.runtime not in runtimes:
        raise AssertionError(f"{fn.name} runs on {fn.runtime}, not on {applied.impl}")
    refused = applied.cold_start(fn)
    if refused is not None and not refused.allowed:
        # Lambda cannot start the function (KMSAccessDeniedException): every invocation fails.
        return RefusedInit(fn.name, refused.reason)
    try:
        return dispatcher_invoker(fn, env)
    except WiringError as exc:
        # Asking for an implementation that is not built is an error, never a skip.
        pytest.fail(str(exc), pytrace=False)


# --------------------------------------------------------------------------------------------
# Running a case


class TwiceInvoker:
    """Delivers every event twice (at-least-once delivery); the second response counts."""

    def __init__(self, inner: Invoker) -> None:
        self.inner = inner
        self.function_name = inner.function_name

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        self.inner.invoke(event, timeout_ms=timeout_ms)
        return self.inner.invoke(event, timeout_ms=timeout_ms)


@dataclass
class Run:
    stack: Stack
    started_ms: int
    transactions: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    queue_depths: dict[str, int]
    sent: dict[str, dict[str, Any]]  # DLQ body -> first delivered SQS record
    main_kinds: Counter[str]  # kind -> distinct messages delivered from the main queue
    s3_results: list[AsyncResult]  # one per S3 event delivery
    error_retention_days: int  # the applied DLQ processor's ERROR_RETENTION_DAYS
    main_bodies: list[str] = field(default_factory=list)  # for the contract's schemas
    refusals: list[Decision] = field(default_factory=list)  # by the authorization model


def resolve(value: Any, stack: Stack) -> Any:
    """Substitute $BUCKET and $VERSION_<n> tokens (the others are resolved where compared)."""
    if isinstance(value, dict):
        return {k: resolve(v, stack) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, stack) for v in value]
    if value == "$BUCKET":
        return stack.bucket
    if isinstance(value, str) and value.startswith("$VERSION_"):
        return stack.versions[int(value.removeprefix("$VERSION_")) - 1]
    return value


def message_kind(body: str) -> str:
    """The kind of a main-queue message: its "kind", "s3_event", or "other"."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "other"
    if isinstance(doc, dict) and isinstance(doc.get("kind"), str):
        return str(doc["kind"])
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return "s3_event"
    return "other"


def deny_get_object(applied: AppliedStack) -> None:
    """Add a statement denying the reads of the bucket's objects to the bucket policy: the
    model refuses the processor's GetObject (403, AccessDenied). The applied statements stay;
    the caller restores the applied policy after the case."""
    policy = json.loads(applied.bucket_policy)
    statements = policy.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    policy["Statement"] = [
        *statements,
        {
            "Sid": "ConformanceDenyRead",
            "Effect": "Deny",
            "Principal": "*",
            # A read of a given version is authorized as s3:GetObjectVersion.
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"arn:aws:s3:::{applied.bucket}/*",
        },
    ]
    applied.put_bucket_policy(json.dumps(policy))


def expected_refusals(case: Case, stack: Stack) -> list[dict[str, str]]:
    """The refusals a case means to provoke: its `expected_refusals` ({"action", "resource"},
    fnmatch patterns; $BUCKET resolved), and for deny_get_object the object reads."""
    out = [resolve(dict(e), stack) for e in case.config.get("expected_refusals", [])]
    if case.config.get("deny_get_object"):
        out.append({"action": "s3:GetObject*", "resource": f"arn:aws:s3:::{stack.bucket}/*"})
    return out


def check_refusals(case: Case, run: Run) -> list[str]:
    """Every refusal of the run is one the case expects, and every expected one happened."""
    wanted = expected_refusals(case, run.stack)

    def matches(decision: Decision, want: dict[str, str]) -> bool:
        req = decision.request
        return fnmatch.fnmatchcase(req.action, want["action"]) and fnmatch.fnmatchcase(
            req.resource, want["resource"]
        )

    unexpected = [d for d in run.refusals if not any(matches(d, w) for w in wanted)]
    problems = []
    if unexpected:
        problems.append(
            f"{len(unexpected)} AWS call(s) refused by the authorization model, unexpected:"
        )
        problems += [f"  {line}" for line in Gateway.summarize(unexpected)]
    for want in wanted:
        if not any(matches(d, want) for d in run.refusals):
            problems.append(
                f"expected refusal never happened: {want['action']} on {want['resource']}"
            )
    return problems


def put_preexisting(stack: Stack, case: Case) -> None:
    serializer = TypeSerializer()
    for raw in case.config.get("preexisting", []):
        item = resolve(raw, stack)
        if item.get("record_hash") == "$RECORD_HASH":
            item["record_hash"] = spec_record_hash(item)
        stack.ddb.put_item(
            TableName=stack.table,
            Item={k: serializer.serialize(v) for k, v in item.items() if v is not None},
        )


def replay_key(fn: FunctionConfig) -> str:
    """Where run_case keeps the invoker of a case's replay (the processor without overrides)."""
    return f"{fn.arn}#replay"


def replay_start_line(stack: Stack, key: str, version_id: str | None) -> int:
    """txnctl replay's start line: the smallest source_line of the version's retryable error
    rows, 0 for a row without a line (the whole file)."""
    lines = [
        int(row["source_line"]) if row.get("source_line") is not None else 0
        for row in scan_items(stack.ddb, stack.errors_table)
        if row.get("retryable")
        and row.get("source_key") == key
        and row.get("source_version_id") == version_id
    ]
    if not lines:
        raise AssertionError(f"replay: no retryable error row for {key}@{version_id}")
    return min(lines)


@contextlib.contextmanager
def injected_throttles(applied: AppliedStack, config: Mapping[str, Any]) -> Iterator[None]:
    """The case's `throttle` rules answered by a FaultInjector in the gateway's chain
    (AppliedStack.faults): the next `times` PutItem calls of a record to the transactions
    table get the DynamoDB throttle `code`. Every rule must be used up, else the case proved
    nothing about the writes that yield (P37)."""
    specs = config.get("throttle")
    if not specs:
        yield
        return
    with applied.faults(rate=0.0) as injector:
        rules = [
            injector.fail_matching(
                "dynamodb",
                "PutItem",
                [f'"{spec["transaction_id"]}"', applied.transactions_table],
                int(spec["times"]),
                status=400,
                code=str(spec["code"]),
            )
            for spec in specs
        ]
        yield
    unused = [
        (spec, rule.used) for spec, rule in zip(specs, rules, strict=True) if rule.used < rule.times
    ]
    if unused:
        raise AssertionError(f"throttles not all answered (rule, used): {unused}")


def run_case(applied: AppliedStack, case: Case) -> Run:
    """Empty the stack, then run `case` against it; the bucket policy is restored afterwards."""
    applied.clean()
    applied.unexpected_refusals()  # a refusal of an earlier case was reported there
    started_ms = int(time.time() * 1000)
    stack = applied.data_resources()
    put_preexisting(stack, case)
    invokers: dict[str, Invoker] = {}
    refused: list[Decision] = []
    try:
        # Every refusal is collected here and judged against the case (check_refusals).
        with applied.gateway.expect_denials() as refused:
            for fn, overrides in (
                (applied.processor, case.config.get("env", {})),
                (applied.dlq_processor, case.config.get("dlq_env", {})),
            ):
                invokers[fn.arn] = make_invoker(applied, fn, applied.function_env(fn, overrides))
            if case.config.get("replay"):
                # The processor as applied, without the case's overrides: the cause is fixed.
                fn = applied.processor
                invokers[replay_key(fn)] = make_invoker(applied, fn, applied.function_env(fn, {}))
            file_status.add_crash(invokers, applied.processor.arn, case.config)
            with injected_throttles(applied, case.config):
                run = _run_case(applied, stack, case, invokers, started_ms)
            file_status.check_crashed(invokers, applied.processor.arn, case.config)
        run.refusals = list(refused)
        return run
    except DrainError as exc:
        if refused:
            exc.add_note("\n".join(Gateway.summarize(refused)))
        raise
    finally:
        for invoker in invokers.values():
            # Every layer: a crash injector's close() releases its own proxy, not what it wraps.
            close_layers(invoker)
        if case.config.get("deny_get_object"):
            applied.restore_bucket_policy()


def _run_case(
    applied: AppliedStack,
    stack: Stack,
    case: Case,
    invokers: dict[str, Invoker],
    started_ms: int,
) -> Run:
    cfg = case.config
    if cfg.get("deliver_twice"):
        invokers = {arn: TwiceInvoker(invoker) for arn, invoker in invokers.items()}
    processor = applied.processor
    s3_timeout = int(cfg.get("remaining_time_ms", processor.timeout_s * 1000))
    # One poller per event source mapping, as applied; the retry consumer's time is the case's.
    pollers: dict[str, QueuePoller] = {}
    for mapping in applied.wiring.mappings:
        if not mapping.enabled:
            continue
        fn = applied.wiring.functions[mapping.function_arn]
        timeout_ms = fn.timeout_s * 1000
        if fn.arn == processor.arn and "retry_remaining_time_ms" in cfg:
            timeout_ms = int(cfg["retry_remaining_time_ms"])
        url = applied.wiring.queues[mapping.queue_arn].url
        applied.mapping_polls(fn, mapping.queue_arn)
        pollers[url] = QueuePoller(
            applied.function_clients(fn)("sqs"),
            url,
            invokers[fn.arn],
            batch_size=mapping.batch_size,
            report_batch_item_failures=mapping.report_batch_item_failures,
            timeout_ms=timeout_ms,
        )
    if set(pollers) != {stack.main_url, stack.dlq_url}:
        raise AssertionError(f"the applied mappings poll {sorted(pollers)}, not both queues")
    dead_letter = applied.wiring.queues.get(processor.dead_letter_target_arn or "")

    s3_results: list[AsyncResult] = []

    def deliver(event: dict[str, Any]) -> None:
        invoke = applied.s3_invokes(processor)
        if not invoke.allowed:
            # S3 cannot invoke the function: the event is lost.
            error = InvocationError(f"AccessDenied: {invoke.reason}", error_type="AccessDenied")
            s3_results.append(AsyncResult(attempts=0, error=error))
            return
        result = invoke_async(
            invokers[processor.arn],
            event,
            timeout_ms=s3_timeout,
            maximum_retry_attempts=processor.maximum_retry_attempts,
            sqs=applied.function_clients(processor)("sqs"),
            dead_letter_queue_url=dead_letter.url if dead_letter else None,
        )
        s3_results.append(result)
        drain(list(pollers.values()), max_rounds=1000)

    events: list[dict[str, Any]] = []
    if cfg.get("missing_object"):
        events.append(s3_put_event(stack.bucket, case.key, size=1234, etag=uuid.uuid4().hex))
        deliver(events[-1])
    elif case.input_file is not None:
        body = case.input_file.read_bytes()
        for _ in range(int(cfg.get("uploads", 1))):
            put = applied.producer("s3").put_object(Bucket=stack.bucket, Key=case.key, Body=body)
            stack.versions.append(put.get("VersionId"))
            events.append(s3_event_for_object(stack.s3, stack.bucket, case.key, put["VersionId"]))
            if cfg.get("deny_get_object"):
                deny_get_object(applied)
            deliver(events[-1])
    for _ in range(int(cfg.get("redeliver", 0))):
        deliver(events[0])

    bodies = case.dlq_bodies
    for body_text in bodies:
        stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=body_text)
    if bodies:
        drain(list(pollers.values()), max_rounds=1000)

    if cfg.get("replay"):
        version_id = stack.versions[0]
        resume = {
            "kind": "resume_file",
            "bucket": stack.bucket,
            "key": case.key,
            "version_id": version_id,
            "start_line": replay_start_line(stack, case.key, version_id),
        }
        pollers[stack.main_url].invoker = invokers[replay_key(processor)]
        stack.sqs.send_message(QueueUrl=stack.main_url, MessageBody=json.dumps(resume))
        drain(list(pollers.values()), max_rounds=1000)

    main_kinds: Counter[str] = Counter()
    main_bodies: list[str] = []
    seen: set[str] = set()
    for delivery in pollers[stack.main_url].deliveries:
        for record in delivery.records:
            if record["messageId"] not in seen:
                seen.add(record["messageId"])
                main_kinds[message_kind(record["body"])] += 1
                main_bodies.append(record["body"])
    sent: dict[str, dict[str, Any]] = {}
    for delivery in pollers[stack.dlq_url].deliveries:
        for record in delivery.records:
            sent.setdefault(record["body"], record)
    return Run(
        stack=stack,
        started_ms=started_ms,
        transactions=scan_items(stack.ddb, stack.table),
        errors=scan_items(stack.ddb, stack.errors_table),
        queue_depths={
            "main": applied.queue_depth(stack.main_url),
            "dlq": applied.queue_depth(stack.dlq_url),
        },
        sent=sent,
        main_kinds=main_kinds,
        s3_results=s3_results,
        error_retention_days=int(applied.dlq_processor.environment["ERROR_RETENTION_DAYS"]),
        main_bodies=main_bodies,
    )
