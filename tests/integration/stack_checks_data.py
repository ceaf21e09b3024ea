"""The applied stack's DynamoDB tables and SQS queues, checked through the AWS APIs.

Collected by test_stack.py, which applies the stack once for all of them."""

from __future__ import annotations

import json

from tests.integration.conftest import Stack

# --- DynamoDB ----------------------------------------------------------------------------


def test_tables(stack: Stack) -> None:
    ddb = stack.client("dynamodb")
    expected = {
        "transactions_table_name": ("transaction_id", "status_shard", False),
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
    """The per-file status table of issue 14 (contract P26 to P31)."""
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
