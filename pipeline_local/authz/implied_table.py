"""The calls AWS makes on a caller's behalf, one table row per behaviour, each with its AWS source.

"checked" means the page text was read on 2026-11-30 with the search tools (the AWS
documentation sources, docs.aws.amazon.com pages); "UNVERIFIED" names what the page does not say
and what we assume. implied.py derives the requests from these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Identity = Literal["caller (forward access session)", "service principal", "execution role"]


@dataclass(frozen=True)
class ImpliedCall:
    name: str
    triggers: tuple[str, ...]  # primary IAM actions (or the builder) that cause the call
    calls: tuple[str, ...]  # actions AWS authorizes on the caller's behalf
    identity: Identity
    conditions: str  # kms:ViaService, encryption context, source keys
    source: str  # AWS documentation URL
    status: str  # "checked ..." or "UNVERIFIED: ..."


_S3_KMS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html"
_S3_BUCKET_KEY = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html"
_S3_MPU = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions"
_SQS_KMS = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
    "sqs-key-management.html"
)
_DDB_KMS = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html"
)
_LAMBDA_ENV = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html"
_LOGS_KMS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"
_SNS_KMS = "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"
LAMBDA_S3_DOC = "https://docs.aws.amazon.com/lambda/latest/dg/with-s3.html"
LAMBDA_SQS_DOC = "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html"
LAMBDA_DLQ_DOC = (
    "https://docs.aws.amazon.com/lambda/latest/dg/"
    "invocation-async-retain-records.html#invocation-dlq"
)
CW_ALARM_SNS_DOC = (
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html"
)

IMPLIED_CALLS: tuple[ImpliedCall, ...] = (
    ImpliedCall(
        "s3-put-sse-kms",
        ("s3:PutObject (PutObject, CreateMultipartUpload, UploadPart, CopyObject)",),
        ("kms:GenerateDataKey",),
        "caller (forward access session)",
        "kms:ViaService s3.REGION.amazonaws.com; EC aws:s3:arn = object ARN, or the bucket ARN "
        "with an S3 Bucket Key",
        _S3_KMS,
        "checked: upload needs GenerateDataKey (the archived page also lists kms:Encrypt, the "
        "current page GenerateDataKey only); EC object/bucket ARN checked on UsingKMSEncryption "
        "and bucket-key.html. UNVERIFIED: S3 also calling Decrypt on upload with a Bucket Key",
    ),
    ImpliedCall(
        "s3-complete-multipart-sse-kms",
        ("s3:PutObject (CompleteMultipartUpload)",),
        ("kms:Decrypt",),
        "caller (forward access session)",
        "as s3-put-sse-kms",
        _S3_MPU,
        "UNVERIFIED: the page says the requester needs GenerateDataKey and Decrypt for "
        "multipart uploads, not which step calls which; we put Decrypt on the completion",
    ),
    ImpliedCall(
        "s3-get-sse-kms",
        ("s3:GetObject", "s3:GetObjectVersion"),
        ("kms:Decrypt",),
        "caller (forward access session)",
        "as s3-put-sse-kms; HeadObject reads metadata only and makes no KMS call (UNVERIFIED)",
        _S3_KMS,
        "checked: download needs kms:Decrypt (UsingKMSEncryption)",
    ),
    ImpliedCall(
        "sqs-send-sse-kms",
        ("sqs:SendMessage (SendMessage, SendMessageBatch)",),
        ("kms:GenerateDataKey", "kms:Decrypt"),
        "caller (forward access session)",
        "kms:ViaService sqs.REGION.amazonaws.com; EC aws:sqs:arn = queue ARN (UNVERIFIED)",
        _SQS_KMS,
        "checked: producers need GenerateDataKey and Decrypt (Decrypt verifies the new data "
        "key) when the data key reuse period expires; the page does not state the EC",
    ),
    ImpliedCall(
        "sqs-receive-sse-kms",
        ("sqs:ReceiveMessage",),
        ("kms:Decrypt",),
        "caller (forward access session)",
        "as sqs-send-sse-kms",
        _SQS_KMS,
        "checked: consumers need kms:Decrypt on the queue's key (and on the source queues' keys "
        "when the queue is a DLQ: not modelled, the stack uses one key for both queues)",
    ),
    ImpliedCall(
        "dynamodb-cmk-table-access",
        (
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
        ),
        ("kms:Decrypt",),
        "caller (forward access session)",
        "kms:ViaService dynamodb.REGION.amazonaws.com; EC aws:dynamodb:tableName = table name, "
        "aws:dynamodb:subscriberId = account",
        _DDB_KMS,
        "checked: 'When you access an encrypted DynamoDB table, DynamoDB needs to decrypt the "
        "table key ... The user is the principal in your AWS account who is accessing the "
        "table'; GenerateDataKey runs as the DynamoDB service at table creation, so reads and "
        "writes need kms:Decrypt only (the longer list Encrypt/ReEncrypt*/GenerateDataKey*/"
        "DescribeKey/CreateGrant is for the principal who selects the key: CreateTable)",
    ),
    ImpliedCall(
        "lambda-env-decrypt-at-init",
        ("lambda:InvokeFunction",),
        ("kms:Decrypt",),
        "execution role",
        "kms:ViaService lambda.REGION.amazonaws.com (UNVERIFIED); EC aws:lambda:FunctionArn = "
        "function ARN",
        _LAMBDA_ENV,
        "checked: 'To use a customer managed CMK ... Lambda uses your permissions to create a "
        "grant on the key' (the configuring principal needs kms:CreateGrant and kms:Encrypt); "
        "on AWS that grant, not the role's policies, authorizes this Decrypt. The model has no "
        "grants and asks the key policy/IAM for the role instead: stricter than AWS. "
        "UNVERIFIED: the ViaService value and the EC key at init",
    ),
    ImpliedCall(
        "logs-put-kms-log-group",
        ("logs:PutLogEvents",),
        ("kms:GenerateDataKey",),
        "service principal",
        "principal logs.REGION.amazonaws.com; EC aws:logs:arn = log group ARN",
        _LOGS_KMS,
        "checked: the key policy must allow the regional logs principal (Encrypt*, Decrypt*, "
        "ReEncrypt*, GenerateDataKey*, Describe*); writers need no KMS permission. The EC "
        "aws:logs:arn is on the current page (the archived one predates it)",
    ),
    ImpliedCall(
        "logs-read-kms-log-group",
        ("logs:GetLogEvents", "logs:FilterLogEvents", "logs:StartQuery"),
        ("kms:Decrypt",),
        "service principal",
        "as logs-put-kms-log-group",
        _LOGS_KMS,
        "checked: 'CloudWatch Logs decrypts this data whenever it is requested'",
    ),
    ImpliedCall(
        "sns-publish-sse-kms",
        ("sns:Publish",),
        ("kms:GenerateDataKey", "kms:Decrypt"),
        "caller (forward access session)",
        "a user/role: kms:ViaService sns.REGION.amazonaws.com; a service principal publisher "
        "(cloudwatch.amazonaws.com) calls KMS itself with aws:SourceArn/aws:SourceAccount",
        _SNS_KMS,
        "checked: publishers need GenerateDataKey and Decrypt; AWS service event sources need "
        "GenerateDataKey* and Decrypt in the key policy for their service principal",
    ),
    ImpliedCall(
        "s3-notification-invokes-function",
        ("s3:PutObject on a bucket whose notifications invoke a function",),
        ("lambda:InvokeFunction",),
        "service principal",
        "principal s3.amazonaws.com; aws:SourceArn = bucket ARN, aws:SourceAccount = account, "
        "checked against the function's resource policy",
        LAMBDA_S3_DOC,
        "checked: Amazon S3 needs permission from the function's resource-based policy",
    ),
    ImpliedCall(
        "event-source-mapping-poll",
        ("event_source_poll()",),
        (
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
        ),
        "execution role",
        "the role's session; the queue key's kms:Decrypt follows from sqs-receive-sse-kms",
        LAMBDA_SQS_DOC,
        "checked: Lambda polls with the execution role, which needs ReceiveMessage, "
        "DeleteMessage and GetQueueAttributes (with-sqs); for an encrypted queue 'add the "
        "kms:Decrypt permission to your Lambda execution role' (SQS guide, "
        "sqs-configure-lambda-function-trigger.html). ChangeMessageVisibility is what the "
        "harness's poller also calls (UNVERIFIED for AWS's poller)",
    ),
    ImpliedCall(
        "async-dead-letter-send",
        ("async_dead_letter()",),
        ("sqs:SendMessage",),
        "execution role",
        "the role's session; the queue key's GenerateDataKey/Decrypt follow from sqs-send-sse-kms",
        LAMBDA_DLQ_DOC,
        "checked: the execution role needs sqs:SendMessage on the dead-letter queue",
    ),
    ImpliedCall(
        "alarm-publishes-to-topic",
        ("alarm_publishes()",),
        ("sns:Publish",),
        "service principal",
        "principal cloudwatch.amazonaws.com; aws:SourceArn = alarm ARN, aws:SourceAccount",
        CW_ALARM_SNS_DOC,
        "UNVERIFIED: that CloudWatch publishes as cloudwatch.amazonaws.com with these source "
        "keys is taken from sns-key-management's event-source table and the stack's policies",
    ),
)

ROWS = {row.name: row for row in IMPLIED_CALLS}
