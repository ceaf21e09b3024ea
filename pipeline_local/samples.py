"""Deterministic sample transaction files, with the outcome of every row known in advance.

`generate(seed)` builds a `SampleSet`: a few thousand valid transactions across many currencies
(JPY with 0 decimals, KWD/BHD/OMR/JOD/TND with 3) in several CSV and JSON files, plus files and
rows that exercise every record and file error code of design.md section 3, replays of earlier
rows (duplicates) and DUPLICATE_CONFLICTs. Every row carries the line the processor records for
it (`source_line`: 1-based physical line for CSV, the header being line 1; 0-based array index
for JSON) and its intended outcome: a validated `Txn`, or a record error code.

What happens to a valid row depends on what is already stored (design.md section 4: the first
write of a (transaction_id, timestamp) key wins; the same record again is a duplicate, different
values are a DUPLICATE_CONFLICT). `Ledger` models exactly that, so that the expected per-file
accounting of any sequence of uploads (the samples, the same again, new versions of some keys)
is known before anything runs. `account()` then compares the tables' contents with it row by row:
every row must end in exactly one place.

CLI: `python -m pipeline_local.samples DIR [--seed N]` writes the files and a manifest.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

DEFAULT_SEED = 20240601
# The demo and the e2e stacks apply the configuration with this max_file_bytes (the variable's
# default is 256 MiB; a smaller limit keeps the FILE_TOO_LARGE sample small).
SAMPLE_MAX_FILE_BYTES = 1_048_576
PREFIX = "incoming/2024/"

COLUMNS = (
    "transaction_id",
    "account_id",
    "amount",
    "currency",
    "transaction_type",
    "timestamp",
    "merchant_id",
    "description",
)
REQUIRED = COLUMNS[:6]

# ISO 4217 minor units of the currencies the samples use (all unambiguous table entries).
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

_TS_LOW = int(dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp())
_TS_HIGH = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
_OFFSETS = ("Z", "Z", "+00:00", "+01:00", "+02:00", "-05:00", "+05:30", "+09:00", "-03:30")
_DESCRIPTIONS = (
    "Coffee beans, 1 kg",
    'Invoice "2024-117" settlement',
    "Müller & Söhne GmbH",
    "Rent \u2013 March",
    "Supermarché Côte d'Azur",
    "東京 office supplies",
    "Refund: damaged parcel",
    "Salary; bonus included",
    "FX conversion 1.0843",
    "",
    "",
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
    timestamp_ms: int
    merchant_id: str | None = None
    description: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        """The transactions table's primary key (partition, sort)."""
        return (self.transaction_id, self.timestamp_ms)

    def canonical(self) -> tuple[Any, ...]:
        """What record_hash covers: equal tuples are replays, different ones conflicts."""
        return (
            self.transaction_id,
            self.account_id,
            self.amount.normalize(),
            self.currency,
            self.transaction_type,
            self.timestamp_ms,
            self.merchant_id or None,
            self.description or None,
        )


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


# --------------------------------------------------------------------------------------------
# Rendering helpers


class RawJson(str):
    """A JSON value written verbatim (a number token such as `1e3` or `10.50`)."""


def _json_value(value: Any) -> str:
    if isinstance(value, RawJson):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_json_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _render_ts(epoch_s: int, millis_text: str, offset: str) -> str:
    if offset == "Z":
        delta = dt.timedelta(0)
    else:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = offset[1:].split(":")
        delta = sign * dt.timedelta(hours=int(hours), minutes=int(minutes))
    local = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC) + delta
    return local.strftime("%Y-%m-%dT%H:%M:%S") + millis_text + offset


def _amount_text(amount: Decimal, minor: int) -> str:
    return f"{amount:.{minor}f}"


class _Gen:
    """Random but reproducible field values."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def account_id(self) -> str:
        rng = self.rng
        country = rng.choice(("DE", "FR", "NL", "GB", "ES", "IT", "AT", "CH", "BE", "PL"))
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(14, 28)))
        if country == "GB":
            bank = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
            return f"GB{digits[:2]}{bank}{digits[2:16]}"
        return country + digits

    def txn(self, tid: str, currency: str | None = None) -> tuple[Txn, dict[str, str]]:
        """A valid record and its text rendering (every field as the producer writes it)."""
        rng = self.rng
        currency = currency or rng.choice(list(MINOR_UNITS))
        minor = MINOR_UNITS[currency]
        scale = {0: 1, 2: 100, 3: 1000}[minor]
        units = rng.randint(1, 2_000_000) if minor else rng.randint(1, 5_000_000)
        amount = Decimal(units) / scale
        amount_text = _amount_text(amount, minor)
        variant = rng.random()
        if variant < 0.08:
            amount_text += "0" if minor else ".00"  # trailing zeros beyond the minor unit
        elif variant < 0.12:
            amount_text = f" {amount_text} "  # values are trimmed
        epoch_s = rng.randint(_TS_LOW, _TS_HIGH - 1)
        frac = rng.choice(("", "", "", ".123", ".5", ".250", ".987654"))
        millis = int((frac[1:] + "000")[:3]) if frac else 0
        ts_text = _render_ts(epoch_s, frac, rng.choice(_OFFSETS))
        ttype = rng.choice(TYPES)
        ttype_text = rng.choice((ttype, ttype, ttype.lower(), ttype.capitalize()))
        merchant = f"MERCH-{rng.randint(1, 99999):05d}" if rng.random() < 0.7 else ""
        desc = rng.choice(_DESCRIPTIONS)
        currency_text = currency.lower() if rng.random() < 0.05 else currency
        txn = Txn(
            transaction_id=tid,
            account_id=self.account_id(),
            amount=amount,
            currency=currency,
            transaction_type=ttype,
            timestamp_ms=epoch_s * 1000 + millis,
            merchant_id=merchant or None,
            description=desc or None,
        )
        text = {
            "transaction_id": tid,
            "account_id": txn.account_id,
            "amount": amount_text,
            "currency": currency_text,
            "transaction_type": ttype_text,
            "timestamp": ts_text,
            "merchant_id": merchant,
            "description": desc,
        }
        return txn, text


def _csv_line(values: Sequence[str], terminator: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator=terminator).writerow(values)
    return out.getvalue().encode("utf-8")


class _CsvBuilder:
    def __init__(
        self, key: str, columns: Sequence[str] = COLUMNS, crlf: bool = False, bom: bool = False
    ) -> None:
        self.key = key
        self.columns = list(columns)
        self.term = "\r\n" if crlf else "\n"
        self.parts: list[bytes] = [b"\xef\xbb\xbf" if bom else b""]
        self.parts.append(_csv_line(self.columns, self.term))
        self.rows: list[Row] = []

    @property
    def next_line(self) -> int:
        return len(self.rows) + 2  # the header is line 1

    def add(self, text: Mapping[str, str], row: Row) -> None:
        self.parts.append(_csv_line([text.get(c, "") for c in self.columns], self.term))
        self.rows.append(row)

    def add_raw(self, raw: bytes, row: Row) -> None:
        self.parts.append(raw + self.term.encode())
        self.rows.append(row)

    def build(self, description: str, **kwargs: Any) -> SampleFile:
        return SampleFile(self.key, b"".join(self.parts), self.rows, description, **kwargs)


class _JsonBuilder:
    def __init__(self, key: str, wrapped: bool = False) -> None:
        self.key = key
        self.wrapped = wrapped
        self.items: list[str] = []
        self.rows: list[Row] = []

    @property
    def next_line(self) -> int:
        return len(self.rows)

    def add(self, value: Any, row: Row) -> None:
        self.items.append(_json_value(value))
        self.rows.append(row)

    def build(self, description: str, **kwargs: Any) -> SampleFile:
        array = "[\n  " + ",\n  ".join(self.items) + "\n]"
        text = '{"transactions": ' + array + "}\n" if self.wrapped else array + "\n"
        return SampleFile(self.key, text.encode("utf-8"), self.rows, description, **kwargs)


def _json_record(txn: Txn, text: Mapping[str, str], rng: random.Random) -> dict[str, Any]:
    """A valid record as JSON: amount as a string or as a number token, optional fields absent,
    null or empty."""
    rec: dict[str, Any] = {}
    for name in COLUMNS:
        value = text[name]
        if name == "amount" and rng.random() < 0.5:
            rec[name] = RawJson(value.strip())
        elif name in ("merchant_id", "description") and not value:
            choice = rng.random()
            if choice < 0.4:
                continue
            rec[name] = None if choice < 0.7 else ""
        else:
            rec[name] = value
    return rec


# --------------------------------------------------------------------------------------------
# The sample set


def _valid_csv(
    gen: _Gen,
    key: str,
    tag: str,
    count: int,
    description: str,
    currencies: Sequence[str] | None = None,
    **builder: Any,
) -> SampleFile:
    b = _CsvBuilder(key, **builder)
    for i in range(count):
        tid = f"{tag}-{i:06d}"
        txn, text = gen.txn(tid, gen.rng.choice(currencies) if currencies else None)
        b.add(text, Row(b.next_line, tid, txn=txn))
    return b.build(description)


def _valid_json(
    gen: _Gen,
    key: str,
    tag: str,
    count: int,
    description: str,
    currencies: Sequence[str] | None = None,
    wrapped: bool = False,
) -> SampleFile:
    b = _JsonBuilder(key, wrapped=wrapped)
    for i in range(count):
        tid = f"{tag}-{i:06d}"
        txn, text = gen.txn(tid, gen.rng.choice(currencies) if currencies else None)
        b.add(_json_record(txn, text, gen.rng), Row(b.next_line, tid, txn=txn))
    return b.build(description)


def _variant_text(txn: Txn, text: Mapping[str, str]) -> dict[str, str]:
    """The same record written differently (a replay must still be recognised as one)."""
    out = dict(text)
    minor = MINOR_UNITS[txn.currency]
    out["amount"] = _amount_text(txn.amount, minor) + ("0" if minor else "")
    out["transaction_type"] = txn.transaction_type.lower()
    out["currency"] = f" {txn.currency} "
    return out


def _replays_file(
    gen: _Gen, key: str, source: SampleFile, source_texts: list[dict[str, str]]
) -> SampleFile:
    """Replays of `source` rows, new rows, in-file duplicates and conflicts."""
    rng = gen.rng
    b = _CsvBuilder(key)
    picks = rng.sample(range(len(source.rows)), k=min(len(source.rows), 90))
    replay_idx, conflict_idx = picks[:80], picks[80:85]
    for i in replay_idx:
        txn = source.rows[i].txn
        assert txn is not None
        text = source_texts[i] if rng.random() < 0.5 else _variant_text(txn, source_texts[i])
        b.add(text, Row(b.next_line, txn.transaction_id, txn=txn, note="replay"))
    new: list[tuple[Txn, dict[str, str]]] = []
    for i in range(30):
        txn, text = gen.txn(f"T05-{i:06d}")
        new.append((txn, text))
        b.add(text, Row(b.next_line, txn.transaction_id, txn=txn))
    for txn, text in new[:5]:  # the same rows again, later in the same file
        b.add(text, Row(b.next_line, txn.transaction_id, txn=txn, note="in-file replay"))
    for i in conflict_idx:  # same key (id and timestamp), different amount
        old = source.rows[i].txn
        assert old is not None
        minor = MINOR_UNITS[old.currency]
        changed = old.amount + Decimal(1)
        txn = Txn(**{**old.__dict__, "amount": changed})
        text = dict(source_texts[i], amount=_amount_text(changed, minor))
        b.add(text, Row(b.next_line, txn.transaction_id, txn=txn, note="conflict"))
    return b.build("replays of file 01 (some written differently), new rows, conflicts")


# (field, text, expected code) for CSV rows that are valid except for one field.
_CSV_RECORD_CASES: tuple[tuple[str, str, str], ...] = (
    ("transaction_id", "", "MISSING_FIELD"),
    ("account_id", "", "MISSING_FIELD"),
    ("amount", "", "MISSING_FIELD"),
    ("currency", "  ", "MISSING_FIELD"),
    ("transaction_type", "", "MISSING_FIELD"),
    ("timestamp", "", "MISSING_FIELD"),
    ("transaction_id", "TX#0001", "INVALID_FORMAT"),
    ("transaction_id", "T" * 65, "INVALID_FORMAT"),
    ("account_id", "DE89-3704-0044", "INVALID_FORMAT"),
    ("account_id", "A" * 35, "INVALID_FORMAT"),
    ("amount", "1e3", "INVALID_FORMAT"),
    ("amount", "12,50", "INVALID_FORMAT"),
    ("amount", ".5", "INVALID_FORMAT"),
    ("amount", "+5.00", "INVALID_FORMAT"),
    ("amount", "1 000.00", "INVALID_FORMAT"),
    ("timestamp", "2024-02-30T10:00:00Z", "INVALID_FORMAT"),
    ("timestamp", "2024-01-15T10:00:00", "INVALID_FORMAT"),
    ("timestamp", "15/01/2024 10:00", "INVALID_FORMAT"),
    ("merchant_id", "M" * 65, "INVALID_FORMAT"),
    ("description", "chime\x07bell", "INVALID_FORMAT"),
    ("description", "x" * 257, "INVALID_FORMAT"),
    ("amount", "0", "INVALID_VALUE"),
    ("amount", "0.00", "INVALID_VALUE"),
    ("amount", "-25.00", "INVALID_VALUE"),
    ("amount", "1000000000000", "INVALID_VALUE"),
    ("transaction_type", "WITHDRAWAL", "INVALID_VALUE"),
    ("timestamp", "1999-12-31T23:59:59Z", "INVALID_VALUE"),
    ("timestamp", "2100-06-01T00:00:00+00:00", "INVALID_VALUE"),
    ("currency", "ZZZ", "UNKNOWN_CURRENCY"),
    ("currency", "EURO", "UNKNOWN_CURRENCY"),
)
# (currency, amount text, expected code or None for valid): precision rules per minor unit.
_PRECISION_CASES: tuple[tuple[str, str, str | None], ...] = (
    ("JPY", "1500.5", "PRECISION_EXCEEDED"),
    ("EUR", "10.123", "PRECISION_EXCEEDED"),
    ("KWD", "1.2345", "PRECISION_EXCEEDED"),
    ("JPY", "1500.00", None),
    ("EUR", "10.500", None),
    ("KWD", "1.234", None),
    ("EUR", "999999999999.99", None),
)


def _record_errors_csv(gen: _Gen, key: str) -> SampleFile:
    rng = gen.rng
    b = _CsvBuilder(key)
    n = 0

    def valid() -> tuple[Txn, dict[str, str]]:
        nonlocal n
        n += 1
        return gen.txn(f"T06-{n:06d}")

    def filler(count: int) -> None:
        for _ in range(count):
            txn, text = valid()
            b.add(text, Row(b.next_line, txn.transaction_id, txn=txn))

    filler(3)
    for field_name, value, code in _CSV_RECORD_CASES:
        txn, text = valid()
        text[field_name] = value
        if field_name == "currency":
            text["amount"] = "100"  # no precision question without a known currency
        tid = None if field_name == "transaction_id" else txn.transaction_id
        b.add(text, Row(b.next_line, tid, error=code, note=f"{field_name}={value[:20]!r}"))
        filler(rng.randint(0, 2))
    for currency, amount_text, code in _PRECISION_CASES:
        txn, text = valid()
        text.update(currency=currency, amount=amount_text)
        if code:
            b.add(text, Row(b.next_line, txn.transaction_id, error=code, note=amount_text))
        else:
            good = Txn(**{**txn.__dict__, "currency": currency, "amount": Decimal(amount_text)})
            b.add(text, Row(b.next_line, txn.transaction_id, txn=good, note=amount_text))
    # Rows with the wrong number of cells, and a row whose bytes are not UTF-8.
    txn, text = valid()
    cells = [text[c] for c in COLUMNS]
    b.add_raw(
        _csv_line(cells[:5], "").rstrip(),
        Row(b.next_line, None, error="MALFORMED_ROW", note="5 cells"),
    )
    txn, text = valid()
    b.add_raw(
        _csv_line([*(text[c] for c in COLUMNS), "surplus"], ""),
        Row(b.next_line, None, error="MALFORMED_ROW", note="9 cells"),
    )
    filler(2)
    txn, text = valid()
    raw = _csv_line([text[c] for c in COLUMNS[:-1]] + ["placeholder"], "")
    raw = raw.replace(b"placeholder", b"Caf\xe9 au lait")  # latin-1, not UTF-8
    b.add_raw(raw, Row(b.next_line, None, error="INVALID_ENCODING", note="latin-1 row"))
    filler(2)
    # A conflict inside the file: same id and timestamp as an earlier row, another amount.
    first = next(r.txn for r in b.rows if r.txn is not None)
    minor = MINOR_UNITS[first.currency]
    other = Txn(**{**first.__dict__, "amount": first.amount + 7})
    b.add(
        {
            "transaction_id": other.transaction_id,
            "account_id": other.account_id,
            "amount": _amount_text(other.amount, minor),
            "currency": other.currency,
            "transaction_type": other.transaction_type,
            "timestamp": _render_ts(other.timestamp_ms // 1000, _ms_text(other), "Z"),
            "merchant_id": other.merchant_id or "",
            "description": other.description or "",
        },
        Row(b.next_line, other.transaction_id, txn=other, note="conflict"),
    )
    filler(3)
    return b.build("every CSV record error code between valid rows")


def _ms_text(txn: Txn) -> str:
    ms = txn.timestamp_ms % 1000
    return f".{ms:03d}" if ms else ""


def _record_errors_json(gen: _Gen, key: str) -> SampleFile:
    rng = gen.rng
    b = _JsonBuilder(key)
    n = 0

    def valid() -> tuple[Txn, dict[str, str]]:
        nonlocal n
        n += 1
        return gen.txn(f"T07-{n:06d}")

    def filler(count: int) -> None:
        for _ in range(count):
            txn, text = valid()
            b.add(_json_record(txn, text, rng), Row(b.next_line, txn.transaction_id, txn=txn))

    def bad(change: dict[str, Any], code: str, note: str, drop: str | None = None) -> None:
        _, text = valid()
        rec: dict[str, Any] = {k: v.strip() for k, v in text.items() if v.strip()}
        rec.update(change)
        if drop:
            rec.pop(drop)
        tid = rec.get("transaction_id") if isinstance(rec.get("transaction_id"), str) else None
        b.add(rec, Row(b.next_line, tid, error=code, note=note))

    filler(2)
    b.add(RawJson("42"), Row(b.next_line, None, error="INVALID_FORMAT", note="record is a number"))
    b.add("TX-1", Row(b.next_line, None, error="INVALID_FORMAT", note="record is a string"))
    filler(1)
    bad({"amount": RawJson("true")}, "INVALID_FORMAT", "amount is a boolean")
    bad({"account_id": ["DE89370400440532013000"]}, "INVALID_FORMAT", "account_id is an array")
    bad({"description": {"text": "nested"}}, "INVALID_FORMAT", "description is an object")
    bad({"amount": RawJson("1e3")}, "INVALID_FORMAT", "amount token 1e3")
    bad({"amount": RawJson("2.5E+2")}, "INVALID_FORMAT", "amount token 2.5E+2")
    filler(2)
    bad({"currency": None, "amount": "100"}, "MISSING_FIELD", "currency null")
    bad({}, "MISSING_FIELD", "timestamp absent", drop="timestamp")
    bad({"note": "hello"}, "UNKNOWN_FIELD", "extra key note")
    bad({"transaction_type": "refunded"}, "INVALID_VALUE", "transaction_type refunded")
    bad({"amount": RawJson("-3")}, "INVALID_VALUE", "amount token -3")
    bad({"currency": "QQQ", "amount": "100"}, "UNKNOWN_CURRENCY", "currency QQQ")
    bad({"currency": "EUR", "amount": RawJson("19.999")}, "PRECISION_EXCEEDED", "19.999 EUR")
    filler(2)
    # Valid edge cases: number tokens, large amounts, null/empty optionals.
    for amount_text, currency in (("10.25", "EUR"), ("123456789012", "JPY"), ("0.1", "USD")):
        txn, text = valid()
        rec: dict[str, Any] = dict(text)
        rec.update(amount=RawJson(amount_text), currency=currency, merchant_id=None)
        rec["description"] = ""
        good = Txn(
            **{
                **txn.__dict__,
                "amount": Decimal(amount_text),
                "currency": currency,
                "merchant_id": None,
                "description": None,
            }
        )
        b.add(rec, Row(b.next_line, txn.transaction_id, txn=good, note=f"token {amount_text}"))
    filler(2)
    return b.build("every JSON record error code between valid records")


def _file_errors(gen: _Gen, max_file_bytes: int) -> list[SampleFile]:
    rng = gen.rng
    files: list[SampleFile] = []

    def csv_with(columns: Sequence[str], key: str, count: int = 3) -> tuple[bytes, list[Row]]:
        b = _CsvBuilder(key, columns=columns)
        for i in range(count):
            txn, text = gen.txn(f"TF-{key.rsplit('/', 1)[-1][:2]}-{i:04d}")
            b.add(text, Row(b.next_line, txn.transaction_id, txn=txn))
        return b.build("").body, b.rows

    header = _csv_line(COLUMNS, "\n")
    files.append(SampleFile(PREFIX + "10-empty.csv", b"", [], "no bytes at all", "EMPTY_FILE"))
    files.append(
        SampleFile(PREFIX + "11-header-only.csv", header, [], "a header, no rows", "EMPTY_FILE")
    )
    files.append(SampleFile(PREFIX + "12-empty-array.json", b"[]\n", [], "[]", "EMPTY_FILE"))
    files.append(
        SampleFile(
            PREFIX + "13-empty-wrapped.json",
            b'{"transactions": []}\n',
            [],
            '{"transactions": []}',
            "EMPTY_FILE",
        )
    )
    jb = _JsonBuilder(PREFIX + "14-truncated.json")
    for i in range(3):
        txn, text = gen.txn(f"TF-14-{i:04d}")
        jb.add(_json_record(txn, text, rng), Row(i, txn.transaction_id, txn=txn))
    truncated = jb.build("")
    files.append(
        SampleFile(
            truncated.key,
            truncated.body[: len(truncated.body) * 2 // 3],
            truncated.rows,
            "JSON cut off mid-document",
            "MALFORMED_FILE",
        )
    )
    files.append(
        SampleFile(
            PREFIX + "15-scalar.json",
            b'"transactions"\n',
            [],
            "top-level JSON string",
            "MALFORMED_FILE",
        )
    )
    txn, text = gen.txn("TF-16-0000")
    deep: Any = "bottom"
    for _ in range(100):
        deep = [deep]
    rec = {k: v for k, v in text.items() if k != "description"} | {"description": deep}
    files.append(
        SampleFile(
            PREFIX + "16-too-deep.json",
            ("[" + _json_value(rec) + "]\n").encode(),
            [Row(0, "TF-16-0000", error="MALFORMED_FILE")],
            "JSON nested 102 levels deep",
            "MALFORMED_FILE",
        )
    )
    txn, text = gen.txn("TF-17-0000")
    text["description"] = "Café crème"
    files.append(
        SampleFile(
            PREFIX + "17-latin1.json",
            ("[" + _json_value(text) + "]\n").encode("latin-1"),
            [Row(0, "TF-17-0000", txn=txn)],
            "JSON document encoded in Latin-1",
            "INVALID_ENCODING",
        )
    )
    body, rows = csv_with(COLUMNS, PREFIX + "18-latin1-header.csv")
    body = body.replace(b"description", b"descripci\xf3n", 1)
    files.append(
        SampleFile(
            PREFIX + "18-latin1-header.csv",
            body,
            rows,
            "CSV header not UTF-8",
            "INVALID_ENCODING",
        )
    )
    for key, columns, what in (
        ("19-missing-column.csv", [c for c in COLUMNS if c != "currency"], "no currency column"),
        ("20-unknown-column.csv", [*COLUMNS, "iban"], "unknown column iban"),
        ("21-duplicate-column.csv", [*COLUMNS[:3], "amount", *COLUMNS[3:]], "amount twice"),
    ):
        body, rows = csv_with(columns, PREFIX + key)
        files.append(SampleFile(PREFIX + key, body, rows, what, "INVALID_HEADER"))
    big = _CsvBuilder(PREFIX + "22-too-large.csv")
    i = 0
    while sum(map(len, big.parts)) <= max_file_bytes:
        txn, text = gen.txn(f"TF-22-{i:06d}")
        big.add(text, Row(big.next_line, txn.transaction_id, txn=txn))
        i += 1
    files.append(
        big.build(f"{i} rows, over MAX_FILE_BYTES ({max_file_bytes})", file_error="FILE_TOO_LARGE")
    )
    vanish = _valid_json(gen, PREFIX + "23-vanishes.json", "TF-23", 4, "")
    vanish.description = "version deleted before the processor reads it"
    vanish.file_error = "OBJECT_NOT_FOUND"
    vanish.delete_before_processing = True
    files.append(vanish)
    return files


def generate(
    seed: int = DEFAULT_SEED, *, scale: float = 1.0, max_file_bytes: int | None = None
) -> SampleSet:
    """The sample set. `scale` shrinks the four bulk files (tests use a smaller set)."""
    max_file_bytes = max_file_bytes or SAMPLE_MAX_FILE_BYTES
    gen = _Gen(seed)

    def n(count: int) -> int:
        return max(12, int(count * scale))

    europe = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK")
    asia_gulf = ("JPY", "KRW", "ISK", "KWD", "BHD", "OMR", "JOD", "TND", "SGD", "HKD", "INR")
    files: list[SampleFile] = []

    # File 01 keeps the text of its rows so that file 05 can replay them.
    b = _CsvBuilder(PREFIX + "01-card-payments.csv")
    texts01: list[dict[str, str]] = []
    for i in range(n(900)):
        txn, text = gen.txn(f"T01-{i:06d}", gen.rng.choice(europe))
        texts01.append(text)
        b.add(text, Row(b.next_line, txn.transaction_id, txn=txn))
    f01 = b.build("card payments, European currencies, LF line ends")
    files.append(f01)
    files.append(
        _valid_json(
            gen,
            PREFIX + "02-wire transfers+fx.json",
            "T02",
            n(700),
            "wire transfers in every currency; amounts as strings and number tokens",
        )
    )
    files.append(
        _valid_csv(
            gen,
            PREFIX + "03-asia-gulf.csv",
            "T03",
            n(600),
            "JPY/KRW/ISK (0 decimals), KWD/BHD/OMR/JOD/TND (3); BOM, CRLF, other column order",
            currencies=asia_gulf,
            columns=(
                "timestamp",
                "currency",
                "amount",
                "transaction_id",
                "transaction_type",
                "account_id",
                "description",
                "merchant_id",
            ),
            crlf=True,
            bom=True,
        )
    )
    files.append(
        _valid_json(
            gen,
            PREFIX + "04-settlements.json",
            "T04",
            n(500),
            'settlements in an object {"transactions": [...]}',
            wrapped=True,
        )
    )
    files.append(_replays_file(gen, PREFIX + "05-replays.csv", f01, texts01))
    files.append(_record_errors_csv(gen, PREFIX + "06-record-errors.csv"))
    files.append(_record_errors_json(gen, PREFIX + "07 record errors ü.json"))
    files.extend(_file_errors(gen, max_file_bytes))
    files.append(
        SampleFile(
            PREFIX + "notes.txt",
            b"not a transaction file\n",
            [],
            "suffix .txt: no notification",
            dispatched=False,
        )
    )
    files.append(
        SampleFile(
            PREFIX + "LEGACY.CSV",
            f01.body[:400],
            [],
            "suffix .CSV: filters are case-sensitive, no notification",
            dispatched=False,
        )
    )
    return SampleSet(seed=seed, max_file_bytes=max_file_bytes, files=files)


def bulk_file(key: str, count: int, *, seed: int = DEFAULT_SEED, tag: str = "TB") -> SampleFile:
    """One valid file of `count` rows (CSV or JSON by the key's suffix), e.g. to span several
    1000-row batches of the processor."""
    gen = _Gen(seed)
    if key.endswith(".json"):
        return _valid_json(gen, key, tag, count, f"{count} valid records")
    return _valid_csv(gen, key, tag, count, f"{count} valid rows")


def new_versions(samples: SampleSet, seed: int = DEFAULT_SEED + 1) -> list[SampleFile]:
    """Second versions of two bulk files: changed amounts (conflicts), new rows, replays."""
    gen = _Gen(seed)
    out: list[SampleFile] = []
    for old in samples.files[:2]:
        fmt_json = old.fmt == "json"
        builder: _CsvBuilder | _JsonBuilder = (
            _JsonBuilder(old.key) if fmt_json else _CsvBuilder(old.key)
        )
        for i, row in enumerate(old.rows):
            txn = row.txn
            assert txn is not None
            if i % 10 == 3:  # corrected amount: a conflict with the stored first version
                txn = Txn(**{**txn.__dict__, "amount": txn.amount + 1})
            _add_txn(builder, txn, gen.rng, note="v2")
        for i in range(len(old.rows) // 10):
            txn, _ = gen.txn(f"{old.rows[0].transaction_id[:3]}V2-{i:06d}")
            _add_txn(builder, txn, gen.rng, note="v2 new")
        out.append(builder.build(f"new version of {old.key}"))
    return out


def _add_txn(builder: _CsvBuilder | _JsonBuilder, txn: Txn, rng: random.Random, note: str) -> None:
    minor = MINOR_UNITS[txn.currency]
    text = {
        "transaction_id": txn.transaction_id,
        "account_id": txn.account_id,
        "amount": _amount_text(txn.amount, minor),
        "currency": txn.currency,
        "transaction_type": txn.transaction_type,
        "timestamp": _render_ts(txn.timestamp_ms // 1000, _ms_text(txn), "Z"),
        "merchant_id": txn.merchant_id or "",
        "description": txn.description or "",
    }
    row = Row(builder.next_line, txn.transaction_id, txn=txn, note=note)
    if isinstance(builder, _JsonBuilder):
        builder.add(_json_record(txn, text, rng), row)
    else:
        builder.add(text, row)


# --------------------------------------------------------------------------------------------
# Expected outcomes


@dataclass
class Expected:
    """What must become of one uploaded object version."""

    key: str
    rows: int
    stored: int = 0
    duplicates: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    file_error: str | None = None
    outcomes: dict[int, str] = field(default_factory=dict)  # line -> stored|duplicate|<code>

    @property
    def error_rows(self) -> int:
        return sum(self.errors.values())


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


# --------------------------------------------------------------------------------------------
# Accounting: where did every row of every uploaded object version end?


@dataclass
class Upload:
    """One object version put into the bucket, and what the model expects of it."""

    sample: SampleFile
    version_id: str
    expected: Expected


@dataclass
class FileAccount:
    key: str
    version_id: str
    rows: int
    stored: int = 0
    duplicates: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    file_error: str | None = None
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
    def error_rows(self) -> int:
        return sum(self.errors.values())

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
            and not self.status_problems
            and not any(self.queue_depths.values())
            and not self.orphan_items
            and not self.duplicate_error_rows
            and not self.orphan_error_rows
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
    for n, row in enumerate(error_rows):
        k = (str(row.get("source_key")), str(row.get("source_version_id")))
        code = row.get("error_code")
        if row.get("error_type") == "FILE":
            file_errs.setdefault(k, []).append(n)
        elif code in ("FILE_PROCESSING_FAILED", "FILE_RESUME_FAILED"):
            start = _num(row.get("source_line")) if code == "FILE_RESUME_FAILED" else None
            failed.setdefault(k, []).append((n, start if start is not None else -1))
        else:
            errs_by_line.setdefault((*k, _num(row.get("source_line"))), []).append(n)

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
        for (k, v, line), found in errs_by_line.items():
            if (k, v) == (key, version) and line not in lines:
                acc.unexpected += [f"error row at line {line}"] * len(found)
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


def write(samples: SampleSet, directory: Path) -> None:
    """Write every sample file (keys become paths) and manifest.json under `directory`."""
    for f in samples.files:
        path = directory / f.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.body)
    (directory / "manifest.json").write_text(json.dumps(samples.manifest(), indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the sample transaction files")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--max-file-bytes", type=int, default=SAMPLE_MAX_FILE_BYTES)
    args = parser.parse_args(argv)
    samples = generate(args.seed, scale=args.scale, max_file_bytes=args.max_file_bytes)
    write(samples, args.directory)
    ledger = Ledger()
    for f in samples.dispatched:
        exp = ledger.process(f)
        print(
            f"{f.key:52} rows {exp.rows:5}  stored {exp.stored:5}  dup {exp.duplicates:3}  "
            f"errors {dict(exp.errors)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
