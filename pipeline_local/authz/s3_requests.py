"""Map one S3 REST request (path-style or virtual-hosted) to the IAM requests it needs.

HEAD object -> s3:GetObject, GET with versionId -> s3:GetObjectVersion, multipart steps ->
s3:PutObject, CopyObject -> s3:PutObject on the target + s3:GetObject(Version) on the source,
multi-object delete -> s3:DeleteObject per key, bucket subresources (?policy, ?encryption, ...) ->
their IAM actions (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline_local.authz.engine import AuthzRequest
from pipeline_local.authz.implied import OPERATION_KEY
from pipeline_local.authz.request_call import Call

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


def s3_requests(call: Call) -> list[AuthzRequest]:
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
    call: Call, action: str, resource: str, operation: str, extra: Mapping[str, Any]
) -> AuthzRequest:
    return AuthzRequest(
        call.principal, action, resource, {**call.context, **extra, OPERATION_KEY: operation}
    )


def _s3_delete_objects(call: Call, bucket_arn: str, extra: Mapping[str, Any]) -> list[AuthzRequest]:
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
