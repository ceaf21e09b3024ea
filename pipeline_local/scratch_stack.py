"""The pipeline's data resources created straight through the API, without Terraform.

For measurements that need many short-lived copies (`bench/emulator_memory.py` makes one per
file size): `terraform apply` takes a minute or more against the emulator, these calls a
fraction of a second. No roles, keys or policies: nothing here can be authorized as AWS would,
so the test suites use the applied configuration instead (tests/applied_stack.py). The
resources are made as lib/main.tf declares them: a versioned bucket; the transactions table
(transaction_id + timestamp, GSI status_shard-index); the errors table (error_id + timestamp, GSIs
transaction_id-index and source_key-index); the per-file status table (source_key +
source_version_id, GSI activity_day-index); the DLQ; the main queue, visibility 300 s, redrive
to the DLQ after 3 receives. Names are fresh for every stack, so stacks never see each other's data.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from pipeline_local.emulator import Emulator
from pipeline_local.function_config import (
    PROCESSOR,
    resource_body,
    table_keys,
    tunable_defaults,
)


def queue_settings() -> tuple[dict[str, str], int]:
    """lib/main.tf's main queue: its attributes (as SQS names them) and its redrive policy's
    maxReceiveCount, so that a scratch queue behaves as the applied one."""
    main = resource_body("aws_sqs_queue.main")
    attributes = {
        "VisibilityTimeout": str(main["visibility_timeout_seconds"]),
        "MessageRetentionPeriod": str(main["message_retention_seconds"]),
    }
    found = re.search(r"maxReceiveCount\s*=\s*(\d+)", str(main["redrive_policy"]))
    if found is None:
        raise LookupError("lib/main.tf's main queue has no maxReceiveCount")
    return attributes, int(found.group(1))


_counter = itertools.count(1)
_CLIENTS: dict[str, tuple[Any, Any, Any]] = {}


@dataclass
class Stack:
    """The data resources' names and operator clients: of a throwaway stack made here, or of
    an applied one as a conformance case sees it (tests/applied_stack.py, data_resources)."""

    bucket: str
    table: str
    errors_table: str
    main_url: str
    dlq_url: str
    s3: Any
    ddb: Any
    sqs: Any
    versions: list[str | None] = field(default_factory=list)
    status_table: str = ""  # the per-file status table (contract P26)


def clients(emulator: Emulator) -> tuple[Any, Any, Any]:
    """S3, DynamoDB and SQS clients for the emulator (made once: client creation is slow)."""
    env = emulator.aws_env()
    url = env["AWS_ENDPOINT_URL"]
    if url not in _CLIENTS:
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        _CLIENTS[url] = (
            session.client("s3", endpoint_url=url),
            session.client("dynamodb", endpoint_url=url),
            session.client("sqs", endpoint_url=url),
        )
    return _CLIENTS[url]


@dataclass(frozen=True)
class TableSchema:
    """One of lib/main.tf's tables: its key (hash, range) and its global secondary indexes
    (name: (hash, range), every attribute projected). `timestamp` is a number, every other key
    attribute a string, as lib/main.tf declares them."""

    key: tuple[str, str]
    indexes: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def create(self, ddb: Any, name: str) -> None:
        """The table, on demand, named `name`."""
        attributes = dict.fromkeys([*self.key, *(a for k in self.indexes.values() for a in k)])
        definition: dict[str, Any] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": "N" if a == "timestamp" else "S"}
                for a in attributes
            ],
            "KeySchema": _key_schema(self.key),
        }
        if self.indexes:
            definition["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": n,
                    "KeySchema": _key_schema(k),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for n, k in self.indexes.items()
            ]
        ddb.create_table(**definition)


def _key_schema(key: tuple[str, str]) -> list[dict[str, str]]:
    hash_key, range_key = key
    return [
        {"AttributeName": hash_key, "KeyType": "HASH"},
        {"AttributeName": range_key, "KeyType": "RANGE"},
    ]


def lib_table(table: str) -> TableSchema:
    """The key and indexes lib/main.tf gives one of its tables ("transactions", "errors",
    "file_status": the keys of its local.tables)."""
    key, indexes = table_keys(table)
    return TableSchema(key, indexes)


def create_tables(ddb: Any, stack: Stack) -> None:
    """The stack's three tables, through `ddb` (the emulator's, or another DynamoDB endpoint)."""
    for table, name in (
        ("transactions", stack.table),
        ("errors", stack.errors_table),
        ("file_status", stack.status_table),
    ):
        lib_table(table).create(ddb, name)


def create_stack(emulator: Emulator) -> Stack:
    """A fresh bucket, the three tables and both queues in the emulator."""
    s3, ddb, sqs = clients(emulator)
    suffix = f"{next(_counter):03d}-{uuid.uuid4().hex[:6]}"
    stack = Stack(
        bucket=f"s3-transactions-conf-{suffix}",
        table=f"dynamodb-transactions-conf-{suffix}",
        errors_table=f"dynamodb-errors-conf-{suffix}",
        main_url="",
        dlq_url="",
        s3=s3,
        ddb=ddb,
        sqs=sqs,
        status_table=f"dynamodb-file-status-conf-{suffix}",
    )
    s3.create_bucket(
        Bucket=stack.bucket,
        CreateBucketConfiguration={"LocationConstraint": emulator.aws_env()["AWS_DEFAULT_REGION"]},
    )
    s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    create_tables(ddb, stack)
    queue_attributes, max_receive_count = queue_settings()
    stack.dlq_url = sqs.create_queue(
        QueueName=f"sqs-transactions-dlq-conf-{suffix}", Attributes=queue_attributes
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=stack.dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
    stack.main_url = sqs.create_queue(
        QueueName=f"sqs-transactions-retry-conf-{suffix}",
        Attributes={**queue_attributes, "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    return stack


def delete_stack(stack: Stack) -> None:
    """Free the emulator's memory; failures here do not matter."""
    actions: list[Callable[[], object]] = [
        lambda: stack.ddb.delete_table(TableName=stack.table),
        lambda: stack.ddb.delete_table(TableName=stack.status_table),
        lambda: stack.ddb.delete_table(TableName=stack.errors_table),
        lambda: stack.sqs.delete_queue(QueueUrl=stack.main_url),
        lambda: stack.sqs.delete_queue(QueueUrl=stack.dlq_url),
    ]
    for action in actions:
        with contextlib.suppress(Exception):
            action()


def processor_env(stack: Stack, environment: str) -> dict[str, str]:
    """The processor's function variables for a stack: its tables and queues, and the tunables
    at lib/'s Terraform defaults."""
    return {
        "DYNAMODB_TABLE_NAME": stack.table,
        "SQS_QUEUE_URL": stack.main_url,
        "DLQ_URL": stack.dlq_url,
        "FILE_STATUS_TABLE_NAME": stack.status_table,
        "ENVIRONMENT": environment,
        **tunable_defaults(PROCESSOR),
    }
