"""The applied stack's Lambda functions and IAM roles, checked through the AWS APIs.

Collected by test_stack.py, which applies the stack once for all of them."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_local.terraform_wiring import (
    dead_letter_targets_from_terraform,
    function_arns_from_terraform,
)
from tests.integration import stack_views as views
from tests.integration.conftest import Stack

# --- Lambda ------------------------------------------------------------------------------


def test_functions_configuration(stack: Stack) -> None:
    lam = stack.client("lambda")
    expected = {
        "processor": (100, "processor_function.lambda_handler"),
        "dlq_processor": (50, "dlq_processor_function.lambda_handler"),
    }
    for key, (concurrency, handler) in expected.items():
        name = stack.outputs[f"{key}_function_name"]
        conf = lam.get_function_configuration(FunctionName=name)
        assert conf["Runtime"] == "python3.11"
        assert conf["Handler"] == handler
        assert conf["Architectures"] == ["arm64"]
        assert conf["MemorySize"] == 512
        assert conf["Timeout"] == 300
        assert conf["TracingConfig"]["Mode"] == "Active"
        assert conf["Role"] == stack.outputs[f"{key}_role_arn"]
        reserved = lam.get_function_concurrency(FunctionName=name)
        assert reserved["ReservedConcurrentExecutions"] == concurrency
        # Both functions run in the private subnets, with the functions' security group.
        vpc = conf["VpcConfig"]
        assert sorted(vpc["SubnetIds"]) == sorted(stack.outputs["private_subnet_ids"])
        assert vpc["SecurityGroupIds"] == [stack.outputs["functions_security_group_id"]]
    proc = lam.get_function_configuration(FunctionName=stack.outputs["processor_function_name"])
    assert proc["Environment"]["Variables"] == {
        "DYNAMODB_TABLE_NAME": stack.outputs["transactions_table_name"],
        "SQS_QUEUE_URL": stack.outputs["main_queue_url"],
        "DLQ_URL": stack.outputs["dlq_url"],
        "ENVIRONMENT": views.ENV,
        "MAX_FILE_BYTES": "268435456",
        "TIME_SAFETY_MARGIN_MS": "30000",
        "STATUS_INDEX_SHARDS": "1000",
        "RANGE_SPLIT_BYTES": "1048576",
        "METRIC_NAMESPACE": stack.outputs["metric_namespace"],
        "FILE_STATUS_TABLE_NAME": stack.outputs["file_status_table_name"],
    }
    # moto keeps neither KMSKeyArn nor DeadLetterConfig: what the configuration sends, resolved
    # against the state (what the local dispatcher and the authorization model use): the lambda
    # key for both, the main queue as the processor's dead-letter target and none for the DLQ
    # processor.
    names = [stack.outputs[f"{key}_function_name"] for key in expected]
    assert function_arns_from_terraform(stack.workdir.path, "kms_key_arn") == dict.fromkeys(
        names, stack.outputs["kms_lambda_key_arn"]
    )
    assert dead_letter_targets_from_terraform(stack.workdir.path) == {
        stack.outputs["processor_function_name"]: stack.outputs["main_queue_arn"]
    }
    dlq = lam.get_function_configuration(FunctionName=stack.outputs["dlq_processor_function_name"])
    assert dlq["Environment"]["Variables"] == {
        "ERRORS_TABLE_NAME": stack.outputs["errors_table_name"],
        "ENVIRONMENT": views.ENV,
        "ERROR_RETENTION_DAYS": "365",
        "METRIC_NAMESPACE": stack.outputs["metric_namespace"],
    }


def test_functions_wait_for_roles_and_policy_attachments(stack: Stack) -> None:
    resources = {r["address"]: r for r in stack.plan["configuration"]["root_module"]["resources"]}
    depends = set(resources["aws_lambda_function.function"].get("depends_on", []))
    assert {"aws_iam_role.function", "aws_iam_role_policy_attachment.function"} <= depends
    notification = resources["aws_s3_bucket_notification.transactions"]
    assert "aws_lambda_permission.allow_s3_invoke_processor" in notification["depends_on"]


def test_s3_may_invoke_the_processor_from_the_bucket_only(stack: Stack) -> None:
    lam = stack.client("lambda")
    policy = views.statements(
        lam.get_policy(FunctionName=stack.outputs["processor_function_name"])["Policy"]
    )
    assert len(policy) == 1
    stmt = policy[0]
    assert stmt["Principal"] == {"Service": "s3.amazonaws.com"}
    assert stmt["Condition"]["ArnLike"]["AWS:SourceArn"] == stack.outputs["s3_bucket_arn"]
    assert stmt["Condition"]["StringEquals"]["AWS:SourceAccount"] == views.ACCOUNT


def test_event_source_mappings(stack: Stack) -> None:
    lam = stack.client("lambda")
    # The DLQ's batch size is the client's; the main queue's is 1 so that ranges run side by
    # side (P36, processor_queue_batch_size).
    pairs = {
        "retry_queue_event_source_mapping_uuid": ("main_queue_arn", "processor_function_arn", 1),
        "dlq_event_source_mapping_uuid": ("dlq_arn", "dlq_processor_function_arn", 10),
    }
    for uuid_output, (queue, function, batch_size) in pairs.items():
        esm = lam.get_event_source_mapping(UUID=stack.outputs[uuid_output])
        assert esm["EventSourceArn"] == stack.outputs[queue]
        assert esm["FunctionArn"] == stack.outputs[function]
        assert esm["BatchSize"] == batch_size
        assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


# --- IAM ---------------------------------------------------------------------------------


def role_policy(stack: Stack, key: str) -> list[dict[str, Any]]:
    iam = stack.client("iam")
    role = stack.outputs[f"{key}_role_arn"].split("/")[-1]
    trust = views.statements(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [stack.outputs[f"{key}_policy_arn"]]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []
    arn = attached[0]["PolicyArn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return views.statements(doc)


def expected_grants(out: dict[str, Any], key: str) -> dict[str, set[str]]:
    """What each role may do, and on what: the client's list plus design.md section 1."""
    group = out[
        "processor_log_group_name" if key == "processor" else "dlq_processor_log_group_name"
    ]
    logs = views.arn("logs", f"log-group:{group}")
    eni = views.arn("ec2", "network-interface/*")
    common = {
        "logs:CreateLogGroup": {logs, f"{logs}:*"},
        "logs:CreateLogStream": {logs, f"{logs}:*"},
        "logs:PutLogEvents": {logs, f"{logs}:*"},
        "xray:PutTraceSegments": {"*"},
        "xray:PutTelemetryRecords": {"*"},
        "kms:GenerateDataKey": {out["kms_lambda_key_arn"]},
        # Network interfaces in the private subnets (AWSLambdaVPCAccessExecutionRole, scoped).
        "ec2:CreateNetworkInterface": {
            eni,
            *(views.arn("ec2", f"subnet/{s}") for s in out["private_subnet_ids"]),
            views.arn("ec2", f"security-group/{out['functions_security_group_id']}"),
        },
        "ec2:DeleteNetworkInterface": {eni},
        "ec2:AssignPrivateIpAddresses": {eni},
        "ec2:UnassignPrivateIpAddresses": {eni},
        "ec2:DescribeNetworkInterfaces": {"*"},
        "ec2:DescribeSubnets": {"*"},
    }
    if key == "processor":
        main = out["main_queue_arn"]
        return common | {
            "s3:GetObject": {f"{out['s3_bucket_arn']}/*"},
            "s3:GetObjectVersion": {f"{out['s3_bucket_arn']}/*"},
            "dynamodb:PutItem": {out["transactions_table_arn"]},
            "dynamodb:UpdateItem": {out["file_status_table_arn"]},
            "sqs:SendMessage": {out["dlq_arn"], main},
            "sqs:ReceiveMessage": {main},
            "sqs:DeleteMessage": {main},
            "sqs:GetQueueAttributes": {main},
            "sqs:ChangeMessageVisibility": {main},
            "kms:Decrypt": {
                out["kms_s3_key_arn"],
                out["kms_lambda_key_arn"],
                out["kms_dynamodb_key_arn"],
            },
        }
    dlq = out["dlq_arn"]
    return common | {
        "sqs:ReceiveMessage": {dlq},
        "sqs:DeleteMessage": {dlq},
        "sqs:GetQueueAttributes": {dlq},
        "sqs:ChangeMessageVisibility": {dlq},
        "dynamodb:PutItem": {out["errors_table_arn"]},
        "kms:Decrypt": {out["kms_lambda_key_arn"], out["kms_dynamodb_key_arn"]},
    }


@pytest.mark.parametrize("key", ["processor", "dlq_processor"])
def test_role_is_least_privilege(stack: Stack, key: str) -> None:
    policy = role_policy(stack, key)
    assert views.grants(policy) == expected_grants(stack.outputs, key)
    # A role may use a key only through the service that needs it, never by calling KMS.
    via = {
        stack.outputs["kms_s3_key_arn"]: {f"s3.{views.REGION}.amazonaws.com"},
        stack.outputs["kms_dynamodb_key_arn"]: {f"dynamodb.{views.REGION}.amazonaws.com"},
        stack.outputs["kms_lambda_key_arn"]: {
            f"sqs.{views.REGION}.amazonaws.com",
            f"lambda.{views.REGION}.amazonaws.com",
        },
    }
    for stmt in policy:
        actions = views.as_list(stmt["Action"])
        if stmt["Effect"] == "Allow" and any(a.startswith("kms:") for a in actions):
            names = set(views.as_list(stmt["Condition"]["StringEquals"]["kms:ViaService"]))
            assert names == via[stmt["Resource"]], stmt["Sid"]
    denies = [s for s in policy if s["Effect"] == "Deny"]
    assert len(denies) == 1
    assert set(denies[0]["Action"]) == {"s3:DeleteBucket", "dynamodb:DeleteTable"}
    assert denies[0]["Resource"] == "*"
