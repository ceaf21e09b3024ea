"""Map one raw AWS HTTP request to the primary AuthzRequest(s) IAM evaluates for it.

Input: anything shaped like `pipeline_local.faults.ProxyRequest` (method, path, headers, body,
service and region from the SigV4 scope, operation from `faults.classify`), the calling
`Principal`, and whether the request came over TLS. Output: the requests IAM authorizes, named
as IAM names them (Service Authorization Reference,
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html):
- S3 (REST; path-style and virtual-hosted): HEAD object -> s3:GetObject, GET with versionId
  -> s3:GetObjectVersion, multipart steps -> s3:PutObject, CopyObject -> s3:PutObject on the
  target + s3:GetObject(Version) on the source, multi-object delete -> s3:DeleteObject per key,
  bucket subresources (?policy, ?encryption, ...) -> their IAM actions
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html);
- DynamoDB: one request per table, index ARNs for Query/Scan on an index, TransactWriteItems
  -> PutItem/UpdateItem/DeleteItem/ConditionCheckItem per item, TransactGetItems -> GetItem
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html);
- SQS (JSON and query protocol): the batch APIs as sqs:SendMessage / DeleteMessage /
  ChangeMessageVisibility
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html);
- KMS, CloudWatch Logs, CloudWatch (monitoring -> cloudwatch:*), SNS, Lambda (REST), STS, X-Ray.
Context keys set here: aws:SecureTransport, aws:RequestedRegion, aws:CurrentTime,
aws:EpochTime, aws:UserAgent, and per service the keys the request carries (s3:x-amz-server-
side-encryption[-aws-kms-key-id], s3:versionid, s3:prefix, s3:x-amz-acl, s3:x-amz-copy-source,
s3:signatureversion, s3:authType; kms:EncryptionContext:*, kms:EncryptionContextKeys,
kms:RequestAlias; dynamodb:Select/ReturnValues/ReturnConsumedCapacity; cloudwatch:namespace;
sts:RoleSessionName). The engine adds the principal-derived keys (aws:PrincipalArn, ...).
An empty list means IAM authorizes nothing (sts:GetCallerIdentity). A request this module
cannot map raises `UnmappedRequest` naming service, method, path and operation.
"""

from __future__ import annotations

import base64
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline_local.authz.engine import AuthzRequest, Principal
from pipeline_local.authz.implied import OPERATION_KEY

__all__ = ["RequestLike", "UnmappedRequest", "primary_requests"]


class RequestLike(Protocol):
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    service: str
    region: str
    operation: str


class UnmappedRequest(ValueError):
    """A request the model cannot name (unknown service/operation, or missing its resource)."""


@dataclass(frozen=True)
class _Call:
    req: RequestLike
    principal: Principal
    account: str
    region: str
    operation: str
    context: Mapping[str, Any]
    aliases: Mapping[str, str]

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.req.headers if k.lower() == lname), None)

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.req.path).query, keep_blank_values=True)

    def form(self) -> dict[str, str]:
        """Query-protocol parameters: the form body, else the query string."""
        params = {k: v[0] for k, v in self.query().items()}
        if self.req.body and b"=" in self.req.body and not self.req.body.lstrip().startswith(b"{"):
            body = parse_qs(self.req.body.decode("utf-8", "replace"), keep_blank_values=True)
            params.update({k: v[0] for k, v in body.items()})
        return params

    def json(self) -> dict[str, Any]:
        if not self.req.body:
            return {}
        try:
            doc = json.loads(self.req.body)
        except ValueError as exc:
            raise self.unmapped(f"body is not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise self.unmapped("body is not a JSON object")
        return doc

    def params(self) -> dict[str, Any]:
        """JSON body for JSON-protocol requests, form parameters for query-protocol ones."""
        ctype = (self.header("Content-Type") or "").lower()
        if "json" in ctype or self.header("X-Amz-Target"):
            return self.json()
        return self.form()

    @property
    def op(self) -> str:
        """The operation, which every non-REST protocol names."""
        if not self.operation:
            raise self.unmapped("no operation (X-Amz-Target or Action) in the request")
        return self.operation

    def make(self, action: str, resource: str, **extra: Any) -> AuthzRequest:
        ctx = {**self.context, OPERATION_KEY: self.operation, **extra}
        return AuthzRequest(self.principal, action, resource, ctx)

    def unmapped(self, why: str) -> UnmappedRequest:
        return UnmappedRequest(
            f"cannot authorize {self.req.service or '?'} {self.req.method} "
            f"{urlsplit(self.req.path).path} (operation {self.operation or '?'}): {why}"
        )


def _operation(req: RequestLike) -> str:
    if req.operation:
        return req.operation
    headers = {k.lower(): v for k, v in req.headers}
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    path = urlsplit(req.path).path
    cbor = re.match(r"^/service/[^/]+/operation/([^/]+)$", path)
    if cbor:
        return cbor.group(1)
    query = parse_qs(urlsplit(req.path).query)
    if "Action" in query:
        return query["Action"][0]
    if req.body and "x-www-form-urlencoded" in headers.get("content-type", ""):
        form = parse_qs(req.body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return ""


def _common_context(req: RequestLike, region: str, secure: bool) -> dict[str, Any]:
    now = time.time()
    ctx: dict[str, Any] = {
        "aws:SecureTransport": secure,
        "aws:RequestedRegion": region,
        "aws:CurrentTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": int(now),
    }
    agent = next((v for k, v in req.headers if k.lower() == "user-agent"), None)
    if agent:
        ctx["aws:UserAgent"] = agent
    return ctx


# ------------------------------------------------------------------------------------------ S3

_S3_VHOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*)\.s3[.-]", re.IGNORECASE)

# (method, "object"|"bucket", subresource or "", IAM action, operation); the first subresource
# present in the query wins, "" is the plain request.
_S3_TABLE: list[tuple[str, str, str, str, str]] = [
    ("GET", "object", "uploadId", "s3:ListMultipartUploadParts", "ListParts"),
    ("GET", "object", "tagging", "s3:GetObjectTagging", "GetObjectTagging"),
    ("GET", "object", "acl", "s3:GetObjectAcl", "GetObjectAcl"),
    ("GET", "object", "attributes", "s3:GetObjectAttributes", "GetObjectAttributes"),
    ("GET", "object", "retention", "s3:GetObjectRetention", "GetObjectRetention"),
    ("GET", "object", "legal-hold", "s3:GetObjectLegalHold", "GetObjectLegalHold"),
    ("GET", "object", "", "s3:GetObject", "GetObject"),
    ("HEAD", "object", "", "s3:GetObject", "HeadObject"),
    ("PUT", "object", "uploadId", "s3:PutObject", "UploadPart"),
    ("PUT", "object", "tagging", "s3:PutObjectTagging", "PutObjectTagging"),
    ("PUT", "object", "acl", "s3:PutObjectAcl", "PutObjectAcl"),
    ("PUT", "object", "retention", "s3:PutObjectRetention", "PutObjectRetention"),
    ("PUT", "object", "legal-hold", "s3:PutObjectLegalHold", "PutObjectLegalHold"),
    ("PUT", "object", "", "s3:PutObject", "PutObject"),
    ("POST", "object", "uploads", "s3:PutObject", "CreateMultipartUpload"),
    ("POST", "object", "uploadId", "s3:PutObject", "CompleteMultipartUpload"),
    ("POST", "object", "restore", "s3:RestoreObject", "RestoreObject"),
    ("POST", "object", "select", "s3:GetObject", "SelectObjectContent"),
    ("DELETE", "object", "uploadId", "s3:AbortMultipartUpload", "AbortMultipartUpload"),
    ("DELETE", "object", "tagging", "s3:DeleteObjectTagging", "DeleteObjectTagging"),
    ("DELETE", "object", "", "s3:DeleteObject", "DeleteObject"),
    ("GET", "bucket", "versions", "s3:ListBucketVersions", "ListObjectVersions"),
    ("GET", "bucket", "uploads", "s3:ListBucketMultipartUploads", "ListMultipartUploads"),
    ("GET", "bucket", "location", "s3:GetBucketLocation", "GetBucketLocation"),
    ("GET", "bucket", "policyStatus", "s3:GetBucketPolicyStatus", "GetBucketPolicyStatus"),
    ("GET", "bucket", "policy", "s3:GetBucketPolicy", "GetBucketPolicy"),
    ("GET", "bucket", "encryption", "s3:GetEncryptionConfiguration", "GetBucketEncryption"),
    ("GET", "bucket", "versioning", "s3:GetBucketVersioning", "GetBucketVersioning"),
    ("GET", "bucket", "notification", "s3:GetBucketNotification", "GetBucketNotification"),
    ("GET", "bucket", "tagging", "s3:GetBucketTagging", "GetBucketTagging"),
    ("GET", "bucket", "acl", "s3:GetBucketAcl", "GetBucketAcl"),
    ("GET", "bucket", "lifecycle", "s3:GetLifecycleConfiguration", "GetBucketLifecycle"),
    ("GET", "bucket", "publicAccessBlock", "s3:GetBucketPublicAccessBlock", "GetPAB"),
    ("GET", "bucket", "cors", "s3:GetBucketCORS", "GetBucketCors"),
    ("GET", "bucket", "logging", "s3:GetBucketLogging", "GetBucketLogging"),
    ("GET", "bucket", "website", "s3:GetBucketWebsite", "GetBucketWebsite"),
    ("GET", "bucket", "ownershipControls", "s3:GetBucketOwnershipControls", "GetOwnership"),
    ("GET", "bucket", "replication", "s3:GetReplicationConfiguration", "GetReplication"),
    ("GET", "bucket", "object-lock", "s3:GetBucketObjectLockConfiguration", "GetObjectLock"),
    ("GET", "bucket", "accelerate", "s3:GetAccelerateConfiguration", "GetAccelerate"),
    ("GET", "bucket", "requestPayment", "s3:GetBucketRequestPayment", "GetRequestPayment"),
    ("GET", "bucket", "", "s3:ListBucket", "ListObjects"),
    ("HEAD", "bucket", "", "s3:ListBucket", "HeadBucket"),
    ("PUT", "bucket", "policy", "s3:PutBucketPolicy", "PutBucketPolicy"),
    ("PUT", "bucket", "encryption", "s3:PutEncryptionConfiguration", "PutBucketEncryption"),
    ("PUT", "bucket", "versioning", "s3:PutBucketVersioning", "PutBucketVersioning"),
    ("PUT", "bucket", "notification", "s3:PutBucketNotification", "PutBucketNotification"),
    ("PUT", "bucket", "tagging", "s3:PutBucketTagging", "PutBucketTagging"),
    ("PUT", "bucket", "acl", "s3:PutBucketAcl", "PutBucketAcl"),
    ("PUT", "bucket", "lifecycle", "s3:PutLifecycleConfiguration", "PutBucketLifecycle"),
    ("PUT", "bucket", "publicAccessBlock", "s3:PutBucketPublicAccessBlock", "PutPAB"),
    ("PUT", "bucket", "cors", "s3:PutBucketCORS", "PutBucketCors"),
    ("PUT", "bucket", "logging", "s3:PutBucketLogging", "PutBucketLogging"),
    ("PUT", "bucket", "ownershipControls", "s3:PutBucketOwnershipControls", "PutOwnership"),
    ("PUT", "bucket", "object-lock", "s3:PutBucketObjectLockConfiguration", "PutObjectLock"),
    ("PUT", "bucket", "", "s3:CreateBucket", "CreateBucket"),
    ("POST", "bucket", "delete", "s3:DeleteObject", "DeleteObjects"),
    ("DELETE", "bucket", "policy", "s3:DeleteBucketPolicy", "DeleteBucketPolicy"),
    ("DELETE", "bucket", "encryption", "s3:PutEncryptionConfiguration", "DeleteEncryption"),
    ("DELETE", "bucket", "tagging", "s3:PutBucketTagging", "DeleteBucketTagging"),
    ("DELETE", "bucket", "lifecycle", "s3:PutLifecycleConfiguration", "DeleteLifecycle"),
    ("DELETE", "bucket", "publicAccessBlock", "s3:PutBucketPublicAccessBlock", "DeletePAB"),
    ("DELETE", "bucket", "cors", "s3:PutBucketCORS", "DeleteBucketCors"),
    ("DELETE", "bucket", "ownershipControls", "s3:PutBucketOwnershipControls", "DeleteOwn"),
    ("DELETE", "bucket", "", "s3:DeleteBucket", "DeleteBucket"),
]
_S3_HEADER_KEYS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-acl",
    "x-amz-copy-source",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-metadata-directive",
    "x-amz-object-lock-mode",
)


def _s3(call: _Call) -> list[AuthzRequest]:
    split = urlsplit(call.req.path)
    query = call.query()
    host = (call.header("Host") or "").split(":", 1)[0]
    vhost = _S3_VHOST.match(host)
    if vhost:
        bucket, key = vhost.group("bucket"), unquote(split.path.lstrip("/"))
    else:
        bucket, _, key = unquote(split.path.lstrip("/")).partition("/")
    method = call.req.method.upper()
    if not bucket:
        if method == "GET":
            return [_s3_make(call, "s3:ListAllMyBuckets", "*", "ListBuckets", {})]
        raise call.unmapped("no bucket in the request")
    target = "object" if key else "bucket"
    row = next(
        (
            r
            for r in _S3_TABLE
            if r[0] == method and r[1] == target and (r[2] in query if r[2] else True)
        ),
        None,
    )
    if row is None:
        raise call.unmapped(f"no IAM action known for {method} on a {target}")
    _, _, _, action, operation = row
    bucket_arn = f"arn:aws:s3:::{bucket}"
    extra: dict[str, Any] = {}
    for name in _S3_HEADER_KEYS:
        value = call.header(name)
        if value is not None:
            extra[f"s3:{name}"] = value
    auth = call.header("Authorization") or ""
    if auth.startswith("AWS4-HMAC-SHA256") or "X-Amz-Signature" in query:
        extra["s3:signatureversion"] = "AWS4-HMAC-SHA256"
    extra["s3:authType"] = "REST-HEADER" if auth else "REST-QUERY-STRING"
    version = query.get("versionId", [None])[0]
    if target == "bucket":
        if action == "s3:ListBucket":
            for param in ("prefix", "delimiter", "max-keys"):
                if param in query:
                    extra[f"s3:{param}"] = query[param][0]
        if operation == "DeleteObjects":
            return _s3_delete_objects(call, bucket_arn, extra)
        return [_s3_make(call, action, bucket_arn, operation, extra)]
    object_arn = f"{bucket_arn}/{key}"
    if version is not None:
        extra["s3:versionid"] = version
        versioned = {
            "s3:GetObject": "s3:GetObjectVersion",
            "s3:DeleteObject": "s3:DeleteObjectVersion",
            "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
            "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
            "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
            "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
            "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
        }
        action = versioned.get(action, action)
    out = [_s3_make(call, action, object_arn, operation, extra)]
    source = extra.get("s3:x-amz-copy-source")
    if operation in ("PutObject", "UploadPart") and source:
        src_split = urlsplit(unquote(source if source.startswith("/") else "/" + source))
        src_bucket, _, src_key = src_split.path.lstrip("/").partition("/")
        src_version = parse_qs(src_split.query).get("versionId", [None])[0]
        src_action = "s3:GetObjectVersion" if src_version else "s3:GetObject"
        src_ctx = {"s3:versionid": src_version} if src_version else {}
        out[0] = _s3_make(
            call,
            action,
            object_arn,
            "CopyObject" if operation == "PutObject" else "UploadPartCopy",
            extra,
        )
        out.append(
            _s3_make(
                call, src_action, f"arn:aws:s3:::{src_bucket}/{src_key}", "CopySource", src_ctx
            )
        )
    return out


def _s3_make(
    call: _Call, action: str, resource: str, operation: str, extra: Mapping[str, Any]
) -> AuthzRequest:
    return AuthzRequest(
        call.principal, action, resource, {**call.context, **extra, OPERATION_KEY: operation}
    )


def _s3_delete_objects(
    call: _Call, bucket_arn: str, extra: Mapping[str, Any]
) -> list[AuthzRequest]:
    try:
        root = ET.fromstring(call.req.body or b"")
    except ET.ParseError as exc:
        raise call.unmapped(f"DeleteObjects body is not XML ({exc})") from exc
    out = []
    for obj in (el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Object"):
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in obj}
        if "Key" not in fields:
            raise call.unmapped("DeleteObjects entry without Key")
        ctx = dict(extra)
        action = "s3:DeleteObject"
        if fields.get("VersionId"):
            action = "s3:DeleteObjectVersion"
            ctx["s3:versionid"] = fields["VersionId"]
        out.append(_s3_make(call, action, f"{bucket_arn}/{fields['Key']}", "DeleteObjects", ctx))
    if not out:
        raise call.unmapped("DeleteObjects names no object")
    return out


# ------------------------------------------------------------------------------------ DynamoDB

_DDB_GLOBAL = {"ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups", "ListStreams"}
_DDB_TRANSACT = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _dynamodb(call: _Call) -> list[AuthzRequest]:
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


def _queue_arn(call: _Call, url: str) -> str:
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) < 2:
        raise call.unmapped(f"cannot read account and queue name from {url!r}")
    return f"arn:aws:sqs:{call.region}:{parts[-2]}:{parts[-1]}"


def _sqs(call: _Call) -> list[AuthzRequest]:
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


def _kms_key(call: _Call, key_id: str) -> tuple[str, dict[str, Any]]:
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


def _kms(call: _Call) -> list[AuthzRequest]:
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


def _key_from_ciphertext(call: _Call, blob: Any) -> str:
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


def _logs(call: _Call) -> list[AuthzRequest]:
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


def _monitoring(call: _Call) -> list[AuthzRequest]:
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


def _sns(call: _Call) -> list[AuthzRequest]:
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


def _function_arn(call: _Call, name: str, qualifier: str | None) -> str:
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


def _lambda(call: _Call) -> list[AuthzRequest]:
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


def _sts(call: _Call) -> list[AuthzRequest]:
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


def _xray(call: _Call) -> list[AuthzRequest]:
    op = _XRAY_PATHS.get(urlsplit(call.req.path).path.rstrip("/"))
    if op is None:
        raise call.unmapped("X-Ray path not modelled")
    return [call.make(f"xray:{op}", "*")]


_SERVICES: dict[str, Callable[[_Call], list[AuthzRequest]]] = {
    "s3": _s3,
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


def primary_requests(
    req: RequestLike,
    principal: Principal,
    *,
    secure: bool,
    account: str | None = None,
    aliases: Mapping[str, str] | None = None,
) -> list[AuthzRequest]:
    """The AuthzRequests IAM evaluates for `req` made by `principal`.

    `account` owns the resources named only by name (tables, queues, keys; default: the
    principal's account); `aliases` maps alias ARNs to key ARNs so that a KMS call through an
    alias is decided on the key's policy (unresolved aliases stay alias ARNs)."""
    owner = account or principal.account
    if not owner:
        raise UnmappedRequest("an account is needed to name the resources of a service principal")
    region = req.region or "us-east-1"
    call = _Call(
        req=req,
        principal=principal,
        account=owner,
        region=region,
        operation=_operation(req),
        context=_common_context(req, region, secure),
        aliases=aliases or {},
    )
    handler = _SERVICES.get(req.service)
    if handler is None:
        raise call.unmapped(f"service {req.service!r} is not modelled")
    return handler(call)
