"""Validates the messages and table items of a conformance run against contract/schemas/.

Every message an implementation put on the main queue or the DLQ (bodies a case injected itself
are skipped: some are deliberately malformed) and every item of both tables is checked against
the JSON Schema of its kind, with the jsonschema library (Draft 2020-12).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "contract" / "schemas"
MESSAGE_KINDS = ("record_error", "file_error", "retry_record", "resume_file")
TRANSACTIONS_ITEM = "transactions_item"
ERRORS_ROW = "errors_row"


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator of contract/schemas/<name>.json (the schema itself checked first)."""
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def plain_json(value: Any) -> Any:
    """A deserialized DynamoDB item as JSON values: Decimal becomes int when integral, else float.

    JSON Schema's "integer" does not accept Decimal; float only serves the type and range checks
    of amount (its exact value is compared elsewhere).
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain_json(v) for v in value]
    return value


def problems_of(name: str, instance: Any, tag: str) -> list[str]:
    """One line per schema violation of instance, prefixed with tag."""
    return [
        f"{tag}: schema {name}: {'/'.join(map(str, error.absolute_path)) or '(top)'}:"
        f" {error.message}"
        for error in sorted(validator(name).iter_errors(instance), key=lambda e: e.json_path)
    ]


def message_problems(bodies: Iterable[str], injected: Iterable[str]) -> list[str]:
    """Check every body in our message format that the case did not inject itself."""
    skip = set(injected)
    problems: list[str] = []
    for body in sorted(set(bodies) - skip):
        try:
            doc = json.loads(body)
        except ValueError:
            continue  # not JSON: forwarded as is (P22), stored as UNKNOWN_FORMAT
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind in MESSAGE_KINDS:
            problems += problems_of(kind, doc, f"{kind} message")
    return problems


def run_problems(
    bodies: Iterable[str],
    injected: Iterable[str],
    transactions: Iterable[Mapping[str, Any]],
    errors: Iterable[Mapping[str, Any]],
) -> list[str]:
    """Schema violations of one run: messages seen on both queues, items of both tables."""
    problems = message_problems(bodies, injected)
    for item in transactions:
        tag = f"transactions item {item.get('transaction_id')!r}"
        problems += problems_of(TRANSACTIONS_ITEM, plain_json(item), tag)
    for row in errors:
        tag = f"errors row {row.get('error_code')!r} line {row.get('source_line')}"
        problems += problems_of(ERRORS_ROW, plain_json(row), tag)
    return problems
