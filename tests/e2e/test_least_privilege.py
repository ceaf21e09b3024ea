"""Least privilege of the two Lambda roles, as far as the emulator can show it.

With moto's IAM enforcement on, both functions (and their event source mappings' pollers) run
with credentials of their own role, assumed through the emulator's STS. moto itself decides S3
and non-batch SQS calls against the real resource ARNs; `least_privilege.PolicyEnforcer`
decides the rest (DynamoDB, SQS batch calls named as IAM names them) by evaluating the applied
policy documents with moto's own evaluator, the real action and the real resource ARN. KMS is
evaluated without a request (no handler calls KMS: S3 and SQS use the keys server-side).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline_local import samples as sample_files
from pipeline_local.dispatcher import Clients, Dispatcher, scan_all
from pipeline_local.faults import LoopbackProxy
from pipeline_local.least_privilege import (
    PolicyEnforcer,
    assume_role,
    create_operator,
    evaluate,
    role_policy_documents,
    set_enforcement,
)
from tests.e2e.conftest import E2E

PROCESSOR = "lambda-transaction-processor-dev"
DLQ_PROCESSOR = "lambda-dlq-processor-dev"
OTHER_QUEUE = "sqs-not-in-this-stack"
OTHER_BUCKET = "s3-not-in-this-stack-123456789012"


@dataclass
class Roles:
    e2e: E2E
    operator: Clients
    proxy: LoopbackProxy
    enforcer: PolicyEnforcer
    creds: dict[str, dict[str, str]]  # function name -> role credentials
    docs: dict[str, list[dict[str, Any]]]  # function name -> policy documents
    other_queue_url: str

    def as_role(self, function: str, *, direct: bool = False) -> Clients:
        """Clients with a function's role credentials, through the enforcing proxy (or straight
        to the emulator)."""
        c = self.creds[function]
        return Clients(
            endpoint=self.e2e.stack.emulator.endpoint if direct else self.proxy.endpoint,
            access_key=c["AWS_ACCESS_KEY_ID"],
            secret_key=c["AWS_SECRET_ACCESS_KEY"],
            session_token=c["AWS_SESSION_TOKEN"],
        )


@pytest.fixture
def roles(clean_e2e: E2E) -> Iterator[Roles]:
    e2e = clean_e2e
    endpoint = e2e.stack.emulator.endpoint
    iam, sts, out = e2e.clients("iam"), e2e.clients("sts"), e2e.stack.outputs
    operator_creds = create_operator(iam)
    role_arns = {PROCESSOR: out["processor_role_arn"], DLQ_PROCESSOR: out["dlq_processor_role_arn"]}
    creds = {fn: assume_role(sts, str(arn), fn) for fn, arn in role_arns.items()}
    docs = {
        fn: role_policy_documents(iam, str(arn).rsplit("/", 1)[1]) for fn, arn in role_arns.items()
    }
    enforcer = PolicyEnforcer(operator_creds)
    for fn, arn in role_arns.items():
        enforcer.add_role(creds[fn], str(arn).rsplit("/", 1)[1], docs[fn])
    other_queue = e2e.clients("sqs").create_queue(QueueName=OTHER_QUEUE)["QueueUrl"]
    s3 = e2e.clients("s3")
    s3.create_bucket(
        Bucket=OTHER_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    s3.put_object(Bucket=OTHER_BUCKET, Key="secret.csv", Body=b"x")
    operator = Clients(
        endpoint,
        access_key=operator_creds["AWS_ACCESS_KEY_ID"],
        secret_key=operator_creds["AWS_SECRET_ACCESS_KEY"],
    )
    proxy = LoopbackProxy(endpoint, [enforcer]).start()
    set_enforcement(endpoint, True)
    try:
        yield Roles(e2e, operator, proxy, enforcer, creds, docs, other_queue)
    finally:
        set_enforcement(endpoint, False)
        proxy.stop()
        e2e.clients("sqs").delete_queue(QueueUrl=other_queue)
        s3.delete_object(Bucket=OTHER_BUCKET, Key="secret.csv")
        s3.delete_bucket(Bucket=OTHER_BUCKET)


def test_enforcement_is_on_and_moto_checks_dynamodb_against_star(roles: Roles) -> None:
    """The facts the split relies on: while enforcement is on, the emulator's default key is
    refused, and moto refuses a DynamoDB PutItem that the role's policy allows on the table
    (it checks against `*`); the same call through the enforcing proxy is allowed."""
    e2e = roles.e2e
    with pytest.raises(ClientError) as refused:
        e2e.clients("sqs").list_queues()
    assert refused.value.response["Error"]["Code"] in {"InvalidClientTokenId", "403"}
    item = {"transaction_id": {"S": "LP-1"}, "timestamp": {"N": "1"}, "status": {"S": "PROBE"}}
    with pytest.raises(ClientError) as star:
        roles.as_role(PROCESSOR, direct=True)("dynamodb").put_item(
            TableName=e2e.transactions_table, Item=item
        )
    assert star.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    roles.as_role(PROCESSOR)("dynamodb").put_item(TableName=e2e.transactions_table, Item=item)
    roles.operator("dynamodb").delete_item(
        TableName=e2e.transactions_table,
        Key={"transaction_id": {"S": "LP-1"}, "timestamp": {"N": "1"}},
    )


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
    s3 = roles.operator("s3")
    uploads = []
    for f in files:
        version = s3.put_object(Bucket=e2e.bucket, Key=f.key, Body=f.body)["VersionId"]
        uploads.append(sample_files.Upload(f, version, ledger.process(f)))
    dispatcher = Dispatcher(
        roles.operator,
        e2e.wiring,
        handler_endpoint=roles.proxy.endpoint,
        credentials=roles.creds,
        poll_as_function=True,
        ship_logs=False,
    )
    try:
        dispatcher.run()
    finally:
        dispatcher.close()
    assert all(r.error is None for r in dispatcher.records), [r.error for r in dispatcher.records]

    ddb, sqs = roles.operator("dynamodb"), roles.operator("sqs")
    depths = {
        url: int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        for url in (e2e.main_queue_url, e2e.dlq_url)
    }
    acc = sample_files.account(
        uploads, scan_all(ddb, e2e.transactions_table), scan_all(ddb, e2e.errors_table), depths
    )
    assert acc.problems() == [] and acc.matches_model
    decisions = {
        (r.role.split("-")[2], r.action, r.decision, r.decided_by) for r in roles.enforcer.records
    }
    denied = [r for r in roles.enforcer.records if "deny" in r.decision or "denied" in r.decision]
    assert denied == []
    assert {
        ("transaction", "s3:GetObject", "allowed (moto)", "moto"),
        ("transaction", "dynamodb:PutItem", "allowed", "policy evaluator"),
        ("transaction", "sqs:SendMessage", "allowed", "policy evaluator"),
        ("transaction", "sqs:ReceiveMessage", "allowed (moto)", "moto"),
        ("dlq", "sqs:ReceiveMessage", "allowed (moto)", "moto"),
        ("dlq", "sqs:DeleteMessage", "allowed", "policy evaluator"),
        ("dlq", "dynamodb:PutItem", "allowed", "policy evaluator"),
    } <= decisions
    resources = {(r.role.split("-")[2], r.action): r.resource for r in roles.enforcer.records}
    assert resources[("transaction", "dynamodb:PutItem")].endswith(
        ":table/" + e2e.transactions_table
    )
    assert resources[("dlq", "dynamodb:PutItem")].endswith(":table/" + e2e.errors_table)


def _forbidden(roles: Roles) -> list[tuple[str, str, Callable[[Clients], Any], str]]:
    """(function, what, call, who decides) for a sample of what each role must not do."""
    e2e = roles.e2e
    txn, err = e2e.transactions_table, e2e.errors_table
    item = {"transaction_id": {"S": "X"}, "timestamp": {"N": "1"}}
    error_item = {"error_id": {"S": "X"}, "timestamp": {"N": "1"}}
    main_url, dlq_url, other = e2e.main_queue_url, e2e.dlq_url, roles.other_queue_url
    batch = [{"Id": "1", "MessageBody": "{}"}]

    def ddb(c: Clients) -> Any:
        return c("dynamodb")

    def sqs(c: Clients) -> Any:
        return c("sqs")

    def s3(c: Clients) -> Any:
        return c("s3")

    evaluator, moto = "policy evaluator", "moto"
    return [
        (PROCESSOR, "DeleteTable", lambda c: ddb(c).delete_table(TableName=txn), evaluator),
        (
            PROCESSOR,
            "PutItem on the errors table",
            lambda c: ddb(c).put_item(TableName=err, Item=error_item),
            evaluator,
        ),
        (PROCESSOR, "Scan of its own table", lambda c: ddb(c).scan(TableName=txn), evaluator),
        (PROCESSOR, "DeleteBucket", lambda c: s3(c).delete_bucket(Bucket=e2e.bucket), moto),
        (
            PROCESSOR,
            "PutObject into the bucket",
            lambda c: s3(c).put_object(Bucket=e2e.bucket, Key="x.csv", Body=b"x"),
            moto,
        ),
        (
            PROCESSOR,
            "GetObject of another bucket",
            lambda c: s3(c).get_object(Bucket=OTHER_BUCKET, Key="secret.csv"),
            moto,
        ),
        (
            PROCESSOR,
            "SendMessage to another queue",
            lambda c: sqs(c).send_message(QueueUrl=other, MessageBody="{}"),
            moto,
        ),
        (
            PROCESSOR,
            "SendMessageBatch to another queue",
            lambda c: sqs(c).send_message_batch(QueueUrl=other, Entries=batch),
            evaluator,
        ),
        (
            PROCESSOR,
            "ReceiveMessage from the DLQ",
            lambda c: sqs(c).receive_message(QueueUrl=dlq_url),
            moto,
        ),
        (
            DLQ_PROCESSOR,
            "SendMessage to the main queue",
            lambda c: sqs(c).send_message(QueueUrl=main_url, MessageBody="{}"),
            moto,
        ),
        (
            DLQ_PROCESSOR,
            "SendMessageBatch to the DLQ",
            lambda c: sqs(c).send_message_batch(QueueUrl=dlq_url, Entries=batch),
            evaluator,
        ),
        (
            DLQ_PROCESSOR,
            "PutItem on the transactions table",
            lambda c: ddb(c).put_item(TableName=txn, Item=item),
            evaluator,
        ),
        (DLQ_PROCESSOR, "DeleteTable", lambda c: ddb(c).delete_table(TableName=err), evaluator),
        (
            DLQ_PROCESSOR,
            "GetObject of a transaction file",
            lambda c: s3(c).get_object(Bucket=e2e.bucket, Key="any.csv"),
            moto,
        ),
        (DLQ_PROCESSOR, "DeleteBucket", lambda c: s3(c).delete_bucket(Bucket=e2e.bucket), moto),
    ]


def test_what_the_roles_must_not_do_is_denied(roles: Roles) -> None:
    results = []
    for function, what, call, decider in _forbidden(roles):
        before = len(roles.enforcer.records)
        try:
            call(roles.as_role(function))
            outcome = "ALLOWED"
        except ClientError as exc:
            # moto's SQS JSON protocol answers a denial with HTTP 403 and no error code.
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            code = exc.response["Error"]["Code"]
            outcome = "denied" if code.startswith("AccessDenied") or status == 403 else code
        decided = {r.decided_by for r in roles.enforcer.records[before:]}
        results.append((function, what, outcome, decider in decided))
    allowed = [r for r in results if r[2] != "denied"]
    assert allowed == []
    assert [r for r in results if not r[3]] == []
    # The stack is intact.
    tables = roles.operator("dynamodb").list_tables()["TableNames"]
    assert {roles.e2e.transactions_table, roles.e2e.errors_table} <= set(tables)


def test_kms_and_logs_permissions_by_policy_evaluation(roles: Roles) -> None:
    out = roles.e2e.stack.outputs
    s3_key, ddb_key, lambda_key = (
        str(out["kms_s3_key_arn"]),
        str(out["kms_dynamodb_key_arn"]),
        str(out["kms_lambda_key_arn"]),
    )
    log = "arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/{}:*"
    expected = {
        (PROCESSOR, "kms:Decrypt", s3_key): "allowed",
        (PROCESSOR, "kms:GenerateDataKey", lambda_key): "allowed",
        (PROCESSOR, "kms:Decrypt", lambda_key): "allowed",
        (PROCESSOR, "kms:Decrypt", ddb_key): "implicit deny",
        (PROCESSOR, "kms:Encrypt", s3_key): "implicit deny",
        (PROCESSOR, "kms:ScheduleKeyDeletion", s3_key): "implicit deny",
        (PROCESSOR, "logs:PutLogEvents", log.format(PROCESSOR)): "allowed",
        (PROCESSOR, "logs:PutLogEvents", log.format(DLQ_PROCESSOR)): "implicit deny",
        (PROCESSOR, "xray:PutTraceSegments", "*"): "allowed",
        (PROCESSOR, "dynamodb:DeleteTable", "*"): "explicit deny",
        (PROCESSOR, "s3:DeleteBucket", "*"): "explicit deny",
        (DLQ_PROCESSOR, "kms:Decrypt", lambda_key): "allowed",
        (DLQ_PROCESSOR, "kms:GenerateDataKey", lambda_key): "allowed",
        (DLQ_PROCESSOR, "kms:Decrypt", s3_key): "implicit deny",
        (DLQ_PROCESSOR, "kms:Decrypt", ddb_key): "implicit deny",
        (DLQ_PROCESSOR, "logs:PutLogEvents", log.format(DLQ_PROCESSOR)): "allowed",
        (DLQ_PROCESSOR, "logs:PutLogEvents", log.format(PROCESSOR)): "implicit deny",
        (DLQ_PROCESSOR, "sqs:SendMessage", str(out["dlq_arn"])): "implicit deny",
        (DLQ_PROCESSOR, "dynamodb:DeleteTable", "*"): "explicit deny",
    }
    got = {k: evaluate(roles.docs[k[0]], k[1], k[2]) for k in expected}
    assert got == expected
