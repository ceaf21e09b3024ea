"""One applied stack for the whole e2e package, cleaned between tests.

`terraform apply` against moto takes 70 to 110 s here, so every e2e module shares one emulator
with the real configuration applied once (through tests.integration.conftest.apply_stack), and
each test starts from empty tables, queues and bucket with a fresh dispatcher (cold starts).
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
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pipeline_local import file_status
from pipeline_local import samples as sample_files
from pipeline_local.authz.gateway import Gateway
from pipeline_local.authz.store import EmulatorPolicyStore
from pipeline_local.delivery import queue_depth
from pipeline_local.dispatcher import (
    Clients,
    Dispatcher,
    Wiring,
    dead_letter_targets_from_terraform,
    empty_bucket,
    read_wiring,
    scan_all,
)
from pipeline_local.faults import FaultInjector
from tests.integration.conftest import Stack, apply_stack

E2E_IMPLS = [s.strip() for s in os.environ.get("E2E_IMPL", "python").split(",") if s.strip()]
# Per implementation: the lambda_runtime variable, and the (runtime, handler) pairs that the
# applied functions then have.
IMPLEMENTATIONS = {
    "python": (
        "python3.11",
        {
            ("python3.11", "processor_function.lambda_handler"),
            ("python3.11", "dlq_processor_function.lambda_handler"),
        },
    ),
    "rust": ("rust", {("provided.al2023", "bootstrap")}),
}

# Small enough to keep the package fast, large enough for several 1000-row batches per file.
SCALE = 0.35
PRODUCER_ROLE = "pipeline-local-producer"
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
    stack: Stack
    clients: Clients
    wiring: Wiring
    bucket: str
    transactions_table: str
    errors_table: str
    file_status_table: str
    main_queue_url: str
    dlq_url: str
    gateway: Gateway
    producer: Clients  # the producer role, through the gateway's HTTPS listener
    dispatchers: list[Dispatcher] = field(default_factory=list)

    def dispatcher(self, **kwargs: Any) -> Dispatcher:
        """A dispatcher with fresh execution environments (closed after the test), every
        function running through the gateway with its own role."""
        kwargs.setdefault("ship_logs", False)
        d = Dispatcher(self.clients, self.wiring, gateway=self.gateway, **kwargs)
        self.dispatchers.append(d)
        return d

    @contextlib.contextmanager
    def faults(self, **kwargs: Any) -> Iterator[FaultInjector]:
        """A FaultInjector in the gateway's chain (after the authorizer) for the block."""
        injector = FaultInjector(**kwargs)
        self.gateway.proxy.add_interceptor(injector)
        try:
            yield injector
        finally:
            self.gateway.proxy.remove_interceptor(injector)

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
        """Empty tables, queues and bucket; close every dispatcher of the last test."""
        for d in self.dispatchers:
            d.close()
        self.dispatchers.clear()
        ddb = self.clients("dynamodb")
        for table, keys in (
            (self.transactions_table, ("transaction_id", "timestamp")),
            (self.errors_table, ("error_id", "timestamp")),
            (self.file_status_table, ("source_key", "source_version_id")),
        ):
            raw: list[dict[str, Any]] = []
            for page in ddb.get_paginator("scan").paginate(
                TableName=table, ProjectionExpression="#a, #b",
                ExpressionAttributeNames={"#a": keys[0], "#b": keys[1]},
            ):  # fmt: skip
                raw += page["Items"]
            for i in range(0, len(raw), 25):
                ddb.batch_write_item(
                    RequestItems={table: [{"DeleteRequest": {"Key": k}} for k in raw[i : i + 25]]}
                )
        sqs = self.clients("sqs")
        for url in (self.main_queue_url, self.dlq_url):
            sqs.purge_queue(QueueUrl=url)
        empty_bucket(self.clients("s3"), self.bucket)


@pytest.fixture(scope="package", params=E2E_IMPLS)
def e2e(request: pytest.FixtureRequest) -> Iterator[E2E]:
    impl = str(request.param)
    if impl not in IMPLEMENTATIONS:
        pytest.fail(f"E2E_IMPL: unknown implementation {impl!r} (python, rust)")
    lambda_runtime, applied = IMPLEMENTATIONS[impl]
    # Terraform variable names are case-sensitive (TF_VAR_max_file_bytes).
    var = "TF_VAR_max_file_bytes"
    saved = os.environ.get(var)
    os.environ[var] = str(sample_files.SAMPLE_MAX_FILE_BYTES)
    try:
        stack = apply_stack(f"tf-e2e-{impl}", lambda_runtime)
    finally:
        if saved is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = saved
    try:
        clients = Clients(stack.emulator.endpoint)
        out = stack.outputs
        bucket = str(out["s3_bucket_name"])
        # The applied policy keeps its deny statements; the model evaluates them.
        policy = json.loads(clients("s3").get_bucket_policy(Bucket=bucket)["Policy"])
        denies = {s["Sid"] for s in policy["Statement"] if s["Effect"] == "Deny"}
        assert {"DenyInsecureTransport", "DenyUploadsNotEncryptedWithKms"} <= denies
        store = EmulatorPolicyStore(clients, terraform_workdir=stack.workdir.path)
        gateway = Gateway(stack.emulator.endpoint, store).start()
        _LIVE_GATEWAYS.append(gateway)
        producer_arn = gateway.role_with_policy(PRODUCER_ROLE, producer_policy(out))
        producer = gateway.clients(gateway.assume_role(producer_arn, "producer"))
        wiring = read_wiring(
            clients, dead_letter_fallback=dead_letter_targets_from_terraform(stack.workdir.path)
        )
        # The tests below are only about this implementation if the emulator holds it.
        assert {(fn.runtime, fn.handler) for fn in wiring.functions.values()} == applied
        env = E2E(
            stack=stack,
            clients=clients,
            wiring=wiring,
            bucket=bucket,
            transactions_table=str(out["transactions_table_name"]),
            errors_table=str(out["errors_table_name"]),
            file_status_table=str(out["file_status_table_name"]),
            main_queue_url=str(out["main_queue_url"]),
            dlq_url=str(out["dlq_url"]),
            gateway=gateway,
            producer=producer,
        )
        yield env
        for d in env.dispatchers:
            d.close()
    finally:
        for gw in list(_LIVE_GATEWAYS):
            gw.stop()
            _LIVE_GATEWAYS.remove(gw)
        stack.emulator.stop()


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
