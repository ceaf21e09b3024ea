"""Map one request of a non-S3 service to the IAM requests it needs.

DynamoDB, SQS (JSON and query protocol), KMS, CloudWatch Logs, CloudWatch, SNS, Lambda (REST),
STS and X-Ray; `SERVICE_MAPPERS` names the mapper of each service.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline_local.authz.engine import AuthzRequest
from pipeline_local.authz.request_call import Call

# ------------------------------------------------------------------------------------ DynamoDB

_DDB_GLOBAL = {"ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups", "ListStreams"}
_DDB_TRANSACT = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _dynamodb(call: Call) -> list[AuthzRequest]:
    body = call.json()
    op = call.op

    def table(name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:aws:dynamodb:{call.region}:{call.account}:table/{name}"

    extra = {
        f"dynamodb:{k}": body[k]
        for k in ("Select", "ReturnValues", "ReturnConsumedCapacity")
        if isinstance(body.get(k), str)
    }
    if op in ("BatchWriteItem", "BatchGetItem"):
        items = body.get("RequestItems")
        if not isinstance(items, dict) or not items:
            raise call.unmapped("RequestItems missing")
        return [call.make(f"dynamodb:{op}", table(t), **extra) for t in sorted(items)]
    if op in ("TransactWriteItems", "TransactGetItems"):
        out: list[AuthzRequest] = []
        seen: set[tuple[str, str]] = set()
        for item in body.get("TransactItems") or []:
            for kind, inner in (item or {}).items():
                if kind not in _DDB_TRANSACT or not isinstance(inner, dict):
                    raise call.unmapped(f"unknown transaction item {kind!r}")
                pair = (_DDB_TRANSACT[kind], table(str(inner.get("TableName", ""))))
                if pair not in seen and inner.get("TableName"):
                    seen.add(pair)
                    out.append(call.make(*pair, **extra))
        if not out:
            raise call.unmapped("TransactItems names no table")
        return out
    if op in _DDB_GLOBAL:
        return [call.make(f"dynamodb:{op}", "*")]
    for arn_field in ("ResourceArn", "StreamArn", "BackupArn"):
        if isinstance(body.get(arn_field), str):
            return [call.make(f"dynamodb:{op}", body[arn_field], **extra)]
    name = body.get("TableName")
    if not isinstance(name, str) or not name:
        raise call.unmapped("TableName missing")
    resource = table(name)
    if isinstance(body.get("IndexName"), str) and op in ("Query", "Scan"):
        resource += f"/index/{body['IndexName']}"
    return [call.make(f"dynamodb:{op}", resource, **extra)]


# ----------------------------------------------------------------------------------------- SQS

_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _queue_arn(call: Call, url: str) -> str:
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) < 2:
        raise call.unmapped(f"cannot read account and queue name from {url!r}")
    return f"arn:aws:sqs:{call.region}:{parts[-2]}:{parts[-1]}"


def _sqs(call: Call) -> list[AuthzRequest]:
    params = call.params()
    op = call.op
    action = f"sqs:{_SQS_BATCH.get(op, op)}"
    if op == "ListQueues":
        return [call.make(action, "*")]
    if op in ("CreateQueue", "GetQueueUrl"):
        name = params.get("QueueName")
        if not name:
            raise call.unmapped("QueueName missing")
        owner = params.get("QueueOwnerAWSAccountId") or call.account
        return [call.make(action, f"arn:aws:sqs:{call.region}:{owner}:{name}")]
    url = params.get("QueueUrl")
    if not url and len([p for p in urlsplit(call.req.path).path.split("/") if p]) >= 2:
        url = call.req.path  # query protocol posted to the queue URL itself
    if not url:
        raise call.unmapped("QueueUrl missing")
    return [call.make(action, _queue_arn(call, str(url)))]


# ----------------------------------------------------------------------------------------- KMS

_KMS_GLOBAL = {
    "CreateKey",
    "ListKeys",
    "ListAliases",
    "GenerateRandom",
    "ConnectCustomKeyStore",
    "DescribeCustomKeyStores",
    "ListRetirableGrants",
}
_MOTO_CIPHERTEXT_KEY = re.compile(rb"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _kms_key(call: Call, key_id: str) -> tuple[str, dict[str, Any]]:
    extra: dict[str, Any] = {}
    if key_id.startswith("arn:"):
        arn = key_id
    elif key_id.startswith("alias/"):
        arn = f"arn:aws:kms:{call.region}:{call.account}:{key_id}"
    else:
        arn = f"arn:aws:kms:{call.region}:{call.account}:key/{key_id}"
    if ":alias/" in arn:
        extra["kms:RequestAlias"] = arn.split(":", 5)[5]
        arn = call.aliases.get(arn, arn)
    return arn, extra


def _kms(call: Call) -> list[AuthzRequest]:
    body = call.json()
    op = call.op
    action = f"kms:{op}"
    if op in _KMS_GLOBAL:
        return [call.make(action, "*")]
    extra: dict[str, Any] = {}
    context = body.get("EncryptionContext")
    if isinstance(context, dict):
        for key, value in context.items():
            extra[f"kms:EncryptionContext:{key}"] = str(value)
        extra["kms:EncryptionContextKeys"] = sorted(context)
    key_id = body.get("KeyId") or body.get("TargetKeyId")
    if op == "Decrypt" and not key_id:
        key_id = _key_from_ciphertext(call, body.get("CiphertextBlob"))
    if not isinstance(key_id, str) or not key_id:
        raise call.unmapped("KeyId missing")
    key_arn, alias_extra = _kms_key(call, key_id)
    out = [call.make(action, key_arn, **extra, **alias_extra)]
    if op in ("CreateAlias", "UpdateAlias", "DeleteAlias") and body.get("AliasName"):
        alias_arn = f"arn:aws:kms:{call.region}:{call.account}:{body['AliasName']}"
        out.insert(0, call.make(action, alias_arn))
        if op == "DeleteAlias":
            out = out[:1]
    return out


def _key_from_ciphertext(call: Call, blob: Any) -> str:
    """The key of a Decrypt without KeyId. AWS reads it from the ciphertext's metadata; the
    emulator (moto) writes the key id as the blob's first 36 bytes, so that is read here."""
    if not isinstance(blob, str):
        raise call.unmapped("Decrypt without KeyId or CiphertextBlob")
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError as exc:
        raise call.unmapped("CiphertextBlob is not base64") from exc
    match = _MOTO_CIPHERTEXT_KEY.match(raw)
    if not match:
        raise call.unmapped("Decrypt without KeyId and no key id readable from the ciphertext")
    return match.group(0).decode()


# ---------------------------------------------------------------------------------------- Logs


def _logs(call: Call) -> list[AuthzRequest]:
    body = call.json()
    op = call.op
    group = body.get("logGroupName") or body.get("logGroupIdentifier")
    if not group:
        return [call.make(f"logs:{op}", "*")]
    group = str(group)
    group_arn = (
        group.removesuffix(":*")
        if group.startswith("arn:")
        else f"arn:aws:logs:{call.region}:{call.account}:log-group:{group}"
    )
    stream = body.get("logStreamName")
    if stream:
        return [call.make(f"logs:{op}", f"{group_arn}:log-stream:{stream}")]
    return [call.make(f"logs:{op}", group_arn)]


# ---------------------------------------------------------------------------------- CloudWatch


def _monitoring(call: Call) -> list[AuthzRequest]:
    op = call.op
    ctype = (call.header("Content-Type") or "").lower()
    params: dict[str, Any] = {} if "cbor" in ctype else call.params()
    action = f"cloudwatch:{op}"
    extra = {}
    if op == "PutMetricData" and isinstance(params.get("Namespace"), str):
        extra["cloudwatch:namespace"] = params["Namespace"]
    alarm_base = f"arn:aws:cloudwatch:{call.region}:{call.account}:alarm:"
    if op in ("PutMetricAlarm", "SetAlarmState", "PutCompositeAlarm") and params.get("AlarmName"):
        return [call.make(action, alarm_base + str(params["AlarmName"]))]
    names = params.get("AlarmNames") or [
        v for k, v in params.items() if k.startswith("AlarmNames.member.")
    ]
    if op in ("DeleteAlarms", "EnableAlarmActions", "DisableAlarmActions") and names:
        return [call.make(action, alarm_base + str(n)) for n in names]
    if op in ("PutDashboard", "GetDashboard") and params.get("DashboardName"):
        dashboard = f"arn:aws:cloudwatch::{call.account}:dashboard/{params['DashboardName']}"
        return [call.make(action, dashboard)]
    return [call.make(action, "*", **extra)]


# ----------------------------------------------------------------------------------------- SNS


def _sns(call: Call) -> list[AuthzRequest]:
    params = call.params()
    op = call.op
    action = f"sns:{op}"
    if op == "CreateTopic":
        if not params.get("Name"):
            raise call.unmapped("Name missing")
        return [call.make(action, f"arn:aws:sns:{call.region}:{call.account}:{params['Name']}")]
    topic = params.get("TopicArn") or params.get("TargetArn") or params.get("ResourceArn")
    subscription = params.get("SubscriptionArn")
    if not topic and subscription:
        topic = str(subscription).rsplit(":", 1)[0]
    if topic:
        return [call.make(action, str(topic))]
    if op in ("ListTopics", "ListSubscriptions", "GetSMSAttributes", "SetSMSAttributes"):
        return [call.make(action, "*")]
    raise call.unmapped("TopicArn missing")


# -------------------------------------------------------------------------------------- Lambda

_LAMBDA_ROUTES: list[tuple[str, str, str]] = [
    # (method, path regex, action); named group fn = function, uuid = mapping
    ("POST", r"/2015-03-31/functions/(?P<fn>[^/]+)/invocations", "InvokeFunction"),
    ("POST", r"/2014-11-13/functions/(?P<fn>[^/]+)/invoke-async/?", "InvokeAsync"),
    ("GET", r"/2015-03-31/functions/?", "ListFunctions"),
    ("POST", r"/2015-03-31/functions/?", "CreateFunction"),
    ("GET", r"/2015-03-31/functions/(?P<fn>[^/]+)", "GetFunction"),
    ("DELETE", r"/2015-03-31/functions/(?P<fn>[^/]+)", "DeleteFunction"),
    ("GET", r"/2015-03-31/functions/(?P<fn>[^/]+)/configuration", "GetFunctionConfiguration"),
    ("PUT", r"/2015-03-31/functions/(?P<fn>[^/]+)/configuration", "UpdateFunctionConfiguration"),
    ("PUT", r"/2015-03-31/functions/(?P<fn>[^/]+)/code", "UpdateFunctionCode"),
    ("GET", r"/2015-03-31/functions/(?P<fn>[^/]+)/policy", "GetPolicy"),
    ("POST", r"/2015-03-31/functions/(?P<fn>[^/]+)/policy", "AddPermission"),
    ("DELETE", r"/2015-03-31/functions/(?P<fn>[^/]+)/policy/[^/]+", "RemovePermission"),
    ("GET", r"/2015-03-31/functions/(?P<fn>[^/]+)/versions", "ListVersionsByFunction"),
    ("POST", r"/2015-03-31/functions/(?P<fn>[^/]+)/versions", "PublishVersion"),
    ("GET", r"/2015-03-31/functions/(?P<fn>[^/]+)/aliases(/[^/]+)?", "GetAlias"),
    (
        "GET",
        r"/2019-09-25/functions/(?P<fn>[^/]+)/event-invoke-config",
        "GetFunctionEventInvokeConfig",
    ),
    (
        "PUT",
        r"/2019-09-25/functions/(?P<fn>[^/]+)/event-invoke-config",
        "PutFunctionEventInvokeConfig",
    ),
    (
        "POST",
        r"/2019-09-25/functions/(?P<fn>[^/]+)/event-invoke-config",
        "UpdateFunctionEventInvokeConfig",
    ),
    (
        "DELETE",
        r"/2019-09-25/functions/(?P<fn>[^/]+)/event-invoke-config",
        "DeleteFunctionEventInvokeConfig",
    ),
    ("PUT", r"/2017-10-31/functions/(?P<fn>[^/]+)/concurrency", "PutFunctionConcurrency"),
    ("GET", r"/2019-09-30/functions/(?P<fn>[^/]+)/concurrency", "GetFunctionConcurrency"),
    (
        "GET",
        r"/2020-06-30/functions/(?P<fn>[^/]+)/code-signing-config",
        "GetFunctionCodeSigningConfig",
    ),
    ("GET", r"/2015-03-31/event-source-mappings/?", "ListEventSourceMappings"),
    ("POST", r"/2015-03-31/event-source-mappings/?", "CreateEventSourceMapping"),
    ("GET", r"/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)", "GetEventSourceMapping"),
    ("PUT", r"/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)", "UpdateEventSourceMapping"),
    ("DELETE", r"/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)", "DeleteEventSourceMapping"),
    ("GET", r"/2017-03-31/tags/(?P<arn>.+)", "ListTags"),
    ("POST", r"/2017-03-31/tags/(?P<arn>.+)", "TagResource"),
    ("DELETE", r"/2017-03-31/tags/(?P<arn>.+)", "UntagResource"),
]


def _function_arn(call: Call, name: str, qualifier: str | None) -> str:
    name = unquote(name)
    if name.startswith("arn:"):
        arn = name
    elif re.fullmatch(r"\d{12}:function:.+", name):
        arn = f"arn:aws:lambda:{call.region}:{name}"
    else:
        arn = f"arn:aws:lambda:{call.region}:{call.account}:function:{name}"
    if qualifier and arn.count(":") == 6:
        arn += f":{qualifier}"
    return arn


def _lambda(call: Call) -> list[AuthzRequest]:
    split = urlsplit(call.req.path)
    path = split.path
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    method = call.req.method.upper()
    for route_method, pattern, op in _LAMBDA_ROUTES:
        match = re.fullmatch(pattern, path)
        if route_method != method or match is None:
            continue
        groups = match.groupdict()
        action = f"lambda:{op}"
        if groups.get("fn"):
            resource = _function_arn(call, groups["fn"], query.get("Qualifier"))
        elif groups.get("uuid"):
            resource = (
                f"arn:aws:lambda:{call.region}:{call.account}:event-source-mapping:{groups['uuid']}"
            )
        elif groups.get("arn"):
            resource = unquote(groups["arn"])
        elif op == "CreateFunction":
            name = call.json().get("FunctionName")
            if not name:
                raise call.unmapped("FunctionName missing")
            resource = _function_arn(call, str(name), None)
        else:
            resource = "*"
        extra: dict[str, Any] = {}
        if op == "CreateEventSourceMapping":
            body = call.json()
            if body.get("FunctionName"):
                extra["lambda:FunctionArn"] = _function_arn(call, str(body["FunctionName"]), None)
        return [call.make(action, resource, **extra)]
    raise call.unmapped("no Lambda route matches")


# ----------------------------------------------------------------------------------------- STS


def _sts(call: Call) -> list[AuthzRequest]:
    params = call.params()
    op = call.operation
    if op == "GetCallerIdentity":
        return []  # "No permissions are required to perform this operation" (STS API reference)
    if op in ("AssumeRole", "TagSession"):
        role = params.get("RoleArn")
        if not role:
            raise call.unmapped("RoleArn missing")
        extra = (
            {"sts:RoleSessionName": params["RoleSessionName"]}
            if params.get("RoleSessionName")
            else {}
        )
        return [call.make(f"sts:{op}", str(role), **extra)]
    if op in ("GetSessionToken", "GetAccessKeyInfo", "DecodeAuthorizationMessage"):
        return [call.make(f"sts:{op}", "*")]
    raise call.unmapped("STS operation not modelled")


# ---------------------------------------------------------------------------------------- X-Ray

_XRAY_PATHS = {
    "/TraceSegments": "PutTraceSegments",
    "/TelemetryRecords": "PutTelemetryRecords",
    "/GetSamplingRules": "GetSamplingRules",
    "/SamplingTargets": "GetSamplingTargets",
    "/TraceSummaries": "GetTraceSummaries",
    "/Traces": "BatchGetTraces",
}


def _xray(call: Call) -> list[AuthzRequest]:
    op = _XRAY_PATHS.get(urlsplit(call.req.path).path.rstrip("/"))
    if op is None:
        raise call.unmapped("X-Ray path not modelled")
    return [call.make(f"xray:{op}", "*")]


SERVICE_MAPPERS: dict[str, Callable[[Call], list[AuthzRequest]]] = {
    "dynamodb": _dynamodb,
    "sqs": _sqs,
    "kms": _kms,
    "logs": _logs,
    "monitoring": _monitoring,
    "sns": _sns,
    "lambda": _lambda,
    "sts": _sts,
    "xray": _xray,
}
