"""One applied stack per implementation for the whole e2e package, cleaned between tests.

`terraform apply` against moto takes 70 to 110 s here, so every e2e module shares one emulator
with the real configuration applied once (tests.applied_stack.apply, the same setup as the
conformance suite's, with max_file_bytes at the samples' 1 MiB), and each test starts from
empty tables, queues and bucket (checked: `AppliedStack.clean` fails when anything is left)
with a fresh dispatcher (cold starts).
The emulator is stopped at the end without `terraform destroy`: it is private to this package
and destroy is checked by the integration tests.

Implementations: `E2E_IMPL` (comma-separated `python`, `rust`; default `python`) applies the stack
once per implementation with `lambda_runtime` set accordingly, and every test runs against each
(test ids end in `[python]` / `[rust]`). The Rust functions run as their host-built `bootstrap`
processes (`make build-rust`); one that is not built fails the run, it is never skipped.

Authorization: every request of the functions, their event source mappings, Lambda's own calls
on their behalf, S3's invocations and the producer's uploads goes through one
`pipeline_local.authz.gateway.Gateway` per stack and is decided by the model against the
applied policies (the bucket policy keeps its Deny statements). Uploads are made by a producer
role created in the emulator with the stack's `producer_policy_json` output, over HTTPS. A
refusal that the test did not expect (`e2e.gateway.expect_denials()`) fails the test, listing
principal, action, resource and why (`pytest_runtest_call` below). The operator (the test's
own setup, cleanup and reads; `e2e.clients`) talks to the emulator directly, as account admin.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pipeline_local import file_status
from pipeline_local import samples as sample_files
from pipeline_local.authz.gateway import Gateway
from pipeline_local.clients import Clients
from pipeline_local.constants import E2E_IMPL_ENV
from pipeline_local.delivery import queue_depth
from pipeline_local.dispatcher import Dispatcher
from pipeline_local.faults import FaultInjector
from pipeline_local.function_invokers import Execution
from pipeline_local.stores import scan_all
from pipeline_local.wiring import Wiring
from tests.applied_stack import IMPLEMENTATIONS, AppliedStack, apply
from tests.integration.conftest import Stack

E2E_IMPLS = [s.strip() for s in os.environ.get(E2E_IMPL_ENV, "python").split(",") if s.strip()]
# How the dispatchers run the functions unless a test says otherwise: in-process (a Rust
# function is its own process anyway); PIPELINE_LAMBDA_SIZED=1 runs every test Lambda-sized.
# tests/e2e/test_lambda_sized.py runs Lambda-sized whatever this says (docs/operations.md).
E2E_EXECUTION = Execution.from_env(Execution.IN_PROCESS)

# Small enough to keep the package fast, large enough for several 1000-row batches per file.
SCALE = 0.35
_LIVE_GATEWAYS: list[Gateway] = []


def refusal_report(refused: Sequence[Any]) -> str:
    lines = [f"{len(refused)} AWS call(s) refused by the authorization model, unexpected:"]
    lines += [f"  {line}" for line in Gateway.summarize(refused)]
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[Any]:
    """A refusal nobody expected fails the test that caused it (also one that failed already:
    the refusals are added to its report)."""
    try:
        result = yield
    except BaseException as exc:
        refused = [d for gw in _LIVE_GATEWAYS for d in gw.unexpected_denials()]
        if refused:
            exc.add_note(refusal_report(refused))
        raise
    refused = [d for gw in _LIVE_GATEWAYS for d in gw.unexpected_denials()]
    if refused:
        pytest.fail(refusal_report(refused), pytrace=False)
    return result


@dataclass
class E2E:
    """The applied stack of one implementation (tests.applied_stack), with what the e2e tests
    do on it: dispatchers, fault injection, uploads as the producer, accounting."""

    applied: AppliedStack
    dispatchers: list[Dispatcher] = field(default_factory=list)

    @property
    def stack(self) -> Stack:
        return self.applied.stack

    @property
    def clients(self) -> Clients:
        return self.applied.clients

    @property
    def wiring(self) -> Wiring:
        return self.applied.wiring

    @property
    def bucket(self) -> str:
        return self.applied.bucket

    @property
    def transactions_table(self) -> str:
        return self.applied.transactions_table

    @property
    def errors_table(self) -> str:
        return self.applied.errors_table

    @property
    def file_status_table(self) -> str:
        return self.applied.file_status_table

    @property
    def main_queue_url(self) -> str:
        return self.applied.main_queue_url

    @property
    def dlq_url(self) -> str:
        return self.applied.dlq_url

    @property
    def gateway(self) -> Gateway:
        return self.applied.gateway

    @property
    def producer(self) -> Clients:
        return self.applied.producer

    def dispatcher(self, **kwargs: Any) -> Dispatcher:
        """A dispatcher with fresh execution environments (closed after the test), every
        function running through the gateway with its own role."""
        kwargs.setdefault("ship_logs", False)
        kwargs.setdefault("execution", E2E_EXECUTION)
        d = Dispatcher(self.clients, self.wiring, gateway=self.gateway, **kwargs)
        self.dispatchers.append(d)
        return d

    def faults(self, **kwargs: Any) -> contextlib.AbstractContextManager[FaultInjector]:
        """A FaultInjector in the gateway's chain for the block (AppliedStack.faults)."""
        return self.applied.faults(**kwargs)

    def upload(
        self, files: Sequence[sample_files.SampleFile], ledger: sample_files.Ledger
    ) -> list[sample_files.Upload]:
        """Put every file as the producer; the model's expectation for the dispatched ones, in
        upload order."""
        s3 = self.producer("s3")
        uploads: list[sample_files.Upload] = []
        for f in files:
            version = s3.put_object(Bucket=self.bucket, Key=f.key, Body=f.body)["VersionId"]
            if f.dispatched:
                uploads.append(sample_files.Upload(f, version, ledger.process(f)))
        return uploads

    def delete_versions_to_vanish(self, uploads: Sequence[sample_files.Upload]) -> None:
        for up in uploads:
            if up.sample.delete_before_processing:
                self.clients("s3").delete_object(
                    Bucket=self.bucket, Key=up.sample.key, VersionId=up.version_id
                )

    def items(self) -> list[dict[str, Any]]:
        return scan_all(self.clients("dynamodb"), self.transactions_table)

    def error_rows(self) -> list[dict[str, Any]]:
        return scan_all(self.clients("dynamodb"), self.errors_table)

    def depths(self) -> dict[str, int]:
        sqs = self.clients("sqs")
        return {
            "main": queue_depth(sqs, self.main_queue_url),
            "dlq": queue_depth(sqs, self.dlq_url),
        }

    def account(self, uploads: Sequence[sample_files.Upload]) -> sample_files.Accounting:
        """Every row found in the tables, and each file's status held to it (issue 14: the
        counts of the status table add up to the file's rows, after kills and resumes too)."""
        acc = sample_files.account(uploads, self.items(), self.error_rows(), self.depths())
        # The latest upload of a version is what its status describes.
        latest = {(f.key, f.version_id): f for f in acc.files}
        statuses = file_status.read_statuses(
            self.clients("dynamodb"), self.file_status_table, latest.values()
        )
        acc.status_problems = file_status.problems(latest.values(), statuses)
        return acc

    def clean(self) -> None:
        """Close every dispatcher of the last test; empty tables, queues and bucket (and fail
        if anything is left: a later test must not see this one's data)."""
        for d in self.dispatchers:
            d.close()
        self.dispatchers.clear()
        self.applied.clean()


@pytest.fixture(scope="package", params=E2E_IMPLS)
def e2e(request: pytest.FixtureRequest) -> Iterator[E2E]:
    impl = str(request.param)
    if impl not in IMPLEMENTATIONS:
        pytest.fail(f"{E2E_IMPL_ENV}: unknown implementation {impl!r} (python, rust)")
    applied = apply(impl, max_file_bytes=sample_files.SAMPLE_MAX_FILE_BYTES, suite="e2e")
    _LIVE_GATEWAYS.append(applied.gateway)
    env = E2E(applied)
    try:
        yield env
    finally:
        for d in env.dispatchers:
            d.close()
        _LIVE_GATEWAYS.remove(applied.gateway)
        applied.stop()


def producer_policy(outputs: dict[str, Any]) -> Any:
    """The producer's policy as the stack outputs it (lib/: `producer_policy_json`)."""
    value = outputs.get("producer_policy_json")
    if value is None:
        pytest.fail("the applied stack has no `producer_policy_json` output (issue 9, lib/)")
    return value


@pytest.fixture
def clean_e2e(e2e: E2E) -> Iterator[E2E]:
    """The shared stack, empty, for one test."""
    e2e.clean()
    yield e2e
    e2e.clean()


@pytest.fixture(scope="package")
def samples() -> sample_files.SampleSet:
    return sample_files.generate(scale=SCALE)
