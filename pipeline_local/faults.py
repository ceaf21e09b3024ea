"""Inject seeded AWS errors into the local pipeline through a proxy (crashes: see crashes.py).

`LoopbackProxy` is a small HTTP/1.1 proxy on 127.0.0.1 (free port) that forwards every request
to the emulator unchanged unless one of its interceptors answers it. The handlers reach it
through the standard `AWS_ENDPOINT_URL` (the dispatcher's `handler_endpoint`), so they run
unmodified. Interceptors see the AWS service (from the SigV4 credential scope), the operation
(from `X-Amz-Target`, a query `Action`, or the S3 method), the access key and the body.

- `FaultInjector`: with a fixed seed, answers a configurable share of DynamoDB and SQS calls
  with the errors those services really return under load: DynamoDB `ThrottlingException` or
  `ProvisionedThroughputExceededException` (HTTP 400) and `InternalServerError` (500) /
  `ServiceUnavailable` (503); SQS `InternalError` (500) / `ServiceUnavailable` (503). The
  seeded generator fixes the sequence of decisions; which request meets which decision follows
  the order requests arrive in (the processor writes from 16 threads).
  `fail_matching()` adds deterministic rules: fail the next N calls of an operation whose body
  contains a marker (e.g. one transaction id), so that boto3's retries run out and the
  handler's own retry path (retry_record -> main queue) is taken.
- `CrashingInvoker`: kills a handler mid-invocation, as a timeout or an out-of-memory kill
  does, after N successful calls of an operation (default DynamoDB PutItem). A Python handler
  runs in this process: every further AWS call of that invocation raises `SimulatedCrash` (a
  BaseException the handler cannot catch). A Rust `bootstrap` runs in its own process: its
  calls go through a LoopbackProxy that SIGKILLs it at the limit. Either way the invocation
  fails and what was written before stays written.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_local.crashes import CrashingInvoker, SimulatedCrash
from pipeline_local.loopback_proxy import LoopbackProxy
from pipeline_local.proxy_messages import (
    Interceptor,
    ProxyRequest,
    ProxyResponse,
    classify,
    json_error,
    xml_error,
)

__all__ = [
    "CrashingInvoker",
    "FaultInjector",
    "Interceptor",
    "LoopbackProxy",
    "ProxyRequest",
    "ProxyResponse",
    "SimulatedCrash",
    "classify",
    "fault_proxy",
    "json_error",
    "xml_error",
]


@dataclass
class _Rule:
    service: str
    operation: str
    contains: tuple[bytes, ...]
    times: int
    status: int
    code: str
    used: int = 0


@dataclass
class FaultInjector:
    """Seeded random faults on DynamoDB and SQS calls, plus deterministic targeted rules."""

    seed: int = 7
    rate: float = 0.05
    dynamodb_throttle_share: float = 0.5  # of DynamoDB faults; the rest are 5xx
    services: tuple[str, ...] = ("dynamodb", "sqs")
    operations: tuple[str, ...] = ()  # empty: every operation of those services
    injected: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    enabled: bool = True
    _rules: list[_Rule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def fail_matching(
        self,
        service: str,
        operation: str,
        contains: str | bytes | Sequence[str | bytes],
        times: int,
        *,
        status: int = 500,
        code: str = "InternalServerError",
    ) -> _Rule:
        """Answer the next `times` calls of `operation` whose body contains every marker."""
        items = [contains] if isinstance(contains, str | bytes) else list(contains)
        markers = tuple(m.encode() if isinstance(m, str) else m for m in items)
        rule = _Rule(service, operation, markers, times, status, code)
        with self._lock:
            self._rules.append(rule)
        return rule

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def __call__(self, req: ProxyRequest) -> ProxyResponse | None:
        if not self.enabled:
            return None
        with self._lock:
            for rule in self._rules:
                if (
                    rule.used < rule.times
                    and req.service == rule.service
                    and req.operation == rule.operation
                    and all(m in req.body for m in rule.contains)
                ):
                    rule.used += 1
                    self.injected[(req.service, req.operation, rule.code)] += 1
                    return self._error(req, rule.status, rule.code)
            if req.service not in self.services:
                return None
            if self.operations and req.operation not in self.operations:
                return None
            if self._rng.random() >= self.rate:
                return None
            pick = self._rng.random()
            if req.service == "dynamodb" and pick < self.dynamodb_throttle_share:
                code = (
                    "ThrottlingException"
                    if self._rng.random() < 0.5
                    else "ProvisionedThroughputExceededException"
                )
                status = 400
            else:
                status = 500 if self._rng.random() < 0.7 else 503
                code = "InternalServerError" if status == 500 else "ServiceUnavailable"
                if req.service == "sqs" and status == 500:
                    code = "InternalError"
            self.injected[(req.service, req.operation, code)] += 1
        return self._error(req, status, code)

    @staticmethod
    def _error(req: ProxyRequest, status: int, code: str) -> ProxyResponse:
        message = f"injected by pipeline_local.faults ({code})"
        if req.service == "dynamodb":
            return json_error(status, f"com.amazonaws.dynamodb.v20120810#{code}", message)
        if req.service == "sqs" and (req.header("X-Amz-Target") or "").startswith("AmazonSQS."):
            sender = "Sender" if status < 500 else "Receiver"
            return json_error(
                status, f"com.amazonaws.sqs#{code}", message, query_code=f"{code};{sender}"
            )
        return xml_error(status, code, message)


@contextlib.contextmanager
def fault_proxy(
    upstream: str, *, seed: int = 7, rate: float = 0.05, **kwargs: Any
) -> Iterator[tuple[LoopbackProxy, FaultInjector]]:
    """A started proxy with one FaultInjector; stopped on exit."""
    injector = FaultInjector(seed=seed, rate=rate, **kwargs)
    proxy = LoopbackProxy(upstream, [injector]).start()
    try:
        yield proxy, injector
    finally:
        proxy.stop()
