"""The sample set's vocabulary: columns, currencies, error codes, and the Txn/Row/SampleFile types.

A `SampleFile` is one object to upload with every data row's intended outcome (`Row`: a validated
`Txn` or a record error code); a `SampleSet` is the files `samples.generate` builds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

DEFAULT_SEED = 20240601
# The demo and the e2e stacks apply the configuration with this max_file_bytes (the variable's
# default is 256 MiB; a smaller limit keeps the FILE_TOO_LARGE sample small).
SAMPLE_MAX_FILE_BYTES = 1_048_576
PREFIX = "incoming/2024/"


# ISO 4217 minor units of the currencies the samples use (all unambiguous table entries),
# typed here so that the oracle stays independent of the table the handlers take theirs from;
# tests/unit/test_contract.py holds it to contract/currencies.json.
MINOR_UNITS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "CAD": 2, "AUD": 2, "NZD": 2, "SGD": 2, "HKD": 2, "ZAR": 2, "MXN": 2, "BRL": 2, "INR": 2,
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0,
    "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}  # fmt: skip
TYPES = ("DEBIT", "CREDIT", "TRANSFER", "PAYMENT", "REFUND")

RECORD_CODES = (
    "MISSING_FIELD",
    "INVALID_FORMAT",
    "INVALID_VALUE",
    "UNKNOWN_CURRENCY",
    "PRECISION_EXCEEDED",
    "UNKNOWN_FIELD",
    "MALFORMED_ROW",
    "INVALID_ENCODING",
    "DUPLICATE_CONFLICT",
)
FILE_CODES = (
    "EMPTY_FILE",
    "MALFORMED_FILE",
    "INVALID_ENCODING",
    "INVALID_HEADER",
    "FILE_TOO_LARGE",
    "OBJECT_NOT_FOUND",
)


# --------------------------------------------------------------------------------------------
# Rows and files


@dataclass(frozen=True)
class Txn:
    """A validated transaction, as the processor stores it (before lineage attributes)."""

    transaction_id: str
    account_id: str
    amount: Decimal
    currency: str
    transaction_type: str
    timestamp: int  # epoch milliseconds
    merchant_id: str | None = None
    description: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        """The transactions table's primary key (partition, sort)."""
        return (self.transaction_id, self.timestamp)

    def canonical(self) -> tuple[Any, ...]:
        """What record_hash covers: equal tuples are replays, different ones conflicts."""
        return (
            self.transaction_id,
            self.account_id,
            self.amount.normalize(),
            self.currency,
            self.transaction_type,
            self.timestamp,
            self.merchant_id or None,
            self.description or None,
        )


# A file's columns (a JSON record's keys) are the transaction's fields, in the contract's
# order; the first six are required.
COLUMNS = tuple(f.name for f in fields(Txn))
REQUIRED = COLUMNS[:6]


@dataclass
class Row:
    """One data row of a file and what the processor must make of it."""

    line: int  # source_line as the processor records it
    transaction_id: str | None  # as the error row would carry it (None when absent/invalid)
    txn: Txn | None = None  # the validated record, for a valid row
    error: str | None = None  # the record error code, for an invalid row
    note: str = ""


@dataclass
class SampleFile:
    key: str
    body: bytes
    rows: list[Row]
    description: str
    file_error: str | None = None
    # OBJECT_NOT_FOUND: the object version is deleted after S3 sent the notification and
    # before the processor reads it.
    delete_before_processing: bool = False
    # Objects that do not match the bucket's notification filters are never dispatched.
    dispatched: bool = True

    @property
    def fmt(self) -> str:
        return "json" if self.key.endswith(".json") else "csv"


@dataclass
class SampleSet:
    seed: int
    max_file_bytes: int
    files: list[SampleFile]

    def by_key(self) -> dict[str, SampleFile]:
        return {f.key: f for f in self.files}

    @property
    def dispatched(self) -> list[SampleFile]:
        return [f for f in self.files if f.dispatched]

    def manifest(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "max_file_bytes": self.max_file_bytes,
            "files": [
                {
                    "key": f.key,
                    "bytes": len(f.body),
                    "description": f.description,
                    "dispatched": f.dispatched,
                    "file_error": f.file_error,
                    "delete_before_processing": f.delete_before_processing,
                    "rows": len(f.rows),
                    "record_errors": dict(Counter(r.error for r in f.rows if r.error)),
                }
                for f in self.files
            ],
        }
