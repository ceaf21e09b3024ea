"""The per-file status table after a conformance case (contract/decisions.md P26 to P31).

Every status item of every case is checked against contract/schemas/file_status_item.json and
the counting invariant (rows_seen = stored + duplicates + sum(record_errors) + retries_pending,
pending_retry_lines holding exactly the pending rows, "done" only with nothing open or pending);
a case's `expected.json` may add `file_status`: every item of the table, compared on the
attributes each expected item names (all but first_activity, last_activity, activity_day and
processor, which differ between runs and implementations, are normally named). `$BUCKET` and
`$VERSION_<n>` are resolved as elsewhere. A case's `crash` ({"after_calls", "operation",
"when": "s3" | "sqs"}) kills the processor's first such invocation after that many calls
(pipeline_local.faults.CrashingInvoker): the re-run must still count every row once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pipeline_local.faults import CrashingInvoker
from pipeline_local.invokers import Invoker
from tests.conformance import schemas

SCHEMA = "file_status_item"
NOT_COMPARED = ("first_activity", "last_activity", "activity_day", "processor")
PROCESSOR_PATTERNS = {"python": r"python3\.11/\S+", "rust": r"rust/\S+"}
ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def add_crash(invokers: dict[str, Invoker], processor_arn: str, config: Mapping[str, Any]) -> None:
    """Wrap the processor's invoker in a CrashingInvoker when the case asks for a kill (the
    runner closes every layer of each invoker, the wrapped one too)."""
    spec = config.get("crash")
    if not spec:
        return
    inner = invokers[processor_arn]
    source = "aws:s3" if spec.get("when", "s3") == "s3" else "aws:sqs"
    invokers[processor_arn] = CrashingInvoker(
        inner,
        after_calls=int(spec["after_calls"]),
        operation=str(spec.get("operation", "PutItem")),
        crashes=int(spec.get("crashes", 1)),
        when=lambda event: event.get("Records", [{}])[0].get("eventSource") == source,
    )


def check_crashed(
    invokers: Mapping[str, Invoker], processor_arn: str, config: Mapping[str, Any]
) -> None:
    """A case that asks for a kill must have had it: else it proves nothing about the re-run."""
    crashing = invokers.get(processor_arn)
    if config.get("crash") and isinstance(crashing, CrashingInvoker) and not crashing.crashed:
        raise AssertionError(f"the case's crash {dict(config['crash'])} never happened")


def _plain(value: Any) -> Any:
    """JSON values; a number set becomes a sorted list."""
    if isinstance(value, set):
        return sorted(schemas.plain_json(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return schemas.plain_json(value)


def _resolve(value: Any, bucket: str, versions: list[str | None]) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, bucket, versions) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, bucket, versions) for v in value]
    if value == "$BUCKET":
        return bucket
    if isinstance(value, str) and value.startswith("$VERSION_"):
        return versions[int(value.removeprefix("$VERSION_")) - 1]
    return value


def invariant_problems(item: Mapping[str, Any], impl: str) -> list[str]:
    """What P26 to P28 require of every status item."""
    tag = f"file status {item.get('source_key')}@{item.get('source_version_id')}"
    doc = _plain(item)
    problems = schemas.problems_of(SCHEMA, doc, tag)
    if problems:
        return problems
    errors = sum(doc["record_errors"].values())
    accounted = doc["stored"] + doc["duplicates"] + errors + doc["retries_pending"]
    if doc["rows_seen"] != accounted:
        problems.append(
            f"{tag}: rows_seen {doc['rows_seen']} != stored {doc['stored']} + duplicates"
            f" {doc['duplicates']} + record errors {errors} + retries pending"
            f" {doc['retries_pending']}"
        )
    if len(doc.get("pending_retry_lines", [])) != doc["retries_pending"]:
        problems.append(
            f"{tag}: pending_retry_lines {doc.get('pending_retry_lines')} do not match"
            f" retries_pending {doc['retries_pending']}"
        )
    for name in ("first_activity", "last_activity"):
        if not ISO_MS.fullmatch(doc[name]):
            problems.append(f"{tag}: {name} {doc[name]!r} is not ISO-8601 ms UTC")
    if doc["first_activity"] > doc["last_activity"]:
        problems.append(f"{tag}: first_activity after last_activity")
    if doc["activity_day"] != doc["first_activity"][:10]:
        problems.append(f"{tag}: activity_day {doc['activity_day']} is not first_activity's")
    if not re.fullmatch(PROCESSOR_PATTERNS[impl], doc["processor"]):
        problems.append(f"{tag}: processor {doc['processor']!r} is not {impl}/<ver>")
    return problems


def _show(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True, default=str)


def check(
    expected: Mapping[str, Any],
    items: list[dict[str, Any]],
    bucket: str,
    versions: list[str | None],
    impl: str,
) -> list[str]:
    """Problems of the status table after a case: invariants always, `file_status` if given."""
    problems = [p for item in items for p in invariant_problems(item, impl)]
    wanted = expected.get("file_status")
    if wanted is None:
        return problems
    want = {}
    for raw in wanted:
        item = _resolve(raw, bucket, versions)
        if item.get("source_version_id") is None:
            item["source_version_id"] = "null"  # an object without a version id (P26)
        want[(item["source_key"], item["source_version_id"])] = item
    got = {(i["source_key"], i["source_version_id"]): i for i in items}
    for key in sorted(want.keys() - got.keys()):
        problems.append(f"file status missing: {key}: {_show(want[key])}")
    for key in sorted(got.keys() - want.keys()):
        problems.append(f"file status unexpected: {key}: {_show(got[key])}")
    for key in sorted(want.keys() & got.keys()):
        w, g = _plain(want[key]), _plain(got[key])
        for attr in sorted(w):
            if attr in NOT_COMPARED:
                continue
            if _num(w.get(attr)) != _num(g.get(attr)):
                problems.append(
                    f"file status {key[0]}: {attr}: expected {_show(w.get(attr))},"
                    f" got {_show(g.get(attr))}"
                )
    return problems


def _num(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    if isinstance(value, dict):
        return {k: _num(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_num(v) for v in value]
    return value
