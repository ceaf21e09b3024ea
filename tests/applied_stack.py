"""The real Terraform configuration applied to a private emulator, emptied between tests.

`terraform apply` against moto takes a minute or more here, so a suite applies lib/ once per
implementation (`lambda_runtime`), through tests.integration.conftest.apply_stack, and empties
the data resources between its tests instead of re-applying: both tables, both queues and the
bucket. Everything else (roles, policies, keys, functions, mappings, notifications) stays as
Terraform applied it, so every request can be authorized against the applied policies.

moto's own event source mappings are disabled for the stack's lifetime: on every SendMessage
moto would receive a batch itself to run the function in Docker, which fails here but counts a
receive (pipeline_local.dispatcher.Dispatcher.emulator_mappings_paused says more). The suites
poll the queues themselves (pipeline_local.delivery.QueuePoller).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from pipeline_local.dispatcher import (
    Clients,
    FunctionConfig,
    Wiring,
    dead_letter_targets_from_terraform,
    empty_bucket,
    lambda_environment,
    read_wiring,
    relax_bucket_policy_for_emulator,
)
from tests.integration.conftest import Stack, apply_stack

# Per implementation: the lambda_runtime variable, and the (runtime, handler) pairs that the
# applied functions then have.
IMPLEMENTATIONS: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "python": (
        "python3.11",
        {
            ("python3.11", "processor_function.lambda_handler"),
            ("python3.11", "dlq_processor_function.lambda_handler"),
        },
    ),
    "rust": ("rust", {("provided.al2023", "bootstrap")}),
}
# The Deny statements lib/main.tf puts on the bucket (checked on every apply).
BUCKET_DENY_SIDS = {"DenyInsecureTransport", "DenyUploadsNotEncryptedWithKms"}
TABLE_KEYS = {"transactions": ("transaction_id", "timestamp"), "errors": ("error_id", "timestamp")}


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
    main_queue_url: str
    dlq_url: str
    processor: FunctionConfig
    dlq_processor: FunctionConfig
    bucket_policy: str | None  # as the data path sees it, restored by restore_bucket_policy()

    @property
    def endpoint(self) -> str:
        return self.stack.emulator.endpoint

    # -- what a function (and the Lambda service acting for it) calls AWS with ------------------

    def function_env(self, fn: FunctionConfig, overrides: Mapping[str, Any]) -> dict[str, str]:
        """The applied function's environment with `overrides`, plus what Lambda sets."""
        variables = {**fn.environment, **{k: str(v) for k, v in overrides.items()}}
        return lambda_environment(replace(fn, environment=variables), endpoint=self.endpoint)

    def function_clients(self, fn: FunctionConfig) -> Clients:
        """Clients for what the Lambda service does with `fn`'s execution role: its event source
        mappings' polling and its asynchronous dead-letter SendMessage."""
        return self.clients

    def restore_bucket_policy(self) -> None:
        s3 = self.clients("s3")
        if self.bucket_policy is None:
            s3.delete_bucket_policy(Bucket=self.bucket)
        else:
            s3.put_bucket_policy(Bucket=self.bucket, Policy=self.bucket_policy)

    def clean(self) -> None:
        """Empty both tables, both queues and the bucket; raise StackNotClean if anything is
        left (a later test would see it)."""
        ddb = self.clients("dynamodb")
        for table, keys in (
            (self.transactions_table, TABLE_KEYS["transactions"]),
            (self.errors_table, TABLE_KEYS["errors"]),
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
        attrs = self.clients("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def leftovers(self) -> list[str]:
        """What the data resources still hold, one entry per resource that is not empty."""
        out: list[str] = []
        ddb = self.clients("dynamodb")
        for table in (self.transactions_table, self.errors_table):
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
        self.stack.emulator.stop()


def apply(impl: str, *, max_file_bytes: int | None = None) -> AppliedStack:
    """lib/ applied with `lambda_runtime` for `impl` to a new emulator (build/tf-<impl>-...).

    `max_file_bytes` sets TF_VAR_max_file_bytes for this apply (Terraform variable names are
    case-sensitive); None keeps the configuration's default."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {impl!r} (python, rust)")
    lambda_runtime, applied_pairs = IMPLEMENTATIONS[impl]
    var = "TF_VAR_max_file_bytes"
    saved = os.environ.get(var)
    if max_file_bytes is not None:
        os.environ[var] = str(max_file_bytes)
    try:
        stack = apply_stack(f"tf-conformance-{impl}", lambda_runtime)
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
    s3 = clients("s3")
    # The applied policy keeps its Deny statements (the integration tests check them). moto
    # applies bucket policies to object requests but ignores their conditions, so the Deny
    # statements would refuse every PutObject/GetObject: EMULATOR ONLY, they are dropped here.
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    denies = {s.get("Sid") for s in policy["Statement"] if s["Effect"] == "Deny"}
    if not BUCKET_DENY_SIDS <= denies:
        raise AssertionError(f"the applied bucket policy lacks {BUCKET_DENY_SIDS - denies}")
    relax_bucket_policy_for_emulator(s3, bucket)
    try:
        data_path_policy: str | None = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
            raise
        data_path_policy = None
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
    return AppliedStack(
        impl=impl,
        stack=stack,
        clients=clients,
        wiring=wiring,
        bucket=bucket,
        transactions_table=str(out["transactions_table_name"]),
        errors_table=str(out["errors_table_name"]),
        main_queue_url=str(out["main_queue_url"]),
        dlq_url=str(out["dlq_url"]),
        processor=wiring.function(str(out["processor_function_name"])),
        dlq_processor=wiring.function(str(out["dlq_processor_function_name"])),
        bucket_policy=data_path_policy,
    )
