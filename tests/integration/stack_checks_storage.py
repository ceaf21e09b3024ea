"""The applied stack's outputs, KMS keys and S3 bucket, checked through the AWS APIs.

Collected by test_stack.py, which applies the stack once for all of them."""

from __future__ import annotations

from tests.integration.conftest import Stack
from tests.integration.stack_views import (
    ACCOUNT,
    ENV,
    REGION,
    REQUIRED_TAGS,
    as_list,
    grants,
    planned_resources,
    statements,
)

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
        key = planned[f'aws_kms_key.pipeline["{name}"]']
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
