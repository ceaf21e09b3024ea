"""Predict what must become of every uploaded row: the transactions table's first-write-wins model.

What happens to a valid row depends on what is already stored (design.md section 4: the first
write of a (transaction_id, timestamp) key wins; the same record again is a duplicate, different
values are a DUPLICATE_CONFLICT). `Ledger` models exactly that, so that the expected per-file
accounting of any sequence of uploads is known before anything runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline_local.sample_model import SampleFile


@dataclass
class RowCounts:
    """Where the rows of one object version end: stored, duplicates, error rows by code (a file
    error is one error row for the whole file)."""

    key: str
    rows: int
    stored: int = 0
    duplicates: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    file_error: str | None = None

    @property
    def error_rows(self) -> int:
        return sum(self.errors.values())


@dataclass
class Expected(RowCounts):
    """What must become of one uploaded object version."""

    outcomes: dict[int, str] = field(default_factory=dict)  # line -> stored|duplicate|<code>


class Ledger:
    """The transactions table as design.md section 4 defines it: first write wins."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, int], tuple[Any, ...]] = {}

    def process(self, sample: SampleFile) -> Expected:
        exp = Expected(sample.key, rows=len(sample.rows), file_error=sample.file_error)
        if sample.file_error:
            exp.errors[sample.file_error] += 1
            return exp
        for row in sample.rows:
            outcome: str
            if row.txn is None:
                outcome = row.error or "?"
            else:
                have = self.stored.get(row.txn.key)
                if have is None:
                    self.stored[row.txn.key] = row.txn.canonical()
                    outcome = "stored"
                elif have == row.txn.canonical():
                    outcome = "duplicate"
                else:
                    outcome = "DUPLICATE_CONFLICT"
            exp.outcomes[row.line] = outcome
            if outcome == "stored":
                exp.stored += 1
            elif outcome == "duplicate":
                exp.duplicates += 1
            else:
                exp.errors[outcome] += 1
        return exp
