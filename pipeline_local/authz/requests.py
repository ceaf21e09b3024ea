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

from collections.abc import Callable, Mapping

from pipeline_local.authz.engine import AuthzRequest, Principal
from pipeline_local.authz.request_call import (
    Call,
    RequestLike,
    UnmappedRequest,
    common_context,
    operation_of,
)
from pipeline_local.authz.s3_requests import s3_requests
from pipeline_local.authz.service_requests import SERVICE_MAPPERS

__all__ = ["RequestLike", "UnmappedRequest", "primary_requests"]

_SERVICES: dict[str, Callable[[Call], list[AuthzRequest]]] = {"s3": s3_requests, **SERVICE_MAPPERS}


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
    call = Call(
        req=req,
        principal=principal,
        account=owner,
        region=region,
        operation=operation_of(req),
        context=common_context(req, region, secure),
        aliases=aliases or {},
    )
    handler = _SERVICES.get(req.service)
    if handler is None:
        raise call.unmapped(f"service {req.service!r} is not modelled")
    return handler(call)
