"""The sample set's vocabulary: columns, currencies, error codes, and the Txn/Row/SampleFile types.

A `SampleFile` is one object to upload with every data row's intended outcome (`Row`: a validated
`Txn` or a record error code); a `SampleSet` is the files `samples.generate` builds.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from pipeline_local.constants import CONTRACT_DIR

DEFAULT_SEED = 20240601
# The demo and the e2e stacks apply the configuration with this max_file_bytes (the variable's
# default is 256 MiB; a smaller limit keeps the FILE_TOO_LARGE sample small).
SAMPLE_MAX_FILE_BYTES = 1_048_576
PREFIX = "incoming/2024/"


def contract_minor_units() -> dict[str, int]:
    """contract/currencies.json, ISO 4217 code -> minor unit: the table both handlers take theirs
    from (lib/processor_function.py embeds a copy, txn-core includes the file at build time)."""
    doc = json.loads((CONTRACT_DIR / "currencies.json").read_text(encoding="utf-8"))
    return {str(code): int(unit) for code, unit in doc["minor_units"].items()}


# The currencies the samples use (all unambiguous table entries, by minor unit 2, 0, 3), with
# the contract's minor units: a code the contract lacks fails here, at import.
_CONTRACT_MINOR_UNITS = contract_minor_units()
MINOR_UNITS: dict[str, int] = {
    code: _CONTRACT_MINOR_UNITS[code]
    for code in (
        "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK",
        "CAD", "AUD", "NZD", "SGD", "HKD", "ZAR", "MXN", "BRL", "INR",
        "JPY", "KRW", "ISK", "CLP",
        "KWD", "BHD", "OMR", "JOD", "TND",
    )
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
