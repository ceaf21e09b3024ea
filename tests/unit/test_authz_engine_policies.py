"""Policy evaluation: resource policies, service principals, the engine's helpers, and calls
that leave a function's VPC through an endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_local.authz.engine import (
    AuthzRequest,
    NetworkPath,
    Principal,
    VpcEndpoint,
    authorize,
    effective_context,
    policy_owner_arn,
)
from tests.unit import authz_world as world

# ------------------------------------------------------------------------------ resource policies


def test_root_in_a_bucket_policy_only_delegates() -> None:
    src = world.lib_source()
    obj = world.FIXTURE["bucket"] + "/incoming/a.csv"
    decision = authorize(
        src, AuthzRequest(world.USER, "s3:GetObject", obj, {"aws:SecureTransport": True})
    )
    assert not decision.allowed
    assert '"AllowRootAccountAccess" only delegates' in decision.reason
    assert f"resource policy of {world.FIXTURE['bucket']}" in decision.reason


def test_a_bucket_policy_naming_the_role_allows_its_sessions_without_iam() -> None:
    bucket = world.FIXTURE["bucket"]
    src = world.DictSource(
        resources={
            bucket: {
                "Statement": [
                    {
                        "Sid": "Reader",
                        "Effect": "Allow",
                        "Principal": {"AWS": [world.PROCESSOR_ROLE]},
                        "Action": "s3:GetObject",
                        "Resource": bucket + "/*",
                    }
                ]
            }
        }
    )
    decision = authorize(src, AuthzRequest(world.PROCESSOR, "s3:GetObject", bucket + "/k"))
    assert decision.allowed and '"Reader"' in decision.reason
    assert not authorize(
        src, AuthzRequest(world.DLQ_PROCESSOR, "s3:GetObject", bucket + "/k")
    ).allowed
    assert not authorize(src, AuthzRequest(world.PROCESSOR, "s3:PutObject", bucket + "/k")).allowed


def test_not_principal_not_action_not_resource() -> None:
    q = "arn:aws:sqs:eu-central-1:123456789012:q"
    src = world.DictSource(
        identities={
            world.USER.arn: [
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "NotAction": "sqs:DeleteQueue",
                            "NotResource": "arn:aws:sqs:*:*:secret",
                        }
                    ]
                }
            ],
            world.PROCESSOR_ROLE: [
                {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
            ],
        },
        resources={
            q: {
                "Statement": [
                    {
                        "Sid": "OnlyProcessor",
                        "Effect": "Deny",
                        "NotPrincipal": {"AWS": world.PROCESSOR_ROLE},
                        "Action": "sqs:ReceiveMessage",
                        "Resource": q,
                    }
                ]
            }
        },
    )
    assert authorize(src, AuthzRequest(world.USER, "sqs:SendMessage", q)).allowed
    assert not authorize(src, AuthzRequest(world.USER, "sqs:DeleteQueue", q)).allowed
    assert not authorize(
        src,
        AuthzRequest(world.USER, "sqs:SendMessage", "arn:aws:sqs:eu-central-1:123456789012:secret"),
    ).allowed
    denied = authorize(src, AuthzRequest(world.USER, "sqs:ReceiveMessage", q))
    assert not denied.allowed and '"OnlyProcessor"' in denied.reason
    assert authorize(src, AuthzRequest(world.PROCESSOR, "sqs:ReceiveMessage", q)).allowed


# ------------------------------------------------------------------------------ service principals


def test_s3_may_invoke_the_processor_only_for_the_bucket_and_account() -> None:
    src = world.lib_source()
    fn = world.FIXTURE["functions"]["processor"]
    good = {"aws:SourceArn": world.FIXTURE["bucket"], "aws:SourceAccount": world.ACCOUNT}
    assert authorize(
        src, AuthzRequest(world.service("s3.amazonaws.com"), "lambda:InvokeFunction", fn, good)
    ).allowed
    wrong_bucket = {**good, "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket"}
    decision = authorize(
        src,
        AuthzRequest(world.service("s3.amazonaws.com"), "lambda:InvokeFunction", fn, wrong_bucket),
    )
    assert not decision.allowed and "Condition does not hold" in decision.reason
    other_fn = world.FIXTURE["functions"]["dlq_processor"]
    refused = authorize(
        src,
        AuthzRequest(world.service("s3.amazonaws.com"), "lambda:InvokeFunction", other_fn, good),
    )
    assert not refused.allowed and "has none" in refused.reason
    assert src.asked_identity_for == []


def test_alarms_publish_to_the_encrypted_topic_and_use_its_key() -> None:
    src = world.lib_source()
    ctx = {
        "aws:SourceArn": world.arn("cloudwatch", "alarm:cw-alarm-dlq-depth-dev"),
        "aws:SourceAccount": world.ACCOUNT,
    }
    cw = world.service("cloudwatch.amazonaws.com")
    assert authorize(src, AuthzRequest(cw, "sns:Publish", world.FIXTURE["topic"], ctx)).allowed
    assert authorize(
        src, AuthzRequest(cw, "kms:GenerateDataKey", world.KEYS["lambda"], ctx)
    ).allowed
    assert authorize(src, AuthzRequest(cw, "kms:Decrypt", world.KEYS["lambda"], ctx)).allowed
    assert not authorize(src, AuthzRequest(cw, "kms:Decrypt", world.KEYS["dynamodb"], ctx)).allowed


def test_logs_service_uses_the_key_only_for_the_pipeline_log_groups() -> None:
    src = world.lib_source()
    logs = world.service(f"logs.{world.REGION}.amazonaws.com")
    ours = {"kms:EncryptionContext:aws:logs:arn": world.FIXTURE["log_groups"]["processor"]}
    assert authorize(
        src, AuthzRequest(logs, "kms:GenerateDataKey", world.KEYS["lambda"], ours)
    ).allowed
    theirs = {"kms:EncryptionContext:aws:logs:arn": world.arn("logs", "log-group:/other")}
    assert not authorize(
        src, AuthzRequest(logs, "kms:GenerateDataKey", world.KEYS["lambda"], theirs)
    ).allowed
    # the regional principal is not the global one
    assert not authorize(
        src,
        AuthzRequest(
            world.service("logs.amazonaws.com"), "kms:GenerateDataKey", world.KEYS["lambda"], ours
        ),
    ).allowed


def test_assume_role_needs_the_trust_policy() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    src = world.DictSource(
        identities={
            world.USER.arn: [
                {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
            ]
        },
        resources={world.PROCESSOR_ROLE: trust},
    )
    assert authorize(
        src,
        AuthzRequest(world.service("lambda.amazonaws.com"), "sts:AssumeRole", world.PROCESSOR_ROLE),
    ).allowed
    decision = authorize(src, AuthzRequest(world.USER, "sts:AssumeRole", world.PROCESSOR_ROLE))
    assert not decision.allowed and "trust policy" in decision.reason


# ------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("resource", "owner"),
    [
        ("arn:aws:s3:::b/k/x.csv", "arn:aws:s3:::b"),
        ("arn:aws:s3:::b", "arn:aws:s3:::b"),
        ("arn:aws:dynamodb:r:1:table/t/index/i", "arn:aws:dynamodb:r:1:table/t"),
        ("arn:aws:logs:r:1:log-group:/g:log-stream:s", "arn:aws:logs:r:1:log-group:/g"),
        ("arn:aws:lambda:r:1:function:f:live", "arn:aws:lambda:r:1:function:f"),
        ("arn:aws:sqs:r:1:q", "arn:aws:sqs:r:1:q"),
        ("*", "*"),
    ],
)
def test_policy_owner_arn(resource: str, owner: str) -> None:
    assert policy_owner_arn(resource) == owner


def test_effective_context_derives_principal_keys_and_request_keys_win() -> None:
    ctx = effective_context(
        AuthzRequest(
            world.PROCESSOR, "kms:Decrypt", world.KEYS["s3"], {"aws:PrincipalAccount": "x"}
        )
    )
    assert ctx["aws:principalarn"] == world.PROCESSOR_ROLE
    assert ctx["kms:calleraccount"] == world.ACCOUNT
    assert ctx["aws:principalaccount"] == "x"
    svc = effective_context(
        AuthzRequest(world.service("s3.amazonaws.com"), "kms:Decrypt", world.KEYS["s3"])
    )
    assert svc["aws:principalservicename"] == "s3.amazonaws.com" and "aws:principalarn" not in svc


def test_named_identity_policies_appear_in_messages() -> None:
    src = world.lib_source()
    decision = authorize(
        src,
        AuthzRequest(
            world.PROCESSOR, "dynamodb:DeleteTable", world.FIXTURE["tables"]["transactions"]
        ),
    )
    assert not decision.allowed
    assert (
        'identity policy iam-policy-transaction-processor-dev statement "DenyDestructiveActions"'
        in decision.reason
    )


def test_a_malformed_applied_policy_is_an_error_not_a_denial() -> None:
    from pipeline_local.authz.policy import PolicyError

    bad = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEqualsWhatever": {"k": "v"}},
            }
        ]
    }
    src = world.DictSource(identities={world.USER.arn: [bad]})
    with pytest.raises(PolicyError, match="StringEqualsWhatever"):
        authorize(src, AuthzRequest(world.USER, "sqs:SendMessage", "arn:aws:sqs:eu-central-1:1:q"))


# -- rule 6: a function's own calls leave its VPC through an endpoint -------------------------

VPC, SUBNETS = "vpc-0a1", ("subnet-0a1", "subnet-0b2")
QUEUE = world.arn("sqs", "dlq")


def _queue_sender() -> world.DictSource:
    return world.DictSource(
        identities={
            world.PROCESSOR_ROLE: [
                {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE}]}
            ]
        }
    )


def _in_vpc(
    endpoint: VpcEndpoint | None, *, internet: bool = False, principal: Principal = world.PROCESSOR
) -> AuthzRequest:
    path = NetworkPath(
        caller="lambda-transaction-processor-dev",
        vpc_id=VPC,
        subnets=SUBNETS,
        service_host=f"sqs.{world.REGION}.amazonaws.com",
        endpoint=endpoint,
        internet_route=internet,
    )
    return AuthzRequest(principal, "sqs:SendMessage", QUEUE, {}, network=path)


def _endpoint(*statements: dict[str, Any]) -> VpcEndpoint:
    policy = {"Statement": list(statements)} if statements else None
    return VpcEndpoint("vpce-0sqs", VPC, "Interface", policy)


def test_a_call_from_a_vpc_without_an_endpoint_or_internet_route_is_refused() -> None:
    decision = authorize(_queue_sender(), _in_vpc(None))
    assert not decision.allowed and decision.endpoint is None
    assert (
        f"lambda-transaction-processor-dev runs in {VPC} (subnets subnet-0a1, subnet-0b2) which "
        f"has no route to sqs.{world.REGION}.amazonaws.com: no VPC endpoint for the service and no "
        "internet route"
    ) in decision.reason
    # Over an internet route the identity policy decides alone, and no endpoint is named.
    over_internet = authorize(_queue_sender(), _in_vpc(None, internet=True))
    assert over_internet.allowed and over_internet.endpoint is None
    assert "internet route" in over_internet.reason


def test_the_default_endpoint_policy_lets_iam_decide_and_names_the_endpoint() -> None:
    decision = authorize(_queue_sender(), _in_vpc(_endpoint()))
    assert decision.allowed and decision.endpoint == "vpce-0sqs"
    assert "through vpce-0sqs, the interface endpoint of vpc-0a1" in decision.reason
    assert decision.request.context["aws:SourceVpce"] == "vpce-0sqs"
    assert decision.request.context["aws:SourceVpc"] == VPC
    # The endpoint does not replace the identity policy: without it, still refused.
    refused = authorize(world.DictSource(), _in_vpc(_endpoint()))
    assert not refused.allowed and "no identity-based policy allows" in refused.reason


def test_the_endpoint_policy_must_allow_too_and_its_deny_wins() -> None:
    allow_all = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
    deny_send = {"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}
    denied = authorize(_queue_sender(), _in_vpc(_endpoint(allow_all, deny_send)))
    assert not denied.allowed and denied.endpoint == "vpce-0sqs"
    assert "explicit Deny in endpoint policy of vpce-0sqs" in denied.reason
    only_receive = {**allow_all, "Action": "sqs:ReceiveMessage"}
    not_allowed = authorize(_queue_sender(), _in_vpc(_endpoint(only_receive)))
    assert not not_allowed.allowed
    assert "the endpoint policy of vpce-0sqs does not allow it" in not_allowed.reason


def test_endpoint_policy_conditions_see_the_principal_and_the_endpoint() -> None:
    by_role = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "sqs:SendMessage",
        "Resource": QUEUE,
        "Condition": {"ArnEquals": {"aws:PrincipalArn": [world.PROCESSOR_ROLE]}},
    }
    assert authorize(_queue_sender(), _in_vpc(_endpoint(by_role))).allowed
    other = world.session(world.DLQ_ROLE, "lambda-dlq-processor-dev")
    src = _queue_sender()
    src.identities[world.DLQ_ROLE] = src.identities[world.PROCESSOR_ROLE]
    refused = authorize(src, _in_vpc(_endpoint(by_role), principal=other))
    assert not refused.allowed and "Condition does not hold" in refused.reason
    # {"AWS": ACCOUNT} in an endpoint policy is the root user only, not a delegation.
    account = {**by_role, "Principal": {"AWS": world.ACCOUNT}, "Condition": {}}
    assert not authorize(_queue_sender(), _in_vpc(_endpoint(account))).allowed
    # A resource policy may require the endpoint (aws:SourceVpce).
    only_via = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:*",
        "Resource": QUEUE,
        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0sqs"}},
    }
    src = _queue_sender()
    src.resources[QUEUE] = {"Statement": [only_via]}
    assert authorize(src, _in_vpc(_endpoint())).allowed
    outside = AuthzRequest(world.PROCESSOR, "sqs:SendMessage", QUEUE, {})
    assert not authorize(src, outside).allowed
