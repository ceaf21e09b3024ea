"""The policies of lib/main.tf (hand-written fixture) and the principals that the authorization
model's unit tests decide requests for: a PolicySource over dicts, sessions, service principals."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_local.authz.engine import (
    AuthzRequest,
    Principal,
)

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "authz_lib_main_tf.json").read_text())
ACCOUNT = FIXTURE["account"]
REGION = FIXTURE["region"]
KEYS = FIXTURE["keys"]
PROCESSOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/iam-role-transaction-processor-dev"
DLQ_ROLE = f"arn:aws:iam::{ACCOUNT}:role/iam-role-dlq-processor-dev"


def arn(service: str, resource: str) -> str:
    """The ARN of a regional resource in the fixture's account, e.g. arn("sqs", "dlq")."""
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


@dataclass
class DictSource:
    """A PolicySource over plain dicts; identity policies keyed by role/user ARN."""

    identities: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    resources: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    keys: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    asked_identity_for: list[str] = field(default_factory=list)

    def identity_policies(self, principal: Principal) -> Sequence[Mapping[str, Any]]:
        assert principal.service is None, "service principals have no identity policies"
        who = principal.role_arn or principal.arn
        self.asked_identity_for.append(who)
        return self.identities.get(who, [])

    def resource_policy(self, resource_arn: str) -> Mapping[str, Any] | None:
        return self.resources.get(resource_arn)

    def key_policy(self, key_arn: str) -> Mapping[str, Any] | None:
        return self.keys.get(key_arn)


def lib_source() -> DictSource:
    return DictSource(
        identities=copy.deepcopy(FIXTURE["role_policies"]),
        resources=copy.deepcopy(FIXTURE["resource_policies"]),
        keys=copy.deepcopy(FIXTURE["key_policies"]),
    )


def session(role_arn: str, name: str = "session") -> Principal:
    role = role_arn.rsplit("/", 1)[-1]
    return Principal(
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{name}", account=ACCOUNT, role_arn=role_arn
    )


def service(name: str) -> Principal:
    return Principal(arn=name, account=None, service=name)


USER = Principal(arn=f"arn:aws:iam::{ACCOUNT}:user/alice", account=ACCOUNT)
PROCESSOR = session(PROCESSOR_ROLE, "lambda-transaction-processor-dev")
DLQ_PROCESSOR = session(DLQ_ROLE, "lambda-dlq-processor-dev")


def ddb_decrypt(principal: Principal, table: str) -> AuthzRequest:
    """The kms:Decrypt DynamoDB makes with the caller's credentials on a CMK table
    (encryption.usagenotes.html, "Decrypt" event: the user is the principal accessing the table)."""
    return AuthzRequest(
        principal=principal,
        action="kms:Decrypt",
        resource=KEYS["dynamodb"],
        context={
            "kms:ViaService": f"dynamodb.{REGION}.amazonaws.com",
            "kms:EncryptionContext:aws:dynamodb:tableName": table,
            "kms:EncryptionContext:aws:dynamodb:subscriberId": ACCOUNT,
            "aws:SecureTransport": True,
        },
        on_behalf_of=f"dynamodb:PutItem on table/{table}",
    )


def grant_ddb_key_via_dynamodb(src: DictSource, role: str) -> None:
    src.identities[role][0]["PolicyDocument"]["Statement"].append(
        {
            "Sid": "UseTableKeyThroughDynamoDB",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": KEYS["dynamodb"],
            "Condition": {"StringEquals": {"kms:ViaService": f"dynamodb.{REGION}.amazonaws.com"}},
        }
    )
