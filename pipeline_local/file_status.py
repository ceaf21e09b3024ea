"""The per-file status table (contract/decisions.md P26 to P31): read it, and hold it to the scans.

One GetItem per object version (never a scan): what `make demo` prints per file and what the
end-to-end tests check after every scenario (faults included), against the accounting that
`pipeline_local.samples.account` derives from both tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from pipeline_local.samples import FileAccount

# Error rows that are not record errors in the status: a retry_record whose retries ran out is
# still pending there (P31) until a replay's re-read stores its line, which resolves it (P32;
# sample_reconcile then treats the row as history); a dead-lettered S3 event or resume_file
# stops the file's count.
PENDING_CODES = frozenset({"RECORD_WRITE_FAILED"})
STOPPED_CODES = frozenset({"FILE_PROCESSING_FAILED", "FILE_RESUME_FAILED"})

Status = dict[str, Any]


def _plain(value: Any) -> Any:
    """Deserialized DynamoDB values as plain Python: integers, sorted lists for number sets."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(int(v) for v in value)
    if hasattr(value, "to_integral_value"):
        return int(value)
    return value


def get_status(dynamodb: Any, table: str, key: str, version_id: str | None) -> Status | None:
    """The status item of one object version (strongly consistent), or None."""
    response = dynamodb.get_item(
        TableName=table,
        Key={"source_key": {"S": key}, "source_version_id": {"S": version_id or "null"}},
        ConsistentRead=True,
    )
    raw = response.get("Item")
    if raw is None:
        return None
    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(v)) for k, v in raw.items()}


def read_statuses(
    dynamodb: Any, table: str, files: Iterable[FileAccount]
) -> dict[tuple[str, str], Status | None]:
    """(key, version id) -> status item, one GetItem per file."""
    return {(f.key, f.version_id): get_status(dynamodb, table, f.key, f.version_id) for f in files}


def accounted(status: Status) -> int:
    """stored + duplicates + record errors + retries pending: what rows_seen must equal."""
    return (
        int(status.get("stored", 0))
        + int(status.get("duplicates", 0))
        + sum(int(n) for n in (status.get("record_errors") or {}).values())
        + int(status.get("retries_pending", 0))
    )


def problems(
    files: Iterable[FileAccount], statuses: Mapping[tuple[str, str], Status | None]
) -> list[str]:
    """Where a file's status disagrees with what the scans found for its rows."""
    out: list[str] = []
    for f in files:
        where = f"{f.key} ({f.version_id[:8]}) status"
        status = statuses.get((f.key, f.version_id))
        if status is None:
            out.append(f"{where}: missing")
            continue
        if status.get("rows_seen") != accounted(status):
            out.append(f"{where}: rows_seen {status.get('rows_seen')} != {accounted(status)}")
        if f.file_error:
            error = status.get("file_error") or {}
            if status.get("state") != "failed" or error.get("error_code") != f.file_error:
                state = status.get("state")
                out.append(f"{where}: {state} {error}, expected failed {f.file_error}")
            continue
        if any(f.errors[code] for code in STOPPED_CODES) or f.in_failed_processing:
            continue  # processing failed for good: the status stops where it stopped (P31)
        pending = sum(f.errors[code] for code in PENDING_CODES)
        record_errors = Counter({c: n for c, n in f.errors.items() if c not in PENDING_CODES and n})
        want = {
            "state": "done" if pending == 0 else "processing",
            "rows_seen": f.rows,
            "stored + duplicates": f.stored + f.duplicates,
            "record_errors": dict(record_errors),
            "retries_pending": pending,
        }
        got = {
            "state": status.get("state"),
            "rows_seen": status.get("rows_seen"),
            "stored + duplicates": int(status.get("stored", 0)) + int(status.get("duplicates", 0)),
            "record_errors": status.get("record_errors") or {},
            "retries_pending": status.get("retries_pending"),
        }
        for name, value in want.items():
            if got[name] != value:
                out.append(f"{where}: {name} {got[name]} (the tables say {value})")
    return out
