"""Least privilege of the Lambda roles, as far as the local emulator can show it.

moto's IAM enforcement (`POST /moto-api/reset-auth` with body `0`; `inf` turns it off) checks
every request against the caller's identity policies, but only S3, SQS, IAM and STS calls
against their real resource ARN; DynamoDB, KMS, CloudWatch and Logs calls are checked against
`*`, so a correctly scoped Allow is denied there. It also authorises SQS batch calls under
their own names (`sqs:SendMessageBatch`), where AWS authorises them as `sqs:SendMessage`
(design.md section 5 relies on that), and it evaluates no condition keys.

So the runtime check splits the work:
- the functions run with their own role's credentials (assumed through the emulator's STS), and
  so do their event source mappings' pollers (on AWS the mapping polls with the function's
  role);
- `PolicyEnforcer`, an interceptor of `pipeline_local.faults.LoopbackProxy` placed in front of
  the emulator, lets S3 and non-batch SQS calls through untouched, so that moto enforces them
  against real ARNs; for every other call made with a role's credentials it names the action
  as IAM does (`dynamodb:PutItem`, `sqs:SendMessage` for SendMessageBatch, ...) and the real
  resource ARN (table, queue, key, log group), evaluates the role's applied policy documents
  with moto's own evaluator (`moto.iam.access_control.IAMPolicy`), answers a denied call with
  the service's own AccessDenied error, and forwards an allowed one re-signed with an admin
  identity (so that moto's `*` check cannot refuse what the policy allows).
- `evaluate()` does the same evaluation for any (role, action, resource) without a request
  (KMS permissions, which no handler call exercises: S3 and SQS use the keys server-side).
Every decision is recorded (`AccessRecord`), with who took it: "moto" or "policy evaluator".
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pipeline_local.faults import ProxyRequest, ProxyResponse, json_error, xml_error

REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"
ADMIN_USER = "pipeline-local-operator"

# How IAM names the batch APIs (AWS: "SendMessageBatch is allowed by sqs:SendMessage").
IAM_ACTION_OF = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
}
# The S3 action moto authorises a request as (moto.s3.responses.ACTION_MAP defaults).
S3_ACTION_OF = {
    "GET object": "s3:GetObject",
    "HEAD object": "s3:GetObject",
    "PUT object": "s3:PutObject",
    "DELETE object": "s3:DeleteObject",
    "GET bucket": "s3:ListBucket",
    "HEAD bucket": "s3:ListBucket",
    "PUT bucket": "s3:CreateBucket",
    "DELETE bucket": "s3:DeleteBucket",
}
# Calls that moto itself authorises correctly (real resource ARN, IAM action name).
MOTO_ENFORCES = {"s3", "iam", "sts"}
IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}


# --------------------------------------------------------------------------------------------
# Identities


def set_enforcement(endpoint: str, enforce: bool) -> None:
    """moto's IAM enforcement on (every following request checked) or off."""
    # moto reads the raw body: without a content type urllib sends a form, which Flask
    # consumes, and moto then fails on an empty body (HTTP 500).
    req = urllib.request.Request(
        endpoint + "/moto-api/reset-auth",
        data=b"0" if enforce else b"inf",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(req, timeout=30):
        pass


@contextlib.contextmanager
def enforced(endpoint: str) -> Iterator[None]:
    """Enforcement on for the block, always off again afterwards (Terraform needs it off)."""
    set_enforcement(endpoint, True)
    try:
        yield
    finally:
        set_enforcement(endpoint, False)


def create_operator(iam: Any, name: str = ADMIN_USER) -> dict[str, str]:
    """An IAM user allowed everything: the identity of the operator, the dispatcher and the
    tests while enforcement is on (the emulator's default `test` key is then unknown)."""
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="operator-allow-all",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    for old in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:  # at most 2 per user
        iam.delete_access_key(UserName=name, AccessKeyId=old["AccessKeyId"])
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def assume_role(sts: Any, role_arn: str, session: str) -> dict[str, str]:
    """Credentials of a role (what Lambda puts in a function's environment)."""
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }


def role_policy_documents(iam: Any, role_name: str) -> list[dict[str, Any]]:
    """The role's attached (default version) and inline policy documents, as applied."""
    docs: list[dict[str, Any]] = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for att in page["AttachedPolicies"]:
            pol = iam.get_policy(PolicyArn=att["PolicyArn"])["Policy"]
            ver = iam.get_policy_version(
                PolicyArn=att["PolicyArn"], VersionId=pol["DefaultVersionId"]
            )["PolicyVersion"]["Document"]
            docs.append(_doc(ver))
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for name in page["PolicyNames"]:
            docs.append(
                _doc(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"])
            )
    return docs


def _doc(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return json.loads(unquote(value) if value.startswith("%7B") else value)
    return dict(value)


# --------------------------------------------------------------------------------------------
# Evaluation with moto's own classes


def evaluate(documents: list[dict[str, Any]], action: str, resource: str) -> str:
    """ "allowed", "explicit deny" or "implicit deny", as IAM evaluates identity policies
    (moto.iam.access_control.IAMPolicy, called with the real action and resource)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    permitted = False
    for doc in documents:
        result = IAMPolicy(json.dumps(doc)).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return "explicit deny"
        if result == PermissionResult.PERMITTED:
            permitted = True
    return "allowed" if permitted else "implicit deny"


def queue_arn_from_url(url: str, region: str = REGION) -> str:
    parts = url.rstrip("/").split("/")
    return f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}"


def requested_access(req: ProxyRequest) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) pairs a request needs, for the services moto checks against
    `*` (and the SQS batch calls it names wrongly)."""
    service, op = req.service, req.operation
    region = req.region or REGION
    action = IAM_ACTION_OF.get((service, op), f"{IAM_PREFIX.get(service, service)}:{op}")
    body = req.json_body()
    if service == "dynamodb":
        table_arn = f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/"
        if "RequestItems" in body:
            return [(action, table_arn + t) for t in sorted(body["RequestItems"])]
        if "TransactItems" in body:
            tables = {
                inner.get("TableName")
                for item in body["TransactItems"]
                for inner in item.values()
                if isinstance(inner, dict)
            }
            return [(action, table_arn + t) for t in sorted(t for t in tables if t)]
        if "TableName" in body:
            resource = table_arn + body["TableName"]
            if body.get("IndexName"):
                resource += "/index/" + body["IndexName"]
            return [(action, resource)]
        return [(action, "*")]
    if service == "sqs":
        url = body.get("QueueUrl")
        return [(action, queue_arn_from_url(url, region) if url else "*")]
    if service == "kms":
        key = str(body.get("KeyId", "*"))
        if key != "*" and not key.startswith("arn:"):
            kind = "alias/" if key.startswith("alias/") else "key/"
            key = f"arn:aws:kms:{region}:{ACCOUNT_ID}:{kind}{key.removeprefix('alias/')}"
        return [(action, key)]
    if service == "logs" and body.get("logGroupName"):
        group = f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{body['logGroupName']}"
        if body.get("logStreamName"):
            return [(action, f"{group}:log-stream:{body['logStreamName']}")]
        return [(action, group)]
    return [(action, "*")]


@dataclass
class AccessRecord:
    role: str
    action: str
    resource: str
    decision: str  # allowed | explicit deny | implicit deny | denied (moto) | allowed (moto)
    decided_by: str  # "policy evaluator" | "moto"
    status: int | None = None


@dataclass
class RoleIdentity:
    role_name: str
    session_arn: str
    documents: list[dict[str, Any]]


def _access_denied(
    req: ProxyRequest, who: str, action: str, resource: str, why: str
) -> ProxyResponse:
    message = f"User: {who} is not authorized to perform: {action} on resource: {resource} {why}"
    if req.service == "sqs" and not (req.header("X-Amz-Target") or "").startswith("AmazonSQS."):
        return xml_error(403, "AccessDenied", message, sender="Sender")
    status = 403 if req.service == "sqs" else 400
    query = "AccessDenied;Sender" if req.service == "sqs" else None
    return json_error(
        status, "com.amazon.coral.service#AccessDeniedException", message, query_code=query
    )


@dataclass
class PolicyEnforcer:
    """Proxy interceptor: enforce the roles' policies where the emulator cannot."""

    operator: Mapping[str, str]  # credentials allowed everything (AWS_ACCESS_KEY_ID, ...)
    identities: dict[str, RoleIdentity] = field(default_factory=dict)  # by access key id
    records: list[AccessRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add_role(
        self, credentials: Mapping[str, str], role_name: str, documents: list[dict]
    ) -> None:
        key = credentials["AWS_ACCESS_KEY_ID"]
        session = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/local"
        self.identities[key] = RoleIdentity(role_name, session, documents)

    def _record(self, rec: AccessRecord) -> None:
        with self._lock:
            self.records.append(rec)

    def __call__(self, req: ProxyRequest) -> ProxyResponse | ProxyRequest | None:
        ident = self.identities.get(req.access_key)
        if ident is None:
            return None  # the operator, or someone moto checks as they are
        if req.service in MOTO_ENFORCES or (
            req.service == "sqs" and (req.service, req.operation) not in IAM_ACTION_OF
        ):
            return None  # moto checks these against the real ARN; `after` records its answer
        for action, resource in requested_access(req):
            decision = evaluate(ident.documents, action, resource)
            self._record(
                AccessRecord(ident.role_name, action, resource, decision, "policy evaluator")
            )
            if decision != "allowed":
                why = (
                    "with an explicit deny in an identity-based policy"
                    if decision == "explicit deny"
                    else "because no identity-based policy allows the action"
                )
                return _access_denied(req, ident.session_arn, action, resource, why)
        return self._resign(req)

    def after(self, req: ProxyRequest, resp: ProxyResponse) -> None:
        ident = self.identities.get(req.access_key)
        if ident is None:
            return
        action = IAM_ACTION_OF.get(
            (req.service, req.operation),
            f"{IAM_PREFIX.get(req.service, req.service)}:{req.operation}",
        )
        if req.service == "s3":
            action = S3_ACTION_OF.get(req.operation, action)
        resource = req.path
        if req.service == "sqs" and req.json_body().get("QueueUrl"):
            resource = queue_arn_from_url(req.json_body()["QueueUrl"], req.region or REGION)
        elif req.service == "s3":
            resource = "arn:aws:s3:::" + unquote(req.path.split("?", 1)[0].lstrip("/"))
        denied = resp.status == 403
        self._record(
            AccessRecord(
                ident.role_name,
                action,
                resource,
                "denied (moto)" if denied else "allowed (moto)",
                "moto",
                resp.status,
            )
        )

    def _resign(self, req: ProxyRequest) -> ProxyRequest:
        """The same request, signed by the operator (moto checks these services against `*`)."""
        drop = {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
                "content-length"}  # fmt: skip
        headers = {k: v for k, v in req.headers if k.lower() not in drop}
        host = req.header("Host") or "localhost"
        aws_req = AWSRequest(
            method=req.method, url=f"http://{host}{req.path}", data=req.body, headers=headers
        )
        creds = Credentials(
            self.operator["AWS_ACCESS_KEY_ID"], self.operator["AWS_SECRET_ACCESS_KEY"]
        )
        SigV4Auth(creds, req.service, req.region or REGION).add_auth(aws_req)
        new_headers = [(k, str(v)) for k, v in aws_req.headers.items()]
        return ProxyRequest(
            method=req.method,
            path=req.path,
            headers=new_headers,
            body=req.body,
            service=req.service,
            region=req.region,
            access_key=self.operator["AWS_ACCESS_KEY_ID"],
            operation=req.operation,
        )
