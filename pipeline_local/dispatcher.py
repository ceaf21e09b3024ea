"""Do what the Lambda and S3 services do for the deployed pipeline: invoke, retry, poll, drain.

The emulator (moto server) stores the functions, the bucket notifications and the event source
mappings that Terraform applied, but never runs Lambda code. The `Dispatcher` does what the
Lambda and S3 services would do, with the wiring the emulator reports (`pipeline_local.wiring`):

- S3 notifications: one `ObjectCreated:Put` event for every object version not dispatched yet
  that matches a notification's filters, oldest first (`pipeline_local.notifications`).
- Asynchronous invocation (how S3 invokes): a function error is retried up to the function's
  MaximumRetryAttempts, then the original event goes to the function's dead-letter queue.
- Event source mappings: `pipeline_local.delivery.QueuePoller`s, drained until every mapped
  queue is empty (ReportBatchItemFailures, visibility, redrive by the queue itself).
- What the Lambda service adds around the code: an execution environment per function
  (`pipeline_local.function_invokers.make_invoker`, optionally Lambda-sized), a context whose
  remaining time counts down from the function's timeout (a shorter override is allowed for
  tests), the function's environment plus the variables Lambda sets, every invocation recorded
  and its output shipped (`pipeline_local.records`, `pipeline_local.logs`), and AWS/Lambda and
  AWS/SQS metrics (`pipeline_local.metrics`).

CLI: `python -m pipeline_local.dispatcher_cli wiring|run` (after `make up`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_local.clients import Clients
from pipeline_local.constants import LIB_DIR
from pipeline_local.delivery import (
    AsyncResult,
    DrainStats,
    QueuePoller,
    drain,
    invoke_async,
    queue_depth,
)
from pipeline_local.function_invokers import (
    Execution,
    RefusedInit,
    lambda_environment,
    make_invoker,
)
from pipeline_local.invokers import InvocationError, Invoker, close_layers
from pipeline_local.logs import LogSink
from pipeline_local.metrics import put_lambda_metrics, put_queue_metrics
from pipeline_local.notifications import PendingEvent, pending_events
from pipeline_local.records import InvocationRecord, RecordingInvoker
from pipeline_local.wiring import (
    FunctionConfig,
    Wiring,
    WiringError,
    arn_name,
    lambda_service_session,
    unqualified,
)

if TYPE_CHECKING:
    from pipeline_local.authz.gateway import Gateway

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


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
        execution: Execution = Execution.IN_PROCESS,
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
        # How the functions' code runs (function_invokers.Execution; LAMBDA_SIZED: each
        # function's process held to its MemorySize, as on Lambda).
        self.execution = execution
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
            saved = json.loads(dispatched_state.read_text())
            self.dispatched = {(str(b), str(k), str(v)) for b, k, v in saved}
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
                close_layers(recording.inner)

    def invoker(self, function_arn: str) -> RecordingInvoker:
        arn = unqualified(function_arn)
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
                    execution=self.execution,
                    announce=self.log,
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
        notification, oldest first."""
        return pending_events(self.clients("s3"), self.wiring, self.dispatched)

    def deliver(self, pending: Iterable[PendingEvent]) -> list[AsyncOutcome]:
        """Invoke asynchronously, as S3 does: retries, then the function's dead-letter queue."""
        with self.emulator_mappings_paused():
            return self._deliver(pending)

    def _deliver(self, pending: Iterable[PendingEvent]) -> list[AsyncOutcome]:
        out: list[AsyncOutcome] = []
        for p in pending:
            fn = self.wiring.functions[unqualified(p.notification.function_arn)]
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
                    f"{arn_name(fn.dead_letter_target_arn or '')}"
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
        by_queue = Counter(arn_name(p.arn) for p in pollers for _ in p.deliveries)
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
