"""Truth tables for every condition operator, absent keys, IfExists, Null and the set operators."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_local.authz.conditions import condition_holds
from pipeline_local.authz.policy import (
    PolicyError,
    action_matches,
    parse_policy,
    resource_matches,
    wildcard_match,
)

ABSENT = object()


def holds(operator: str, policy_value: Any, actual: Any, key: str = "k:Key") -> bool:
    context = {} if actual is ABSENT else {key: actual}
    return condition_holds({operator: {key: policy_value}}, context)


# (operator, policy value, request value, expected)
TRUTH_TABLE: list[tuple[str, Any, Any, bool]] = [
    # String operators: case-sensitive, lists are OR, negation is NOR
    ("StringEquals", "aws:kms", "aws:kms", True),
    ("StringEquals", "aws:kms", "AWS:KMS", False),
    ("StringEquals", ["AES256", "aws:kms"], "aws:kms", True),
    ("StringEquals", "aws:kms", ABSENT, False),
    ("StringNotEquals", "aws:kms", "AES256", True),
    ("StringNotEquals", "aws:kms", "aws:kms", False),
    ("StringNotEquals", ["AES256", "aws:kms"], "aws:kms", False),
    ("StringNotEquals", "aws:kms", ABSENT, True),
    ("StringEqualsIgnoreCase", "aws:kms", "AWS:KMS", True),
    ("StringEqualsIgnoreCase", "aws:kms", ABSENT, False),
    ("StringNotEqualsIgnoreCase", "aws:kms", "AWS:KMS", False),
    ("StringNotEqualsIgnoreCase", "aws:kms", ABSENT, True),
    ("StringLike", "dynamodb.*.amazonaws.com", "dynamodb.eu-central-1.amazonaws.com", True),
    ("StringLike", "dynamodb.*.amazonaws.com", "sqs.eu-central-1.amazonaws.com", False),
    ("StringLike", "a?c", "abc", True),
    ("StringLike", "a?c", "abbc", False),
    ("StringLike", "x*", ABSENT, False),
    ("StringNotLike", "x*", "xyz", False),
    ("StringNotLike", "x*", "abc", True),
    ("StringNotLike", "x*", ABSENT, True),
    # Arn operators: component-wise wildcards
    ("ArnLike", "arn:aws:s3:::bucket", "arn:aws:s3:::bucket", True),
    (
        "ArnLike",
        "arn:aws:cloudwatch:*:123456789012:alarm:cw-*",
        "arn:aws:cloudwatch:eu-central-1:123456789012:alarm:cw-x",
        True,
    ),
    (
        "ArnLike",
        "arn:aws:cloudwatch:*:123456789012:alarm:cw-*",
        "arn:aws:cloudwatch:eu-central-1:999999999999:alarm:cw-x",
        False,
    ),
    ("ArnLike", "arn:aws:s3:::bucket", "not-an-arn", False),
    ("ArnLike", "arn:aws:s3:::bucket", ABSENT, False),
    (
        "ArnEquals",
        "arn:aws:logs:eu-central-1:1:log-group:/a",
        "arn:aws:logs:eu-central-1:1:log-group:/a",
        True,
    ),
    (
        "ArnEquals",
        "arn:aws:logs:eu-central-1:1:log-group:/a",
        "arn:aws:logs:eu-central-1:1:log-group:/b",
        False,
    ),
    ("ArnNotEquals", "arn:aws:s3:::a", "arn:aws:s3:::b", True),
    ("ArnNotEquals", "arn:aws:s3:::a", "arn:aws:s3:::a", False),
    ("ArnNotEquals", "arn:aws:s3:::a", ABSENT, True),
    ("ArnNotLike", "arn:aws:s3:::a*", "arn:aws:s3:::abc", False),
    ("ArnNotLike", "arn:aws:s3:::a*", ABSENT, True),
    # Bool: the policy value is a string or a JSON bool, the request value a bool or string
    ("Bool", "false", False, True),
    ("Bool", "false", True, False),
    ("Bool", "true", "true", True),
    ("Bool", True, True, True),
    ("Bool", "false", ABSENT, False),
    # Numeric
    ("NumericEquals", "10", 10, True),
    ("NumericEquals", "10", "11", False),
    ("NumericEquals", "10", ABSENT, False),
    ("NumericNotEquals", "10", 11, True),
    ("NumericNotEquals", "10", 10, False),
    ("NumericNotEquals", "10", ABSENT, True),
    ("NumericLessThan", "10", 9, True),
    ("NumericLessThan", "10", 10, False),
    ("NumericLessThanEquals", "10", 10, True),
    ("NumericLessThanEquals", "10", 11, False),
    ("NumericGreaterThan", "10", 11, True),
    ("NumericGreaterThan", "10", 10, False),
    ("NumericGreaterThanEquals", "10", 10, True),
    ("NumericGreaterThanEquals", "10", 9, False),
    ("NumericGreaterThan", "10", "not-a-number", False),
    # Date (ISO 8601 or epoch seconds)
    ("DateEquals", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00", True),
    ("DateNotEquals", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", True),
    ("DateNotEquals", "2026-01-01T00:00:00Z", ABSENT, True),
    ("DateLessThan", "2026-01-01T00:00:00Z", "2025-12-31T23:59:59Z", True),
    ("DateLessThan", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", False),
    ("DateLessThanEquals", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", True),
    ("DateGreaterThan", "2026-01-01T00:00:00Z", "1767225601", True),
    ("DateGreaterThan", "2026-01-01T00:00:00Z", "1767225600", False),
    ("DateGreaterThanEquals", "1767225600", "2026-01-01T00:00:00Z", True),
    ("DateGreaterThan", "2026-01-01T00:00:00Z", ABSENT, False),
    # IP addresses
    ("IpAddress", "10.0.0.0/8", "10.1.2.3", True),
    ("IpAddress", "10.0.0.0/8", "192.168.0.1", False),
    ("IpAddress", "10.0.0.0/8", ABSENT, False),
    ("IpAddress", "2001:db8::/32", "2001:db8::1", True),
    ("NotIpAddress", "10.0.0.0/8", "192.168.0.1", True),
    ("NotIpAddress", "10.0.0.0/8", "10.1.2.3", False),
    ("NotIpAddress", "10.0.0.0/8", ABSENT, True),
    # Binary
    ("BinaryEquals", "QmluYXJ5", "QmluYXJ5", True),
    ("BinaryEquals", "QmluYXJ5", b"Binary", True),
    ("BinaryEquals", "QmluYXJ5", "T3RoZXI=", False),
    ("BinaryEquals", "QmluYXJ5", ABSENT, False),
    # IfExists: true when absent, the plain operator otherwise
    ("StringEqualsIfExists", "aws:kms", ABSENT, True),
    ("StringEqualsIfExists", "aws:kms", "AES256", False),
    ("StringEqualsIfExists", "aws:kms", "aws:kms", True),
    ("StringNotEqualsIfExists", "aws:kms", ABSENT, True),
    ("StringNotEqualsIfExists", "aws:kms", "aws:kms", False),
    ("ArnLikeIfExists", "arn:aws:s3:::b", ABSENT, True),
    ("BoolIfExists", "false", ABSENT, True),
    ("BoolIfExists", "false", True, False),
    ("NumericLessThanIfExists", "5", ABSENT, True),
    ("NumericLessThanIfExists", "5", 6, False),
    ("DateLessThanIfExists", "2026-01-01T00:00:00Z", ABSENT, True),
    ("IpAddressIfExists", "10.0.0.0/8", ABSENT, True),
    # Null: true = key absent (or empty), false = key present
    ("Null", "true", ABSENT, True),
    ("Null", "true", "", True),
    ("Null", "true", "aws:kms", False),
    ("Null", "false", "aws:kms", True),
    ("Null", "false", ABSENT, False),
    ("Null", "false", [], False),
    # Set operators on multivalued keys
    ("ForAnyValue:StringEquals", ["a", "b"], ["x", "b"], True),
    ("ForAnyValue:StringEquals", ["a", "b"], ["x", "y"], False),
    ("ForAnyValue:StringEquals", ["a"], ABSENT, False),
    ("ForAnyValue:StringEquals", ["a"], [], False),
    ("ForAnyValue:StringEqualsIfExists", ["a"], ABSENT, True),
    ("ForAnyValue:StringNotEquals", ["a"], ["a", "b"], True),
    ("ForAnyValue:StringNotEquals", ["a"], ["a"], False),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "c"], False),
    ("ForAllValues:StringEquals", ["a"], ABSENT, True),
    ("ForAllValues:StringEquals", ["a"], [], True),
    ("ForAllValues:StringLike", ["aws:*"], ["aws:s3:arn", "aws:x"], True),
    ("ForAllValues:StringNotEquals", ["a"], ["b", "c"], True),
    ("ForAllValues:StringNotEquals", ["a"], ["a", "c"], False),
    ("ForAnyValue:ArnLike", ["arn:aws:s3:::b*"], ["arn:aws:s3:::bx", "junk"], True),
    ("ForAllValues:NumericLessThan", "5", ["1", "4"], True),
    ("ForAllValues:NumericLessThan", "5", ["1", "6"], False),
    # A multivalued request value met by a plain operator: any (positive), none (negated)
    ("StringEquals", "a", ["x", "a"], True),
    ("StringNotEquals", "a", ["x", "a"], False),
    ("StringNotEquals", "a", ["x", "y"], True),
]


@pytest.mark.parametrize(("operator", "policy_value", "actual", "expected"), TRUTH_TABLE)
def test_operator_truth_table(
    operator: str, policy_value: Any, actual: Any, expected: bool
) -> None:
    assert holds(operator, policy_value, actual) is expected


def test_every_operator_is_in_the_truth_table() -> None:
    from pipeline_local.authz.conditions import OPERATORS

    covered = {row[0].split(":")[-1].removesuffix("IfExists") for row in TRUTH_TABLE}
    assert set(OPERATORS) | {"Null"} <= covered


def test_condition_key_names_are_case_insensitive_values_are_not() -> None:
    cond = {"StringEquals": {"AWS:SourceAccount": "123456789012"}}
    assert condition_holds(cond, {"aws:sourceaccount": "123456789012"})
    assert condition_holds(
        {"Bool": {"aws:securetransport": "false"}}, {"aws:SecureTransport": False}
    )
    assert not condition_holds(
        {"StringEquals": {"kms:ViaService": "S3.eu-central-1.amazonaws.com"}},
        {"kms:ViaService": "s3.eu-central-1.amazonaws.com"},
    )


def test_all_keys_and_all_operators_must_hold() -> None:
    cond = {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
        "Null": {"s3:x-amz-server-side-encryption": "false"},
    }
    # the bucket policy's DenyUploadsNotEncryptedWithKms: only a header naming another algorithm
    assert condition_holds(cond, {"s3:x-amz-server-side-encryption": "AES256"})
    assert not condition_holds(cond, {"s3:x-amz-server-side-encryption": "aws:kms"})
    assert not condition_holds(cond, {})  # default encryption: no header, not denied
    two_keys = {"StringEquals": {"a": "1", "b": "2"}}
    assert condition_holds(two_keys, {"a": "1", "b": "2"})
    assert not condition_holds(two_keys, {"a": "1"})


@pytest.mark.parametrize("operator", ["StringEqualz", "NullIfExists", "ForAnyValue:Null", "Foo"])
def test_unknown_operators_are_rejected_with_their_name(operator: str) -> None:
    with pytest.raises(PolicyError, match=operator.split(":")[-1]):
        condition_holds({operator: {"k": "v"}}, {"k": "v"})


def test_bad_policy_values_are_rejected() -> None:
    with pytest.raises(PolicyError, match="not a number"):
        holds("NumericEquals", "ten", 10)
    with pytest.raises(PolicyError, match="not an ISO 8601"):
        holds("DateEquals", "yesterday", "2026-01-01T00:00:00Z")
    with pytest.raises(PolicyError, match="IP range"):
        holds("IpAddress", "10.0.0.300/8", "10.0.0.1")


# ---------------------------------------------------------------------------- wildcards + parsing


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("kms:Decrypt", "kms:Decrypt", True),
        ("KMS:decrypt", "kms:Decrypt", True),
        ("kms:Decrypt*", "kms:Decrypt", True),
        ("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", True),
        ("kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", False),
        ("s3:*", "s3:PutObject", True),
        ("*", "sqs:SendMessage", True),
        ("s3:Get?bject", "s3:GetObject", True),
        ("s3:Get?bject", "s3:GetObjectVersion", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b.csv", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False),
        ("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/a", False),  # case-sensitive
        (
            "arn:aws:logs:eu-central-1:1:log-group:/g:*",
            "arn:aws:logs:eu-central-1:1:log-group:/g:log-stream:s",
            True,
        ),
        (
            "arn:aws:logs:eu-central-1:1:log-group:/g",
            "arn:aws:logs:eu-central-1:1:log-group:/g:log-stream:s",
            False,
        ),
        ("arn:aws:dynamodb:*:1:table/t", "arn:aws:dynamodb:eu-central-1:1:table/t", True),
        ("arn:aws:dynamodb:*:1:table/t", "arn:aws:dynamodb:eu-central-1:1:table/t/index/i", False),
        ("arn:aws:sqs:*", "arn:aws:sqs:eu-central-1:1:q", False),  # six components needed
        ("*", "anything", True),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert resource_matches(pattern, resource) is expected


def test_wildcards_match_empty_runs_and_escape_regex_characters() -> None:
    assert wildcard_match("a*", "a")
    assert wildcard_match("a.b", "a.b")
    assert not wildcard_match("a.b", "axb")


def test_policy_shapes_and_errors() -> None:
    single = parse_policy(
        {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}
    )
    assert len(single.statements) == 1
    assert single.statements[0].label == "#1"
    text = parse_policy(
        '{"Statement": [{"Sid": "S", "Effect": "Deny", "NotAction": "s3:*",'
        ' "NotResource": "arn:aws:s3:::b"}]}'
    )
    stmt = text.statements[0]
    assert stmt.label == '"S"'
    assert stmt.matches_action("sqs:SendMessage") and not stmt.matches_action("s3:GetObject")
    assert stmt.matches_resource("arn:aws:s3:::c") and not stmt.matches_resource("arn:aws:s3:::b")
    bad = [
        ("{not json", "not valid JSON"),
        ({"Statement": [{"Effect": "Permit", "Action": "*"}]}, "Effect must be"),
        ({"Statement": [{"Effect": "Allow"}]}, "needs Action or NotAction"),
        (
            {"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "*"}]},
            "both Action and NotAction",
        ),
        ({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}, "non-empty list"),
        ({"Version": "2012-10-17"}, "no Statement"),
        ({"Statement": [{"Effect": "Allow", "Action": "*", "Principal": {}}]}, "Principal must be"),
    ]
    for document, message in bad:
        with pytest.raises(PolicyError, match=message):
            parse_policy(document)  # type: ignore[arg-type]
