"""Derive the calls AWS makes on a caller's behalf (mostly KMS) from a primary request.

`implied_requests(primary, facts)` turns one authorized primary request into the further
requests AWS would authorize for it: the KMS calls a service makes with the caller's
credentials (forward access sessions: `kms:ViaService` = `<service>.<region>.amazonaws.com`,
kms:CallerAccount = the caller's account), the calls a service principal makes itself, and
the calls Lambda makes with a function's execution role. It returns the full closure (an
upload that notifies a function yields the invoke and that function's init decryption too).

Every row of `IMPLIED_CALLS` names the AWS documentation page it comes from. "checked" means
the page text was read on 2026-11-30 with the search tools (the AWS documentation sources,
docs.aws.amazon.com pages); "UNVERIFIED" names what the page does not say and what we assume.
The builders `s3_invokes_function`, `alarm_publishes`, `event_source_poll` and
`async_dead_letter` create the primary requests of service-driven flows that no client sends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline_local.authz.engine import AuthzRequest, ContextValue, Principal
from pipeline_local.authz.implied_table import (
    CW_ALARM_SNS_DOC,
    IMPLIED_CALLS,
    LAMBDA_DLQ_DOC,
    LAMBDA_S3_DOC,
    LAMBDA_SQS_DOC,
    ROWS,
    ImpliedCall,
)

__all__ = [
    "IMPLIED_CALLS",
    "OPERATION_KEY",
    "FunctionFacts",
    "ImpliedCall",
    "KmsProtection",
    "ResourceFacts",
    "alarm_publishes",
    "async_dead_letter",
    "event_source_poll",
    "execution_role_session",
    "implied_requests",
    "s3_invokes_function",
]

# A context key that is no AWS condition key: requests.py puts the API operation there
# (HeadObject, UploadPart, ...) where the IAM action alone does not say what S3 does.
OPERATION_KEY = "pipeline:Operation"


@dataclass(frozen=True)
class KmsProtection:
    key_arn: str  # full key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)
    bucket_key: bool = False  # S3 Bucket Key enabled: the encryption context is the bucket ARN


@dataclass(frozen=True)
class FunctionFacts:
    function_arn: str
    role_arn: str  # execution role
    env_key_arn: str | None = None  # KMSKeyArn of the environment, None = AWS owned key
    dead_letter_arn: str | None = None  # DeadLetterConfig.TargetArn


class ResourceFacts(Protocol):
    """What the integration side knows about the stack (filled from the emulator)."""

    def kms_key_for(self, resource_arn: str) -> KmsProtection | None:
        """The customer managed key protecting an S3 object (its own key, else the bucket's
        default), a bucket (its default), an SQS queue, a DynamoDB table, an SNS topic or a
        log group; None when the resource is unencrypted or uses an AWS owned key."""
        ...

    def function(self, function_arn: str) -> FunctionFacts | None: ...

    def functions_notified_by(self, bucket_arn: str) -> Sequence[str]:
        """ARNs of the functions the bucket's event notifications invoke on ObjectCreated."""
        ...


def _arn_parts(arn: str) -> list[str]:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts


def _region_of(arn: str) -> str:
    return _arn_parts(arn)[3]


def _account_of(arn: str) -> str:
    return _arn_parts(arn)[4]


def execution_role_session(facts: FunctionFacts) -> Principal:
    """The principal a function's code (and Lambda, for the role's duties) acts as: a session of
    the execution role named after the function, as Lambda names it."""
    account = _account_of(facts.role_arn)
    role_name = facts.role_arn.rsplit("/", 1)[-1]
    function_name = _arn_parts(facts.function_arn)[5].split(":")[1]
    return Principal(
        arn=f"arn:aws:sts::{account}:assumed-role/{role_name}/{function_name}",
        account=account,
        role_arn=facts.role_arn,
    )


def _kms(
    principal: Principal,
    key_arn: str,
    context: dict[str, ContextValue],
    why: str,
    row: str,
) -> list[AuthzRequest]:
    """The row's calls on `key_arn`, each naming why it happens and the row's source."""
    reason = f"{why} [{row}: {ROWS[row].source}]"
    return [
        AuthzRequest(principal, action, key_arn, dict(context), reason)
        for action in ROWS[row].calls
    ]


def _fas_context(primary: AuthzRequest, service: str, region: str) -> dict[str, ContextValue]:
    ctx: dict[str, ContextValue] = {"kms:ViaService": f"{service}.{region}.amazonaws.com"}
    if "aws:SecureTransport" in primary.context:
        ctx["aws:SecureTransport"] = primary.context["aws:SecureTransport"]
    return ctx


def _why(primary: AuthzRequest) -> str:
    return f"{primary.action} on {primary.resource} by {primary.principal.arn}"


def _s3(primary: AuthzRequest, facts: ResourceFacts) -> list[AuthzRequest]:
    action = primary.action.lower()
    operation = str(primary.context.get(OPERATION_KEY, ""))
    if action not in ("s3:putobject", "s3:getobject", "s3:getobjectversion"):
        return []
    if operation == "HeadObject":
        return []
    obj = primary.resource
    bucket = obj.split("/", 1)[0]
    protection = facts.kms_key_for(obj)
    out: list[AuthzRequest] = []
    if action == "s3:putobject":
        algorithm = primary.context.get("s3:x-amz-server-side-encryption")
        named = primary.context.get("s3:x-amz-server-side-encryption-aws-kms-key-id")
        if algorithm is not None and algorithm != "aws:kms":
            protection = None  # SSE-S3 requested: no KMS call
        elif named:
            default = protection or facts.kms_key_for(bucket)
            key_arn = str(named)
            if not key_arn.startswith("arn:") and default is not None:
                parts = _arn_parts(default.key_arn)
                kind = "" if key_arn.startswith("alias/") else "key/"
                key_arn = f"arn:aws:kms:{parts[3]}:{parts[4]}:{kind}{key_arn}"
            protection = KmsProtection(key_arn, default.bucket_key if default else False)
        if protection is not None:
            ctx = _fas_context(primary, "s3", _region_of(protection.key_arn))
            ctx["kms:EncryptionContext:aws:s3:arn"] = bucket if protection.bucket_key else obj
            row = (
                "s3-complete-multipart-sse-kms"
                if operation == "CompleteMultipartUpload"
                else "s3-put-sse-kms"
            )
            out += _kms(primary.principal, protection.key_arn, ctx, _why(primary), row)
        if operation in ("", "PutObject", "CopyObject", "CompleteMultipartUpload"):
            for function_arn in facts.functions_notified_by(bucket):
                invoke = s3_invokes_function(
                    bucket, function_arn, _account_of_bucket(facts, bucket)
                )
                out += [invoke, *implied_requests(invoke, facts)]
        return out
    if protection is None:
        return []
    ctx = _fas_context(primary, "s3", _region_of(protection.key_arn))
    ctx["kms:EncryptionContext:aws:s3:arn"] = bucket if protection.bucket_key else obj
    return _kms(primary.principal, protection.key_arn, ctx, _why(primary), "s3-get-sse-kms")


def _account_of_bucket(facts: ResourceFacts, bucket: str) -> str:
    # a bucket ARN carries no account: take the account of the key or function that facts know
    protection = facts.kms_key_for(bucket)
    if protection is not None:
        return _account_of(protection.key_arn)
    for function_arn in facts.functions_notified_by(bucket):
        return _account_of(function_arn)
    raise ValueError(f"cannot tell the account owning {bucket}")


def _sqs(primary: AuthzRequest, facts: ResourceFacts) -> list[AuthzRequest]:
    action = primary.action.lower()
    row = {"sqs:sendmessage": "sqs-send-sse-kms", "sqs:receivemessage": "sqs-receive-sse-kms"}.get(
        action
    )
    if row is None:
        return []
    protection = facts.kms_key_for(primary.resource)
    if protection is None:
        return []
    ctx = _fas_context(primary, "sqs", _region_of(primary.resource))
    ctx["kms:EncryptionContext:aws:sqs:arn"] = primary.resource
    return _kms(primary.principal, protection.key_arn, ctx, _why(primary), row)


_DDB_DATA_ACTIONS = {a.lower() for a in ROWS["dynamodb-cmk-table-access"].triggers}


def _dynamodb(primary: AuthzRequest, facts: ResourceFacts) -> list[AuthzRequest]:
    if primary.action.lower() not in _DDB_DATA_ACTIONS:
        return []
    parts = _arn_parts(primary.resource)
    table_name = parts[5].split("/")[1]
    table_arn = ":".join(parts[:5]) + f":table/{table_name}"
    protection = facts.kms_key_for(table_arn)
    if protection is None:
        return []
    ctx = _fas_context(primary, "dynamodb", parts[3])
    ctx["kms:EncryptionContext:aws:dynamodb:tableName"] = table_name
    ctx["kms:EncryptionContext:aws:dynamodb:subscriberId"] = parts[4]
    row = "dynamodb-cmk-table-access"
    return _kms(primary.principal, protection.key_arn, ctx, _why(primary), row)


def _lambda(primary: AuthzRequest, facts: ResourceFacts) -> list[AuthzRequest]:
    if primary.action.lower() != "lambda:invokefunction":
        return []
    parts = _arn_parts(primary.resource)
    function_arn = ":".join(parts[:5]) + ":" + ":".join(parts[5].split(":")[:2])
    fn = facts.function(function_arn)
    if fn is None or fn.env_key_arn is None:
        return []
    ctx: dict[str, ContextValue] = {
        "kms:ViaService": f"lambda.{parts[3]}.amazonaws.com",
        "kms:EncryptionContext:aws:lambda:FunctionArn": fn.function_arn,
    }
    return _kms(
        execution_role_session(fn),
        fn.env_key_arn,
        ctx,
        f"initialising {fn.function_arn} for {_why(primary)}",
        "lambda-env-decrypt-at-init",
    )


def _logs(primary: AuthzRequest, facts: ResourceFacts) -> list[AuthzRequest]:
    action = primary.action.lower()
    writes = action == "logs:putlogevents"
    reads = action in {a.lower() for a in ROWS["logs-read-kms-log-group"].triggers}
    if not (writes or reads):
        return []
    group = primary.resource.split(":log-stream:", 1)[0]
    protection = facts.kms_key_for(group)
    if protection is None:
        return []
    region = _region_of(group)
    logs = Principal(
        arn=f"logs.{region}.amazonaws.com", account=None, service=f"logs.{region}.amazonaws.com"
    )
    ctx: dict[str, ContextValue] = {"kms:EncryptionContext:aws:logs:arn": group}
    row = "logs-put-kms-log-group" if writes else "logs-read-kms-log-group"
    return _kms(logs, protection.key_arn, ctx, _why(primary), row)


def _sns(primary: AuthzRequest, facts: ResourceFacts) -> list[AuthzRequest]:
    if primary.action.lower() != "sns:publish":
        return []
    protection = facts.kms_key_for(primary.resource)
    if protection is None:
        return []
    if primary.principal.service:
        ctx = {
            k: v
            for k, v in primary.context.items()
            if k.lower() in ("aws:sourcearn", "aws:sourceaccount")
        }
    else:
        ctx = _fas_context(primary, "sns", _region_of(primary.resource))
    return _kms(
        primary.principal,
        protection.key_arn,
        dict(ctx),
        _why(primary),
        "sns-publish-sse-kms",
    )


_BY_SERVICE: dict[str, Callable[[AuthzRequest, ResourceFacts], list[AuthzRequest]]] = {
    "s3": _s3,
    "sqs": _sqs,
    "dynamodb": _dynamodb,
    "lambda": _lambda,
    "logs": _logs,
    "sns": _sns,
}


def implied_requests(primary: AuthzRequest, facts: ResourceFacts) -> list[AuthzRequest]:
    """The requests AWS authorizes because `primary` happens (closure, in call order)."""
    service = primary.action.split(":", 1)[0].lower()
    handler = _BY_SERVICE.get(service)
    if handler is None or primary.resource == "*":
        return []
    return handler(primary, facts)


# ---------------------------------------------------------------- service-driven primaries


def s3_invokes_function(bucket_arn: str, function_arn: str, account: str) -> AuthzRequest:
    """S3 delivering an event notification: s3.amazonaws.com calls lambda:InvokeFunction,
    checked against the function policy with the bucket as aws:SourceArn."""
    s3 = Principal(arn="s3.amazonaws.com", account=None, service="s3.amazonaws.com")
    return AuthzRequest(
        s3,
        "lambda:InvokeFunction",
        function_arn,
        {"aws:SourceArn": bucket_arn, "aws:SourceAccount": account, "aws:SecureTransport": True},
        f"event notification of {bucket_arn} [s3-notification-invokes-function: {LAMBDA_S3_DOC}]",
    )


def alarm_publishes(alarm_arn: str, topic_arn: str) -> AuthzRequest:
    """A CloudWatch alarm action publishing to an SNS topic as cloudwatch.amazonaws.com."""
    cw = Principal(arn="cloudwatch.amazonaws.com", account=None, service="cloudwatch.amazonaws.com")
    return AuthzRequest(
        cw,
        "sns:Publish",
        topic_arn,
        {
            "aws:SourceArn": alarm_arn,
            "aws:SourceAccount": _account_of(alarm_arn),
            "aws:SecureTransport": True,
        },
        f"alarm action of {alarm_arn} [alarm-publishes-to-topic: {CW_ALARM_SNS_DOC}]",
    )


def event_source_poll(facts: FunctionFacts, queue_arn: str) -> list[AuthzRequest]:
    """The calls an SQS event source mapping makes with the function's execution role."""
    role = execution_role_session(facts)
    why = (
        f"event source mapping {queue_arn} -> {facts.function_arn} "
        f"[event-source-mapping-poll: {LAMBDA_SQS_DOC}]"
    )
    return [
        AuthzRequest(role, action, queue_arn, {"aws:SecureTransport": True}, why)
        for action in ROWS["event-source-mapping-poll"].calls
    ]


def async_dead_letter(facts: FunctionFacts) -> AuthzRequest | None:
    """Lambda sending a failed asynchronous event to the function's dead-letter queue, with the
    execution role (None when the function has no SQS dead-letter queue)."""
    target = facts.dead_letter_arn
    if not target or _arn_parts(target)[2] != "sqs":
        return None
    return AuthzRequest(
        execution_role_session(facts),
        "sqs:SendMessage",
        target,
        {"aws:SecureTransport": True},
        f"asynchronous dead-letter delivery of {facts.function_arn} "
        f"[async-dead-letter-send: {LAMBDA_DLQ_DOC}]",
    )
