"""HTTP request -> primary AuthzRequest(s): hand-made requests for the edge cases, and the real
requests boto3 builds (captured before sending) for the calls the pipeline makes."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest

from pipeline_local.authz.engine import AuthzRequest, Principal
from pipeline_local.authz.implied import OPERATION_KEY
from pipeline_local.authz.requests import UnmappedRequest, primary_requests
from pipeline_local.faults import ProxyRequest, classify

ACCOUNT = "123456789012"
REGION = "eu-central-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/iam-role-transaction-processor-dev"
PRINCIPAL = Principal(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/iam-role-transaction-processor-dev/s",
    account=ACCOUNT,
    role_arn=ROLE,
)
AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/{region}/{service}/aws4_request, "
    "SignedHeaders=host, Signature=abc"
)
BUCKET = f"s3-transactions-dev-{ACCOUNT}"
KEY_ID = "22222222-2222-2222-2222-222222222222"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"


def request(
    service: str,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | str = b"",
    headers: dict[str, str] | None = None,
    target: str | None = None,
) -> ProxyRequest:
    hdrs = {"Authorization": AUTH.format(region=REGION, service=service), **(headers or {})}
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/x-amz-json-1.0")
    elif isinstance(body, str):
        body = body.encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    if target:
        hdrs["X-Amz-Target"] = target
    req = ProxyRequest(method, path, list(hdrs.items()), body)
    classify(req)
    return req


def one(req: ProxyRequest, secure: bool = True) -> AuthzRequest:
    (authz,) = primary_requests(req, PRINCIPAL, secure=secure)
    return authz


def pairs(req: ProxyRequest) -> list[tuple[str, str]]:
    return [(r.action, r.resource) for r in primary_requests(req, PRINCIPAL, secure=True)]


# ------------------------------------------------------------------------------------------ S3


def test_s3_put_object_carries_encryption_headers_and_transport() -> None:
    req = request(
        "s3",
        "PUT",
        f"/{BUCKET}/incoming/a%20b.csv",
        headers={
            "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN,
        },
    )
    authz = one(req, secure=False)
    assert (authz.action, authz.resource) == (
        "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/incoming/a b.csv",
    )
    assert authz.context["aws:SecureTransport"] is False
    assert authz.context["s3:x-amz-server-side-encryption"] == "aws:kms"
    assert authz.context["s3:x-amz-server-side-encryption-aws-kms-key-id"] == KEY_ARN
    assert authz.context["s3:signatureversion"] == "AWS4-HMAC-SHA256"
    assert authz.context["aws:RequestedRegion"] == REGION
    assert authz.principal == PRINCIPAL


@pytest.mark.parametrize(
    ("method", "path", "action", "operation"),
    [
        ("GET", "/b/k", "s3:GetObject", "GetObject"),
        ("HEAD", "/b/k", "s3:GetObject", "HeadObject"),
        ("GET", "/b/k?versionId=v1", "s3:GetObjectVersion", "GetObject"),
        ("HEAD", "/b/k?versionId=v1", "s3:GetObjectVersion", "HeadObject"),
        ("DELETE", "/b/k?versionId=v1", "s3:DeleteObjectVersion", "DeleteObject"),
        ("POST", "/b/k?uploads", "s3:PutObject", "CreateMultipartUpload"),
        ("PUT", "/b/k?partNumber=1&uploadId=u", "s3:PutObject", "UploadPart"),
        ("POST", "/b/k?uploadId=u", "s3:PutObject", "CompleteMultipartUpload"),
        ("DELETE", "/b/k?uploadId=u", "s3:AbortMultipartUpload", "AbortMultipartUpload"),
        ("GET", "/b/k?uploadId=u", "s3:ListMultipartUploadParts", "ListParts"),
        ("GET", "/b/k?tagging", "s3:GetObjectTagging", "GetObjectTagging"),
        ("GET", "/b?list-type=2&prefix=in/", "s3:ListBucket", "ListObjects"),
        ("GET", "/b?versions", "s3:ListBucketVersions", "ListObjectVersions"),
        ("HEAD", "/b", "s3:ListBucket", "HeadBucket"),
        ("PUT", "/b?policy", "s3:PutBucketPolicy", "PutBucketPolicy"),
        ("GET", "/b?encryption", "s3:GetEncryptionConfiguration", "GetBucketEncryption"),
        ("DELETE", "/b?encryption", "s3:PutEncryptionConfiguration", "DeleteEncryption"),
        ("PUT", "/b", "s3:CreateBucket", "CreateBucket"),
        ("DELETE", "/b", "s3:DeleteBucket", "DeleteBucket"),
    ],
)
def test_s3_actions(method: str, path: str, action: str, operation: str) -> None:
    authz = one(request("s3", method, path))
    assert authz.action == action
    assert authz.context[OPERATION_KEY] == operation
    expected = "arn:aws:s3:::b/k" if "/b/k" in path else "arn:aws:s3:::b"
    assert authz.resource == expected
    if "versionId" in path:
        assert authz.context["s3:versionid"] == "v1"
    if "prefix=" in path:
        assert authz.context["s3:prefix"] == "in/"


def test_s3_virtual_hosted_style_and_list_buckets() -> None:
    vhost = request(
        "s3", "GET", "/k/x.csv", headers={"Host": f"{BUCKET}.s3.{REGION}.amazonaws.com"}
    )
    assert pairs(vhost) == [("s3:GetObject", f"arn:aws:s3:::{BUCKET}/k/x.csv")]
    assert pairs(request("s3", "GET", "/")) == [("s3:ListAllMyBuckets", "*")]


def test_s3_copy_needs_put_on_target_and_get_on_source() -> None:
    req = request("s3", "PUT", "/b/new", headers={"x-amz-copy-source": "/src/old.csv?versionId=7"})
    assert pairs(req) == [
        ("s3:PutObject", "arn:aws:s3:::b/new"),
        ("s3:GetObjectVersion", "arn:aws:s3:::src/old.csv"),
    ]


def test_s3_multi_object_delete_is_one_request_per_key() -> None:
    body = (
        '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        "<Object><Key>a.csv</Key></Object>"
        "<Object><Key>b.csv</Key><VersionId>v2</VersionId></Object></Delete>"
    )
    req = request("s3", "POST", "/b?delete", body=body, headers={"Content-Type": "application/xml"})
    assert pairs(req) == [
        ("s3:DeleteObject", "arn:aws:s3:::b/a.csv"),
        ("s3:DeleteObjectVersion", "arn:aws:s3:::b/b.csv"),
    ]
    bad = request("s3", "POST", "/b?delete", body="<Delete><Obj", headers={"Content-Type": "x"})
    with pytest.raises(UnmappedRequest, match="not XML"):
        pairs(bad)


# ------------------------------------------------------------------------------------ DynamoDB

TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"


def ddb(op: str, body: dict[str, Any]) -> ProxyRequest:
    return request("dynamodb", "POST", "/", body, target=f"DynamoDB_20120810.{op}")


def test_dynamodb_item_index_batch_and_transactions() -> None:
    put = one(ddb("PutItem", {"TableName": "t", "Item": {}, "ReturnValues": "NONE"}))
    assert (put.action, put.resource) == ("dynamodb:PutItem", TABLE + "t")
    assert put.context["dynamodb:ReturnValues"] == "NONE"
    assert pairs(ddb("Query", {"TableName": "t", "IndexName": "status-index"})) == [
        ("dynamodb:Query", TABLE + "t/index/status-index")
    ]
    assert pairs(ddb("BatchWriteItem", {"RequestItems": {"b": [], "a": []}})) == [
        ("dynamodb:BatchWriteItem", TABLE + "a"),
        ("dynamodb:BatchWriteItem", TABLE + "b"),
    ]
    items = [
        {"Put": {"TableName": "t"}},
        {"Update": {"TableName": "u"}},
        {"ConditionCheck": {"TableName": "t"}},
        {"Put": {"TableName": "t"}},
    ]
    assert pairs(ddb("TransactWriteItems", {"TransactItems": items})) == [
        ("dynamodb:PutItem", TABLE + "t"),
        ("dynamodb:UpdateItem", TABLE + "u"),
        ("dynamodb:ConditionCheckItem", TABLE + "t"),
    ]
    assert pairs(ddb("ListTables", {})) == [("dynamodb:ListTables", "*")]


def test_dynamodb_bad_input_is_a_clear_error() -> None:
    with pytest.raises(UnmappedRequest, match="TableName missing"):
        pairs(ddb("PutItem", {"Item": {}}))
    broken = request("dynamodb", "POST", "/", b"{not json", target="DynamoDB_20120810.PutItem")
    with pytest.raises(
        UnmappedRequest, match=r"dynamodb POST / \(operation PutItem\): body is not JSON"
    ):
        pairs(broken)


# ----------------------------------------------------------------------------------------- SQS

QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/sqs-transaction-dlq-dev"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:sqs-transaction-dlq-dev"


def test_sqs_json_and_query_protocol_name_batches_as_iam_does() -> None:
    json_batch = request(
        "sqs",
        "POST",
        "/",
        {"QueueUrl": QUEUE_URL, "Entries": []},
        target="AmazonSQS.SendMessageBatch",
    )
    assert pairs(json_batch) == [("sqs:SendMessage", QUEUE_ARN)]
    form = f"Action=DeleteMessageBatch&QueueUrl={QUEUE_URL}&Version=2012-11-05"
    assert pairs(request("sqs", "POST", "/", form)) == [("sqs:DeleteMessage", QUEUE_ARN)]
    to_url = request("sqs", "POST", f"/{ACCOUNT}/sqs-transaction-dlq-dev", "Action=ReceiveMessage")
    assert pairs(to_url) == [("sqs:ReceiveMessage", QUEUE_ARN)]
    get_url = request("sqs", "POST", "/", {"QueueName": "q"}, target="AmazonSQS.GetQueueUrl")
    assert pairs(get_url) == [("sqs:GetQueueUrl", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q")]
    with pytest.raises(UnmappedRequest, match="QueueUrl missing"):
        pairs(request("sqs", "POST", "/", {}, target="AmazonSQS.SendMessage"))


# ----------------------------------------------------------------------------------------- KMS


def kms(op: str, body: dict[str, Any]) -> ProxyRequest:
    return request("kms", "POST", "/", body, target=f"TrentService.{op}")


def test_kms_encryption_context_aliases_and_moto_ciphertexts() -> None:
    dec = one(
        kms("Decrypt", {"KeyId": KEY_ID, "CiphertextBlob": "", "EncryptionContext": {"a": "1"}})
    )
    assert (dec.action, dec.resource) == ("kms:Decrypt", KEY_ARN)
    assert dec.context["kms:EncryptionContext:a"] == "1"
    assert dec.context["kms:EncryptionContextKeys"] == ["a"]

    alias = kms("GenerateDataKey", {"KeyId": "alias/dynamodb-transactions-dev"})
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/dynamodb-transactions-dev"
    (resolved,) = primary_requests(alias, PRINCIPAL, secure=True, aliases={alias_arn: KEY_ARN})
    assert resolved.resource == KEY_ARN
    assert resolved.context["kms:RequestAlias"] == "alias/dynamodb-transactions-dev"
    assert one(alias).resource == alias_arn

    blob = base64.b64encode(KEY_ID.encode() + b"\x00" * 40).decode()
    assert one(kms("Decrypt", {"CiphertextBlob": blob})).resource == KEY_ARN
    with pytest.raises(UnmappedRequest, match="no key id readable"):
        pairs(kms("Decrypt", {"CiphertextBlob": base64.b64encode(b"x" * 50).decode()}))
    assert pairs(kms("ListKeys", {})) == [("kms:ListKeys", "*")]


# -------------------------------------------------------------------------- logs, cw, sns, ...


def test_logs_monitoring_sns_lambda_sts_xray() -> None:
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/f"
    put_logs = request(
        "logs",
        "POST",
        "/",
        {"logGroupName": "/aws/lambda/f", "logStreamName": "s", "logEvents": []},
        target="Logs_20140328.PutLogEvents",
    )
    assert pairs(put_logs) == [("logs:PutLogEvents", f"{group}:log-stream:s")]
    describe = request("logs", "POST", "/", {}, target="Logs_20140328.DescribeLogGroups")
    assert pairs(describe) == [("logs:DescribeLogGroups", "*")]

    form = "Action=PutMetricData&Namespace=TransactionPipeline&Version=2010-08-01"
    metric = one(request("monitoring", "POST", "/", form))
    assert (metric.action, metric.resource) == ("cloudwatch:PutMetricData", "*")
    assert metric.context["cloudwatch:namespace"] == "TransactionPipeline"

    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:sns-pipeline-alerts-dev"
    assert pairs(request("sns", "POST", "/", f"Action=Publish&TopicArn={topic}&Message=m")) == [
        ("sns:Publish", topic)
    ]

    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:lambda-transaction-processor-dev"
    invoke = request(
        "lambda",
        "POST",
        "/2015-03-31/functions/lambda-transaction-processor-dev/invocations?Qualifier=live",
    )
    assert pairs(invoke) == [("lambda:InvokeFunction", fn + ":live")]
    get = request("lambda", "GET", f"/2015-03-31/functions/{fn.replace(':', '%3A')}")
    assert pairs(get) == [("lambda:GetFunction", fn)]

    assert (
        primary_requests(
            request("sts", "POST", "/", "Action=GetCallerIdentity"), PRINCIPAL, secure=True
        )
        == []
    )
    assume = request("sts", "POST", "/", f"Action=AssumeRole&RoleArn={ROLE}&RoleSessionName=s1")
    authz = one(assume)
    assert (authz.action, authz.resource, authz.context["sts:RoleSessionName"]) == (
        "sts:AssumeRole",
        ROLE,
        "s1",
    )
    assert pairs(request("xray", "POST", "/TraceSegments", {"TraceSegmentDocuments": []})) == [
        ("xray:PutTraceSegments", "*")
    ]


def test_unknown_services_and_routes_are_refused_by_name() -> None:
    with pytest.raises(UnmappedRequest, match="service 'iot' is not modelled"):
        pairs(request("iot", "GET", "/things"))
    with pytest.raises(UnmappedRequest, match="lambda PATCH"):
        pairs(request("lambda", "PATCH", "/2015-03-31/functions/f"))


# --------------------------------------------------------------- real SDK requests (botocore)


class _Captured(Exception):
    pass


def sdk_request(service: str, operation: str, **params: Any) -> ProxyRequest:
    """The HTTP request boto3 builds for one call, captured before it leaves the process."""
    client = boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        endpoint_url="https://localhost:4566",
    )
    captured: list[AWSPreparedRequest] = []

    def capture(request: AWSPreparedRequest, **_: Any) -> None:
        captured.append(request)
        raise _Captured

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Captured):
        getattr(client, operation)(**params)
    prepared = captured[0]
    body = prepared.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    headers = [
        (k, v.decode() if isinstance(v, bytes) else str(v)) for k, v in prepared.headers.items()
    ]
    path = prepared.url.split("localhost:4566", 1)[1] or "/"
    req = ProxyRequest(prepared.method, path, headers, bytes(body))
    classify(req)
    return req


SDK_CASES: list[tuple[str, str, dict[str, Any], list[tuple[str, str]]]] = [
    (
        "s3",
        "put_object",
        {
            "Bucket": BUCKET,
            "Key": "incoming/a.csv",
            "Body": b"x",
            "ServerSideEncryption": "aws:kms",
        },
        [("s3:PutObject", f"arn:aws:s3:::{BUCKET}/incoming/a.csv")],
    ),
    (
        "s3",
        "get_object",
        {"Bucket": BUCKET, "Key": "incoming/a.csv", "VersionId": "v1"},
        [("s3:GetObjectVersion", f"arn:aws:s3:::{BUCKET}/incoming/a.csv")],
    ),
    (
        "s3",
        "head_object",
        {"Bucket": BUCKET, "Key": "k"},
        [("s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")],
    ),
    (
        "dynamodb",
        "put_item",
        {"TableName": "dynamodb-transactions-dev", "Item": {"transaction_id": {"S": "1"}}},
        [("dynamodb:PutItem", TABLE + "dynamodb-transactions-dev")],
    ),
    (
        "sqs",
        "send_message_batch",
        {"QueueUrl": QUEUE_URL, "Entries": [{"Id": "1", "MessageBody": "m"}]},
        [("sqs:SendMessage", QUEUE_ARN)],
    ),
    (
        "sqs",
        "receive_message",
        {"QueueUrl": QUEUE_URL},
        [("sqs:ReceiveMessage", QUEUE_ARN)],
    ),
    ("kms", "decrypt", {"KeyId": KEY_ARN, "CiphertextBlob": b"x"}, [("kms:Decrypt", KEY_ARN)]),
    (
        "logs",
        "put_log_events",
        {
            "logGroupName": "/g",
            "logStreamName": "s",
            "logEvents": [{"timestamp": 1, "message": "m"}],
        },
        [("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/g:log-stream:s")],
    ),
    (
        "cloudwatch",
        "put_metric_data",
        {"Namespace": "TransactionPipeline", "MetricData": [{"MetricName": "m", "Value": 1.0}]},
        [("cloudwatch:PutMetricData", "*")],
    ),
    (
        "sns",
        "publish",
        {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:t", "Message": "m"},
        [("sns:Publish", f"arn:aws:sns:{REGION}:{ACCOUNT}:t")],
    ),
    (
        "lambda",
        "invoke",
        {"FunctionName": "lambda-transaction-processor-dev", "InvocationType": "Event"},
        [
            (
                "lambda:InvokeFunction",
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:lambda-transaction-processor-dev",
            )
        ],
    ),
    ("sts", "get_caller_identity", {}, []),
    (
        "xray",
        "put_trace_segments",
        {"TraceSegmentDocuments": ["{}"]},
        [("xray:PutTraceSegments", "*")],
    ),
]


@pytest.mark.parametrize(("service", "operation", "params", "expected"), SDK_CASES)
def test_requests_built_by_boto3(
    service: str, operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert pairs(sdk_request(service, operation, **params)) == expected
