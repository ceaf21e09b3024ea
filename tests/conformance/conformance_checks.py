"""Compare what one conformance case's run left with its expected.json and with the contract.

Each check returns a list of problems (empty: the run conforms).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from tests.conformance.conformance_cases import Case
from tests.conformance.conformance_runner import Run, resolve
from tests.conformance.spec_rules import spec_error_id, spec_record_hash

PROCESSOR_PATTERNS = {"python": r"python3\.11/\S+", "rust": r"rust/\S+"}
ERROR_TYPES = {"VALIDATION", "FILE", "PROCESSING", "UNKNOWN_FORMAT"}


# --------------------------------------------------------------------------------------------
# Comparison


def _show(value: Any) -> str:
    def plain(o: Any) -> str:
        return format(o, "f") if isinstance(o, Decimal) else str(o)

    return json.dumps(value, default=plain, ensure_ascii=False, sort_keys=True)


def _norm(value: Any) -> Any:
    """Numbers by value (int/Decimal alike), everything else as is."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        return Decimal(value).normalize()
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def compare_transactions(case: Case, run: Run, impl: str) -> list[str]:
    problems: list[str] = []
    now_ms = int(time.time() * 1000)
    expected: dict[tuple[str, Decimal], dict[str, Any]] = {}
    for raw in case.expected.get("transactions", []):
        item = resolve(raw, run.stack)
        if item.get("record_hash") == "$RECORD_HASH":
            item["record_hash"] = spec_record_hash(item)
        expected[(item["transaction_id"], _norm(item["timestamp"]))] = item
    observed = {(i["transaction_id"], _norm(i["timestamp"])): i for i in run.transactions}
    for key in sorted(expected.keys() - observed.keys(), key=str):
        problems.append(f"transaction missing: {key[0]} @ {key[1]:f}: {_show(expected[key])}")
    for key in sorted(observed.keys() - expected.keys(), key=str):
        problems.append(f"transaction unexpected: {key[0]} @ {key[1]:f}: {_show(observed[key])}")
    for key in sorted(expected.keys() & observed.keys(), key=str):
        want, got = dict(expected[key]), dict(observed[key])
        got_ingested = got.pop("ingested_at", None)
        want_ingested = want.pop("ingested_at", None)
        if want_ingested is not None:
            if _norm(got_ingested) != _norm(want_ingested):
                problems.append(
                    f"transaction {key[0]}: ingested_at {got_ingested} != {want_ingested}"
                    " (stored items are never overwritten)"
                )
        elif not (
            isinstance(got_ingested, Decimal)
            and run.started_ms - 1000 <= got_ingested <= now_ms + 1000
        ):
            problems.append(f"transaction {key[0]}: ingested_at {got_ingested!r} not a recent ms")
        if want.get("processor") == "$PROCESSOR":
            want.pop("processor")
            proc = got.pop("processor", None)
            if not (isinstance(proc, str) and re.fullmatch(PROCESSOR_PATTERNS[impl], proc)):
                problems.append(f"transaction {key[0]}: processor {proc!r} is not {impl}/<ver>")
        for attr in sorted(want.keys() | got.keys()):
            w, g = want.get(attr), got.get(attr)
            if _norm(w) != _norm(g):
                problems.append(
                    f"transaction {key[0]} @ {key[1]:f}: {attr}:"
                    f" expected {_show(w)}, got {_show(g)}"
                )
    return problems


def _expected_error_rows(case: Case, run: Run) -> list[dict[str, Any]]:
    bodies = case.dlq_bodies
    rows = []
    for raw in case.expected.get("errors", []):
        row = resolve(raw, run.stack)
        index = row.pop("dlq_message", None)
        if index is not None:
            body = bodies[int(index)]
            if row.get("error_id") == "$SHA256_BODY":
                row["error_id"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
            if row.get("timestamp") == "$SENT_TIMESTAMP":
                record = run.sent.get(body)
                row["timestamp"] = int(record["attributes"]["SentTimestamp"]) if record else None
        rows.append(row)
    return rows


def compare_errors(case: Case, run: Run) -> list[str]:
    expected_rows = _expected_error_rows(case, run)
    if not expected_rows:
        return [f"error row unexpected: {_show(r)}" for r in run.errors]
    fields = sorted({k for row in expected_rows for k in row})
    want = Counter(_show(_norm({f: row.get(f) for f in fields})) for row in expected_rows)
    got = Counter(_show(_norm({f: row.get(f) for f in fields})) for row in run.errors)
    problems = [f"error row missing: {r}" for r in sorted((want - got).elements())]
    problems += [f"error row unexpected: {r}" for r in sorted((got - want).elements())]
    return problems


def check_error_row_invariants(run: Run) -> list[str]:
    """What design.md sections 4, 5 and 8 require of every errors-table row."""
    problems: list[str] = []
    now_s = time.time()
    last_modified: dict[tuple[str, str], int | None] = {}
    for row in run.errors:
        tag = f"error row {row.get('error_code')}/{row.get('source_line')}"
        if not re.fullmatch(r"[0-9a-f]{64}", str(row.get("error_id", ""))):
            problems.append(f"{tag}: error_id {row.get('error_id')!r} is not a hex SHA-256")
        if row.get("error_type") not in ERROR_TYPES:
            problems.append(f"{tag}: error_type {row.get('error_type')!r}")
        if "transaction_id" in row and not (
            isinstance(row["transaction_id"], str) and row["transaction_id"]
        ):
            problems.append(f"{tag}: transaction_id must be absent when unknown, not {row!r}")
        if not isinstance(row.get("retryable"), bool):
            problems.append(f"{tag}: retryable {row.get('retryable')!r} is not a boolean")
        detected = row.get("detected_at")
        if not (isinstance(detected, Decimal) and 0 < detected <= now_s * 1000 + 1000):
            problems.append(f"{tag}: detected_at {detected!r} is not an epoch ms")
        if row.get("error_type") in ("VALIDATION", "FILE", "PROCESSING"):
            want_id = spec_error_id(row)
            if row.get("error_id") != want_id:
                problems.append(f"{tag}: error_id {row.get('error_id')} != {want_id}")
        expires = row.get("expires_at")
        days = run.error_retention_days
        horizon = now_s + days * 86400
        if not (isinstance(expires, Decimal) and horizon - 86400 <= expires <= horizon + 86400):
            problems.append(
                f"{tag}: expires_at {expires!r} is not now + {days} days in epoch"
                " seconds (the DynamoDB TTL unit)"
            )
        message = row.get("error_message")
        if not (isinstance(message, str) and message):
            problems.append(f"{tag}: error_message missing")
        elif row.get("field") and str(row["field"]) not in message:
            problems.append(f"{tag}: error_message {message!r} does not name {row['field']!r}")
        if not row.get("sqs_message_id"):
            problems.append(f"{tag}: sqs_message_id missing")
        record = row.get("record")
        if record is not None:
            if not isinstance(record, dict):
                problems.append(f"{tag}: record is not a map")
            else:
                if "description" in record:
                    problems.append(f"{tag}: record keeps the description")
                account = record.get("account_id")
                if isinstance(account, str) and sum(c.isalnum() for c in account) > 4:
                    problems.append(f"{tag}: account_id {account!r} not masked to last 4")
        version = row.get("source_version_id")
        from_object = row.get("error_type") in ("VALIDATION", "FILE") or (
            row.get("error_type") == "PROCESSING" and row.get("transaction_id")
        )
        if (
            from_object
            and row.get("source_bucket") == run.stack.bucket
            and version
            and row.get("source_key")
        ):
            cache_key = (str(row["source_key"]), str(version))
            if cache_key not in last_modified:
                try:
                    head = run.stack.s3.head_object(
                        Bucket=run.stack.bucket, Key=cache_key[0], VersionId=cache_key[1]
                    )
                    last_modified[cache_key] = int(head["LastModified"].timestamp() * 1000)
                except Exception:
                    last_modified[cache_key] = None
            lm = last_modified[cache_key]
            if lm is not None and _norm(row.get("timestamp")) != _norm(lm):
                problems.append(
                    f"{tag}: timestamp {row.get('timestamp')} is not the object's LastModified {lm}"
                )
    return problems


def check_accounting(case: Case, run: Run) -> list[str]:
    acc = case.expected.get("accounting")
    if acc is None:
        return []
    preexisting = {
        (p["transaction_id"], _norm(p["timestamp"])) for p in case.config.get("preexisting", [])
    }
    stored = sum(
        1
        for i in run.transactions
        if (i["transaction_id"], _norm(i["timestamp"])) not in preexisting
    )
    rows_in, dups = int(acc["rows_in"]), int(acc.get("duplicates", 0))
    # A retryable error row whose line was stored later (a replay: P32) is the audit trail of
    # a retry, not the row's outcome: the stored item is.
    stored_lines = {
        (i.get("source_key"), i.get("source_version_id"), _norm(i.get("source_line")))
        for i in run.transactions
    }
    outcomes = [
        row
        for row in run.errors
        if not (
            row.get("retryable")
            and (row.get("source_key"), row.get("source_version_id"), _norm(row.get("source_line")))
            in stored_lines
        )
    ]
    if rows_in != stored + dups + len(outcomes):
        return [
            f"accounting: rows in {rows_in} != stored {stored} + duplicates {dups}"
            f" + error rows {len(outcomes)} (of {len(run.errors)}; retryable rows of"
            " stored lines are history)"
        ]
    return []


def check_queues(case: Case, run: Run) -> list[str]:
    want = case.expected.get("queues", {"main": 0, "dlq": 0})
    problems = [
        f"queue {name}: {run.queue_depths.get(name)} messages left, expected {count}"
        for name, count in want.items()
        if run.queue_depths.get(name) != count
    ]
    # design.md section 8: on an S3 event the processor returns normally for every bad file and
    # raises only for failures that a retry can fix.
    must_fail = bool(case.config.get("deny_get_object"))
    for result in run.s3_results:
        if must_fail and result.error is None:
            problems.append("S3 invocation returned normally, expected a retryable failure")
        if not must_fail and result.error is not None:
            problems.append(f"S3 invocation failed {result.attempts} times: {result.error}")
    for kind, minimum in case.expected.get("main_queue_min", {}).items():
        if run.main_kinds[kind] < int(minimum):
            problems.append(
                f"main queue: {run.main_kinds[kind]} {kind} messages, expected at least"
                f" {minimum} (seen: {dict(run.main_kinds)})"
            )
    for kind, maximum in case.expected.get("main_queue_max", {}).items():
        if run.main_kinds[kind] > int(maximum):
            problems.append(
                f"main queue: {run.main_kinds[kind]} {kind} messages, expected at most"
                f" {maximum} (seen: {dict(run.main_kinds)})"
            )
    return problems
