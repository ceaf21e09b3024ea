"""Build the edge-case sample files: replays and conflicts, every record and file error code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pipeline_local.sample_model import COLUMNS, MINOR_UNITS, PREFIX, Row, SampleFile, Txn
from pipeline_local.sample_writers import (
    CsvBuilder,
    Gen,
    JsonBuilder,
    RawJson,
    csv_line,
    format_amount,
    json_record,
    json_value,
    plain_text,
    valid_file,
)


def _variant_text(txn: Txn, text: Mapping[str, str]) -> dict[str, str]:
    """The same record written differently (a replay must still be recognised as one)."""
    out = dict(text)
    minor = MINOR_UNITS[txn.currency]
    out["amount"] = format_amount(txn.amount, minor) + ("0" if minor else "")
    out["transaction_type"] = txn.transaction_type.lower()
    out["currency"] = f" {txn.currency} "
    return out


def replays_file(
    gen: Gen, key: str, source: SampleFile, source_texts: list[dict[str, str]]
) -> SampleFile:
    """Replays of `source` rows, new rows, in-file duplicates and conflicts."""
    rng = gen.rng
    b = CsvBuilder(key)
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
        text = dict(source_texts[i], amount=format_amount(changed, minor))
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


def record_errors_csv(gen: Gen, key: str) -> SampleFile:
    rng = gen.rng
    b = CsvBuilder(key)
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
    for currency, amount_text, precision_code in _PRECISION_CASES:
        txn, text = valid()
        text.update(currency=currency, amount=amount_text)
        if precision_code:
            b.add(
                text, Row(b.next_line, txn.transaction_id, error=precision_code, note=amount_text)
            )
        else:
            good = Txn(**{**txn.__dict__, "currency": currency, "amount": Decimal(amount_text)})
            b.add(text, Row(b.next_line, txn.transaction_id, txn=good, note=amount_text))
    # Rows with the wrong number of cells, and a row whose bytes are not UTF-8.
    txn, text = valid()
    cells = [text[c] for c in COLUMNS]
    b.add_raw(
        csv_line(cells[:5], "").rstrip(),
        Row(b.next_line, None, error="MALFORMED_ROW", note="5 cells"),
    )
    txn, text = valid()
    b.add_raw(
        csv_line([*(text[c] for c in COLUMNS), "surplus"], ""),
        Row(b.next_line, None, error="MALFORMED_ROW", note="9 cells"),
    )
    filler(2)
    txn, text = valid()
    raw = csv_line([text[c] for c in COLUMNS[:-1]] + ["placeholder"], "")
    raw = raw.replace(b"placeholder", b"Caf\xe9 au lait")  # latin-1, not UTF-8
    b.add_raw(raw, Row(b.next_line, None, error="INVALID_ENCODING", note="latin-1 row"))
    filler(2)
    # A conflict inside the file: same id and timestamp as an earlier row, another amount.
    first = next(r.txn for r in b.rows if r.txn is not None)
    other = Txn(**{**first.__dict__, "amount": first.amount + 7})
    b.add(plain_text(other), Row(b.next_line, other.transaction_id, txn=other, note="conflict"))
    filler(3)
    return b.build("every CSV record error code between valid rows")


def record_errors_json(gen: Gen, key: str) -> SampleFile:
    rng = gen.rng
    b = JsonBuilder(key)
    n = 0

    def valid() -> tuple[Txn, dict[str, str]]:
        nonlocal n
        n += 1
        return gen.txn(f"T07-{n:06d}")

    def filler(count: int) -> None:
        for _ in range(count):
            txn, text = valid()
            b.add(json_record(txn, text, rng), Row(b.next_line, txn.transaction_id, txn=txn))

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


def file_errors(gen: Gen, max_file_bytes: int) -> list[SampleFile]:
    rng = gen.rng
    files: list[SampleFile] = []

    def csv_with(columns: Sequence[str], key: str, count: int = 3) -> tuple[bytes, list[Row]]:
        b = CsvBuilder(key, columns=columns)
        for i in range(count):
            txn, text = gen.txn(f"TF-{key.rsplit('/', 1)[-1][:2]}-{i:04d}")
            b.add(text, Row(b.next_line, txn.transaction_id, txn=txn))
        return b.build("").body, b.rows

    header = csv_line(COLUMNS, "\n")
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
    jb = JsonBuilder(PREFIX + "14-truncated.json")
    for i in range(3):
        txn, text = gen.txn(f"TF-14-{i:04d}")
        jb.add(json_record(txn, text, rng), Row(i, txn.transaction_id, txn=txn))
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
            ("[" + json_value(rec) + "]\n").encode(),
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
            ("[" + json_value(text) + "]\n").encode("latin-1"),
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
    big = CsvBuilder(PREFIX + "22-too-large.csv")
    i = 0
    while sum(map(len, big.parts)) <= max_file_bytes:
        txn, text = gen.txn(f"TF-22-{i:06d}")
        big.add(text, Row(big.next_line, txn.transaction_id, txn=txn))
        i += 1
    files.append(
        big.build(f"{i} rows, over MAX_FILE_BYTES ({max_file_bytes})", file_error="FILE_TOO_LARGE")
    )
    vanish = valid_file(gen, PREFIX + "23-vanishes.json", "TF-23", 4, "")
    vanish.description = "version deleted before the processor reads it"
    vanish.file_error = "OBJECT_NOT_FOUND"
    vanish.delete_before_processing = True
    files.append(vanish)
    return files
