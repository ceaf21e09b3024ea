"""The shared conformance suite: every case in cases/ against every implementation under test.

A case is a folder `cases/<NN-name>/`:
- an input file: `input.csv` / `input.json` (uploaded to S3), and/or `dlq_messages.json` (a list
  of raw message bodies put straight on the DLQ; a non-string entry is sent as its JSON text);
- optional `case.json`:
    key                      object key to upload to (default `in/<case>.<ext>`)
    uploads                  how many times the input is uploaded (new object versions), default 1;
                             each upload is followed by its S3 event and a drain of the queues
    redeliver                extra deliveries of the first upload's S3 event (at-least-once)
    deliver_twice            every invocation (S3 event and SQS batch) is delivered twice
    missing_object           deliver an event for `key` without uploading anything
    deny_get_object          a bucket policy statement denies s3:GetObject and s3:GetObjectVersion
                             (403) before the first delivery (the applied policy is restored
                             after the case); implies that the S3 invocation must fail (it is
                             retryable) and that the model refuses the reads
    preexisting              items put into the transactions table before anything runs
    remaining_time_ms        invocation timeout of the S3-triggered invocation (default 300000)
    retry_remaining_time_ms  invocation timeout of main-queue (retry consumer) invocations
    env                      processor environment overrides (e.g. MAX_FILE_BYTES)
    dlq_env                  DLQ processor environment overrides
    expected_refusals        calls the authorization model must refuse in this case, each
                             {"action", "resource"} (fnmatch patterns); any other refusal fails
                             the case, naming principal, action, resource and why
- `expected.json`, written by hand from design.md:
    transactions  every item of the transactions table, ALL attributes except `ingested_at`
                  (checked to be a recent epoch ms unless the expected item gives it);
    errors        every row of the errors table, projected on the attributes the expected row
                  names (normally error_code, error_type, field, transaction_id, source_line,
                  source_key, source_version_id); `dlq_message: i` links a row to the i-th body
                  of dlq_messages.json (for the $SHA256_BODY / $SENT_TIMESTAMP tokens);
    queues        messages left on each queue at the end (normally 0);
    main_queue_min  lower bounds on the distinct messages of each kind that went through the
                  main queue (`resume_file`, `retry_record`, `s3_event`), proving that a path
                  was taken (exact counts depend on an implementation's batch size);
    accounting    rows_in (data rows delivered, per object version; a file error counts as one
                  row) and duplicates: rows_in must equal stored + duplicates + error rows.
  Tokens: $BUCKET, $VERSION_<n> (version id of the n-th upload), $RECORD_HASH (computed from
  the expected item by the rule of design.md section 2), $PROCESSOR (`python3.11/<version>` or
  `rust/<version>`), $SHA256_BODY, $SENT_TIMESTAMP. A missing attribute and a NULL compare
  equal to JSON null; numbers compare by value (DynamoDB normalises them).

Implementation under test: `CONFORMANCE_IMPL` (comma-separated: `python`, `rust`). For each,
lib/ is applied once with `lambda_runtime` set accordingly to an emulator of its own
(tests/applied_stack.py, fixture `applied` in conftest.py); every case starts from emptied
tables, queues and bucket of that stack. The functions run with their applied configuration:
runtime and handler (`make_invoker` below is the one place that turns a function into an
Invoker), environment (plus the variables Lambda sets, plus the case's `env`/`dlq_env`),
timeout, asynchronous retries and dead-letter target. Delivery follows the applied wiring
through pipeline_local.delivery: the asynchronous S3 invocation, and one poller per event
source mapping (batch size, ReportBatchItemFailures), the queues' own redrive policies.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

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
from pipeline_local.dispatcher import FunctionConfig, RefusedInit, WiringError
from pipeline_local.dispatcher import make_invoker as dispatcher_invoker
from pipeline_local.invokers import DEFAULT_TIMEOUT_MS, InvocationError, Invoker
from pipeline_local.scratch_stack import Stack
from tests.applied_stack import IMPLEMENTATIONS, AppliedStack
from tests.conformance import file_status, schemas

CASES_DIR = Path(__file__).resolve().parent / "cases"
PROCESSOR_PATTERNS = {"python": r"python3\.11/\S+", "rust": r"rust/\S+"}
ERROR_TYPES = {"VALIDATION", "FILE", "PROCESSING", "UNKNOWN_FORMAT"}
ERROR_RETENTION_DAYS = 365


# --------------------------------------------------------------------------------------------
# The one place that knows how to run each implementation.


def make_invoker(applied: AppliedStack, fn: FunctionConfig, env: dict[str, str]) -> Invoker:
    """An Invoker for the applied function `fn` of implementation `applied.impl`, with `env`.

    The runtime the emulator holds chooses the invoker (pipeline_local.dispatcher.make_invoker:
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
# Spec helpers


def canonical_amount(value: Decimal) -> str:
    """Amount in canonical form: plain notation, no trailing fraction zeros (design.md s. 2)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def spec_record_hash(item: dict[str, Any]) -> str:
    """record_hash by design.md section 2: SHA-256 of the validated fields in table order.

    Fields joined with U+001F: transaction_id, account_id, amount (canonical), currency,
    transaction_type, timestamp (epoch ms as stored), merchant_id, description (absent = "").
    """
    parts = [
        item["transaction_id"],
        item["account_id"],
        canonical_amount(Decimal(str(item["amount"]))),
        item["currency"],
        item["transaction_type"],
        str(int(item["timestamp"])),
        item.get("merchant_id") or "",
        item.get("description") or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def spec_error_id(row: dict[str, Any]) -> str:
    """error_id of a row from a message in our format (design.md section 4).

    SHA-256 of source bucket, key, version id, line and error code; joined with U+001F, with ""
    for a null version id or line (DLQ processor decision D4, which both implementations share).
    """
    parts = [
        str(row.get("source_bucket") or ""),
        str(row.get("source_key") or ""),
        str(row.get("source_version_id") or ""),
        "" if row.get("source_line") is None else str(int(row["source_line"])),
        str(row.get("error_code") or ""),
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Resources: the applied stack's, as one case sees them


class CaseStack(Stack):
    """The applied stack's data resources and operator clients, for one case (the same fields
    as a throwaway stack; `versions` holds one version id per upload, in order)."""

    @classmethod
    def of(cls, applied: AppliedStack) -> CaseStack:
        return cls(
            bucket=applied.bucket,
            table=applied.transactions_table,
            errors_table=applied.errors_table,
            main_url=applied.main_queue_url,
            dlq_url=applied.dlq_url,
            s3=applied.clients("s3"),
            ddb=applied.clients("dynamodb"),
            sqs=applied.clients("sqs"),
        )


def scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    deserializer = TypeDeserializer()
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for raw in page["Items"]:
            items.append({k: deserializer.deserialize(v) for k, v in raw.items()})
    return items


# --------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    name: str
    path: Path
    config: dict[str, Any]
    expected: dict[str, Any]

    @property
    def input_file(self) -> Path | None:
        for name in ("input.csv", "input.json"):
            if (self.path / name).exists():
                return self.path / name
        return None

    @property
    def key(self) -> str:
        if "key" in self.config:
            return str(self.config["key"])
        suffix = self.input_file.suffix if self.input_file else ".csv"
        return f"in/{self.name}{suffix}"

    @property
    def dlq_bodies(self) -> list[str]:
        path = self.path / "dlq_messages.json"
        if not path.exists():
            return []
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [e if isinstance(e, str) else json.dumps(e) for e in entries]


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(p for p in CASES_DIR.iterdir() if p.is_dir()):
        config_path = path / "case.json"
        cases.append(
            Case(
                name=path.name,
                path=path,
                config=_load_json(config_path) if config_path.exists() else {},
                expected=_load_json(path / "expected.json"),
            )
        )
    return cases


CASES = load_cases()


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
    stack: CaseStack
    started_ms: int
    transactions: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    queue_depths: dict[str, int]
    sent: dict[str, dict[str, Any]]  # DLQ body -> first delivered SQS record
    main_kinds: Counter[str]  # kind -> distinct messages delivered from the main queue
    s3_results: list[AsyncResult]  # one per S3 event delivery
    main_bodies: list[str] = field(default_factory=list)  # for the contract's schemas
    refusals: list[Decision] = field(default_factory=list)  # by the authorization model


def resolve(value: Any, stack: CaseStack) -> Any:
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


def expected_refusals(case: Case, stack: CaseStack) -> list[dict[str, str]]:
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


def put_preexisting(stack: CaseStack, case: Case) -> None:
    serializer = TypeSerializer()
    for raw in case.config.get("preexisting", []):
        item = resolve(raw, stack)
        if item.get("record_hash") == "$RECORD_HASH":
            item["record_hash"] = spec_record_hash(item)
        stack.ddb.put_item(
            TableName=stack.table,
            Item={k: serializer.serialize(v) for k, v in item.items() if v is not None},
        )


def run_case(applied: AppliedStack, case: Case) -> Run:
    """Empty the stack, then run `case` against it; the bucket policy is restored afterwards."""
    applied.clean()
    applied.unexpected_refusals()  # a refusal of an earlier case was reported there
    started_ms = int(time.time() * 1000)
    stack = CaseStack.of(applied)
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
            file_status.add_crash(invokers, applied.processor.arn, case.config)
            run = _run_case(applied, stack, case, invokers, started_ms)
        run.refusals = list(refused)
        return run
    except DrainError as exc:
        if refused:
            exc.add_note("\n".join(Gateway.summarize(refused)))
        raise
    finally:
        for invoker in invokers.values():
            close = getattr(invoker, "close", None)
            if callable(close):
                close()
        if case.config.get("deny_get_object"):
            applied.restore_bucket_policy()


def _run_case(
    applied: AppliedStack,
    stack: CaseStack,
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
        drain(list(pollers.values()))

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
        drain(list(pollers.values()))

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
        transactions=scan(stack.ddb, stack.table),
        errors=scan(stack.ddb, stack.errors_table),
        queue_depths={
            "main": applied.queue_depth(stack.main_url),
            "dlq": applied.queue_depth(stack.dlq_url),
        },
        sent=sent,
        main_kinds=main_kinds,
        s3_results=s3_results,
        main_bodies=main_bodies,
    )


# --------------------------------------------------------------------------------------------
# Comparison


def _show(value: Any) -> str:
    def plain(o: Any) -> str:
        return format(o, "f") if isinstance(o, Decimal) else str(o)

    return json.dumps(value, default=plain, ensure_ascii=False, sort_keys=True)


def _norm(value: Any) -> Any:
    """Numbers by value (int/Decimal alike), everything else as is."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        return Decimal(value).normalize()
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def compare_transactions(case: Case, run: Run, impl: str) -> list[str]:
    problems: list[str] = []
    now_ms = int(time.time() * 1000)
    expected: dict[tuple[str, Decimal], dict[str, Any]] = {}
    for raw in case.expected.get("transactions", []):
        item = resolve(raw, run.stack)
        if item.get("record_hash") == "$RECORD_HASH":
            item["record_hash"] = spec_record_hash(item)
        expected[(item["transaction_id"], _norm(item["timestamp"]))] = item
    observed = {(i["transaction_id"], _norm(i["timestamp"])): i for i in run.transactions}
    for key in sorted(expected.keys() - observed.keys(), key=str):
        problems.append(f"transaction missing: {key[0]} @ {key[1]:f}: {_show(expected[key])}")
    for key in sorted(observed.keys() - expected.keys(), key=str):
        problems.append(f"transaction unexpected: {key[0]} @ {key[1]:f}: {_show(observed[key])}")
    for key in sorted(expected.keys() & observed.keys(), key=str):
        want, got = dict(expected[key]), dict(observed[key])
        got_ingested = got.pop("ingested_at", None)
        want_ingested = want.pop("ingested_at", None)
        if want_ingested is not None:
            if _norm(got_ingested) != _norm(want_ingested):
                problems.append(
                    f"transaction {key[0]}: ingested_at {got_ingested} != {want_ingested}"
                    " (stored items are never overwritten)"
                )
        elif not (
            isinstance(got_ingested, Decimal)
            and run.started_ms - 1000 <= got_ingested <= now_ms + 1000
        ):
            problems.append(f"transaction {key[0]}: ingested_at {got_ingested!r} not a recent ms")
        if want.get("processor") == "$PROCESSOR":
            want.pop("processor")
            proc = got.pop("processor", None)
            if not (isinstance(proc, str) and re.fullmatch(PROCESSOR_PATTERNS[impl], proc)):
                problems.append(f"transaction {key[0]}: processor {proc!r} is not {impl}/<ver>")
        for attr in sorted(want.keys() | got.keys()):
            w, g = want.get(attr), got.get(attr)
            if _norm(w) != _norm(g):
                problems.append(
                    f"transaction {key[0]} @ {key[1]:f}: {attr}:"
                    f" expected {_show(w)}, got {_show(g)}"
                )
    return problems


def _expected_error_rows(case: Case, run: Run) -> list[dict[str, Any]]:
    bodies = case.dlq_bodies
    rows = []
    for raw in case.expected.get("errors", []):
        row = resolve(raw, run.stack)
        index = row.pop("dlq_message", None)
        if index is not None:
            body = bodies[int(index)]
            if row.get("error_id") == "$SHA256_BODY":
                row["error_id"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
            if row.get("timestamp") == "$SENT_TIMESTAMP":
                record = run.sent.get(body)
                row["timestamp"] = int(record["attributes"]["SentTimestamp"]) if record else None
        rows.append(row)
    return rows


def compare_errors(case: Case, run: Run) -> list[str]:
    expected_rows = _expected_error_rows(case, run)
    if not expected_rows:
        return [f"error row unexpected: {_show(r)}" for r in run.errors]
    fields = sorted({k for row in expected_rows for k in row})
    want = Counter(_show(_norm({f: row.get(f) for f in fields})) for row in expected_rows)
    got = Counter(_show(_norm({f: row.get(f) for f in fields})) for row in run.errors)
    problems = [f"error row missing: {r}" for r in sorted((want - got).elements())]
    problems += [f"error row unexpected: {r}" for r in sorted((got - want).elements())]
    return problems


def check_error_row_invariants(run: Run) -> list[str]:
    """What design.md sections 4, 5 and 8 require of every errors-table row."""
    problems: list[str] = []
    now_s = time.time()
    last_modified: dict[tuple[str, str], int | None] = {}
    for row in run.errors:
        tag = f"error row {row.get('error_code')}/{row.get('source_line')}"
        if not re.fullmatch(r"[0-9a-f]{64}", str(row.get("error_id", ""))):
            problems.append(f"{tag}: error_id {row.get('error_id')!r} is not a hex SHA-256")
        if row.get("error_type") not in ERROR_TYPES:
            problems.append(f"{tag}: error_type {row.get('error_type')!r}")
        if "transaction_id" in row and not (
            isinstance(row["transaction_id"], str) and row["transaction_id"]
        ):
            problems.append(f"{tag}: transaction_id must be absent when unknown, not {row!r}")
        if not isinstance(row.get("retryable"), bool):
            problems.append(f"{tag}: retryable {row.get('retryable')!r} is not a boolean")
        detected = row.get("detected_at")
        if not (isinstance(detected, Decimal) and 0 < detected <= now_s * 1000 + 1000):
            problems.append(f"{tag}: detected_at {detected!r} is not an epoch ms")
        if row.get("error_type") in ("VALIDATION", "FILE", "PROCESSING"):
            want_id = spec_error_id(row)
            if row.get("error_id") != want_id:
                problems.append(f"{tag}: error_id {row.get('error_id')} != {want_id}")
        expires = row.get("expires_at")
        horizon = now_s + ERROR_RETENTION_DAYS * 86400
        if not (isinstance(expires, Decimal) and horizon - 86400 <= expires <= horizon + 86400):
            problems.append(
                f"{tag}: expires_at {expires!r} is not now + {ERROR_RETENTION_DAYS} days in epoch"
                " seconds (the DynamoDB TTL unit)"
            )
        message = row.get("error_message")
        if not (isinstance(message, str) and message):
            problems.append(f"{tag}: error_message missing")
        elif row.get("field") and str(row["field"]) not in message:
            problems.append(f"{tag}: error_message {message!r} does not name {row['field']!r}")
        if not row.get("sqs_message_id"):
            problems.append(f"{tag}: sqs_message_id missing")
        record = row.get("record")
        if record is not None:
            if not isinstance(record, dict):
                problems.append(f"{tag}: record is not a map")
            else:
                if "description" in record:
                    problems.append(f"{tag}: record keeps the description")
                account = record.get("account_id")
                if isinstance(account, str) and sum(c.isalnum() for c in account) > 4:
                    problems.append(f"{tag}: account_id {account!r} not masked to last 4")
        version = row.get("source_version_id")
        from_object = row.get("error_type") in ("VALIDATION", "FILE") or (
            row.get("error_type") == "PROCESSING" and row.get("transaction_id")
        )
        if (
            from_object
            and row.get("source_bucket") == run.stack.bucket
            and version
            and row.get("source_key")
        ):
            cache_key = (str(row["source_key"]), str(version))
            if cache_key not in last_modified:
                try:
                    head = run.stack.s3.head_object(
                        Bucket=run.stack.bucket, Key=cache_key[0], VersionId=cache_key[1]
                    )
                    last_modified[cache_key] = int(head["LastModified"].timestamp() * 1000)
                except Exception:
                    last_modified[cache_key] = None
            lm = last_modified[cache_key]
            if lm is not None and _norm(row.get("timestamp")) != _norm(lm):
                problems.append(
                    f"{tag}: timestamp {row.get('timestamp')} is not the object's LastModified {lm}"
                )
    return problems


def check_accounting(case: Case, run: Run) -> list[str]:
    acc = case.expected.get("accounting")
    if acc is None:
        return []
    preexisting = {
        (p["transaction_id"], _norm(p["timestamp"])) for p in case.config.get("preexisting", [])
    }
    stored = sum(
        1
        for i in run.transactions
        if (i["transaction_id"], _norm(i["timestamp"])) not in preexisting
    )
    rows_in, dups = int(acc["rows_in"]), int(acc.get("duplicates", 0))
    if rows_in != stored + dups + len(run.errors):
        return [
            f"accounting: rows in {rows_in} != stored {stored} + duplicates {dups}"
            f" + error rows {len(run.errors)}"
        ]
    return []


def check_queues(case: Case, run: Run) -> list[str]:
    want = case.expected.get("queues", {"main": 0, "dlq": 0})
    problems = [
        f"queue {name}: {run.queue_depths.get(name)} messages left, expected {count}"
        for name, count in want.items()
        if run.queue_depths.get(name) != count
    ]
    # design.md section 8: on an S3 event the processor returns normally for every bad file and
    # raises only for failures that a retry can fix.
    must_fail = bool(case.config.get("deny_get_object"))
    for result in run.s3_results:
        if must_fail and result.error is None:
            problems.append("S3 invocation returned normally, expected a retryable failure")
        if not must_fail and result.error is not None:
            problems.append(f"S3 invocation failed {result.attempts} times: {result.error}")
    for kind, minimum in case.expected.get("main_queue_min", {}).items():
        if run.main_kinds[kind] < int(minimum):
            problems.append(
                f"main queue: {run.main_kinds[kind]} {kind} messages, expected at least"
                f" {minimum} (seen: {dict(run.main_kinds)})"
            )
    return problems


# --------------------------------------------------------------------------------------------
# The test


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_conformance(applied: AppliedStack, case: Case) -> None:
    impl = applied.impl
    try:
        run = run_case(applied, case)
    except DrainError as exc:
        refusals = "\n  ".join(getattr(exc, "__notes__", []))
        pytest.fail(
            f"{case.name} [{impl}]: the queues never emptied: {exc}\n  {refusals}", pytrace=False
        )
    problems = (
        compare_transactions(case, run, impl)
        + compare_errors(case, run)
        + check_error_row_invariants(run)
        + check_accounting(case, run)
        + check_queues(case, run)
        + check_refusals(case, run)
        # contract/schemas/: every message and item seen (tests/conformance/schemas.py)
        + schemas.run_problems(
            [*run.main_bodies, *run.sent], case.dlq_bodies, run.transactions, run.errors
        )
        # the per-file status (contract P26 to P31; tests/conformance/file_status.py)
        + file_status.check(
            case.expected,
            file_status.scan_status(run.stack.ddb, applied.file_status_table),
            run.stack.bucket,
            run.stack.versions,
            impl,
        )
    )
    if problems:
        description = case.config.get("description", "")
        pytest.fail(
            f"{case.name} [{impl}] {description}\n  " + "\n  ".join(problems), pytrace=False
        )


def test_cases_are_well_formed() -> None:
    """Every case has an input and an expectation; tokens are the known ones."""
    assert len(CASES) >= 40
    known = re.compile(r"\$(BUCKET|VERSION_\d+|RECORD_HASH|PROCESSOR|SHA256_BODY|SENT_TIMESTAMP)")
    for case in CASES:
        assert case.input_file or case.dlq_bodies or case.config.get("missing_object"), case.name
        for token in re.findall(r'"(\$[A-Z0-9_]+)"', (case.path / "expected.json").read_text()):
            assert known.fullmatch(token), (case.name, token)


def test_an_unexpected_refusal_fails_a_case(applied: AppliedStack) -> None:
    """The refusal check can fail: without the processor role's permission to use the tables'
    key through DynamoDB (the defect of issue 9, made again in the emulator only), case 01's
    DynamoDB calls are refused (the file status's UpdateItem first, so no PutItem is even
    tried), and the case reports the role, kms:Decrypt, the key and why."""
    iam = applied.clients("iam")
    policy_arn = str(applied.stack.outputs["processor_policy_arn"])
    applied_version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=applied_version)[
        "PolicyVersion"
    ]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    kept = [s for s in document["Statement"] if s.get("Sid") != "UseTableKeyThroughDynamoDB"]
    assert len(kept) == len(document["Statement"]) - 1, "the applied policy changed: adapt"
    broken = iam.create_policy_version(
        PolicyArn=policy_arn,
        PolicyDocument=json.dumps({**document, "Statement": kept}),
        SetAsDefault=True,
    )["PolicyVersion"]["VersionId"]
    applied.gateway.store.refresh()
    try:
        case = next(c for c in CASES if c.name == "01-csv-valid-basic")
        problems = check_refusals(case, run_case(applied, case))
    finally:
        iam.set_default_policy_version(PolicyArn=policy_arn, VersionId=applied_version)
        iam.delete_policy_version(PolicyArn=policy_arn, VersionId=broken)
        applied.gateway.store.refresh()
    report = "\n".join(problems)
    assert "refused by the authorization model, unexpected" in report, report
    assert "assumed-role/" + applied.processor.role.rsplit("/", 1)[-1] in report, report
    assert "kms:Decrypt on arn:aws:kms:" in report, report
    # The processor's first DynamoDB call is the file status's UpdateItem (contract P27).
    assert "dynamodb:UpdateItem" in report and "no identity-based policy allows" in report, report
