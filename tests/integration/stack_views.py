"""What the applied-stack checks share: the stack's account, region and tags, and plain views of
its policies and plan."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.conftest import Stack

ACCOUNT = "123456789012"
REGION = "eu-central-1"
ENV = "dev"
REQUIRED_TAGS = {"Environment", "DataClassification", "Compliance", "Owner", "ManagedBy"}


def arn(service: str, resource: str) -> str:
    """The ARN of a regional resource in the stack's account, e.g. arn("sqs", "dlq")."""
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def statements(policy: str | dict[str, Any]) -> list[dict[str, Any]]:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    found = doc["Statement"]
    return found if isinstance(found, list) else [found]


def planned_resources(stack: Stack) -> dict[str, dict[str, Any]]:
    resources = stack.plan["planned_values"]["root_module"]["resources"]
    return {r["address"]: r.get("values", {}) for r in resources}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(policy: list[dict[str, Any]]) -> dict[str, set[str]]:
    """action -> resources it is allowed on."""
    allowed: dict[str, set[str]] = {}
    for stmt in policy:
        if stmt["Effect"] != "Allow":
            continue
        for action in as_list(stmt["Action"]):
            allowed.setdefault(action, set()).update(as_list(stmt["Resource"]))
    return allowed
