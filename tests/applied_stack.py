"""The one applied stack of the suites: lib/ applied to a private emulator, emptied between tests.

Used by the conformance suite (tests/conformance/conftest.py) and the e2e suite
(tests/e2e/conftest.py, which applies with max_file_bytes at the samples' 1 MiB: that is why
the two suites do not share one emulator). pipeline_local.scratch_stack is the other kind of
stack: the data resources only, made through the API, for benchmarks that need many copies.

`terraform apply` against moto takes a minute or more here, so a suite applies lib/ once per
implementation (`lambda_runtime`), through tests.integration.conftest.apply_stack, and empties
the data resources between its tests instead of re-applying: the three tables, both queues and
the bucket. Everything else (roles, policies, keys, functions, mappings, notifications) stays as
Terraform applied it, and every request of the pipeline is authorized against it. In `make test`
the stack was applied before pytest started (tests/preapply.py) and apply_stack adopts it.

Authorization: one `pipeline_local.authz.gateway.Gateway` per stack. Each function runs with
its execution role's session credentials and reaches AWS only through the gateway's HTTPS
listener; what the Lambda service does for it (its event source mappings' polling, the
asynchronous dead-letter SendMessage) uses that role too, and what Lambda and S3 do as services
(decrypting the environment at a cold start, S3 invoking the function) is decided by the model
as well (`cold_start`, `s3_invokes`). Uploads are made by a producer role whose only policy is
the stack's `producer_policy_json` output, over HTTPS. The bucket policy keeps its Deny
statements: the model evaluates them. Every refusal is recorded by the gateway; a suite fails a
test for each one it did not expect (`unexpected_refusals`). The operator (setup, cleaning,
reads: `clients`) talks to the emulator directly, as account admin.

moto's own event source mappings are disabled for the stack's lifetime: on every SendMessage
moto would receive a batch itself to run the function in Docker, which fails here but counts a
receive (pipeline_local.dispatcher.Dispatcher.emulator_mappings_paused says more). The suites
poll the queues themselves (pipeline_local.delivery.QueuePoller).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline_local.authz.engine import Decision
from pipeline_local.authz.gateway import Gateway
from pipeline_local.authz.store import EmulatorPolicyStore
from pipeline_local.clients import Clients
from pipeline_local.constants import TF_VAR_MAX_FILE_BYTES
from pipeline_local.delivery import queue_depth
from pipeline_local.faults import FaultInjector
from pipeline_local.function_invokers import lambda_environment
from pipeline_local.scratch_stack import Stack as DataResources
from pipeline_local.stores import empty_bucket
from pipeline_local.terraform_wiring import dead_letter_targets_from_terraform
from pipeline_local.wiring import FunctionConfig, Wiring, lambda_service_session, read_wiring
from tests.implementations import LAMBDA_RUNTIME
from tests.integration.conftest import Stack, apply_stack

# Per implementation: the lambda_runtime variable, and the (runtime, handler) pairs that the
# applied functions then have.
IMPLEMENTATIONS: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "python": (
        LAMBDA_RUNTIME["python"],
        {
            ("python3.11", "processor_function.lambda_handler"),
            ("python3.11", "dlq_processor_function.lambda_handler"),
        },
    ),
    "rust": (LAMBDA_RUNTIME["rust"], {("provided.al2023", "bootstrap")}),
}
# The Deny statements lib/main.tf puts on the bucket (checked on every apply).
BUCKET_DENY_SIDS = {"DenyInsecureTransport", "DenyUploadsNotEncryptedWithKms"}
PRODUCER_ROLE = "pipeline-local-producer"
TABLE_KEYS = {
    "transactions": ("transaction_id", "timestamp"),
    "errors": ("error_id", "timestamp"),
    "file_status": ("source_key", "source_version_id"),
}


class StackNotClean(RuntimeError):
    """Emptying the data resources left something behind."""


@dataclass
class AppliedStack:
    impl: str
    stack: Stack
    clients: Clients
    wiring: Wiring
    bucket: str
    transactions_table: str
    errors_table: str
    file_status_table: str
    main_queue_url: str
    dlq_url: str
    processor: FunctionConfig
    dlq_processor: FunctionConfig
    bucket_policy: str  # as applied, restored by restore_bucket_policy()
    gateway: Gateway
    credentials: dict[str, dict[str, str]]  # function name -> its role's session credentials
    producer: Clients  # the producer role, through the gateway's HTTPS listener
    # function name -> the Lambda service's session of its role (outside the function's VPC)
    service_credentials: dict[str, dict[str, str]] = field(default_factory=dict)

    def data_resources(self) -> DataResources:
        """The data resources and operator clients, as pipeline_local.scratch_stack describes a
        throwaway stack's: what a conformance case writes and reads (`versions` holds one version
        id per upload, in order)."""
        return DataResources(
            bucket=self.bucket,
            table=self.transactions_table,
            errors_table=self.errors_table,
            main_url=self.main_queue_url,
            dlq_url=self.dlq_url,
            s3=self.clients("s3"),
            ddb=self.clients("dynamodb"),
            sqs=self.clients("sqs"),
        )

    # -- what a function (and the Lambda service acting for it) calls AWS with ------------------

    def function_env(self, fn: FunctionConfig, overrides: Mapping[str, Any]) -> dict[str, str]:
        """The applied function's environment with `overrides`, plus what Lambda sets: its
        role's session credentials, and the gateway's HTTPS endpoint and CA (boto3 reads
        AWS_CA_BUNDLE, aws-sdk-rust SSL_CERT_FILE)."""
        variables = {**fn.environment, **{k: str(v) for k, v in overrides.items()}}
        creds = self.credentials[fn.name]
        env = lambda_environment(
            replace(fn, environment=variables), endpoint=self.gateway.https_endpoint
        )
        env.update(self.gateway.client_env(creds))
        return env

    def function_clients(self, fn: FunctionConfig) -> Clients:
        """Clients for what the Lambda service does with `fn`'s execution role: its event source
        mappings' polling and its asynchronous dead-letter SendMessage."""
        if fn.name not in self.service_credentials:
            self.service_credentials[fn.name] = self.gateway.assume_role(
                fn.role, lambda_service_session(fn.name)
            )
        return self.gateway.clients(self.service_credentials[fn.name])

    def cold_start(self, fn: FunctionConfig) -> Decision | None:
        """What Lambda does before a new execution environment runs the code (decrypt the
        environment variables with the function's key and role), decided; None if nothing."""
        return self.gateway.function_init(fn.arn)

    def s3_invokes(self, fn: FunctionConfig) -> Decision:
        """S3 invoking `fn` for an event of the bucket (the function policy, SourceArn and
        SourceAccount), decided."""
        return self.gateway.s3_invokes(self.bucket, fn.arn)

    def mapping_polls(self, fn: FunctionConfig, queue_arn: str) -> Decision | None:
        """What an event source mapping of `fn` on the queue needs of the role, decided."""
        return self.gateway.mapping_polls(fn.arn, queue_arn)

    @contextlib.contextmanager
    def faults(self, **kwargs: Any) -> Iterator[FaultInjector]:
        """A FaultInjector in the gateway's chain (after the authorizer) for the block."""
        injector = FaultInjector(**kwargs)
        self.gateway.proxy.add_interceptor(injector)
        try:
            yield injector
        finally:
            self.gateway.proxy.remove_interceptor(injector)

    def unexpected_refusals(self) -> list[Decision]:
        """Refusals since the last call that no `gateway.expect_denials()` block expected."""
        return self.gateway.unexpected_denials()

    def put_bucket_policy(self, policy: str) -> None:
        """Change the bucket policy (as operator) and make the model read it again."""
        self.clients("s3").put_bucket_policy(Bucket=self.bucket, Policy=policy)
        self.gateway.store.refresh()

    def restore_bucket_policy(self) -> None:
        self.put_bucket_policy(self.bucket_policy)

    def clean(self) -> None:
        """Empty both tables, both queues and the bucket; raise StackNotClean if anything is
        left (a later test would see it)."""
        ddb = self.clients("dynamodb")
        for table, keys in (
            (self.transactions_table, TABLE_KEYS["transactions"]),
            (self.errors_table, TABLE_KEYS["errors"]),
            (self.file_status_table, TABLE_KEYS["file_status"]),
        ):
            raw: list[dict[str, Any]] = []
            for page in ddb.get_paginator("scan").paginate(
                TableName=table,
                ProjectionExpression="#a, #b",
                ExpressionAttributeNames={"#a": keys[0], "#b": keys[1]},
            ):
                raw += page["Items"]
            for i in range(0, len(raw), 25):
                ddb.batch_write_item(
                    RequestItems={table: [{"DeleteRequest": {"Key": k}} for k in raw[i : i + 25]]}
                )
        sqs = self.clients("sqs")
        for url in (self.main_queue_url, self.dlq_url):
            sqs.purge_queue(QueueUrl=url)
        s3 = self.clients("s3")
        empty_bucket(s3, self.bucket)
        left = self.leftovers()
        if left:
            raise StackNotClean(f"{self.impl} stack not empty after cleaning: {left}")

    def queue_depth(self, url: str) -> int:
        """Messages on the queue: visible, in flight and delayed."""
        return queue_depth(self.clients("sqs"), url)

    def leftovers(self) -> list[str]:
        """What the data resources still hold, one entry per resource that is not empty."""
        out: list[str] = []
        ddb = self.clients("dynamodb")
        for table in (self.transactions_table, self.errors_table, self.file_status_table):
            count = ddb.scan(TableName=table, Select="COUNT")["Count"]
            if count:
                out.append(f"{table}: {count} items")
        for url in (self.main_queue_url, self.dlq_url):
            depth = self.queue_depth(url)
            if depth:
                out.append(f"{url.rsplit('/', 1)[-1]}: {depth} messages")
        versions = self.clients("s3").list_object_versions(Bucket=self.bucket)
        objects = len(versions.get("Versions", [])) + len(versions.get("DeleteMarkers", []))
        if objects:
            out.append(f"s3://{self.bucket}: {objects} object versions or delete markers")
        return out

    def stop(self) -> None:
        try:
            self.gateway.stop()
        finally:
            self.stack.emulator.stop()


def apply(
    impl: str, *, max_file_bytes: int | None = None, suite: str = "conformance"
) -> AppliedStack:
    """lib/ applied with `lambda_runtime` for `impl` to a new emulator (build/tf-<suite>-<impl>).

    `max_file_bytes` sets TF_VAR_max_file_bytes for this apply (Terraform variable names are
    case-sensitive); None keeps the configuration's default."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {impl!r} (python, rust)")
    lambda_runtime, applied_pairs = IMPLEMENTATIONS[impl]
    var = TF_VAR_MAX_FILE_BYTES
    saved = os.environ.get(var)
    if max_file_bytes is not None:
        os.environ[var] = str(max_file_bytes)
    try:
        stack = apply_stack(f"tf-{suite}-{impl}", lambda_runtime)
    finally:
        if saved is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = saved
    try:
        return _wire(impl, stack, applied_pairs)
    except BaseException:
        stack.emulator.stop()
        raise


def _wire(impl: str, stack: Stack, applied_pairs: set[tuple[str, str]]) -> AppliedStack:
    clients = Clients(stack.emulator.endpoint)
    out = stack.outputs
    bucket = str(out["s3_bucket_name"])
    # The applied policy keeps its Deny statements (the integration tests check them); the
    # model evaluates them with their conditions.
    policy = clients("s3").get_bucket_policy(Bucket=bucket)["Policy"]
    denies = {s.get("Sid") for s in json.loads(policy)["Statement"] if s["Effect"] == "Deny"}
    if not BUCKET_DENY_SIDS <= denies:
        raise AssertionError(f"the applied bucket policy lacks {BUCKET_DENY_SIDS - denies}")
    if out.get("producer_policy_json") is None:
        raise AssertionError("the applied stack has no `producer_policy_json` output (lib/)")
    wiring = read_wiring(
        clients, dead_letter_fallback=dead_letter_targets_from_terraform(stack.workdir.path)
    )
    # A suite is only about this implementation if the emulator holds it.
    pairs = {(fn.runtime, fn.handler) for fn in wiring.functions.values()}
    if pairs != applied_pairs:
        raise AssertionError(f"{impl}: the applied functions are {pairs}, not {applied_pairs}")
    lam = clients("lambda")
    for mapping in wiring.mappings:
        if mapping.enabled:
            lam.update_event_source_mapping(UUID=mapping.uuid, Enabled=False)
    store = EmulatorPolicyStore(clients, terraform_workdir=stack.workdir.path)
    gateway = Gateway(stack.emulator.endpoint, store).start()
    try:
        producer_arn = gateway.role_with_policy(PRODUCER_ROLE, out["producer_policy_json"])
        producer = gateway.clients(gateway.assume_role(producer_arn, "producer"))
        credentials = {
            fn.name: gateway.assume_role(fn.role, fn.name[:64]) for fn in wiring.functions.values()
        }
        return AppliedStack(
            impl=impl,
            stack=stack,
            clients=clients,
            wiring=wiring,
            bucket=bucket,
            transactions_table=str(out["transactions_table_name"]),
            errors_table=str(out["errors_table_name"]),
            file_status_table=str(out["file_status_table_name"]),
            main_queue_url=str(out["main_queue_url"]),
            dlq_url=str(out["dlq_url"]),
            processor=wiring.function(str(out["processor_function_name"])),
            dlq_processor=wiring.function(str(out["dlq_processor_function_name"])),
            bucket_policy=policy,
            gateway=gateway,
            credentials=credentials,
            producer=producer,
        )
    except BaseException:
        gateway.stop()
        raise
