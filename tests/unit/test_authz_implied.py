"""Implied calls: which requests AWS authorizes on a caller's behalf, checked against the
lib/main.tf policies (hand-written fixture) with the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from pipeline_local.authz.engine import AuthzRequest, Principal, authorize
from pipeline_local.authz.implied import (
    IMPLIED_CALLS,
    OPERATION_KEY,
    FunctionFacts,
    KmsProtection,
    alarm_publishes,
    async_dead_letter,
    event_source_poll,
    execution_role_session,
    implied_requests,
)
from tests.unit import authz_world as world

BUCKET = world.FIXTURE["bucket"]
OBJECT = BUCKET + "/incoming/2026/batch.csv"
TABLES = world.FIXTURE["tables"]
QUEUES = world.FIXTURE["queues"]
FUNCTIONS = world.FIXTURE["functions"]
LOG_GROUPS = world.FIXTURE["log_groups"]


@dataclass
class DictFacts:
    keys: dict[str, KmsProtection] = field(default_factory=dict)
    functions: dict[str, FunctionFacts] = field(default_factory=dict)
    notifications: dict[str, list[str]] = field(default_factory=dict)

    def kms_key_for(self, resource_arn: str) -> KmsProtection | None:
        if resource_arn.startswith(BUCKET + "/"):
            return self.keys.get(BUCKET)
        return self.keys.get(resource_arn)

    def function(self, function_arn: str) -> FunctionFacts | None:
        return self.functions.get(function_arn)

    def functions_notified_by(self, bucket_arn: str) -> Sequence[str]:
        return self.notifications.get(bucket_arn, [])


PROCESSOR_FN = FunctionFacts(
    FUNCTIONS["processor"],
    world.PROCESSOR_ROLE,
    world.KEYS["lambda"],
    dead_letter_arn=QUEUES["main"],
)


def lib_facts() -> DictFacts:
    lambda_key = KmsProtection(world.KEYS["lambda"])
    return DictFacts(
        keys={
            BUCKET: KmsProtection(world.KEYS["s3"], bucket_key=True),
            TABLES["transactions"]: KmsProtection(world.KEYS["dynamodb"]),
            TABLES["errors"]: KmsProtection(world.KEYS["dynamodb"]),
            QUEUES["main"]: lambda_key,
            QUEUES["dlq"]: lambda_key,
            world.FIXTURE["topic"]: lambda_key,
            LOG_GROUPS["processor"]: lambda_key,
            LOG_GROUPS["dlq_processor"]: lambda_key,
        },
        functions={FUNCTIONS["processor"]: PROCESSOR_FN},
        notifications={BUCKET: [FUNCTIONS["processor"]]},
    )


def req(principal: Principal, action: str, resource: str, **context: object) -> AuthzRequest:
    return AuthzRequest(principal, action, resource, {"aws:SecureTransport": True, **context})


def test_every_row_cites_an_aws_documentation_page_and_a_status() -> None:
    names = [row.name for row in IMPLIED_CALLS]
    assert len(names) == len(set(names))
    for row in IMPLIED_CALLS:
        assert row.source.startswith("https://docs.aws.amazon.com/"), row.name
        assert row.status.startswith(("checked", "UNVERIFIED")), row.name
        assert row.calls and row.triggers


def test_putitem_on_a_cmk_table_implies_the_callers_decrypt_and_lib_refuses_it() -> None:
    put = req(world.PROCESSOR, "dynamodb:PutItem", TABLES["transactions"])
    implied = implied_requests(put, lib_facts())
    assert [(r.principal, r.action, r.resource) for r in implied] == [
        (world.PROCESSOR, "kms:Decrypt", world.KEYS["dynamodb"])
    ]
    ctx = implied[0].context
    assert ctx["kms:ViaService"] == f"dynamodb.{world.REGION}.amazonaws.com"
    assert ctx["kms:EncryptionContext:aws:dynamodb:tableName"] == "dynamodb-transactions-dev"
    assert ctx["kms:EncryptionContext:aws:dynamodb:subscriberId"] == world.ACCOUNT
    assert "encryption.usagenotes.html" in (implied[0].on_behalf_of or "")

    src = world.lib_source()
    assert authorize(src, put).allowed
    refused = authorize(src, implied[0])
    assert not refused.allowed
    for part in (world.PROCESSOR.arn, "kms:Decrypt", world.KEYS["dynamodb"], "dynamodb:PutItem"):
        assert part in refused.reason

    world.grant_ddb_key_via_dynamodb(src, world.PROCESSOR_ROLE)
    assert authorize(src, implied[0]).allowed


def test_queries_on_an_index_use_the_tables_key() -> None:
    query = req(
        world.DLQ_PROCESSOR, "dynamodb:Query", TABLES["errors"] + "/index/transaction_id-index"
    )
    (decrypt,) = implied_requests(query, lib_facts())
    assert decrypt.resource == world.KEYS["dynamodb"]
    assert decrypt.context["kms:EncryptionContext:aws:dynamodb:tableName"] == "dynamodb-errors-dev"
    assert (
        implied_requests(
            req(world.PROCESSOR, "dynamodb:DescribeTable", TABLES["errors"]), lib_facts()
        )
        == []
    )


def test_processor_reads_its_object_with_the_bucket_key_context() -> None:
    get = req(world.PROCESSOR, "s3:GetObjectVersion", OBJECT, **{"s3:versionid": "v1"})
    (decrypt,) = implied_requests(get, lib_facts())
    assert (decrypt.action, decrypt.resource) == ("kms:Decrypt", world.KEYS["s3"])
    assert decrypt.context["kms:EncryptionContext:aws:s3:arn"] == BUCKET
    assert decrypt.context["kms:ViaService"] == f"s3.{world.REGION}.amazonaws.com"
    assert authorize(world.lib_source(), decrypt).allowed
    head = req(world.PROCESSOR, "s3:GetObject", OBJECT, **{OPERATION_KEY: "HeadObject"})
    assert implied_requests(head, lib_facts()) == []


def test_without_bucket_key_the_object_arn_is_the_context() -> None:
    facts = lib_facts()
    facts.keys[BUCKET] = KmsProtection(world.KEYS["s3"], bucket_key=False)
    (decrypt,) = implied_requests(req(world.PROCESSOR, "s3:GetObject", OBJECT), facts)
    assert decrypt.context["kms:EncryptionContext:aws:s3:arn"] == OBJECT


def test_upload_implies_generate_data_key_then_the_notification_chain() -> None:
    put = req(world.USER, "s3:PutObject", OBJECT)
    implied = implied_requests(put, lib_facts())
    assert [(r.principal.arn, r.action, r.resource) for r in implied] == [
        (world.USER.arn, "kms:GenerateDataKey", world.KEYS["s3"]),
        ("s3.amazonaws.com", "lambda:InvokeFunction", FUNCTIONS["processor"]),
        (execution_role_session(PROCESSOR_FN).arn, "kms:Decrypt", world.KEYS["lambda"]),
    ]
    src = world.lib_source()
    # a user without identity policies: the root statement only delegates
    assert not authorize(src, implied[0]).allowed
    assert authorize(src, implied[1]).allowed
    init = authorize(src, implied[2])
    assert init.allowed, init.reason
    assert (
        implied[2].context["kms:EncryptionContext:aws:lambda:FunctionArn"] == FUNCTIONS["processor"]
    )


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"s3:x-amz-server-side-encryption": "AES256"}, None),
        ({"s3:x-amz-server-side-encryption": "aws:kms"}, world.KEYS["s3"]),
        (
            {
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": world.KEYS["dynamodb"],
            },
            world.KEYS["dynamodb"],
        ),
        (
            {"s3:x-amz-server-side-encryption-aws-kms-key-id": "abcd-1234"},
            world.arn("kms", "key/abcd-1234"),
        ),
    ],
)
def test_upload_headers_choose_the_key(headers: dict[str, str], key: str | None) -> None:
    facts = lib_facts()
    facts.notifications.clear()
    implied = implied_requests(req(world.USER, "s3:PutObject", OBJECT, **headers), facts)
    assert [r.resource for r in implied] == ([key] if key else [])


def test_multipart_completion_implies_decrypt() -> None:
    facts = lib_facts()
    complete = req(world.USER, "s3:PutObject", OBJECT, **{OPERATION_KEY: "CompleteMultipartUpload"})
    actions = [r.action for r in implied_requests(complete, facts)]
    assert actions[0] == "kms:Decrypt"
    part = req(world.USER, "s3:PutObject", OBJECT, **{OPERATION_KEY: "UploadPart"})
    assert [r.action for r in implied_requests(part, facts)] == ["kms:GenerateDataKey"]


def test_sqs_send_and_receive_on_the_encrypted_queues() -> None:
    facts = lib_facts()
    send = implied_requests(req(world.PROCESSOR, "sqs:SendMessage", QUEUES["dlq"]), facts)
    assert [r.action for r in send] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert send[0].context["kms:ViaService"] == f"sqs.{world.REGION}.amazonaws.com"
    receive = implied_requests(req(world.DLQ_PROCESSOR, "sqs:ReceiveMessage", QUEUES["dlq"]), facts)
    assert [r.action for r in receive] == ["kms:Decrypt"]
    src = world.lib_source()
    assert all(authorize(src, r).allowed for r in [*send, *receive])
    assert implied_requests(req(world.PROCESSOR, "sqs:DeleteMessage", QUEUES["dlq"]), facts) == []


def test_logs_are_encrypted_by_the_regional_logs_principal() -> None:
    stream = LOG_GROUPS["processor"] + ":log-stream:2026/11/30/[$LATEST]abc"
    (generate,) = implied_requests(req(world.PROCESSOR, "logs:PutLogEvents", stream), lib_facts())
    assert generate.principal.service == f"logs.{world.REGION}.amazonaws.com"
    assert generate.context == {"kms:EncryptionContext:aws:logs:arn": LOG_GROUPS["processor"]}
    assert authorize(world.lib_source(), generate).allowed


def test_alarm_publishing_to_the_encrypted_topic() -> None:
    alarm = world.arn("cloudwatch", "alarm:cw-alarm-dlq-depth-dev")
    publish = alarm_publishes(alarm, world.FIXTURE["topic"])
    implied = implied_requests(publish, lib_facts())
    assert [r.action for r in implied] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert implied[0].context["aws:SourceArn"] == alarm
    src = world.lib_source()
    assert all(authorize(src, r).allowed for r in [publish, *implied])
    user_publish = implied_requests(
        req(world.USER, "sns:Publish", world.FIXTURE["topic"]), lib_facts()
    )
    assert user_publish[0].context["kms:ViaService"] == f"sns.{world.REGION}.amazonaws.com"


def test_event_source_mapping_polls_with_the_role_and_lib_allows_it() -> None:
    calls = event_source_poll(PROCESSOR_FN, QUEUES["main"])
    assert {r.action for r in calls} >= {"sqs:ReceiveMessage", "sqs:DeleteMessage"}
    src = world.lib_source()
    assert all(authorize(src, r).allowed for r in calls)
    # a role without sqs:ReceiveMessage is refused
    src.identities[world.PROCESSOR_ROLE][0]["PolicyDocument"]["Statement"][3]["Action"].remove(
        "sqs:ReceiveMessage"
    )
    receive = next(r for r in calls if r.action == "sqs:ReceiveMessage")
    decision = authorize(src, receive)
    assert not decision.allowed and "event source mapping" in decision.reason


def test_async_dead_letter_send_with_the_role() -> None:
    send = async_dead_letter(PROCESSOR_FN)
    assert send is not None and send.resource == QUEUES["main"]
    assert send.principal.role_arn == world.PROCESSOR_ROLE
    src = world.lib_source()
    assert authorize(src, send).allowed
    assert all(authorize(src, r).allowed for r in implied_requests(send, lib_facts()))
    no_dlq = FunctionFacts(FUNCTIONS["dlq_processor"], world.PROCESSOR_ROLE)
    assert async_dead_letter(no_dlq) is None


def test_unencrypted_resources_imply_nothing() -> None:
    facts = DictFacts()
    for primary in (
        req(world.PROCESSOR, "dynamodb:PutItem", TABLES["transactions"]),
        req(world.PROCESSOR, "s3:GetObject", OBJECT),
        req(world.PROCESSOR, "sqs:SendMessage", QUEUES["dlq"]),
        req(world.PROCESSOR, "xray:PutTraceSegments", "*"),
    ):
        assert implied_requests(primary, facts) == []
