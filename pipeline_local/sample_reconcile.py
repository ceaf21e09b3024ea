"""Find every row of every uploaded object version in the tables and compare with the ledger.

`account()` takes the tables' contents as plain Python values: every row must end in exactly one
place (stored, a duplicate of a stored row, an error row, or inside a file that failed for good).
A retryable error row of a line that was stored later (a replay) is history, not an outcome.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_local.sample_ledger import Expected, RowCounts
from pipeline_local.sample_model import SampleFile


@dataclass
class Upload:
    """One object version put into the bucket, and what the model expects of it."""

    sample: SampleFile
    version_id: str
    expected: Expected


@dataclass
class FileAccount(RowCounts):
    """Where the rows of one uploaded object version were found."""

    version_id: str = field(kw_only=True)
    # Rows of a file whose processing failed for good (FILE_PROCESSING_FAILED from a
    # dead-lettered S3 event, FILE_RESUME_FAILED from a resume_file): not stored, and kept in
    # the errors table by that one retryable row.
    in_failed_processing: int = 0
    unaccounted: list[int] = field(default_factory=list)  # lines found nowhere
    twice: list[str] = field(default_factory=list)  # lines written more than once
    unexpected: list[str] = field(default_factory=list)  # items/rows no row explains
    mismatches: list[str] = field(default_factory=list)  # differences from the model
    seconds: float | None = None

    @property
    def balanced(self) -> bool:
        """rows in = stored + duplicates + error rows (a file error accounts for every row)."""
        if self.file_error:
            return self.stored == 0 and not self.unaccounted and not self.twice
        return (
            self.rows == self.stored + self.duplicates + self.error_rows + self.in_failed_processing
            and not self.unaccounted
            and not self.twice
            and not self.unexpected
        )


@dataclass
class Accounting:
    files: list[FileAccount]
    queue_depths: dict[str, int]
    orphan_items: list[str] = field(default_factory=list)
    duplicate_error_rows: list[str] = field(default_factory=list)
    orphan_error_rows: list[dict[str, Any]] = field(default_factory=list)
    # Where the per-file status table disagrees (pipeline_local.file_status.problems).
    status_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            all(f.balanced for f in self.files)
            and not any(self.queue_depths.values())
            and not self.orphan_items
            and not self.duplicate_error_rows
            and not self.orphan_error_rows
            and not self.status_problems
        )

    @property
    def matches_model(self) -> bool:
        return not any(f.mismatches for f in self.files)

    def problems(self) -> list[str]:
        out: list[str] = []
        for f in self.files:
            where = f"{f.key} ({f.version_id[:8]})"
            if not f.balanced:
                out.append(
                    f"{where}: rows {f.rows} != stored {f.stored} + duplicates {f.duplicates}"
                    f" + error rows {f.error_rows}"
                    + (f" (file error {f.file_error})" if f.file_error else "")
                )
            if f.unaccounted:
                out.append(f"{where}: lines found nowhere: {f.unaccounted[:20]}")
            if f.twice:
                out.append(f"{where}: written more than once: {f.twice[:20]}")
            if f.unexpected:
                out.append(f"{where}: unexplained rows: {f.unexpected[:20]}")
        out += [f"queue {q} still holds {n} message(s)" for q, n in self.queue_depths.items() if n]
        out += [f"stored item of no uploaded row: {d}" for d in self.orphan_items[:20]]
        out += [f"error row written twice: {d}" for d in self.duplicate_error_rows[:20]]
        out += [
            f"error row of no uploaded object: {r.get('error_code')} {r.get('source_key')}"
            for r in self.orphan_error_rows[:20]
        ]
        out += self.status_problems[:20]
        return out


def _num(value: Any) -> int | None:
    if value is None:
        return None
    return int(value)


def account(
    uploads: Sequence[Upload],
    items: Iterable[Mapping[str, Any]],
    error_rows: Iterable[Mapping[str, Any]],
    queue_depths: Mapping[str, int],
) -> Accounting:
    """Find every row of every upload in the tables (items/rows as plain Python values)."""
    items = list(items)
    error_rows = list(error_rows)
    by_source: dict[tuple[str, str, int], list[int]] = {}
    stored_keys: set[tuple[str, int]] = set()
    for n, item in enumerate(items):
        src = (
            str(item.get("source_key")),
            str(item.get("source_version_id")),
            _num(item.get("source_line")) or 0,
        )
        by_source.setdefault(src, []).append(n)
        stored_keys.add((str(item["transaction_id"]), _num(item.get("timestamp")) or 0))
    errs_by_line: dict[tuple[str, str, int | None], list[int]] = {}
    file_errs: dict[tuple[str, str], list[int]] = {}
    failed: dict[tuple[str, str], list[tuple[int, int]]] = {}  # -> (row index, first line)
    for n, err in enumerate(error_rows):
        obj = (str(err.get("source_key")), str(err.get("source_version_id")))
        code = err.get("error_code")
        if err.get("error_type") == "FILE":
            file_errs.setdefault(obj, []).append(n)
        elif code in ("FILE_PROCESSING_FAILED", "FILE_RESUME_FAILED"):
            start = _num(err.get("source_line")) if code == "FILE_RESUME_FAILED" else None
            failed.setdefault(obj, []).append((n, start if start is not None else -1))
        else:
            errs_by_line.setdefault((*obj, _num(err.get("source_line"))), []).append(n)

    result = Accounting(files=[], queue_depths=dict(queue_depths))
    explained_errors: set[int] = set()
    explained_items: set[int] = set()
    for up in uploads:
        key, version = up.sample.key, up.version_id
        acc = FileAccount(key=key, version_id=version, rows=len(up.sample.rows))
        ferrs = file_errs.get((key, version), [])
        explained_errors.update(ferrs)
        if ferrs:
            acc.file_error = str(error_rows[ferrs[0]].get("error_code"))
            acc.errors[acc.file_error] += 1
            if len(ferrs) > 1:
                acc.twice.append(f"file error x{len(ferrs)}")
        for row in up.sample.rows:
            stored = by_source.get((key, version, row.line), [])
            errs = errs_by_line.get((key, version, row.line), [])
            explained_items.update(stored)
            explained_errors.update(errs)
            if stored:
                # A retryable row (RECORD_WRITE_FAILED) of a line stored later (a replay,
                # decision P32) is the audit trail of the retries, not the row's outcome.
                errs = [n for n in errs if not error_rows[n].get("retryable")]
            if ferrs:
                if stored or errs:
                    acc.unexpected.append(f"line {row.line} stored/errored despite a file error")
                continue
            if len(stored) + len(errs) > 1:
                acc.twice.append(
                    f"line {row.line}: {len(stored)} item(s), {len(errs)} error row(s)"
                )
            if stored:
                acc.stored += 1
            elif errs:
                acc.errors[str(error_rows[errs[0]].get("error_code"))] += 1
            elif row.txn is not None and row.txn.key in stored_keys:
                acc.duplicates += 1
            elif any(row.line >= start for _, start in failed.get((key, version), [])):
                acc.in_failed_processing += 1
            else:
                acc.unaccounted.append(row.line)
        for n, _ in failed.get((key, version), []):
            explained_errors.add(n)
        # Items and error rows of this version that no row of the file explains.
        lines = {row.line for row in up.sample.rows}
        for (k, v, line), found in by_source.items():
            if (k, v) == (key, version) and line not in lines:
                acc.unexpected += [f"item at line {line}"] * len(found)
        for (ek, ev, eline), found in errs_by_line.items():
            if (ek, ev) == (key, version) and eline not in lines:
                acc.unexpected += [f"error row at line {eline}"] * len(found)
                explained_errors.update(found)
        exp = up.expected
        if acc.file_error != exp.file_error:
            acc.mismatches.append(f"file error {acc.file_error} (expected {exp.file_error})")
        if not acc.file_error:
            for name, got, want in (
                ("stored", acc.stored, exp.stored),
                ("duplicates", acc.duplicates, exp.duplicates),
            ):
                if got != want:
                    acc.mismatches.append(f"{name} {got} (expected {want})")
            if acc.errors != exp.errors:
                acc.mismatches.append(
                    f"errors {dict(sorted(acc.errors.items()))}"
                    f" (expected {dict(sorted(exp.errors.items()))})"
                )
        result.files.append(acc)

    seen_errs: Counter[tuple[Any, ...]] = Counter(
        (
            r.get("source_key"),
            r.get("source_version_id"),
            r.get("source_line"),
            r.get("error_code"),
        )
        for r in error_rows
    )
    result.duplicate_error_rows = [str(k) for k, n in seen_errs.items() if n > 1]
    result.orphan_error_rows = [
        dict(r) for n, r in enumerate(error_rows) if n not in explained_errors
    ]
    result.orphan_items = [
        f"{i.get('transaction_id')} from {i.get('source_key')}"
        for n, i in enumerate(items)
        if n not in explained_items
    ]
    return result
