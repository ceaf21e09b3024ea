"""Policy evaluation: the issue 9 defect on the policies of lib/main.tf, precedence of denies,
and the KMS key-policy rule (direct vs delegated use)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_local.authz.engine import (
    AuthzRequest,
    authorize,
)
from tests.unit import authz_world as world

# ------------------------------------------------------------------------------ issue 9 defect


def test_lib_policies_refuse_the_processors_putitem_kms_decrypt_naming_everything() -> None:
    src = world.lib_source()
    put = AuthzRequest(
        world.PROCESSOR,
        "dynamodb:PutItem",
        world.FIXTURE["tables"]["transactions"],
        {"aws:SecureTransport": True},
    )
    assert authorize(src, put).allowed

    decision = authorize(src, world.ddb_decrypt(world.PROCESSOR, "dynamodb-transactions-dev"))

    assert not decision.allowed
    reason = decision.reason
    assert world.PROCESSOR.arn in reason
    assert "kms:Decrypt" in reason
    assert world.KEYS["dynamodb"] in reason
    assert "no identity-based policy allows kms:Decrypt" in reason
    assert '"EnableRootAccountAccess" only delegates' in reason
    assert "dynamodb:PutItem on table/dynamodb-transactions-dev" in reason


def test_lib_policies_refuse_the_dlq_processors_putitem_kms_decrypt_too() -> None:
    decision = authorize(
        world.lib_source(), world.ddb_decrypt(world.DLQ_PROCESSOR, "dynamodb-errors-dev")
    )
    assert not decision.allowed
    assert world.DLQ_PROCESSOR.arn in decision.reason


def test_fixed_role_may_decrypt_the_table_key_through_dynamodb_only() -> None:
    src = world.lib_source()
    world.grant_ddb_key_via_dynamodb(src, world.PROCESSOR_ROLE)

    via_dynamodb = authorize(src, world.ddb_decrypt(world.PROCESSOR, "dynamodb-transactions-dev"))
    assert via_dynamodb.allowed, via_dynamodb.reason
    assert "UseTableKeyThroughDynamoDB" in via_dynamodb.reason
    assert "EnableRootAccountAccess" in via_dynamodb.reason

    direct = AuthzRequest(
        world.PROCESSOR, "kms:Decrypt", world.KEYS["dynamodb"], {"aws:SecureTransport": True}
    )
    refused = authorize(src, direct)
    assert not refused.allowed
    assert (
        "UseTableKeyThroughDynamoDB" in refused.reason
        and "Condition does not hold" in refused.reason
    )

    other_service = world.ddb_decrypt(world.PROCESSOR, "dynamodb-transactions-dev")
    other_service = AuthzRequest(
        world.PROCESSOR,
        "kms:Decrypt",
        world.KEYS["dynamodb"],
        {**other_service.context, "kms:ViaService": f"sqs.{world.REGION}.amazonaws.com"},
    )
    assert not authorize(src, other_service).allowed


# ------------------------------------------------------------------------------ precedence


def test_explicit_identity_deny_beats_a_key_policy_that_names_the_role() -> None:
    src = world.DictSource(
        identities={
            world.PROCESSOR_ROLE: [
                {"Statement": [{"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]}
            ]
        },
        keys={
            world.KEYS["lambda"]: {
                "Statement": [
                    {
                        "Sid": "Direct",
                        "Effect": "Allow",
                        "Principal": {"AWS": world.PROCESSOR_ROLE},
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                    }
                ]
            }
        },
    )
    decision = authorize(src, AuthzRequest(world.PROCESSOR, "kms:Decrypt", world.KEYS["lambda"]))
    assert not decision.allowed
    assert "explicit Deny in identity policy #1" in decision.reason


def test_explicit_resource_policy_deny_beats_identity_allow() -> None:
    src = world.lib_source()
    obj = world.FIXTURE["bucket"] + "/incoming/a.csv"
    plain_http = AuthzRequest(world.PROCESSOR, "s3:GetObject", obj, {"aws:SecureTransport": False})
    decision = authorize(src, plain_http)
    assert not decision.allowed
    assert '"DenyInsecureTransport"' in decision.reason and obj in decision.reason
    assert authorize(
        src, AuthzRequest(world.PROCESSOR, "s3:GetObject", obj, {"aws:SecureTransport": True})
    ).allowed


def test_explicit_key_policy_deny_beats_direct_allow() -> None:
    src = world.DictSource(
        keys={
            world.KEYS["s3"]: {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": world.PROCESSOR_ROLE},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "NoPlainDecrypt",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                        "Condition": {"Null": {"kms:ViaService": "true"}},
                    },
                ]
            }
        },
    )
    assert not authorize(
        src, AuthzRequest(world.PROCESSOR, "kms:Decrypt", world.KEYS["s3"])
    ).allowed
    via = AuthzRequest(
        world.PROCESSOR,
        "kms:Decrypt",
        world.KEYS["s3"],
        {"kms:ViaService": "s3.eu-central-1.amazonaws.com"},
    )
    assert authorize(src, via).allowed


def test_deny_naming_the_account_applies_to_its_principals() -> None:
    src = world.DictSource(
        identities={
            world.USER.arn: [
                {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
            ]
        },
        resources={
            "arn:aws:sqs:eu-central-1:123456789012:q": {
                "Statement": [
                    {
                        "Sid": "NoSend",
                        "Effect": "Deny",
                        "Principal": {"AWS": world.ACCOUNT},
                        "Action": "sqs:SendMessage",
                        "Resource": "*",
                    }
                ]
            }
        },
    )
    decision = authorize(
        src, AuthzRequest(world.USER, "sqs:SendMessage", "arn:aws:sqs:eu-central-1:123456789012:q")
    )
    assert not decision.allowed and '"NoSend"' in decision.reason


# ------------------------------------------------------------------------------ KMS rule


def _key(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


ROOT_STATEMENT = {
    "Sid": "Root",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{world.ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
IAM_DECRYPT = {
    "Statement": [
        {"Sid": "Iam", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": world.KEYS["s3"]}
    ]
}


@pytest.mark.parametrize(
    ("key_statements", "identity", "expected", "phrase"),
    [
        # direct: the key policy names the role; no IAM policy needed (the session matches)
        (
            [
                {
                    "Sid": "Direct",
                    "Effect": "Allow",
                    "Principal": {"AWS": world.PROCESSOR_ROLE},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                }
            ],
            [],
            True,
            "allowed by key policy of",
        ),
        # direct by account id form of delegation + IAM allow
        (
            [{**ROOT_STATEMENT, "Principal": {"AWS": world.ACCOUNT}}],
            [IAM_DECRYPT],
            True,
            "lets apply",
        ),
        # delegated: root statement + IAM allow
        ([ROOT_STATEMENT], [IAM_DECRYPT], True, "lets apply"),
        # delegated without IAM allow
        ([ROOT_STATEMENT], [], False, "only delegates"),
        # IAM allow without delegation
        (
            [
                {
                    "Sid": "Other",
                    "Effect": "Allow",
                    "Principal": {"AWS": world.DLQ_ROLE},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
            [IAM_DECRYPT],
            False,
            "neither allows the principal nor delegates",
        ),
        # delegation for another action only
        ([{**ROOT_STATEMENT, "Action": "kms:DescribeKey"}], [IAM_DECRYPT], False, "neither allows"),
        # another account's root delegates nothing to this account
        (
            [{**ROOT_STATEMENT, "Principal": {"AWS": "arn:aws:iam::999999999999:root"}}],
            [IAM_DECRYPT],
            False,
            "neither",
        ),
    ],
)
def test_kms_direct_vs_delegated(
    key_statements: list[dict[str, Any]],
    identity: list[dict[str, Any]],
    expected: bool,
    phrase: str,
) -> None:
    src = world.DictSource(
        identities={world.PROCESSOR_ROLE: identity}, keys={world.KEYS["s3"]: _key(key_statements)}
    )
    decision = authorize(src, AuthzRequest(world.PROCESSOR, "kms:Decrypt", world.KEYS["s3"]))
    assert decision.allowed is expected, decision.reason
    assert phrase in decision.reason


def test_kms_without_a_known_key_policy_is_refused() -> None:
    src = world.DictSource(identities={world.PROCESSOR_ROLE: [IAM_DECRYPT]})
    decision = authorize(src, AuthzRequest(world.PROCESSOR, "kms:Decrypt", world.KEYS["s3"]))
    assert not decision.allowed and "no key policy is known" in decision.reason


def test_kms_use_through_an_unresolved_alias_is_refused() -> None:
    alias = world.arn("kms", "alias/s3-transactions-dev")
    src = world.DictSource(
        identities={
            world.USER.arn: [
                {"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
            ]
        }
    )
    decision = authorize(src, AuthzRequest(world.USER, "kms:Decrypt", alias))
    assert not decision.allowed and "resolve the alias" in decision.reason
    assert authorize(src, AuthzRequest(world.USER, "kms:CreateAlias", alias)).allowed


def test_kms_actions_without_a_key_resource_need_iam_only() -> None:
    src = world.DictSource(
        identities={
            world.USER.arn: [
                {"Statement": [{"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"}]}
            ]
        }
    )
    assert authorize(src, AuthzRequest(world.USER, "kms:ListKeys", "*")).allowed


def test_session_arn_in_a_key_policy_matches_only_that_session() -> None:
    src = world.DictSource(
        keys={
            world.KEYS["s3"]: _key(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": world.PROCESSOR.arn},
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                    }
                ]
            )
        }
    )
    assert authorize(src, AuthzRequest(world.PROCESSOR, "kms:Decrypt", world.KEYS["s3"])).allowed
    other = world.session(world.PROCESSOR_ROLE, "someone-else")
    assert not authorize(src, AuthzRequest(other, "kms:Decrypt", world.KEYS["s3"])).allowed
