"""Account for every row of an uploaded sample set: find it in the tables, print it, judge it.

Shared by `make demo` (the emulator, the local dispatcher doing Lambda's work) and `make smoke`
(a deployed stack on AWS): both upload `pipeline_local.samples` files, read both tables and the
queue depths, and print the same table, errors summary and verdict banner.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipeline_local import samples as sample_files
from pipeline_local.stores import scan_all

if TYPE_CHECKING:  # the stub packages are development tools (requirements-dev.txt)
    from mypy_boto3_dynamodb import DynamoDBClient

Say = Callable[[str], None]


def say(message: str = "") -> None:
    print(message, flush=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def banner(lines: list[str], out: Say = say) -> None:
    lines = [_ANSI.sub("", line).rstrip()[:150] for line in lines]
    width = max(len(line) for line in lines) + 4
    out("\n" + "#" * width)
    for line in lines:
        out(f"# {line.ljust(width - 4)} #")
    out("#" * width)


def collect(
    dynamodb: DynamoDBClient,
    transactions_table: str,
    errors_table: str,
    uploads: Sequence[sample_files.Upload],
    queue_depths: Mapping[str, int],
    *,
    only_versions: Collection[str] | None = None,
) -> tuple[sample_files.Accounting, list[dict[str, Any]], list[dict[str, Any]]]:
    """Scan both tables and account for every row of `uploads`: (accounting, items, error rows).

    `only_versions` keeps only the items and error rows of those object versions (a real
    account's tables also hold earlier runs, which would count as rows of no upload)."""
    items = scan_all(dynamodb, transactions_table)
    error_rows = scan_all(dynamodb, errors_table)
    if only_versions is not None:
        wanted = set(only_versions)
        items = [i for i in items if str(i.get("source_version_id")) in wanted]
        error_rows = [r for r in error_rows if str(r.get("source_version_id")) in wanted]
    return sample_files.account(uploads, items, error_rows, queue_depths), items, error_rows


def codes(counter: Counter[str]) -> str:
    return ", ".join(f"{code} {n}" for code, n in sorted(counter.items())) or "-"


def print_files(
    acc: sample_files.Accounting,
    seconds: Mapping[tuple[str, str | None], float],
    out: Say = say,
) -> None:
    out(
        f"    {'file':40} {'rows':>6} {'stored':>6} {'dup':>4} {'errors':>6} {'time s':>6}  "
        "errors by code"
    )
    for f in acc.files:
        name = f.key.removeprefix(sample_files.PREFIX)
        t = seconds.get((f.key, f.version_id), 0.0)
        mark = (
            ""
            if f.balanced and not f.mismatches
            else "  <-- " + "; ".join((["UNBALANCED"] if not f.balanced else []) + f.mismatches)
        )
        errors = f"FILE {f.file_error}" if f.file_error else codes(f.errors)
        out(
            f"    {name[:40]:40} {f.rows:6} {f.stored:6} {f.duplicates:4} {f.error_rows:6} "
            f"{t:6.2f}  {errors}{mark}"
        )
    total_rows = sum(f.rows for f in acc.files)
    stored = sum(f.stored for f in acc.files)
    dups = sum(f.duplicates for f in acc.files)
    errs = sum(f.error_rows for f in acc.files if not f.file_error)
    ferrs = sum(1 for f in acc.files if f.file_error)
    out(
        f"    {'total':40} {total_rows:6} {stored:6} {dups:4} {errs:6}         "
        f"+ {ferrs} file errors covering {sum(f.rows for f in acc.files if f.file_error)} rows"
    )


def print_file_status(
    acc: sample_files.Accounting,
    statuses: Mapping[tuple[str, str], Mapping[str, Any] | None],
    seconds: Mapping[tuple[str, str | None], float],
    out: Say = say,
) -> None:
    """The per-file table from the status table (one item per object version, P26 to P31);
    a file whose status disagrees with the scans of both tables is marked."""
    out(
        f"    {'file':40} {'state':10} {'rows':>6} {'stored':>6} {'dup':>4} {'errors':>6}"
        f" {'retry':>5} {'time s':>6}  errors by code"
    )
    totals = Counter[str]()
    for f in acc.files:
        name = f.key.removeprefix(sample_files.PREFIX)
        status = statuses.get((f.key, f.version_id)) or {}
        t = seconds.get((f.key, f.version_id), 0.0)
        by_code = status.get("record_errors") or {}
        record_errors = Counter({str(c): int(n) for c, n in by_code.items()})
        file_error = (status.get("file_error") or {}).get("error_code")
        row = {
            "rows": int(status.get("rows_seen", 0)),
            "stored": int(status.get("stored", 0)),
            "duplicates": int(status.get("duplicates", 0)),
            "errors": sum(record_errors.values()),
            "retries": int(status.get("retries_pending", 0)),
        }
        totals.update(row)
        totals["files failed"] += 1 if file_error else 0
        where = f"{f.key} ({f.version_id[:8]}) status: "
        problems = [p.removeprefix(where) for p in acc.status_problems if p.startswith(where)]
        mark = "  <-- " + "; ".join(problems) if problems else ""
        errors = f"FILE {file_error}" if file_error else codes(record_errors)
        out(
            f"    {name[:40]:40} {status.get('state', 'MISSING')!s:10} {row['rows']:6}"
            f" {row['stored']:6} {row['duplicates']:4} {row['errors']:6} {row['retries']:5}"
            f" {t:6.2f}  {errors}{mark}"
        )
    out(
        f"    {'total':40} {'':10} {totals['rows']:6} {totals['stored']:6}"
        f" {totals['duplicates']:4} {totals['errors']:6} {totals['retries']:5}"
        f"         + {totals['files failed']} failed files"
    )


def print_errors_table(rows: list[dict[str, Any]], out: Say = say) -> None:
    by_code: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_code[str(row.get("error_code"))].append(row)
    for code in sorted(by_code):
        group = by_code[code]
        types = Counter(str(r.get("error_type")) for r in group)
        fields = Counter(str(r.get("field")) for r in group if r.get("field"))
        files = Counter(
            str(r.get("source_key", "?")).removeprefix(sample_files.PREFIX) for r in group
        )
        out(f"    {code:20} {len(group):4} row(s)  type {'/'.join(sorted(types))}")
        if fields:
            out(f"        fields: {', '.join(f'{k} {n}' for k, n in fields.most_common())}")
        out(f"        files:  {', '.join(f'{k} ({n})' for k, n in files.most_common(4))}"
            + (" ..." if len(files) > 4 else ""))  # fmt: skip
        example = min(group, key=lambda r: (str(r.get("source_key")), r.get("source_line") or 0))
        out(f"        e.g.    {str(example.get('error_message'))[:110]}")
    if rows:
        records = [r.get("record") or {} for r in rows]
        clear = sum(
            1 for rec in records if not str(rec.get("account_id", "****")).startswith("****")
        )
        with_desc = sum(1 for rec in records if "description" in rec)
        days = sorted(
            {
                round((r["expires_at"] - r["detected_at"] / 1000) / 86400)
                for r in rows
                if "expires_at" in r
            }
        )
        out(
            f"    data minimisation: account_id unmasked in {clear} rows, description kept in "
            f"{with_desc}; TTL expires_at after {days} day(s) in "
            f"{sum(1 for r in rows if 'expires_at' in r)}/{len(rows)} rows"
        )


def report(acc: sample_files.Accounting, label: str, out: Say = say) -> None:
    """The verdict banners: every record accounted for (or what is not), and model differences."""
    rows_in = sum(f.rows for f in acc.files)
    if acc.ok:
        banner(
            [
                f"EVERY RECORD ACCOUNTED FOR ({label}): {rows_in} rows in {len(acc.files)} files",
                f"stored {sum(f.stored for f in acc.files)} + duplicates "
                f"{sum(f.duplicates for f in acc.files)} + error rows "
                f"{sum(f.error_rows for f in acc.files if not f.file_error)} + "
                f"{sum(f.rows for f in acc.files if f.file_error)} rows in "
                f"{sum(1 for f in acc.files if f.file_error)} failed files; queues empty",
            ],
            out,
        )
    else:
        banner(["RECORDS UNACCOUNTED FOR", *acc.problems()[:30]], out)
    if not acc.matches_model:
        differences = [f"{f.key}: {'; '.join(f.mismatches)}" for f in acc.files if f.mismatches]
        banner(
            ["RESULTS DIFFER FROM WHAT design.md PRESCRIBES FOR THE SAMPLES", *differences[:30]],
            out,
        )
