"""Least privilege of the two Lambda roles, decided by the authorization model.

Both functions, their event source mappings' pollers and Lambda's calls on their behalf run
with their own role's session credentials through the package's gateway
(pipeline_local.authz.gateway), which decides every call against the applied policies (identity,
bucket, queue, key policies, with their conditions) and the calls AWS makes on the caller's
behalf (KMS through S3, SQS and DynamoDB). moto decides nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline_local import samples as sample_files
from pipeline_local.authz.engine import AuthzRequest, authorize
from pipeline_local.clients import Clients
from tests.e2e.conftest import E2E

PROCESSOR = "lambda-transaction-processor-dev"
DLQ_PROCESSOR = "lambda-dlq-processor-dev"
OTHER_QUEUE = "sqs-not-in-this-stack"
OTHER_BUCKET = "s3-not-in-this-stack-123456789012"
REGION = "eu-central-1"


@dataclass
class Roles:
    e2e: E2E
    creds: dict[str, dict[str, str]]  # function name -> role session credentials
    other_queue_url: str

    def as_role(self, function: str) -> Clients:
        """Clients with a function's role credentials, through the gateway (HTTPS)."""
        return self.e2e.gateway.clients(self.creds[function])


@pytest.fixture
def roles(clean_e2e: E2E) -> Iterator[Roles]:
    e2e = clean_e2e
    out = e2e.stack.outputs
    role_arns = {PROCESSOR: out["processor_role_arn"], DLQ_PROCESSOR: out["dlq_processor_role_arn"]}
    creds = {fn: e2e.gateway.assume_role(str(arn), fn) for fn, arn in role_arns.items()}
    other_queue = e2e.clients("sqs").create_queue(QueueName=OTHER_QUEUE)["QueueUrl"]
    s3 = e2e.clients("s3")
    s3.create_bucket(Bucket=OTHER_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=OTHER_BUCKET, Key="secret.csv", Body=b"x")
    try:
        yield Roles(e2e, creds, other_queue)
    finally:
        e2e.clients("sqs").delete_queue(QueueUrl=other_queue)
        s3.delete_object(Bucket=OTHER_BUCKET, Key="secret.csv")
        s3.delete_bucket(Bucket=OTHER_BUCKET)
        e2e.gateway.store.refresh()


def test_each_function_does_its_job_with_its_own_role(
    roles: Roles, samples: sample_files.SampleSet
) -> None:
    e2e = roles.e2e
    files = [
        f
        for f in samples.files
        if f.key.removeprefix(sample_files.PREFIX)[:2] in {"04", "06", "12"}
    ]
    ledger = sample_files.Ledger()
    uploads = e2e.upload(files, ledger)
    dispatcher = e2e.dispatcher(ship_logs=True)
    dispatcher.run()
    assert all(r.error is None for r in dispatcher.records), [r.error for r in dispatcher.records]
    acc = e2e.account(uploads)
    assert acc.problems() == [] and acc.matches_model

    gw = e2e.gateway
    out = e2e.stack.outputs
    table, errors = str(out["transactions_table_arn"]), str(out["errors_table_arn"])
    main_q, dlq = str(out["main_queue_arn"]), str(out["dlq_arn"])
    s3_key, ddb_key = str(out["kms_s3_key_arn"]), str(out["kms_dynamodb_key_arn"])
    lambda_key = str(out["kms_lambda_key_arn"])
    processor = _allowed_to_role(e2e, "processor_role_arn")
    dlq_processor = _allowed_to_role(e2e, "dlq_processor_role_arn")
    # The calls each role made, and the KMS calls AWS made with its credentials on its behalf.
    assert {
        ("dynamodb:PutItem", table),
        ("dynamodb:UpdateItem", str(out["file_status_table_arn"])),
        ("kms:Decrypt", ddb_key),
        ("sqs:SendMessage", dlq),
        ("kms:GenerateDataKey", lambda_key),
        ("sqs:ReceiveMessage", main_q),
        ("kms:Decrypt", s3_key),
    } <= processor, sorted(processor)
    assert any(a == "s3:GetObjectVersion" or a == "s3:GetObject" for a, _ in processor)
    assert {
        ("sqs:ReceiveMessage", dlq),
        ("sqs:DeleteMessage", dlq),
        ("dynamodb:PutItem", errors),
        ("kms:Decrypt", ddb_key),
        ("kms:Decrypt", lambda_key),
    } <= dlq_processor, sorted(dlq_processor)
    # S3 invoked the processor as s3.amazonaws.com, through the function's resource policy.
    assert any(
        a == "lambda:InvokeFunction" and r == str(out["processor_function_arn"])
        for a, r, _ in gw.allowed_by("s3.amazonaws.com")
    )
    # Lambda shipped the output with each role into its KMS-encrypted log group.
    assert any(a == "logs:PutLogEvents" for a, _ in processor)
    assert any(a == "logs:PutLogEvents" for a, _ in dlq_processor)


def _allowed_to_role(e2e: E2E, output: str) -> set[tuple[str, str]]:
    """(action, resource) the model allowed to the sessions of the role a stack output names."""
    role = str(e2e.stack.outputs[output]).rsplit("/", 1)[1]
    return {(a, r) for a, r, _ in e2e.gateway.allowed_by(f"assumed-role/{role}/")}


def _forbidden(roles: Roles) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(function, service, operation, parameters) for a sample of what each role must not do."""
    e2e = roles.e2e
    txn, err, bucket = e2e.transactions_table, e2e.errors_table, e2e.bucket
    item = {"transaction_id": {"S": "X"}, "timestamp": {"N": "1"}}
    error_item = {"error_id": {"S": "X"}, "timestamp": {"N": "1"}}
    main_url, dlq_url, other = e2e.main_queue_url, e2e.dlq_url, roles.other_queue_url
    batch = [{"Id": "1", "MessageBody": "{}"}]
    return [
        (PROCESSOR, "dynamodb", "delete_table", {"TableName": txn}),
        (PROCESSOR, "dynamodb", "put_item", {"TableName": err, "Item": error_item}),
        (PROCESSOR, "dynamodb", "scan", {"TableName": txn}),  # of its own table
        (PROCESSOR, "s3", "delete_bucket", {"Bucket": bucket}),
        (PROCESSOR, "s3", "put_object", {"Bucket": bucket, "Key": "x.csv", "Body": b"x"}),
        (PROCESSOR, "s3", "get_object", {"Bucket": OTHER_BUCKET, "Key": "secret.csv"}),
        (PROCESSOR, "sqs", "send_message", {"QueueUrl": other, "MessageBody": "{}"}),
        (PROCESSOR, "sqs", "send_message_batch", {"QueueUrl": other, "Entries": batch}),
        (PROCESSOR, "sqs", "receive_message", {"QueueUrl": dlq_url}),
        (DLQ_PROCESSOR, "sqs", "send_message", {"QueueUrl": main_url, "MessageBody": "{}"}),
        (DLQ_PROCESSOR, "sqs", "send_message_batch", {"QueueUrl": dlq_url, "Entries": batch}),
        (DLQ_PROCESSOR, "dynamodb", "put_item", {"TableName": txn, "Item": item}),
        (DLQ_PROCESSOR, "dynamodb", "delete_table", {"TableName": err}),
        (DLQ_PROCESSOR, "s3", "get_object", {"Bucket": bucket, "Key": "any.csv"}),
        (DLQ_PROCESSOR, "s3", "delete_bucket", {"Bucket": bucket}),
    ]


def test_what_the_roles_must_not_do_is_denied(roles: Roles) -> None:
    results = []
    for function, service, operation, params in _forbidden(roles):
        with roles.e2e.gateway.expect_denials() as refused:
            try:
                getattr(roles.as_role(function)(service), operation)(**params)
                outcome = "ALLOWED"
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                outcome = "denied" if code.startswith("AccessDenied") else code
        results.append((function, f"{service}.{operation}({params})", outcome, len(refused)))
    assert [r for r in results if r[2] != "denied" or r[3] != 1] == []
    # The stack is intact.
    tables = roles.e2e.clients("dynamodb").list_tables()["TableNames"]
    assert {roles.e2e.transactions_table, roles.e2e.errors_table} <= set(tables)


def test_kms_logs_and_xray_permissions_by_the_model(roles: Roles) -> None:
    """What no handler request exercises directly, asked of the model with the applied
    policies (the roles' sessions as principals)."""
    e2e = roles.e2e
    out = e2e.stack.outputs
    s3_key, ddb_key, lambda_key = (
        str(out["kms_s3_key_arn"]),
        str(out["kms_dynamodb_key_arn"]),
        str(out["kms_lambda_key_arn"]),
    )
    log = "arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/{}:*"
    bucket_arn = f"arn:aws:s3:::{e2e.bucket}"
    via = {
        "s3": {
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": bucket_arn,
        },
        "ddb": {"kms:ViaService": f"dynamodb.{REGION}.amazonaws.com"},
        "sqs": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"},
        "none": {},
    }
    expected = {
        (PROCESSOR, "kms:Decrypt", s3_key, "s3"): True,
        (PROCESSOR, "kms:Decrypt", s3_key, "none"): False,  # only through S3
        (PROCESSOR, "kms:GenerateDataKey", lambda_key, "sqs"): True,
        (PROCESSOR, "kms:Decrypt", lambda_key, "sqs"): True,
        (PROCESSOR, "kms:Decrypt", lambda_key, "none"): False,
        (PROCESSOR, "kms:Decrypt", ddb_key, "ddb"): True,
        (PROCESSOR, "kms:Decrypt", ddb_key, "none"): False,  # only through DynamoDB
        (PROCESSOR, "kms:Encrypt", s3_key, "s3"): False,
        (PROCESSOR, "kms:ScheduleKeyDeletion", s3_key, "none"): False,
        (PROCESSOR, "logs:PutLogEvents", log.format(PROCESSOR), "none"): True,
        (PROCESSOR, "logs:PutLogEvents", log.format(DLQ_PROCESSOR), "none"): False,
        (PROCESSOR, "xray:PutTraceSegments", "*", "none"): True,
        (PROCESSOR, "dynamodb:DeleteTable", str(out["transactions_table_arn"]), "none"): False,
        (DLQ_PROCESSOR, "kms:Decrypt", lambda_key, "sqs"): True,
        (DLQ_PROCESSOR, "kms:GenerateDataKey", lambda_key, "sqs"): True,
        (DLQ_PROCESSOR, "kms:Decrypt", s3_key, "s3"): False,
        (DLQ_PROCESSOR, "kms:Decrypt", ddb_key, "ddb"): True,
        (DLQ_PROCESSOR, "logs:PutLogEvents", log.format(DLQ_PROCESSOR), "none"): True,
        (DLQ_PROCESSOR, "logs:PutLogEvents", log.format(PROCESSOR), "none"): False,
        (DLQ_PROCESSOR, "sqs:SendMessage", str(out["dlq_arn"]), "none"): False,
    }
    got = {}
    for fn, action, resource, ctx in expected:
        principal = e2e.gateway.principal_for(roles.creds[fn]["AWS_ACCESS_KEY_ID"])
        assert principal is not None
        request = AuthzRequest(principal, action, resource, via[ctx])
        got[(fn, action, resource, ctx)] = authorize(e2e.gateway.store, request).allowed
    assert got == expected
