"""The applied Terraform configuration, resource by resource, checked through the AWS APIs.

Runs the real terraform binary and the real hashicorp/aws provider against a moto server.
The tests run in file order: the last one destroys the stack and checks nothing is left.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline_local import security_doc
from tests.integration.conftest import Stack

ACCOUNT = "123456789012"
REGION = "eu-central-1"
ENV = "dev"
REQUIRED_TAGS = {"Environment", "DataClassification", "Compliance", "Owner", "ManagedBy"}


def statements(policy: str | dict[str, Any]) -> list[dict[str, Any]]:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    found = doc["Statement"]
    return found if isinstance(found, list) else [found]


def planned_resources(stack: Stack) -> dict[str, dict[str, Any]]:
    resources = stack.plan["planned_values"]["root_module"]["resources"]
    return {r["address"]: r.get("values", {}) for r in resources}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- outputs -----------------------------------------------------------------------------


def test_at_least_40_outputs_all_present_and_described(stack: Stack) -> None:
    assert len(stack.outputs) >= 40
    empty = [name for name, value in stack.outputs.items() if value in (None, "", [], {})]
    assert empty == []
    declared = stack.plan["configuration"]["root_module"]["outputs"]
    assert set(declared) == set(stack.outputs)
    undescribed = [name for name, out in declared.items() if not out.get("description")]
    assert undescribed == []
    sensitive = {name for name, out in declared.items() if out.get("sensitive")}
    assert {
        "processor_environment_variables",
        "dlq_processor_environment_variables",
        "dynamodb_table_endpoints",
    } <= sensitive


def test_names_follow_the_client_pattern(stack: Stack) -> None:
    out = stack.outputs
    assert out["s3_bucket_name"] == f"s3-transactions-{ENV}-{ACCOUNT}"
    assert out["processor_function_name"] == f"lambda-transaction-processor-{ENV}"
    assert out["transactions_table_name"] == f"dynamodb-transactions-{ENV}"
    assert out["kms_s3_alias_name"] == f"alias/s3-transactions-{ENV}"
    assert out["kms_dynamodb_alias_name"] == f"alias/dynamodb-transactions-{ENV}"
    assert out["kms_lambda_alias_name"] == f"alias/lambda-encryption-{ENV}"


def test_plan_uses_only_the_allowed_data_sources(stack: Stack) -> None:
    resources = stack.plan["configuration"]["root_module"]["resources"]
    data = sorted(f"{r['type']}.{r['name']}" for r in resources if r["mode"] == "data")
    assert data == [
        "archive_file.lambda_zip",
        "aws_availability_zones.available",
        "aws_caller_identity.current",
        "aws_region.current",
    ]


# --- KMS ---------------------------------------------------------------------------------


def test_kms_keys_rotate_and_start_with_root_access(stack: Stack) -> None:
    kms = stack.client("kms")
    expected_services = {
        "kms_s3_key_id": {"s3.amazonaws.com"},
        "kms_dynamodb_key_id": {"dynamodb.amazonaws.com"},
        "kms_lambda_key_id": {
            "lambda.amazonaws.com",
            "sqs.amazonaws.com",
            f"logs.{REGION}.amazonaws.com",
            "cloudwatch.amazonaws.com",
        },
    }
    for output, services in expected_services.items():
        key_id = stack.outputs[output]
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert meta["KeyManager"] == "CUSTOMER" and meta["Enabled"]
        rotation = kms.get_key_rotation_status(KeyId=key_id)
        assert rotation["KeyRotationEnabled"] is True
        policy = statements(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        assert policy[0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        assert policy[0]["Action"] == "kms:*" and policy[0]["Effect"] == "Allow"
        granted = {s["Principal"]["Service"] for s in policy[1:]}
        assert granted == services
        for stmt in policy[1:]:
            assert stmt.get("Condition"), f"{stmt['Sid']} is not tied to resources"
            actions = set(as_list(stmt["Action"]))
            assert actions & {"kms:Decrypt", "kms:Decrypt*"}
            assert actions & {"kms:GenerateDataKey", "kms:GenerateDataKey*"}
    # moto echoes neither the deletion window nor the rotation period: check what Terraform sends.
    planned = planned_resources(stack)
    for name in ("s3", "dynamodb", "lambda"):
        key = planned[f"aws_kms_key.{name}"]
        assert key["deletion_window_in_days"] == 7
        assert key["rotation_period_in_days"] == 365


def test_logs_key_statement_names_both_log_groups(stack: Stack) -> None:
    kms = stack.client("kms")
    policy = statements(
        kms.get_key_policy(KeyId=stack.outputs["kms_lambda_key_id"], PolicyName="default")["Policy"]
    )
    logs = next(s for s in policy if s["Principal"].get("Service", "").startswith("logs."))
    arns = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
    prefix = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
    assert sorted(arns) == sorted(
        prefix + stack.outputs[name]
        for name in ("processor_log_group_name", "dlq_processor_log_group_name")
    )


def test_kms_aliases_exist(stack: Stack) -> None:
    aliases = {
        a["AliasName"]: a.get("TargetKeyId") for a in stack.client("kms").list_aliases()["Aliases"]
    }
    for key in ("s3", "dynamodb", "lambda"):
        assert aliases[stack.outputs[f"kms_{key}_alias_name"]] == stack.outputs[f"kms_{key}_key_id"]


# --- S3 ----------------------------------------------------------------------------------


def test_bucket_versioning_encryption_and_public_access_block(stack: Stack) -> None:
    s3, bucket = stack.client("s3"), stack.outputs["s3_bucket_name"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    assert default["KMSMasterKeyID"] == stack.outputs["kms_s3_key_arn"]
    assert rule["BucketKeyEnabled"] is True
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    tags = {t["Key"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert REQUIRED_TAGS <= tags
    assert stack.state()["aws_s3_bucket.transactions"]["force_destroy"] is True


def test_bucket_policy_root_first_then_denies_insecure_and_unencrypted(stack: Stack) -> None:
    s3, bucket = stack.client("s3"), stack.outputs["s3_bucket_name"]
    policy = statements(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy[0]["Effect"] == "Allow"
    assert policy[0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    denies = {s["Sid"]: s for s in policy[1:] if s["Effect"] == "Deny"}
    assert denies["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    unencrypted = denies["DenyUploadsNotEncryptedWithKms"]
    assert unencrypted["Action"] == "s3:PutObject"
    assert unencrypted["Condition"]["StringNotEquals"] == {
        "s3:x-amz-server-side-encryption": "aws:kms"
    }
    other_key = denies["DenyUploadsNamingAnotherKmsKey"]
    assert other_key["Action"] == "s3:PutObject"
    assert other_key["Condition"] == {
        "StringNotEquals": {
            "s3:x-amz-server-side-encryption-aws-kms-key-id": stack.outputs["kms_s3_key_arn"]
        },
        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
    }


def test_producer_policy_is_put_object_and_the_bucket_key_through_s3_only(stack: Stack) -> None:
    out = stack.outputs
    policy = statements(out["producer_policy_json"])
    assert grants(policy) == {
        "s3:PutObject": {f"{out['s3_bucket_arn']}/*"},
        "kms:GenerateDataKey": {out["kms_s3_key_arn"]},
        "kms:Decrypt": {out["kms_s3_key_arn"]},
    }
    kms = next(s for s in policy if s["Resource"] == out["kms_s3_key_arn"])
    assert kms["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    assert kms["Condition"]["ArnLike"] == {
        "kms:EncryptionContext:aws:s3:arn": [out["s3_bucket_arn"], f"{out['s3_bucket_arn']}/*"]
    }


def test_notifications_only_for_csv_and_json(stack: Stack) -> None:
    s3, bucket = stack.client("s3"), stack.outputs["s3_bucket_name"]
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    lambdas = config["LambdaFunctionConfigurations"]
    suffixes = set()
    for entry in lambdas:
        assert entry["LambdaFunctionArn"] == stack.outputs["processor_function_arn"]
        assert entry["Events"] == ["s3:ObjectCreated:*"]
        rules = entry["Filter"]["Key"]["FilterRules"]
        suffixes |= {r["Value"] for r in rules if r["Name"].lower() == "suffix"}
    assert len(lambdas) == 2 and suffixes == {".csv", ".json"}
    assert not config.get("QueueConfigurations") and not config.get("TopicConfigurations")


def test_lifecycle_moves_objects_to_glacier_after_90_days(stack: Stack) -> None:
    s3, bucket = stack.client("s3"), stack.outputs["s3_bucket_name"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["Status"] == "Enabled"
    assert "Filter" in rule
    assert rule["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER"}]
    # transition_default_minimum_object_size: moto holds only all_storage_classes_128K, so the
    # applied copy sets that (pipeline_local.terraform.EMULATOR_VALUES); lib/'s own value,
    # varies_by_storage_class, is checked in a plan by test_variables.py.


# --- Lambda ------------------------------------------------------------------------------


def test_functions_configuration(stack: Stack) -> None:
    lam = stack.client("lambda")
    expected = {
        "processor": (100, "processor_function.lambda_handler"),
        "dlq_processor": (50, "dlq_processor_function.lambda_handler"),
    }
    config = {r["address"]: r for r in stack.plan["configuration"]["root_module"]["resources"]}
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
        # moto does not echo KMSKeyArn: check that the configuration sends the lambda key.
        function = config[f"aws_lambda_function.{key}"]
        assert function["expressions"]["kms_key_arn"]["references"][0] == "aws_kms_key.lambda.arn"
    proc = lam.get_function_configuration(FunctionName=stack.outputs["processor_function_name"])
    assert proc["Environment"]["Variables"] == {
        "DYNAMODB_TABLE_NAME": stack.outputs["transactions_table_name"],
        "SQS_QUEUE_URL": stack.outputs["main_queue_url"],
        "DLQ_URL": stack.outputs["dlq_url"],
        "ENVIRONMENT": ENV,
        "MAX_FILE_BYTES": "268435456",
        "TIME_SAFETY_MARGIN_MS": "30000",
        "FILE_STATUS_TABLE_NAME": stack.outputs["file_status_table_name"],
    }
    # moto does not keep DeadLetterConfig: check that the configuration sends the main queue.
    dead_letter = config["aws_lambda_function.processor"]["expressions"]["dead_letter_config"]
    assert dead_letter[0]["target_arn"]["references"][0] == "aws_sqs_queue.main.arn"
    assert "dead_letter_config" not in config["aws_lambda_function.dlq_processor"]["expressions"]
    dlq = lam.get_function_configuration(FunctionName=stack.outputs["dlq_processor_function_name"])
    assert dlq["Environment"]["Variables"] == {
        "ERRORS_TABLE_NAME": stack.outputs["errors_table_name"],
        "ENVIRONMENT": ENV,
        "ERROR_RETENTION_DAYS": "365",
    }


def test_functions_wait_for_roles_and_policy_attachments(stack: Stack) -> None:
    resources = {r["address"]: r for r in stack.plan["configuration"]["root_module"]["resources"]}
    for key in ("processor", "dlq_processor"):
        depends = set(resources[f"aws_lambda_function.{key}"].get("depends_on", []))
        assert {f"aws_iam_role.{key}", f"aws_iam_role_policy_attachment.{key}"} <= depends
    notification = resources["aws_s3_bucket_notification.transactions"]
    assert "aws_lambda_permission.allow_s3_invoke_processor" in notification["depends_on"]


def test_s3_may_invoke_the_processor_from_the_bucket_only(stack: Stack) -> None:
    lam = stack.client("lambda")
    policy = statements(
        lam.get_policy(FunctionName=stack.outputs["processor_function_name"])["Policy"]
    )
    assert len(policy) == 1
    stmt = policy[0]
    assert stmt["Principal"] == {"Service": "s3.amazonaws.com"}
    assert stmt["Condition"]["ArnLike"]["AWS:SourceArn"] == stack.outputs["s3_bucket_arn"]
    assert stmt["Condition"]["StringEquals"]["AWS:SourceAccount"] == ACCOUNT


def test_event_source_mappings(stack: Stack) -> None:
    lam = stack.client("lambda")
    pairs = {
        "retry_queue_event_source_mapping_uuid": ("main_queue_arn", "processor_function_arn"),
        "dlq_event_source_mapping_uuid": ("dlq_arn", "dlq_processor_function_arn"),
    }
    for uuid_output, (queue, function) in pairs.items():
        esm = lam.get_event_source_mapping(UUID=stack.outputs[uuid_output])
        assert esm["EventSourceArn"] == stack.outputs[queue]
        assert esm["FunctionArn"] == stack.outputs[function]
        assert esm["BatchSize"] == 10
        assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


# --- IAM ---------------------------------------------------------------------------------


def role_policy(stack: Stack, key: str) -> list[dict[str, Any]]:
    iam = stack.client("iam")
    role = stack.outputs[f"{key}_role_arn"].split("/")[-1]
    trust = statements(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])
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
    return statements(doc)


def grants(policy: list[dict[str, Any]]) -> dict[str, set[str]]:
    """action -> resources it is allowed on."""
    allowed: dict[str, set[str]] = {}
    for stmt in policy:
        if stmt["Effect"] != "Allow":
            continue
        for action in as_list(stmt["Action"]):
            allowed.setdefault(action, set()).update(as_list(stmt["Resource"]))
    return allowed


def expected_grants(out: dict[str, Any], key: str) -> dict[str, set[str]]:
    """What each role may do, and on what: the client's list plus design.md section 1."""
    group = out[
        "processor_log_group_name" if key == "processor" else "dlq_processor_log_group_name"
    ]
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
    eni = f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*"
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
            *(f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s}" for s in out["private_subnet_ids"]),
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{out['functions_security_group_id']}",
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
    assert grants(policy) == expected_grants(stack.outputs, key)
    # A role may use a key only through the service that needs it, never by calling KMS.
    via = {
        stack.outputs["kms_s3_key_arn"]: {f"s3.{REGION}.amazonaws.com"},
        stack.outputs["kms_dynamodb_key_arn"]: {f"dynamodb.{REGION}.amazonaws.com"},
        stack.outputs["kms_lambda_key_arn"]: {
            f"sqs.{REGION}.amazonaws.com",
            f"lambda.{REGION}.amazonaws.com",
        },
    }
    for stmt in policy:
        if stmt["Effect"] == "Allow" and any(a.startswith("kms:") for a in as_list(stmt["Action"])):
            names = set(as_list(stmt["Condition"]["StringEquals"]["kms:ViaService"]))
            assert names == via[stmt["Resource"]], stmt["Sid"]
    denies = [s for s in policy if s["Effect"] == "Deny"]
    assert len(denies) == 1
    assert set(denies[0]["Action"]) == {"s3:DeleteBucket", "dynamodb:DeleteTable"}
    assert denies[0]["Resource"] == "*"


# --- DynamoDB ----------------------------------------------------------------------------


def test_tables(stack: Stack) -> None:
    ddb = stack.client("dynamodb")
    expected = {
        "transactions_table_name": ("transaction_id", "status", False),
        "errors_table_name": ("error_id", "transaction_id", True),
    }
    for output, (hash_key, gsi_key, ttl) in expected.items():
        table = ddb.describe_table(TableName=stack.outputs[output])["Table"]
        assert table["KeySchema"] == [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": "timestamp", "KeyType": "RANGE"},
        ]
        types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
        # The errors table is also searchable by file (issue 14): source_key-index.
        extra = {"source_key": "S"} if ttl else {}
        assert types == {hash_key: "S", "timestamp": "N", gsi_key: "S", **extra}
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["DeletionProtectionEnabled"] is False
        gsis = {g["IndexName"]: g for g in table["GlobalSecondaryIndexes"]}
        assert set(gsis) == {f"{gsi_key}-index", *(f"{k}-index" for k in extra)}
        for gsi in gsis.values():
            assert gsi["KeySchema"] == [
                {"AttributeName": gsi["IndexName"].removesuffix("-index"), "KeyType": "HASH"},
                {"AttributeName": "timestamp", "KeyType": "RANGE"},
            ]
            assert gsi["Projection"]["ProjectionType"] == "ALL"
        sse = table["SSEDescription"]
        assert sse["SSEType"] == "KMS"
        assert sse["KMSMasterKeyArn"] == stack.outputs["kms_dynamodb_key_arn"]
        backups = ddb.describe_continuous_backups(TableName=stack.outputs[output])
        pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
        ttl_desc = ddb.describe_time_to_live(TableName=stack.outputs[output])
        ttl_status = ttl_desc["TimeToLiveDescription"]
        if ttl:
            assert ttl_status["TimeToLiveStatus"] == "ENABLED"
            assert ttl_status["AttributeName"] == "expires_at"
        else:
            assert ttl_status["TimeToLiveStatus"] == "DISABLED"


def test_file_status_table(stack: Stack) -> None:
    """The per-file status table of issue 14 (/work/notes schema; contract P26 to P31)."""
    ddb = stack.client("dynamodb")
    name = stack.outputs["file_status_table_name"]
    table = ddb.describe_table(TableName=name)["Table"]
    assert name == "dynamodb-file-status-dev"
    assert table["TableArn"] == stack.outputs["file_status_table_arn"]
    assert table["KeySchema"] == [
        {"AttributeName": "source_key", "KeyType": "HASH"},
        {"AttributeName": "source_version_id", "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {
        "source_key": "S",
        "source_version_id": "S",
        "activity_day": "S",
        "first_activity": "S",
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "activity_day-index"
    assert gsi["KeySchema"] == [
        {"AttributeName": "activity_day", "KeyType": "HASH"},
        {"AttributeName": "first_activity", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"]["ProjectionType"] == "ALL"
    assert table["SSEDescription"]["KMSMasterKeyArn"] == stack.outputs["kms_dynamodb_key_arn"]
    backups = ddb.describe_continuous_backups(TableName=name)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


# --- SQS ---------------------------------------------------------------------------------


def test_queues(stack: Stack) -> None:
    sqs = stack.client("sqs")
    for prefix in ("main_queue", "dlq"):
        attrs = sqs.get_queue_attributes(
            QueueUrl=stack.outputs[f"{prefix}_url"], AttributeNames=["All"]
        )["Attributes"]
        assert attrs["QueueArn"] == stack.outputs[f"{prefix}_arn"]
        assert attrs["VisibilityTimeout"] == "300"
        assert attrs["MessageRetentionPeriod"] == "1209600"
        assert attrs["KmsMasterKeyId"] == stack.outputs["kms_lambda_key_arn"]
        if prefix == "main_queue":
            redrive = json.loads(attrs["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"] == stack.outputs["dlq_arn"]
            assert int(redrive["maxReceiveCount"]) == 3
        else:
            assert "RedrivePolicy" not in attrs


# --- CloudWatch and SNS ------------------------------------------------------------------


def test_log_groups(stack: Stack) -> None:
    logs = stack.client("logs")
    for output in ("processor_log_group_name", "dlq_processor_log_group_name"):
        (group,) = logs.describe_log_groups(logGroupNamePrefix=stack.outputs[output])["logGroups"]
        assert group["logGroupName"] == stack.outputs[output]
        assert group["retentionInDays"] == 30
        assert group["kmsKeyId"] == stack.outputs["kms_lambda_key_arn"]


def test_alarms(stack: Stack) -> None:
    cw = stack.client("cloudwatch")
    topic = stack.outputs["sns_topic_arn"]
    names = [stack.outputs["error_rate_alarm_name"], stack.outputs["dlq_depth_alarm_name"]]
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    for alarm in alarms.values():
        assert alarm["EvaluationPeriods"] == 2
        assert alarm["DatapointsToAlarm"] == 2
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [topic]
    rate = alarms[names[0]]
    assert rate["Threshold"] == 1
    queries = {q["Id"]: q for q in rate["Metrics"]}
    assert (
        queries["error_rate"]["Expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)"
    )
    assert queries["error_rate"]["ReturnData"] is True
    for metric_id, metric_name in (("errors", "Errors"), ("invocations", "Invocations")):
        stat = queries[metric_id]["MetricStat"]
        assert stat["Metric"]["MetricName"] == metric_name
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "FunctionName", "Value": stack.outputs["processor_function_name"]}
        ]
        assert stat["Period"] == 300 and stat["Stat"] == "Sum"
    depth = alarms[names[1]]
    assert depth["Threshold"] == 100
    assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert depth["Period"] == 300
    assert depth["Dimensions"] == [
        {"Name": "QueueName", "Value": stack.outputs["dlq_arn"].split(":")[-1]}
    ]


def test_dashboard_shows_every_requested_metric(stack: Stack) -> None:
    cw = stack.client("cloudwatch")
    body = json.loads(
        cw.get_dashboard(DashboardName=stack.outputs["dashboard_name"])["DashboardBody"]
    )
    widgets = body["widgets"]
    assert all(w["properties"]["period"] == 300 for w in widgets)
    metric_names = {
        (m[0], m[1]) for w in widgets for m in w["properties"]["metrics"] if isinstance(m[0], str)
    }
    required = {
        ("TransactionPipeline", "RecordsProcessed"),
        ("TransactionPipeline", "RecordsInvalid"),
        ("TransactionPipeline", "RecordsDuplicate"),
        ("TransactionPipeline", "RecordsRetried"),
        ("TransactionPipeline", "FilesFailed"),
        ("TransactionPipeline", "FileProcessingTime"),
        ("TransactionPipeline", "ErrorsStored"),
        ("AWS/Lambda", "Invocations"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Duration"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/DynamoDB", "ConsumedWriteCapacityUnits"),
        ("AWS/DynamoDB", "ConsumedReadCapacityUnits"),
    }
    assert required <= metric_names
    titles = " | ".join(w["properties"]["title"].lower() for w in widgets)
    for words in ("processing rate", "invocations", "error rate", "depth", "capacity", "latency"):
        assert words in titles
    expressions = [
        m[0]["expression"]
        for w in widgets
        for m in w["properties"]["metrics"]
        if isinstance(m[0], dict)
    ]
    assert len(expressions) == 2  # one error-rate expression per function


def test_topic_policy_and_subscription(stack: Stack) -> None:
    sns = stack.client("sns")
    topic = stack.outputs["sns_topic_arn"]
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attrs["KmsMasterKeyId"] == stack.outputs["kms_lambda_key_arn"]
    policy = statements(attrs["Policy"])
    assert policy[0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert policy[0]["Action"] == "sns:*"
    assert policy[1]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert policy[1]["Action"] == "sns:Publish"
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [
        ("email", "devops-alerts@example.com")
    ]


# --- VPC ---------------------------------------------------------------------------------


def endpoint_of(stack: Stack, output: str) -> dict[str, Any]:
    (endpoint,) = stack.client("ec2").describe_vpc_endpoints(
        VpcEndpointIds=[stack.outputs[output]]
    )["VpcEndpoints"]
    return endpoint


def test_gateway_endpoints_on_private_route_table(stack: Stack) -> None:
    ec2 = stack.client("ec2")
    out = stack.outputs
    route_table = out["private_route_table_id"]
    for service in ("s3", "dynamodb"):
        endpoint = endpoint_of(stack, f"{service}_vpc_endpoint_id")
        assert endpoint["VpcEndpointType"] == "Gateway"
        assert endpoint["ServiceName"] == f"com.amazonaws.{REGION}.{service}"
        assert endpoint["VpcId"] == out["vpc_id"]
        assert endpoint["RouteTableIds"] == [route_table]
    (table,) = ec2.describe_route_tables(RouteTableIds=[route_table])["RouteTables"]
    associated = {a.get("SubnetId") for a in table["Associations"]}
    assert associated == set(out["private_subnet_ids"])
    subnets = ec2.describe_subnets(SubnetIds=out["private_subnet_ids"])["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)


def test_endpoint_policies_allow_only_what_the_functions_do_there(stack: Stack) -> None:
    out = stack.outputs
    processor, dlq_processor = out["processor_role_arn"], out["dlq_processor_role_arn"]

    def allowed(output: str) -> set[tuple[str, str, str]]:
        found = set()
        for stmt in statements(endpoint_of(stack, output)["PolicyDocument"]):
            assert stmt["Effect"] == "Allow" and stmt["Principal"] == "*"
            (principal,) = as_list(stmt["Condition"]["ArnEquals"]["aws:PrincipalArn"])
            for action in as_list(stmt["Action"]):
                for resource in as_list(stmt["Resource"]):
                    found.add((principal, action, resource))
        return found

    objects = f"{out['s3_bucket_arn']}/*"
    assert allowed("s3_vpc_endpoint_id") == {
        (processor, "s3:GetObject", objects),
        (processor, "s3:GetObjectVersion", objects),
    }
    assert allowed("dynamodb_vpc_endpoint_id") == {
        (processor, "dynamodb:PutItem", out["transactions_table_arn"]),
        (processor, "dynamodb:UpdateItem", out["file_status_table_arn"]),
        (dlq_processor, "dynamodb:PutItem", out["errors_table_arn"]),
    }
    assert allowed("sqs_vpc_endpoint_id") == {
        (processor, "sqs:SendMessage", out["main_queue_arn"]),
        (processor, "sqs:SendMessage", out["dlq_arn"]),
    }


def test_sqs_interface_endpoint_in_both_subnets_with_private_dns(stack: Stack) -> None:
    out = stack.outputs
    endpoint = endpoint_of(stack, "sqs_vpc_endpoint_id")
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["ServiceName"] == f"com.amazonaws.{REGION}.sqs"
    assert endpoint["VpcId"] == out["vpc_id"]
    assert endpoint["PrivateDnsEnabled"] is True
    assert sorted(endpoint["SubnetIds"]) == sorted(out["private_subnet_ids"])
    groups = [g["GroupId"] for g in endpoint["Groups"]]
    assert groups == [out["interface_endpoints_security_group_id"]]


def rules_of(stack: Stack, group_id: str) -> list[dict[str, Any]]:
    return stack.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}]
    )["SecurityGroupRules"]


def test_security_groups_allow_https_to_the_endpoints_only(stack: Stack) -> None:
    out = stack.outputs
    functions, endpoints = (
        out["functions_security_group_id"],
        out["interface_endpoints_security_group_id"],
    )
    prefix_lists = {
        endpoint_of(stack, f"{service}_vpc_endpoint_id").get("PrefixListId")
        or stack.state()[f"aws_vpc_endpoint.{service}"]["prefix_list_id"]
        for service in ("s3", "dynamodb")
    }

    def shape(rule: dict[str, Any]) -> tuple[Any, ...]:
        target = (
            rule.get("PrefixListId")
            or (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
            or rule.get("CidrIpv4")
            or rule.get("CidrIpv6")
        )
        return (rule["IsEgress"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"], target)

    assert sorted(map(shape, rules_of(stack, functions)), key=str) == sorted(
        [(True, "tcp", 443, 443, pl) for pl in prefix_lists] + [(True, "tcp", 443, 443, endpoints)],
        key=str,
    )
    assert [shape(r) for r in rules_of(stack, endpoints)] == [(False, "tcp", 443, 443, functions)]


def test_no_route_to_the_internet(stack: Stack) -> None:
    """No internet or NAT gateway, and no route table sends anything to 0.0.0.0/0 or ::/0."""
    ec2 = stack.client("ec2")
    vpc = [{"Name": "vpc-id", "Values": [stack.outputs["vpc_id"]]}]
    gateways = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [stack.outputs["vpc_id"]]}]
    )["InternetGateways"]
    assert gateways == []
    assert ec2.describe_nat_gateways(Filters=vpc)["NatGateways"] == []
    for table in ec2.describe_route_tables(Filters=vpc)["RouteTables"]:
        for route in table["Routes"]:
            assert route.get("DestinationCidrBlock") not in ("0.0.0.0/0",), route
            assert route.get("DestinationIpv6CidrBlock") != "::/0", route
            assert not route.get("GatewayId", "").startswith("igw-"), route
            assert not route.get("NatGatewayId"), route
    planned = {address.split("[")[0].split(".")[0] for address in planned_resources(stack)}
    assert not planned & {"aws_internet_gateway", "aws_nat_gateway", "aws_route", "aws_eip"}


# --- docs/security.md --------------------------------------------------------------------


def test_security_doc_lists_every_applied_permission(stack: Stack) -> None:
    """docs/security.md's table is the applied policies, row for row, each with a reason."""
    applied = set(security_doc.applied_grants(stack.client, stack.outputs))
    documented = security_doc.documented_grants(security_doc.DOC.read_text())
    missing = sorted(applied - set(documented))
    extra = sorted(set(documented) - applied)
    assert not missing, "applied but not in docs/security.md:\n" + security_doc.render(missing)
    assert not extra, "in docs/security.md but not applied:\n" + security_doc.render(extra)
    unexplained = [g for g, why in documented.items() if not why or why.startswith("TODO")]
    assert not unexplained, security_doc.render(unexplained)


# --- plan stability and destroy ----------------------------------------------------------


def test_second_plan_shows_no_changes(stack: Stack) -> None:
    assert stack.workdir.plan_has_changes() is False


def test_smoke_run_accounts_for_every_record(stack: Stack) -> None:
    """`make smoke`'s code against the emulator: the local dispatcher does Lambda's work.

    The functions run with the operator's identity here (this test is about smoke's waiting and
    accounting; the authorization model is exercised by the conformance suite, the e2e tests and
    the demo). The bucket policy stays as applied: the emulator does not enforce it
    (pipeline_local/authz/moto_server.py), the model does where it runs."""
    from pipeline_local import samples, smoke
    from pipeline_local.dispatcher import (
        Clients,
        Dispatcher,
        dead_letter_targets_from_terraform,
        empty_bucket,
        read_wiring,
    )
    from pipeline_local.terraform import BUILD_DIR

    clients = Clients(stack.emulator.endpoint)
    bucket = str(stack.outputs["s3_bucket_name"])
    wiring = read_wiring(
        clients, dead_letter_fallback=dead_letter_targets_from_terraform(stack.workdir.path)
    )
    dispatcher = Dispatcher(clients, wiring, log_dir=BUILD_DIR / "tf-test-stack-smoke-logs")

    def lambda_work() -> None:
        # S3 notifications once (the uploads are done by then), then whatever the queues hold.
        dispatcher.deliver(dispatcher.pending_events())
        dispatcher.drain()

    try:
        ok = smoke.run(
            clients,
            clients,
            stack.outputs,
            samples.generate(scale=0.02),
            timeout_s=120,
            poll_s=0.5,
            between_polls=lambda_work,
        )
    finally:
        dispatcher.close()
        empty_bucket(clients("s3"), bucket)
    assert ok


def test_destroy_leaves_nothing(stack: Stack) -> None:
    out = stack.outputs
    stack.workdir.destroy()
    stack.destroyed = True
    assert stack.workdir.state_resources() == []

    assert stack.client("s3").list_buckets()["Buckets"] == []
    assert stack.client("lambda").list_functions()["Functions"] == []
    assert stack.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert stack.client("dynamodb").list_tables()["TableNames"] == []
    assert stack.client("sqs").list_queues().get("QueueUrls", []) == []
    assert stack.client("sns").list_topics()["Topics"] == []
    assert stack.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert stack.client("cloudwatch").list_dashboards()["DashboardEntries"] == []
    groups = stack.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == []
    roles = stack.client("iam").list_roles()["Roles"]
    assert not [r for r in roles if r["RoleName"].endswith(f"-{ENV}")]
    policies = stack.client("iam").list_policies(Scope="Local")["Policies"]
    assert policies == []
    kms = stack.client("kms")
    for key in ("kms_s3_key_id", "kms_dynamodb_key_id", "kms_lambda_key_id"):
        assert kms.describe_key(KeyId=out[key])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert not [a for a in kms.list_aliases()["Aliases"] if a["AliasName"].endswith(f"-{ENV}")]
    ec2 = stack.client("ec2")
    try:
        remaining = ec2.describe_vpcs(VpcIds=[out["vpc_id"]])["Vpcs"]
    except ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidVpcID.NotFound"
        remaining = []
    assert remaining == []
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    assert [e for e in endpoints if e["State"] not in ("deleted", "Deleted")] == []
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert not [g for g in groups if g["GroupName"].endswith(f"-{ENV}")]
