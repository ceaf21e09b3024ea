"""Write sample rows as producers do: random valid records and their CSV/JSON text, row by row.

`Gen` draws reproducible field values; `CsvBuilder`/`JsonBuilder` assemble a file while recording
the `source_line` the processor will report for every row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pipeline_local.sample_model import COLUMNS, MINOR_UNITS, TYPES, Row, SampleFile, Txn

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
# Rendering helpers


class RawJson(str):
    """A JSON value written verbatim (a number token such as `1e3` or `10.50`)."""


def json_value(value: Any) -> str:
    if isinstance(value, RawJson):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {json_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(json_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def format_ts(epoch_s: int, millis_text: str, offset: str) -> str:
    if offset == "Z":
        delta = dt.timedelta(0)
    else:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = offset[1:].split(":")
        delta = sign * dt.timedelta(hours=int(hours), minutes=int(minutes))
    local = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC) + delta
    return local.strftime("%Y-%m-%dT%H:%M:%S") + millis_text + offset


def format_amount(amount: Decimal, minor: int) -> str:
    return f"{amount:.{minor}f}"


class Gen:
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
        amount_text = format_amount(amount, minor)
        variant = rng.random()
        if variant < 0.08:
            amount_text += "0" if minor else ".00"  # trailing zeros beyond the minor unit
        elif variant < 0.12:
            amount_text = f" {amount_text} "  # values are trimmed
        epoch_s = rng.randint(_TS_LOW, _TS_HIGH - 1)
        frac = rng.choice(("", "", "", ".123", ".5", ".250", ".987654"))
        millis = int((frac[1:] + "000")[:3]) if frac else 0
        ts_text = format_ts(epoch_s, frac, rng.choice(_OFFSETS))
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
            timestamp=epoch_s * 1000 + millis,
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


def csv_line(values: Sequence[str], terminator: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator=terminator).writerow(values)
    return out.getvalue().encode("utf-8")


class CsvBuilder:
    def __init__(
        self, key: str, columns: Sequence[str] = COLUMNS, crlf: bool = False, bom: bool = False
    ) -> None:
        self.key = key
        self.columns = list(columns)
        self.term = "\r\n" if crlf else "\n"
        self.parts: list[bytes] = [b"\xef\xbb\xbf" if bom else b""]
        self.parts.append(csv_line(self.columns, self.term))
        self.rows: list[Row] = []

    @property
    def next_line(self) -> int:
        return len(self.rows) + 2  # the header is line 1

    def add(self, text: Mapping[str, str], row: Row) -> None:
        self.parts.append(csv_line([text.get(c, "") for c in self.columns], self.term))
        self.rows.append(row)

    def add_raw(self, raw: bytes, row: Row) -> None:
        self.parts.append(raw + self.term.encode())
        self.rows.append(row)

    def build(self, description: str, **kwargs: Any) -> SampleFile:
        return SampleFile(self.key, b"".join(self.parts), self.rows, description, **kwargs)


class JsonBuilder:
    def __init__(self, key: str, wrapped: bool = False) -> None:
        self.key = key
        self.wrapped = wrapped
        self.items: list[str] = []
        self.rows: list[Row] = []

    @property
    def next_line(self) -> int:
        return len(self.rows)

    def add(self, value: Any, row: Row) -> None:
        self.items.append(json_value(value))
        self.rows.append(row)

    def build(self, description: str, **kwargs: Any) -> SampleFile:
        array = "[\n  " + ",\n  ".join(self.items) + "\n]"
        text = '{"transactions": ' + array + "}\n" if self.wrapped else array + "\n"
        return SampleFile(self.key, text.encode("utf-8"), self.rows, description, **kwargs)


def json_record(txn: Txn, text: Mapping[str, str], rng: random.Random) -> dict[str, Any]:
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


def valid_file(
    gen: Gen,
    key: str,
    tag: str,
    count: int,
    description: str,
    currencies: Sequence[str] | None = None,
    *,
    wrapped: bool = False,
    **csv_options: Any,
) -> SampleFile:
    """`count` valid records: a JSON array when the key ends in .json (`wrapped`: inside
    {"transactions": [...]}), else CSV (`csv_options`: columns, crlf, bom)."""
    if key.endswith(".json"):
        jb = JsonBuilder(key, wrapped=wrapped)
        for tid, txn, text in _fresh_txns(gen, tag, count, currencies):
            jb.add(json_record(txn, text, gen.rng), Row(jb.next_line, tid, txn=txn))
        return jb.build(description)
    cb = CsvBuilder(key, **csv_options)
    for tid, txn, text in _fresh_txns(gen, tag, count, currencies):
        cb.add(text, Row(cb.next_line, tid, txn=txn))
    return cb.build(description)


def _fresh_txns(
    gen: Gen, tag: str, count: int, currencies: Sequence[str] | None
) -> Iterator[tuple[str, Txn, dict[str, str]]]:
    """`count` new valid records with ids `<tag>-000000`, ... (drawn one at a time, so that the
    caller's own draws between them keep their place in the seeded sequence)."""
    for i in range(count):
        tid = f"{tag}-{i:06d}"
        txn, text = gen.txn(tid, gen.rng.choice(currencies) if currencies else None)
        yield tid, txn, text


def ms_suffix(txn: Txn) -> str:
    ms = txn.timestamp % 1000
    return f".{ms:03d}" if ms else ""


def plain_text(txn: Txn) -> dict[str, str]:
    """The record written plainly: amount at its minor unit, timestamp in UTC (Z)."""
    return {
        "transaction_id": txn.transaction_id,
        "account_id": txn.account_id,
        "amount": format_amount(txn.amount, MINOR_UNITS[txn.currency]),
        "currency": txn.currency,
        "transaction_type": txn.transaction_type,
        "timestamp": format_ts(txn.timestamp // 1000, ms_suffix(txn), "Z"),
        "merchant_id": txn.merchant_id or "",
        "description": txn.description or "",
    }


def add_txn(builder: CsvBuilder | JsonBuilder, txn: Txn, rng: random.Random, note: str) -> None:
    text = plain_text(txn)
    row = Row(builder.next_line, txn.transaction_id, txn=txn, note=note)
    if isinstance(builder, JsonBuilder):
        builder.add(json_record(txn, text, rng), row)
    else:
        builder.add(text, row)
