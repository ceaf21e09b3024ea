"""The authorization gateway in front of a real emulator, without Terraform: TLS, the principal
of an access key, refusals in each service's own error shape, re-signing, the interceptor chain.

Small hand-made resources (a bucket whose policy denies plain HTTP, a DynamoDB table, an SQS
queue, a role allowed a few of their actions) keep each property visible on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError, SSLError

from pipeline_local.authz.gateway import Gateway
from pipeline_local.authz.store import EmulatorPolicyStore
from pipeline_local.clients import Clients
from pipeline_local.emulator import Emulator
from pipeline_local.faults import FaultInjector, ProxyRequest

REGION = "eu-central-1"
BUCKET = "authz-gateway-probe-bucket"
TABLE = "authz-gateway-probe-table"
QUEUE = "authz-gateway-probe-queue"


@dataclass
class Probe:
    gateway: Gateway
    operator: Clients
    role: dict[str, str]  # session credentials of the probe role

    def as_role(self, *, secure: bool = True) -> Clients:
        return self.gateway.clients(self.role, secure=secure)


@pytest.fixture(scope="module")
def probe(emulator: Emulator) -> Iterator[Probe]:
    operator = Clients(emulator.endpoint)
    s3, ddb, sqs = operator("s3"), operator("dynamodb"), operator("sqs")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    s3.put_bucket_policy(
        Bucket=BUCKET,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, f"{bucket_arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    table_arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}"
    queue_arn = f"arn:aws:sqs:{REGION}:123456789012:{QUEUE}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"{bucket_arn}/*",
            },
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": table_arn},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
        ],
    }
    gateway = Gateway(emulator.endpoint, EmulatorPolicyStore(operator)).start()
    try:
        role_arn = gateway.role_with_policy("authz-gateway-probe", policy)
        yield Probe(gateway, operator, gateway.assume_role(role_arn, "probe"))
    finally:
        gateway.stop()
        sqs.delete_queue(QueueUrl=queue_url)
        ddb.delete_table(TableName=TABLE)
        for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
        s3.delete_bucket_policy(Bucket=BUCKET)
        s3.delete_bucket(Bucket=BUCKET)


def test_https_needs_the_gateway_ca(probe: Probe) -> None:
    s3 = probe.as_role()("s3")
    s3.put_object(Bucket=BUCKET, Key="a.csv", Body=b"x")
    assert probe.operator("s3").get_object(Bucket=BUCKET, Key="a.csv")["Body"].read() == b"x"
    untrusting = Clients(
        probe.gateway.https_endpoint,
        access_key=probe.role["AWS_ACCESS_KEY_ID"],
        secret_key=probe.role["AWS_SECRET_ACCESS_KEY"],
        session_token=probe.role["AWS_SESSION_TOKEN"],
        verify=True,  # the system's CAs only
    )
    with pytest.raises(SSLError):
        untrusting("s3").head_bucket(Bucket=BUCKET)


def test_plain_http_meets_the_bucket_policy_deny_in_s3s_error_shape(probe: Probe) -> None:
    with probe.gateway.expect_denials() as refused, pytest.raises(ClientError) as denied:
        probe.as_role(secure=False)("s3").put_object(Bucket=BUCKET, Key="b.csv", Body=b"x")
    err = denied.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDenied",
        403,
    )
    assert "assumed-role/authz-gateway-probe/probe" in err["Error"]["Message"]
    assert "s3:PutObject" in err["Error"]["Message"]
    (decision,) = refused
    assert decision.request.context["aws:SecureTransport"] is False
    assert "DenyInsecureTransport" in decision.reason


def test_dynamodb_and_sqs_refusals_in_their_own_shapes(probe: Probe) -> None:
    role = probe.as_role()
    with probe.gateway.expect_denials() as refused:
        with pytest.raises(ClientError) as ddb:
            role("dynamodb").put_item(TableName=TABLE, Item={"id": {"S": "1"}})
        queue_url = probe.operator("sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"]
        with pytest.raises(ClientError) as sqs:
            role("sqs").receive_message(QueueUrl=queue_url)
    assert ddb.value.response["Error"]["Code"] == "AccessDeniedException"
    assert ddb.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"table/{TABLE}" in ddb.value.response["Error"]["Message"]
    assert sqs.value.response["Error"]["Code"] == "AccessDenied"
    assert [d.request.action for d in refused] == ["dynamodb:PutItem", "sqs:ReceiveMessage"]
    # What the role may do goes through.
    role("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": "1"}})
    role("sqs").send_message(QueueUrl=queue_url, MessageBody="{}")


def test_an_unknown_access_key_is_refused(probe: Probe) -> None:
    stranger = Clients(
        probe.gateway.https_endpoint, access_key="AKIANOBODY", verify=probe.gateway.ca_bundle
    )
    with probe.gateway.expect_denials() as refused, pytest.raises(ClientError):
        stranger("dynamodb").list_tables()
    assert len(refused) == 1 and "access key" in refused[0].reason


def test_interceptors_after_the_authorizer_see_allowed_requests_of_the_caller(
    probe: Probe,
) -> None:
    seen: list[tuple[str, str]] = []

    def watch(req: ProxyRequest) -> None:
        seen.append((req.operation, req.access_key))
        assert "Credential=test/" in (req.header("Authorization") or "")  # re-signed

    injector = FaultInjector(rate=0.0)
    rule = injector.fail_matching("dynamodb", "GetItem", TABLE, times=1, status=400,
                                  code="ValidationException")  # fmt: skip
    probe.gateway.proxy.add_interceptor(watch)
    probe.gateway.proxy.add_interceptor(injector)
    try:
        role = probe.as_role()
        with pytest.raises(ClientError) as injected:
            role("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": "1"}})
        assert injected.value.response["Error"]["Code"] == "ValidationException"
        with probe.gateway.expect_denials(), pytest.raises(ClientError):
            role("dynamodb").scan(TableName=TABLE)  # refused first: never reaches them
    finally:
        probe.gateway.proxy.remove_interceptor(watch)
        probe.gateway.proxy.remove_interceptor(injector)
    assert rule.used == 1
    assert seen == [("GetItem", probe.role["AWS_ACCESS_KEY_ID"])]


def test_the_operator_is_not_evaluated(probe: Probe) -> None:
    op = Clients(probe.gateway.http_endpoint)
    op("s3").put_object(Bucket=BUCKET, Key="operator.csv", Body=b"x")  # even over plain HTTP
    assert probe.gateway.operator_calls[("s3", "PUT object")] >= 1
    assert probe.gateway.unexpected_denials() == []
