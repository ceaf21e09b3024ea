"""Evaluate a statement's Condition block against a request context, operator by operator.

Semantics, as AWS documents them
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_logic_multiple_context_keys_or_values.html):
- all operators of a block, and all keys of an operator, must hold (AND); the values listed
  for one key are alternatives (OR). A negated operator (StringNotEquals, ArnNotLike,
  NotIpAddress, ...) holds when the request value matches NONE of the listed values.
- condition key names are case-insensitive; values are case-sensitive except in the
  IgnoreCase operators and Bool.
- a key absent from the request: a positive operator is false, a negated one is true;
  `...IfExists` is true; `Null: true` holds iff the key is absent (or an empty string/list).
- set operators on multivalued keys: `ForAllValues:` holds when every request value matches
  one of the listed values, and also when the key is absent or empty; `ForAnyValue:` holds
  when at least one request value matches, and is false when the key is absent or empty.
- a multivalued request value met by a plain (single-valued) operator: a positive operator
  holds when any request value matches, a negated one when none matches (AWS advises against
  this combination; we pick the reading under which a Deny cannot be sidestepped by adding a
  value).
Context values may be str, bool, int/float or a list of str (multivalued keys such as
`aws:TagKeys`, `kms:EncryptionContextKeys`); bytes are accepted for BinaryEquals.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import eq, ge, gt, le, lt
from typing import Any

from pipeline_local.authz.policy import PolicyError, arn_matches, wildcard_match

__all__ = ["OPERATORS", "condition_holds", "normalize_context"]

ContextValue = str | bool | int | float | bytes | Sequence[str]
Context = Mapping[str, Any]

_MISSING = object()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _string_equals(policy: Any, actual: Any) -> bool:
    return _text(policy) == _text(actual)


def _string_equals_ic(policy: Any, actual: Any) -> bool:
    return _text(policy).casefold() == _text(actual).casefold()


def _string_like(policy: Any, actual: Any) -> bool:
    return wildcard_match(_text(policy), _text(actual))


def _arn_like(policy: Any, actual: Any) -> bool:
    # ArnEquals and ArnLike behave the same in AWS: component-wise wildcard match.
    return arn_matches(_text(policy), _text(actual))


def _bool(policy: Any, actual: Any) -> bool:
    return _text(policy).lower() == _text(actual).lower()


def _number(value: Any, *, policy: bool) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        if policy:
            raise PolicyError(f"Numeric condition value {value!r} is not a number") from None
        return None


def _date(value: Any, *, policy: bool) -> datetime | None:
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parsed = datetime.fromtimestamp(value, UTC)
    else:
        text = _text(value)
        if text.isdigit():
            parsed = datetime.fromtimestamp(int(text), UTC)
        else:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                parsed = None
    if parsed is None:
        if policy:
            raise PolicyError(f"Date condition value {value!r} is not an ISO 8601 date or epoch")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ordered(
    parse: Callable[..., Any], compare: Callable[[Any, Any], bool]
) -> Callable[[Any, Any], bool]:
    """A Numeric*/Date* test: both sides parsed (a bad policy value is an error, a bad request
    value simply does not match), then compared as request-value OP policy-value."""

    def check(policy: Any, actual: Any) -> bool:
        p = parse(policy, policy=True)
        a = parse(actual, policy=False)
        return p is not None and a is not None and compare(a, p)

    return check


# The comparisons both the Numeric* and the Date* operators have, by operator name after the
# family's prefix: (request value OP policy value, negated?).
_ORDERINGS: dict[str, tuple[Callable[[Any, Any], bool], bool]] = {
    "Equals": (eq, False),
    "NotEquals": (eq, True),
    "LessThan": (lt, False),
    "LessThanEquals": (le, False),
    "GreaterThan": (gt, False),
    "GreaterThanEquals": (ge, False),
}


def _ordered_family(
    prefix: str, parse: Callable[..., Any]
) -> dict[str, tuple[Callable[[Any, Any], bool], bool]]:
    """The six operators of one family (Numeric, Date) over values read with `parse`."""
    return {
        prefix + name: (_ordered(parse, compare), negated)
        for name, (compare, negated) in _ORDERINGS.items()
    }


def _ip_address(policy: Any, actual: Any) -> bool:
    try:
        network = ipaddress.ip_network(_text(policy), strict=False)
    except ValueError as exc:
        raise PolicyError(f"IpAddress condition value {policy!r} is not an IP range") from exc
    try:
        return ipaddress.ip_address(_text(actual)) in network
    except ValueError:
        return False


def _binary_equals(policy: Any, actual: Any) -> bool:
    try:
        expected = base64.b64decode(_text(policy), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PolicyError(f"BinaryEquals value {policy!r} is not base64") from exc
    if isinstance(actual, bytes | bytearray):
        return bytes(actual) == expected
    try:
        return base64.b64decode(_text(actual), validate=True) == expected
    except (binascii.Error, ValueError):
        return False


# operator name -> (value test, negated?)
OPERATORS: dict[str, tuple[Callable[[Any, Any], bool], bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ic, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ic, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnLike": (_arn_like, False),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
    **_ordered_family("Numeric", _number),
    **_ordered_family("Date", _date),
    "IpAddress": (_ip_address, False),
    "NotIpAddress": (_ip_address, True),
    "BinaryEquals": (_binary_equals, False),
}


def normalize_context(context: Context) -> dict[str, Any]:
    """Condition keys are case-insensitive: one lower-cased view of the request context."""
    return {key.lower(): value for key, value in context.items()}


def _values(value: Any) -> list[Any]:
    if isinstance(value, str | bytes | bytearray | bool | int | float):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _policy_values(value: Any, where: str) -> list[Any]:
    values = _values(value)
    if not values:
        raise PolicyError(f"{where}: a condition needs at least one value")
    return values


def _is_empty(value: Any) -> bool:
    return (
        value is _MISSING
        or value == ""
        or (not isinstance(value, str | bytes) and isinstance(value, Sequence) and len(value) == 0)
    )


def _parse_operator(name: str) -> tuple[str | None, str, bool]:
    qualifier = None
    base = name
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if base.lower().startswith(prefix.lower()):
            qualifier = prefix[:-1]
            base = base[len(prefix) :]
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base != "Null" and base not in OPERATORS:
        raise PolicyError(f"unknown condition operator {name!r}")
    if base == "Null" and (if_exists or qualifier):
        raise PolicyError(f"condition operator {name!r}: Null takes no IfExists or set prefix")
    return qualifier, base, if_exists


def _key_holds(operator: str, key: str, policy_value: Any, context: Mapping[str, Any]) -> bool:
    qualifier, base, if_exists = _parse_operator(operator)
    where = f"{operator} {key}"
    actual = context.get(key.lower(), _MISSING)
    expected = _policy_values(policy_value, where)

    if base == "Null":
        absent = _is_empty(actual)
        return any(absent == (_text(v).lower() == "true") for v in expected)

    test, negated = OPERATORS[base]

    def one(value: Any) -> bool:
        hit = any(test(p, value) for p in expected)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        if _is_empty(actual):
            return True
        return all(one(v) for v in _values(actual))
    if qualifier == "ForAnyValue":
        if _is_empty(actual):
            return if_exists
        return any(one(v) for v in _values(actual))

    if actual is _MISSING:
        return if_exists or negated
    values = _values(actual)
    if not values:
        return if_exists or negated
    if negated:
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def condition_holds(conditions: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    """True when every operator/key pair of a Condition block holds for `context`.

    `context` may be raw (any key case) or already `normalize_context`d."""
    lowered = normalize_context(context)
    for operator, keys in conditions.items():
        if not isinstance(keys, Mapping):
            raise PolicyError(f"condition operator {operator!r} must map keys to values")
        for key, value in keys.items():
            if not _key_holds(operator, key, value, lowered):
                return False
    return True


def validate_conditions(conditions: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise PolicyError for an operator AWS would not accept."""
    for operator in conditions:
        _parse_operator(operator)
