"""Parse IAM policy documents into statements and match actions, resources and ARNs by wildcard.

Grammar followed: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
- `Statement` is one object or a list; `Action`/`NotAction`, `Resource`/`NotResource`,
  `Principal`/`NotPrincipal` are a string or a list (exactly one of each pair, Principal only
  in resource-based policies); `Condition` maps operator -> key -> value(s).
- Actions match case-insensitively, resources case-sensitively
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
  .../reference_policies_elements_resource.html); `*` matches any run of characters and `?`
  one character. An ARN pattern is matched component by component (the first five
  colon-separated parts, then the resource part, which may itself contain colons), as AWS
  documents for `ArnLike`: a `*` in the region part never swallows the account part.
Policy variables (`${aws:username}`) are not substituted: this stack uses none.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Policy",
    "PolicyError",
    "Statement",
    "action_matches",
    "arn_matches",
    "parse_policy",
    "resource_matches",
    "wildcard_match",
]


class PolicyError(ValueError):
    """A policy document AWS would reject (malformed JSON, missing Effect, both Action and
    NotAction, unknown condition operator, ...)."""


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    sid: str | None
    actions: tuple[str, ...] | None  # None when NotAction is used
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None  # None when NotResource is used or neither is present
    not_resources: tuple[str, ...] | None
    # {"AWS": (...), "Service": (...), ...}; "*" alone becomes {"*": ("*",)}.
    principals: Mapping[str, tuple[str, ...]] | None
    not_principals: Mapping[str, tuple[str, ...]] | None
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    index: int = 0

    @property
    def label(self) -> str:
        """How a message names this statement: its Sid, or its position."""
        return f'"{self.sid}"' if self.sid else f"#{self.index + 1}"

    def matches_action(self, action: str) -> bool:
        if self.actions is not None:
            return any(action_matches(p, action) for p in self.actions)
        assert self.not_actions is not None
        return not any(action_matches(p, action) for p in self.not_actions)

    def matches_resource(self, resource: str) -> bool:
        if self.resources is not None:
            return any(resource_matches(p, resource) for p in self.resources)
        if self.not_resources is not None:
            return not any(resource_matches(p, resource) for p in self.not_resources)
        return True  # trust policies carry no Resource element


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    name: str = "policy"
    id: str | None = None


def _strings(value: Any, element: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"{element} must be a string or a non-empty list of strings, got {value!r}")


def _principal_block(value: Any, element: str) -> Mapping[str, tuple[str, ...]]:
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, Mapping) or not value:
        raise PolicyError(f'{element} must be "*" or an object such as {{"AWS": ...}}')
    return {str(kind): _strings(v, f"{element}.{kind}") for kind, v in value.items()}


def _exactly_one(raw: Mapping[str, Any], a: str, b: str, where: str, required: bool) -> None:
    if a in raw and b in raw:
        raise PolicyError(f"{where}: has both {a} and {b}")
    if required and a not in raw and b not in raw:
        raise PolicyError(f"{where}: needs {a} or {b}")


def _statement(raw: Any, index: int, name: str) -> Statement:
    where = f"{name} statement #{index + 1}"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: a statement must be an object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'{where}: Effect must be "Allow" or "Deny", got {effect!r}')
    _exactly_one(raw, "Action", "NotAction", where, required=True)
    _exactly_one(raw, "Resource", "NotResource", where, required=False)
    _exactly_one(raw, "Principal", "NotPrincipal", where, required=False)
    conditions = raw.get("Condition", {})
    if not isinstance(conditions, Mapping) or not all(
        isinstance(v, Mapping) for v in conditions.values()
    ):
        raise PolicyError(f"{where}: Condition must map operators to {{key: value}} objects")
    sid = raw.get("Sid")
    return Statement(
        effect=effect,
        sid=str(sid) if sid is not None else None,
        actions=_strings(raw["Action"], "Action") if "Action" in raw else None,
        not_actions=_strings(raw["NotAction"], "NotAction") if "NotAction" in raw else None,
        resources=_strings(raw["Resource"], "Resource") if "Resource" in raw else None,
        not_resources=(
            _strings(raw["NotResource"], "NotResource") if "NotResource" in raw else None
        ),
        principals=(
            _principal_block(raw["Principal"], "Principal") if "Principal" in raw else None
        ),
        not_principals=(
            _principal_block(raw["NotPrincipal"], "NotPrincipal") if "NotPrincipal" in raw else None
        ),
        conditions=conditions,
        index=index,
    )


def parse_policy(document: Mapping[str, Any] | str, name: str = "policy") -> Policy:
    """A policy document (dict or JSON text) as a `Policy`; `name` is how messages call it
    (e.g. "identity policy iam-policy-transaction-processor-dev", "key policy of key/...")."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise PolicyError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(document, Mapping):
        raise PolicyError(f"{name}: a policy document must be a JSON object")
    raw = document.get("Statement")
    if raw is None:
        raise PolicyError(f"{name}: has no Statement")
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list):
        raise PolicyError(f"{name}: Statement must be an object or a list")
    statements = tuple(_statement(s, i, name) for i, s in enumerate(items))
    policy_id = document.get("Id")
    return Policy(statements, name=name, id=str(policy_id) if policy_id is not None else None)


@functools.lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """`*` = any run of characters (also none), `?` = exactly one character."""
    return _wildcard_regex(pattern, case_sensitive).fullmatch(value) is not None


@functools.lru_cache(maxsize=65536)
def action_matches(pattern: str, action: str) -> bool:
    """IAM action names are case-insensitive: "DynamoDB:putitem" matches "dynamodb:PutItem"."""
    return wildcard_match(pattern, action, case_sensitive=False)


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike semantics: each of the six colon-delimited components matched separately."""
    if pattern == "*":
        return True
    p_parts = pattern.split(":", 5)
    a_parts = arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return False
    return all(wildcard_match(p, a) for p, a in zip(p_parts, a_parts, strict=True))


@functools.lru_cache(maxsize=65536)
def resource_matches(pattern: str, resource: str) -> bool:
    """Resource element matching (case-sensitive); ARNs component-wise, anything else whole."""
    if pattern == "*":
        return True
    if pattern.startswith("arn:") and resource.startswith("arn:"):
        return arn_matches(pattern, resource)
    return wildcard_match(pattern, resource)
