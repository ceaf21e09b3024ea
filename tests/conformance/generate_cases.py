"""Source of tests/conformance/cases/*: inputs and hand-written expectations (from design.md).

    .venv/bin/python tests/conformance/generate_cases.py   # rewrites tests/conformance/cases/

Every expected value below is typed by hand from the spec (and, where the spec is silent, from
the decisions in contract/decisions.md, cited by number in the case descriptions); nothing
is recorded from an implementation. The helpers only add the constant per-item attributes
(status, source_bucket, tokens), turn a UTC date-time computed by hand into epoch ms, and
spread a case's table (column_case: each row's cell and the value typed for it) into its
input rows, items and error rows.
Edit the cases here, regenerate, and commit both.
"""

# ruff: noqa: E501

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "cases"
# The instant (UTC) most cases' rows carry: their "2024-01-01T00:00:00Z", as tx() takes it.
JAN_1 = "2024-01-01T00:00:00"
HEADER = (
    "transaction_id,account_id,amount,currency,transaction_type,timestamp,merchant_id,description"
)


def ms(utc: str) -> int:
    """'2024-01-15T10:30:00.123' (already UTC, computed by hand) -> epoch ms."""
    if "." in utc:
        base, frac = utc.split(".")
        frac_ms = int(frac.ljust(3, "0")[:3])
    else:
        base, frac_ms = utc, 0
    when = dt.datetime.fromisoformat(base).replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 1000 + frac_ms


class N:
    """A DynamoDB number written as an exact JSON number token."""

    def __init__(self, text: str) -> None:
        Decimal(text)
        self.text = text


# lib/provider.tf's default of status_index_shards, which the applied stack passes to the
# processor as STATUS_INDEX_SHARDS.
STATUS_INDEX_SHARDS = 1000


def status_shard(tid: str) -> str:
    """P40: "PROCESSED#" + SHA-256(transaction_id)'s first 8 bytes, big-endian, mod the shards."""
    digest = hashlib.sha256(tid.encode("utf-8")).digest()
    return f"PROCESSED#{int.from_bytes(digest[:8], 'big') % STATUS_INDEX_SHARDS}"


def tx(
    tid,
    acct,
    amount,
    cur,
    typ,
    ts_utc,
    line,
    *,
    key,
    merchant=None,
    desc=None,
    version="$VERSION_1",
):
    item = {
        "transaction_id": tid,
        "timestamp": ms(ts_utc),
        "account_id": acct,
        "amount": N(amount),
        "currency": cur,
        "transaction_type": typ,
        "status": "PROCESSED",
        "status_shard": status_shard(tid),
        "source_bucket": "$BUCKET",
        "source_key": key,
        "source_version_id": version,
        "source_line": line,
        "processor": "$PROCESSOR",
        "record_hash": "$RECORD_HASH",
    }
    if merchant is not None:
        item["merchant_id"] = merchant
    if desc is not None:
        item["description"] = desc
    return item


def err(code, field, tid, line, *, key, etype="VALIDATION", version="$VERSION_1"):
    return {
        "error_code": code,
        "error_type": etype,
        "field": field,
        "transaction_id": tid,
        "source_line": line,
        "source_bucket": "$BUCKET",
        "source_key": key,
        "source_version_id": version,
    }


def file_err(code, *, key, version="$VERSION_1"):
    return {
        "error_code": code,
        "error_type": "FILE",
        "field": None,
        "transaction_id": None,
        "source_line": None,
        "source_bucket": "$BUCKET",
        "source_key": key,
        "source_version_id": version,
    }


def status(
    key,
    *,
    rows=0,
    stored=0,
    duplicates=0,
    errors=None,
    retry_lines=None,
    cursor=0,
    state="done",
    file_error=None,
    version="$VERSION_1",
    ranges=None,
    killed=False,
):
    """The per-file status item (contract P26 to P31), every attribute but the activity times
    and processor; killed leaves stored and duplicates out (a kill makes their split vary).
    With ranges ((range id, line after its last row) of a split file), its cursors are those
    of every range once done (P28, P34) instead of range 0's `cursor`."""
    item = {
        "source_bucket": "$BUCKET",
        "source_key": key,
        "source_version_id": version,
        "state": state,
        "rows_seen": rows,
        "stored": stored,
        "duplicates": duplicates,
        "retries_pending": len(retry_lines or []),
        "pending_retry_lines": retry_lines,
        "record_errors": errors or {},
        "file_error": None
        if file_error is None
        else dict(zip(("error_code", "error_message"), file_error, strict=True)),
        "cursors": {"0": cursor} if ranges is None else range_cursors(ranges),
        "ranges_open": 1 if state == "failed" else 0,
    }
    if killed:
        del item["stored"], item["duplicates"]
    return item


def row_starts(rows, *, eol="\n", first_byte=0, header=HEADER):
    """(physical line, first byte) of every data row of csv(*rows, eol=eol) after `first_byte`
    bytes (a BOM); an empty row is a blank line, which is no row (P11)."""
    starts = []
    line, offset = 2, first_byte + len(header.encode()) + len(eol)
    for row in rows:
        if row:
            starts.append((line, offset))
        line += row.count("\n") + 1
        offset += len(row.encode()) + len(eol)
    return starts


def p33_step(range_split_bytes, content_length):
    """P33's step: RANGE_SPLIT_BYTES, grown so that there are at most 100 ranges."""
    return max(range_split_bytes, -(-content_length // 100))


def p33_ranges(starts, step):
    """P33 as written: for k = 1, 2, ..., the first data row that starts at or after byte
    k * step and after the first data row is a boundary. Returns (range id, line after its
    last row) of every range: range 0 first; a range ends before the next boundary's row."""
    firsts = []
    k = 1
    while k * step <= starts[-1][1]:
        later = [(line, start) for line, start in starts[1:] if start >= k * step]
        if later and later[0] not in firsts:
            firsts.append(later[0])
        k += 1
    ids = [0] + [line for line, _ in firsts]
    ends = []
    for index in range(len(ids)):
        following = ids[index + 1] if index + 1 < len(ids) else None
        last = max(line for line, _ in starts if following is None or line < following)
        ends.append(last + 1)  # P28: the cursor ends at the last row's line + 1
    return list(zip(ids, ends, strict=True))


def range_cursors(ranges):
    """The status item's cursors of a split file once every range is done (P28, P34)."""
    return {str(range_id): end for range_id, end in ranges}


def dumps(obj, indent=2) -> str:
    def enc(o):
        if isinstance(o, N):
            return f"@@N@@{o.text}@@"
        raise TypeError(o)

    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=enc)
    return re.sub(r'"@@N@@([^@]+)@@"', r"\1", text) + "\n"


CASES: list[str] = []


def case(name, inputs: dict[str, bytes | str], expected: dict, config: dict | None = None):
    CASES.append(name)
    d = ROOT / name
    d.mkdir(parents=True)
    for fname, content in inputs.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (d / fname).write_bytes(data)
    if config:
        (d / "case.json").write_text(dumps(config))
    expected.setdefault("queues", {"main": 0, "dlq": 0})
    big = {k: v for k, v in expected.items() if isinstance(v, list) and len(v) > 50}
    if not big:
        (d / "expected.json").write_text(dumps(expected))
        return
    # Large lists: one compact item per line, to keep the file small and diffable.
    parts = []
    for k, v in expected.items():
        if k in big:
            lines = ",\n".join("    " + dumps(i, indent=None).strip() for i in v)
            parts.append(f'  "{k}": [\n{lines}\n  ]')
        else:
            parts.append(f'  "{k}": ' + dumps(v).strip().replace("\n", "\n  "))
    (d / "expected.json").write_text("{\n" + ",\n".join(parts) + "\n}\n")


def csv(*rows: str, header: str = HEADER, eol: str = "\n", final_eol: bool = True) -> str:
    text = eol.join([header, *rows])
    return text + (eol if final_eol else "")


def file_error_case(
    name,
    inputs: dict[str, bytes | str],
    code,
    description,
    *,
    key=None,
    status_message=None,
    version="$VERSION_1",
    **config,
):
    """A case whose file is refused as a whole: nothing stored, one file error row and rows_in 1;
    with status_message, the failed per-file status it leaves (P30). The key is
    in/<name>.<ending of the one input file> unless given; config keys go between key and
    description."""
    if key is None:
        (fname,) = inputs
        key = f"in/{name}{Path(fname).suffix}"
    expected = {
        "transactions": [],
        "errors": [file_err(code, key=key, version=version)],
        "accounting": {"rows_in": 1, "duplicates": 0},
    }
    if status_message is not None:
        failed = status(key, state="failed", file_error=(code, status_message), version=version)
        expected["file_status"] = [failed]
    case(name, inputs, expected, {"key": key, **config, "description": description})


def column_case(name, column, code, entries, description, *, prefix=None, amount=("1", "1")):
    """A CSV case that tries cells of one column (or of a tuple of columns, with tuples of
    cells). Entry i (from 1), (cell, stored), is row f"{prefix}-{i}" (or the cell, where the
    column is transaction_id) on line i + 1: the plain row ACC1, amount[0], EUR, DEBIT,
    2024-01-01T00:00:00Z with no merchant_id or description, `cell` in `column`. It is stored
    with the values `stored` (typed by hand) in that column and amount[1], EUR, ... in the
    others, or, where `stored` is None, refused with `code` naming the (first) column."""
    key = f"in/{name}.csv"
    many = not isinstance(column, str)
    columns = column if many else (column,)
    plain = {
        "account_id": "ACC1",
        "amount": amount[0],
        "currency": "EUR",
        "transaction_type": "DEBIT",
        "timestamp": "2024-01-01T00:00:00Z",
    }

    def in_columns(value):
        return dict(zip(columns, value if many else (value,), strict=True))

    rows, transactions, errors = [], [], []
    for i, (cell, stored) in enumerate(entries, start=1):
        tid = f"{prefix}-{i}"
        row = {"transaction_id": tid, **plain, **in_columns(cell)}
        rows.append(",".join(row.values()) + ",,")
        if stored is None:
            known = columns[0] != "transaction_id"  # an invalid id is not known (P19)
            errors.append(err(code, columns[0], tid if known else None, i + 1, key=key))
            continue
        item = {"transaction_id": tid, **plain, "amount": amount[1], "timestamp": JAN_1}
        item |= in_columns(stored)
        transactions.append(tx(*item.values(), i + 1, key=key))
    expected = {
        "transactions": transactions,
        "errors": errors,
        "accounting": {"rows_in": len(entries), "duplicates": 0},
    }
    case(name, {"input.csv": csv(*rows)}, expected, {"key": key, "description": description})


# ==========================================================================================
# The cases


# Case 02's input, kept as written (an indented literal would change its bytes).
JSON_02 = """[
  {"transaction_id": "J-1", "account_id": "DE89370400440532013000", "amount": "250.00", "currency": "EUR",
   "transaction_type": "DEBIT", "timestamp": "2024-05-01T08:00:00Z", "merchant_id": "M-1", "description": "Groceries"},
  {"transaction_id": "J-2", "account_id": "ACC123", "amount": 42.5, "currency": "chf",
   "transaction_type": "refund", "timestamp": "2024-05-01T09:15:30.250+02:00"},
  {"transaction_id": " J-3 ", "account_id": "ACC123", "amount": 7, "currency": "JPY",
   "transaction_type": "PAYMENT", "timestamp": "2024-05-02T00:00:00Z", "merchant_id": null, "description": ""}
]
"""


def build() -> None:
    """Write every case folder (the folder is emptied first)."""
    if ROOT.exists():
        shutil.rmtree(ROOT)
    ROOT.mkdir(parents=True)

    IBAN_DE = "DE89370400440532013000"
    IBAN_GB = "GB29NWBK60161331926819"

    # ---------------------------------------------------------------- 01 basic CSV
    name = "01-csv-valid-basic"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                f"TX-0001,{IBAN_DE},125.50,EUR,DEBIT,2024-01-15T10:30:00Z,MERCH-001,Coffee beans",
                f"TX-0002,{IBAN_GB},99.99,GBP,credit,2024-01-15T11:00:00+01:00,,",
                "TX-0003, FR1420041010050500013M02606 , 1000 ,usd, Payment ,2024-02-29T23:59:59.5Z, M2 , Rent for March ",
                "TX-0004,NL91ABNA0417164300,5000,JPY,TRANSFER,2024-03-01T00:00:00-05:00,,Wire",
                "TX-0005,KW81CBKU0000000000001234560101,1.234,KWD,REFUND,2024-03-02T12:00:00.123Z,SHOP_9,",
            )
        },
        {
            "transactions": [
                tx(
                    "TX-0001",
                    IBAN_DE,
                    "125.5",
                    "EUR",
                    "DEBIT",
                    "2024-01-15T10:30:00",
                    2,
                    key=K,
                    merchant="MERCH-001",
                    desc="Coffee beans",
                ),
                tx("TX-0002", IBAN_GB, "99.99", "GBP", "CREDIT", "2024-01-15T10:00:00", 3, key=K),
                tx(
                    "TX-0003",
                    "FR1420041010050500013M02606",
                    "1000",
                    "USD",
                    "PAYMENT",
                    "2024-02-29T23:59:59.500",
                    4,
                    key=K,
                    merchant="M2",
                    desc="Rent for March",
                ),
                tx(
                    "TX-0004",
                    "NL91ABNA0417164300",
                    "5000",
                    "JPY",
                    "TRANSFER",
                    "2024-03-01T05:00:00",
                    5,
                    key=K,
                    desc="Wire",
                ),
                tx(
                    "TX-0005",
                    "KW81CBKU0000000000001234560101",
                    "1.234",
                    "KWD",
                    "REFUND",
                    "2024-03-02T12:00:00.123",
                    6,
                    key=K,
                    merchant="SHOP_9",
                ),
            ],
            "errors": [],
            "accounting": {"rows_in": 5, "duplicates": 0},
            "file_status": [status(K, rows=5, stored=5, cursor=7)],
        },
        {
            "key": K,
            "description": "valid CSV rows: trimming, case-insensitive type and currency, offsets, optional fields",
        },
    )

    # ---------------------------------------------------------------- 02 JSON array
    name = "02-json-array-valid"
    K = f"in/{name}.json"
    case(
        name,
        {"input.json": JSON_02},
        {
            "transactions": [
                tx(
                    "J-1",
                    IBAN_DE,
                    "250",
                    "EUR",
                    "DEBIT",
                    "2024-05-01T08:00:00",
                    0,
                    key=K,
                    merchant="M-1",
                    desc="Groceries",
                ),
                tx("J-2", "ACC123", "42.5", "CHF", "REFUND", "2024-05-01T07:15:30.250", 1, key=K),
                tx("J-3", "ACC123", "7", "JPY", "PAYMENT", "2024-05-02T00:00:00", 2, key=K),
            ],
            "errors": [],
            "accounting": {"rows_in": 3, "duplicates": 0},
        },
        {
            "key": K,
            "description": "top-level JSON array; amount as string and number; null and empty optional fields are absent; source_line is the 0-based index",
        },
    )

    # ---------------------------------------------------------------- 03 JSON wrapped
    name = "03-json-wrapped-valid"
    K = f"in/{name}.json"
    case(
        name,
        {
            "input.json": json.dumps(
                {
                    "transactions": [
                        {
                            "transaction_id": "W-1",
                            "account_id": "ACC1",
                            "amount": "10.00",
                            "currency": "EUR",
                            "transaction_type": "CREDIT",
                            "timestamp": "2024-07-01T12:00:00Z",
                        },
                        {
                            "transaction_id": "W-2",
                            "amount": "11.00",
                            "currency": "EUR",
                            "transaction_type": "CREDIT",
                            "timestamp": "2024-07-01T12:00:00Z",
                        },
                        {
                            "transaction_id": "W-3",
                            "account_id": "ACC1",
                            "amount": "12.00",
                            "currency": "EUR",
                            "transaction_type": "DEBIT",
                            "timestamp": "2024-07-01T12:00:01Z",
                            "merchant_id": "SHOP",
                        },
                    ]
                },
                indent=1,
            )
        },
        {
            "transactions": [
                tx("W-1", "ACC1", "10", "EUR", "CREDIT", "2024-07-01T12:00:00", 0, key=K),
                tx(
                    "W-3",
                    "ACC1",
                    "12",
                    "EUR",
                    "DEBIT",
                    "2024-07-01T12:00:01",
                    2,
                    key=K,
                    merchant="SHOP",
                ),
            ],
            "errors": [err("MISSING_FIELD", "account_id", "W-2", 1, key=K)],
            "accounting": {"rows_in": 3, "duplicates": 0},
        },
        {
            "key": K,
            "description": '{"transactions": [...]} form; source_line is the index in that array',
        },
    )

    # ---------------------------------------------------------------- 04 BOM + CRLF
    name = "04-csv-bom-crlf"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": b"\xef\xbb\xbf"
            + csv(
                "B-1,ACC1,1.00,EUR,DEBIT,2024-01-01T00:00:00Z,M1,first",
                "B-2,ACC1,2.00,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "B-3,ACC1,3.00,EUR,DEBIT,2024-01-01T00:00:00Z,M3,last row without line break",
                eol="\r\n",
                final_eol=False,
            ).encode()
        },
        {
            "transactions": [
                tx(
                    "B-1",
                    "ACC1",
                    "1",
                    "EUR",
                    "DEBIT",
                    JAN_1,
                    2,
                    key=K,
                    merchant="M1",
                    desc="first",
                ),
                tx("B-2", "ACC1", "2", "EUR", "DEBIT", JAN_1, 3, key=K),
                tx(
                    "B-3",
                    "ACC1",
                    "3",
                    "EUR",
                    "DEBIT",
                    JAN_1,
                    4,
                    key=K,
                    merchant="M3",
                    desc="last row without line break",
                ),
            ],
            "errors": [],
            "accounting": {"rows_in": 3, "duplicates": 0},
        },
        {
            "key": K,
            "description": "UTF-8 BOM, CRLF line ends, no final line break: the BOM is not part of the first column name, CR is not part of the last value",
        },
    )

    # ---------------------------------------------------------------- 05 quoting
    name = "05-csv-quoting"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                'Q-1,ACC1,"1,5",EUR,DEBIT,2024-01-01T00:00:00Z,,',
                'Q-2,ACC1,10.00,EUR,DEBIT,2024-01-01T00:00:00Z,"ACME, Inc.","He said ""hi"", twice"',
                'Q-3,ACC1,11.00,EUR,DEBIT,2024-01-01T00:00:00Z,M,"line one\nline two"',
                'Q-4,ACC1,12.00,EUR,CREDIT,2024-01-01T00:00:00Z,"",""',
                '"Q-5","ACC1","13.00","EUR","CREDIT","2024-01-01T00:00:00Z","M5","all, quoted"',
            )
        },
        {
            "transactions": [
                tx(
                    "Q-2",
                    "ACC1",
                    "10",
                    "EUR",
                    "DEBIT",
                    JAN_1,
                    3,
                    key=K,
                    merchant="ACME, Inc.",
                    desc='He said "hi", twice',
                ),
                tx("Q-4", "ACC1", "12", "EUR", "CREDIT", JAN_1, 6, key=K),
                tx(
                    "Q-5",
                    "ACC1",
                    "13",
                    "EUR",
                    "CREDIT",
                    JAN_1,
                    7,
                    key=K,
                    merchant="M5",
                    desc="all, quoted",
                ),
            ],
            "errors": [
                err("INVALID_FORMAT", "amount", "Q-1", 2, key=K),
                err("INVALID_FORMAT", "description", "Q-3", 4, key=K),
            ],
            "accounting": {"rows_in": 5, "duplicates": 0},
        },
        {
            "key": K,
            "description": "RFC 4180 quoting: embedded commas and doubled quotes; a quoted newline (a control character in description) spans lines 4-5, so the next row is on line 6",
        },
    )

    # ---------------------------------------------------------------- 06 missing fields (CSV)
    name = "06-csv-missing-field"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                ",ACC1,1.00,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "M-2,,1.00,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "M-3,ACC1,,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "M-4,ACC1,1.00,,DEBIT,2024-01-01T00:00:00Z,,",
                "M-5,ACC1,1.00,EUR,,2024-01-01T00:00:00Z,,",
                "M-6,ACC1,1.00,EUR,DEBIT,,,",
                "M-7,ACC1,   ,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "M-8,ACC1,1.00,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [tx("M-8", "ACC1", "1", "EUR", "DEBIT", JAN_1, 9, key=K)],
            "errors": [
                err("MISSING_FIELD", "transaction_id", None, 2, key=K),
                err("MISSING_FIELD", "account_id", "M-2", 3, key=K),
                err("MISSING_FIELD", "amount", "M-3", 4, key=K),
                err("MISSING_FIELD", "currency", "M-4", 5, key=K),
                err("MISSING_FIELD", "transaction_type", "M-5", 6, key=K),
                err("MISSING_FIELD", "timestamp", "M-6", 7, key=K),
                err("MISSING_FIELD", "amount", "M-7", 8, key=K),
            ],
            "accounting": {"rows_in": 8, "duplicates": 0},
        },
        {
            "key": K,
            "description": "an empty (or, after trimming, blank) cell is an absent field: MISSING_FIELD for each required field",
        },
    )

    # ---------------------------------------------------------------- 07 JSON nulls
    name = "07-json-null-and-missing"
    K = f"in/{name}.json"
    case(
        name,
        {
            "input.json": json.dumps(
                [
                    {
                        "transaction_id": None,
                        "account_id": "ACC1",
                        "amount": "1",
                        "currency": "EUR",
                        "transaction_type": "DEBIT",
                        "timestamp": "2024-01-01T00:00:00Z",
                    },
                    {
                        "transaction_id": "N-1",
                        "account_id": "ACC1",
                        "currency": "EUR",
                        "transaction_type": "DEBIT",
                        "timestamp": "2024-01-01T00:00:00Z",
                    },
                    {
                        "transaction_id": "N-2",
                        "account_id": "ACC1",
                        "amount": "1",
                        "currency": "EUR",
                        "transaction_type": "DEBIT",
                        "timestamp": None,
                    },
                    {
                        "transaction_id": "N-3",
                        "account_id": "ACC1",
                        "amount": "1",
                        "currency": "EUR",
                        "transaction_type": None,
                        "timestamp": "2024-01-01T00:00:00Z",
                    },
                    {
                        "transaction_id": "N-4",
                        "account_id": "ACC1",
                        "amount": "1",
                        "currency": "EUR",
                        "transaction_type": "DEBIT",
                        "timestamp": "2024-01-01T00:00:00Z",
                        "merchant_id": None,
                        "description": None,
                    },
                    {},
                    {
                        "transaction_id": "N-6",
                        "account_id": "ACC1",
                        "amount": "1",
                        "currency": "  ",
                        "transaction_type": "DEBIT",
                        "timestamp": "2024-01-01T00:00:00Z",
                    },
                ],
                indent=1,
            )
        },
        {
            "transactions": [tx("N-4", "ACC1", "1", "EUR", "DEBIT", JAN_1, 4, key=K)],
            "errors": [
                err("MISSING_FIELD", "transaction_id", None, 0, key=K),
                err("MISSING_FIELD", "amount", "N-1", 1, key=K),
                err("MISSING_FIELD", "timestamp", "N-2", 2, key=K),
                err("MISSING_FIELD", "transaction_type", "N-3", 3, key=K),
                err("MISSING_FIELD", "transaction_id", None, 5, key=K),
                err("MISSING_FIELD", "currency", "N-6", 6, key=K),
            ],
            "accounting": {"rows_in": 7, "duplicates": 0},
        },
        {
            "key": K,
            "description": "JSON null means absent; an empty object misses transaction_id first (table order); a blank JSON string is absent too (handler decision P1)",
        },
    )

    # ---------------------------------------------------------------- 08 transaction_id format
    ID64 = "abc.DEF_123:456-" * 4
    ID65 = ID64 + "x"
    column_case(
        "08-transaction-id-limits",
        "transaction_id",
        "INVALID_FORMAT",
        [
            (ID64, ID64),
            (ID65, None),
            ("TX 1", None),
            ("TX/1", None),
            ("TXé1", None),
            ("  TX-trim  ", "TX-trim"),
            ("a:b.c_d-e", "a:b.c_d-e"),
            ("X", "X"),
        ],
        "transaction_id: 1 to 64 chars of [A-Za-z0-9._:-]; 64 ok, 65 and other characters INVALID_FORMAT (an invalid id is not known: transaction_id null, handler decision P19)",
        amount=("1.00", "1"),
    )

    # ---------------------------------------------------------------- 09 account_id
    A34 = "DE" + "1234567890" * 3 + "12"
    A35 = A34 + "3"
    column_case(
        "09-account-id-limits",
        "account_id",
        "INVALID_FORMAT",
        [
            (A34, A34),
            (A35, None),
            ("DE89-3704", None),
            ("de89370400440532013000", "de89370400440532013000"),
            ("Z", "Z"),
            ("DE 89 3704", None),
        ],
        "account_id: 1 to 34 chars of [A-Za-z0-9]",
        prefix="A",
        amount=("1.00", "1"),
    )

    # ---------------------------------------------------------------- 10 amount syntax
    name = "10-amount-syntax"
    K = f"in/{name}.csv"
    bad = [
        "1e3",
        "+5",
        '"1,000"',
        ".5",
        "5.",
        "abc",
        "1 000",
        "0x10",
        "--5",
        "\uff15",  # FULLWIDTH DIGIT FIVE: not [0-9]
        "1.2.3",
        "NaN",
        "Infinity",
        "-",
        "1E-2",
    ]
    rows = [f"S-{i:02d},ACC1,{a},EUR,DEBIT,2024-01-01T00:00:00Z,," for i, a in enumerate(bad)]
    rows += [
        "S-90,ACC1,00012.50,EUR,DEBIT,2024-01-01T00:00:00Z,,",
        "S-91,ACC1,  7.10  ,EUR,DEBIT,2024-01-01T00:00:00Z,,",
    ]
    case(
        name,
        {"input.csv": csv(*rows)},
        {
            "transactions": [
                tx("S-90", "ACC1", "12.5", "EUR", "DEBIT", JAN_1, 2 + len(bad), key=K),
                tx("S-91", "ACC1", "7.1", "EUR", "DEBIT", JAN_1, 3 + len(bad), key=K),
            ],
            "errors": [
                err("INVALID_FORMAT", "amount", f"S-{i:02d}", 2 + i, key=K) for i in range(len(bad))
            ],
            "accounting": {"rows_in": len(rows), "duplicates": 0},
        },
        {
            "key": K,
            "description": "amount syntax -?[0-9]+(\\.[0-9]+)?: exponent, sign, separators, .5, 5., non-ASCII digits are INVALID_FORMAT; leading zeros are fine",
        },
    )

    # ---------------------------------------------------------------- 11 amount value
    column_case(
        "11-amount-value",
        ("amount", "currency"),
        "INVALID_VALUE",
        [
            (("0", "EUR"), None),
            (("-5", "EUR"), None),
            (("0.00", "EUR"), None),
            (("-0", "EUR"), None),
            (("1000000000000", "EUR"), None),
            (("1000000000000.00", "EUR"), None),
            (("-0.001", "EUR"), None),
            (("999999999999.99", "EUR"), ("999999999999.99", "EUR")),
            (("0.01", "EUR"), ("0.01", "EUR")),
            (("999999999999", "JPY"), ("999999999999", "JPY")),
        ],
        "amount > 0 and < 10^12 (INVALID_VALUE); value is checked before precision (-0.001)",
        prefix="V",
    )

    # ---------------------------------------------------------------- 12 precision
    column_case(
        "12-amount-precision",
        ("amount", "currency"),
        "PRECISION_EXCEEDED",
        [
            (("10.123", "EUR"), None),
            (("10.500", "EUR"), ("10.5", "EUR")),
            (("10.5000000", "EUR"), ("10.5", "EUR")),
            (("100.5", "JPY"), None),
            (("100.0", "JPY"), ("100", "JPY")),
            (("100.00", "JPY"), ("100", "JPY")),
            (("1.2345", "KWD"), None),
            (("1.2340", "KWD"), ("1.234", "KWD")),
            (("0.001", "BHD"), ("0.001", "BHD")),
            (("0.001", "EUR"), None),
            (("0.0010", "USD"), None),
            (("5.10", "usd"), ("5.1", "USD")),
        ],
        "fraction digits up to the currency's minor unit (EUR 2, JPY 0, KWD 3, BHD 3); trailing zeros beyond it are fine",
        prefix="P",
    )

    # ---------------------------------------------------------------- 13 currency
    column_case(
        "13-currency",
        "currency",
        "UNKNOWN_CURRENCY",
        [
            ("XYZ", None),
            ("EURO", None),
            ("E1R", None),
            ("€", None),
            ("usd", "USD"),
            (" gbp ", "GBP"),
            ("Sek", "SEK"),
            ("EU", None),
        ],
        "currency upper-cased then looked up; anything else is UNKNOWN_CURRENCY",
        prefix="C",
        amount=("10", "10"),
    )

    # ---------------------------------------------------------------- 14 transaction_type
    column_case(
        "14-transaction-type",
        "transaction_type",
        "INVALID_VALUE",
        [
            ("debit", "DEBIT"),
            ("Transfer", "TRANSFER"),
            ("pAyMeNt", "PAYMENT"),
            (" REFUND ", "REFUND"),
            ("CREDIT", "CREDIT"),
            ("WITHDRAWAL", None),
            ("DEB IT", None),
            ("DEBITS", None),
        ],
        "transaction_type enum, case-insensitive on input, stored upper case; anything else INVALID_VALUE",
        prefix="T",
    )

    # ---------------------------------------------------------------- 15 timestamp format
    name = "15-timestamp-format"
    K = f"in/{name}.csv"
    bad_ts = [
        "2024-01-15T10:30:00",
        "2024-01-15",
        "2024-02-30T00:00:00Z",
        "2023-02-29T12:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-15T25:00:00Z",
        "1705314600000",
        "2024-01-15T10:30:00+0100",
        "2024-01-15T10:30Z",
        "15/01/2024 10:30",
        "yesterday",
        "2016-12-31T23:59:60Z",
        "2024-01-15 10:30:00Z",
        "2024-01-15T10:30:00+24:00",
    ]
    rows = [f"F-{i:02d},ACC1,1,EUR,DEBIT,{t},," for i, t in enumerate(bad_ts)]
    good = [
        ("G-1", "2024-02-29T12:00:00Z", "2024-02-29T12:00:00"),
        ("G-2", "2024-01-15T10:30:00.123456Z", "2024-01-15T10:30:00.123"),
        ("G-3", "2024-01-15T10:30:00.9999+05:30", "2024-01-15T05:00:00.999"),
        ("G-4", "2024-06-30T23:59:59-07:00", "2024-07-01T06:59:59"),
        ("G-5", "2024-12-31T23:00:00.5-01:00", "2025-01-01T00:00:00.500"),
        ("G-6", "2024-03-10T02:30:00+00:00", "2024-03-10T02:30:00"),
        ("G-7", "2024-01-15t10:30:00z", "2024-01-15T10:30:00"),
        ("G-8", "2024-01-15T10:30:00.5-00:00", "2024-01-15T10:30:00.500"),
    ]
    rows += [f"{tid},ACC1,1,EUR,DEBIT,{t},," for tid, t, _ in good]
    case(
        name,
        {"input.csv": csv(*rows)},
        {
            "transactions": [
                tx(tid, "ACC1", "1", "EUR", "DEBIT", utc, 2 + len(bad_ts) + i, key=K)
                for i, (tid, _, utc) in enumerate(good)
            ],
            "errors": [
                err("INVALID_FORMAT", "timestamp", f"F-{i:02d}", 2 + i, key=K)
                for i in range(len(bad_ts))
            ],
            "accounting": {"rows_in": len(rows), "duplicates": 0},
        },
        {
            "key": K,
            "description": "RFC 3339 date-time with offset (seconds required, offset with colon, real dates); fractions truncated to ms; offsets converted to UTC. Handler decision P7: lower-case t/z accepted, no space separator, no leap second",
        },
    )

    # ---------------------------------------------------------------- 16 timestamp range
    column_case(
        "16-timestamp-range",
        "timestamp",
        "INVALID_VALUE",
        [
            ("1999-12-31T23:59:59.999Z", None),
            ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00"),
            ("2000-01-01T00:30:00+01:00", None),
            ("2099-12-31T23:59:59.999Z", "2099-12-31T23:59:59.999"),
            ("2100-01-01T00:00:00.001Z", None),
            ("1970-01-01T00:00:00Z", None),
            ("9999-12-31T23:59:59Z", None),
            ("0001-01-01T00:00:00Z", None),
            ("2099-12-31T23:30:00-00:30", None),
            ("2099-12-31T23:59:59+01:00", "2099-12-31T22:59:59"),
            ("2100-01-01T00:00:00Z", None),
        ],
        "timestamp between 2000-01-01 and 2100-01-01 (UTC instant, upper bound exclusive: handler decision P7); outside is INVALID_VALUE",
        prefix="R",
    )

    # ---------------------------------------------------------------- 17 merchant / description
    name = "17-merchant-description-limits"
    K = f"in/{name}.csv"
    M64 = "M" * 64
    D256 = "d" * 256
    E256 = "é" * 256
    case(
        name,
        {
            "input.csv": csv(
                f"L-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,{M64},",
                f"L-2,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,{M64}X,",
                f"L-3,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,{D256}",
                f"L-4,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,{D256}x",
                "L-5,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,tab\there",
                f"L-6,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,{E256}",
                "L-7,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,Café Zürich,Café ☕ für 2",
                "L-8,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,bell\x07",
            )
        },
        {
            "transactions": [
                tx("L-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, key=K, merchant=M64),
                tx("L-3", "ACC1", "1", "EUR", "DEBIT", JAN_1, 4, key=K, desc=D256),
                tx("L-6", "ACC1", "1", "EUR", "DEBIT", JAN_1, 7, key=K, desc=E256),
                tx(
                    "L-7",
                    "ACC1",
                    "1",
                    "EUR",
                    "DEBIT",
                    JAN_1,
                    8,
                    key=K,
                    merchant="Café Zürich",
                    desc="Café ☕ für 2",
                ),
            ],
            "errors": [
                err("INVALID_FORMAT", "merchant_id", "L-2", 3, key=K),
                err("INVALID_FORMAT", "description", "L-4", 5, key=K),
                err("INVALID_FORMAT", "description", "L-5", 6, key=K),
                err("INVALID_FORMAT", "description", "L-8", 9, key=K),
            ],
            "accounting": {"rows_in": 8, "duplicates": 0},
        },
        {
            "key": K,
            "description": "merchant_id up to 64 chars, description up to 256 chars (characters, not bytes) without control characters",
        },
    )

    # ---------------------------------------------------------------- 18 unknown JSON fields
    name = "18-json-unknown-field"
    K = f"in/{name}.json"
    base = {
        "account_id": "ACC1",
        "amount": "1",
        "currency": "EUR",
        "transaction_type": "DEBIT",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    case(
        name,
        {
            "input.json": json.dumps(
                [
                    {"transaction_id": "U-1", **base, "foo": 1},
                    {"transaction_id": "U-2", **base, "Amount": "2"},
                    {"transaction_id": "U-3", **base},
                    {"transaction_id": "U-4", **base, "status": "PROCESSED"},
                    {"transaction_id": "U-5", **{**base, "amount": "1,5"}, "zzz": 1, "aaa": 2},
                    {"transaction_id": "U-6", **base, "zzz": 1, "aaa": 2},
                ],
                indent=1,
            )
        },
        {
            "transactions": [tx("U-3", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, key=K)],
            "errors": [
                err("UNKNOWN_FIELD", "foo", "U-1", 0, key=K),
                err("UNKNOWN_FIELD", "Amount", "U-2", 1, key=K),
                err("UNKNOWN_FIELD", "status", "U-4", 3, key=K),
                err("INVALID_FORMAT", "amount", "U-5", 4, key=K),
                err("UNKNOWN_FIELD", "aaa", "U-6", 5, key=K),
            ],
            "accounting": {"rows_in": 6, "duplicates": 0},
        },
        {
            "key": K,
            "description": "unknown JSON keys (case-sensitive) make the record invalid: UNKNOWN_FIELD naming the key; checked after the table fields, smallest unknown key named (handler decision P3)",
        },
    )

    # ---------------------------------------------------------------- 19 JSON wrong types
    name = "19-json-wrong-types"
    K = f"in/{name}.json"
    case(
        name,
        {
            "input.json": json.dumps(
                [
                    {"transaction_id": "Y-1", **{**base, "amount": True}},
                    {"transaction_id": "Y-2", **{**base, "amount": [1]}},
                    {"transaction_id": "Y-3", **{**base, "account_id": {"iban": "X"}}},
                    {"transaction_id": "Y-4", **base, "description": False},
                    {"transaction_id": "Y-5", **{**base, "timestamp": 1705314600000}},
                    {"transaction_id": "Y-6", **base, "merchant_id": ["M"]},
                    "oops",
                    5,
                    ["Y-9"],
                    None,
                    {"transaction_id": "Y-11", **base},
                ],
                indent=1,
            )
        },
        {
            "transactions": [tx("Y-11", "ACC1", "1", "EUR", "DEBIT", JAN_1, 10, key=K)],
            "errors": [
                err("INVALID_FORMAT", "amount", "Y-1", 0, key=K),
                err("INVALID_FORMAT", "amount", "Y-2", 1, key=K),
                err("INVALID_FORMAT", "account_id", "Y-3", 2, key=K),
                err("INVALID_FORMAT", "description", "Y-4", 3, key=K),
                err("INVALID_FORMAT", "timestamp", "Y-5", 4, key=K),
                err("INVALID_FORMAT", "merchant_id", "Y-6", 5, key=K),
                err("INVALID_FORMAT", None, None, 6, key=K),
                err("INVALID_FORMAT", None, None, 7, key=K),
                err("INVALID_FORMAT", None, None, 8, key=K),
                err("INVALID_FORMAT", None, None, 9, key=K),
            ],
            "accounting": {"rows_in": 11, "duplicates": 0},
        },
        {
            "key": K,
            "description": "booleans, arrays, objects as field values and non-object records are INVALID_FORMAT",
        },
    )

    # ---------------------------------------------------------------- 20 JSON exact decimals
    name = "20-json-exact-decimals"
    K = f"in/{name}.json"
    recs = [
        ("D-01", "999999999999.99", "EUR"),
        ("D-02", "0.10000000000000000000000000001", "EUR"),
        ("D-03", "1.00000000000000000000001", "EUR"),
        ("D-04", "999999999999.999999999999", "EUR"),
        ("D-05", "1000000000000.0000000000001", "EUR"),
        ("D-06", "12345678901.23", "EUR"),
        ("D-07", "10.500", "EUR"),
        ("D-08", "1e3", "EUR"),
        ("D-09", "1E-2", "EUR"),
        ("D-10", "-0", "EUR"),
        ("D-11", '"0.30000000000000000000"', "EUR"),
        ("D-12", "0.1", "KWD"),
        ("D-13", "123456789012.345", "KWD"),
        ("D-14", "999999999999.9990", "KWD"),
        ("D-15", "0.30000000000000004", "EUR"),
        ("D-16", "99999999999999999999999999999999999999", "EUR"),
    ]
    body = ",\n".join(
        f'  {{"transaction_id": "{tid}", "account_id": "ACC1", "amount": {amount}, '
        f'"currency": "{cur}", "transaction_type": "CREDIT", "timestamp": "2024-01-01T00:00:00Z"}}'
        for tid, amount, cur in recs
    )
    case(
        name,
        {"input.json": "[\n" + body + "\n]\n"},
        {
            "transactions": [
                tx("D-01", "ACC1", "999999999999.99", "EUR", "CREDIT", JAN_1, 0, key=K),
                tx("D-06", "ACC1", "12345678901.23", "EUR", "CREDIT", JAN_1, 5, key=K),
                tx("D-07", "ACC1", "10.5", "EUR", "CREDIT", JAN_1, 6, key=K),
                tx("D-11", "ACC1", "0.3", "EUR", "CREDIT", JAN_1, 10, key=K),
                tx("D-12", "ACC1", "0.1", "KWD", "CREDIT", JAN_1, 11, key=K),
                tx("D-13", "ACC1", "123456789012.345", "KWD", "CREDIT", JAN_1, 12, key=K),
                tx("D-14", "ACC1", "999999999999.999", "KWD", "CREDIT", JAN_1, 13, key=K),
            ],
            "errors": [
                err("PRECISION_EXCEEDED", "amount", "D-02", 1, key=K),
                err("PRECISION_EXCEEDED", "amount", "D-03", 2, key=K),
                err("PRECISION_EXCEEDED", "amount", "D-04", 3, key=K),
                err("INVALID_VALUE", "amount", "D-05", 4, key=K),
                err("INVALID_FORMAT", "amount", "D-08", 7, key=K),
                err("INVALID_FORMAT", "amount", "D-09", 8, key=K),
                err("INVALID_VALUE", "amount", "D-10", 9, key=K),
                err("PRECISION_EXCEEDED", "amount", "D-15", 14, key=K),
                err("INVALID_VALUE", "amount", "D-16", 15, key=K),
            ],
            "accounting": {"rows_in": 16, "duplicates": 0},
        },
        {
            "key": K,
            "description": "JSON number tokens checked by their own text, never through a binary float: many-digit fractions, values near 10^12, exponents",
        },
    )

    # ---------------------------------------------------------------- 21-23 JSON depth
    rec = (
        '{"transaction_id": "Z-1", "account_id": "ACC1", "amount": "1", "currency": "EUR", '
        '"transaction_type": "DEBIT", "timestamp": "2024-01-01T00:00:00Z"'
    )

    def nested(depth: int) -> str:
        """Two records, the second with a "meta" field `depth` arrays deep."""
        meta = "[" * depth + "]" * depth
        return "[" + rec + "}, " + rec.replace("Z-1", "Z-2") + ', "meta": ' + meta + "}]"

    file_error_case(
        "21-json-depth-100",
        {"input.json": nested(98)},
        "MALFORMED_FILE",
        "a document nested 100 levels deep is MALFORMED_FILE; no record of the file is stored, not even the valid first one",
    )
    name = "22-json-depth-64-accepted"
    K = f"in/{name}.json"
    case(
        name,
        {"input.json": nested(62)},
        {
            "transactions": [tx("Z-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 0, key=K)],
            "errors": [err("UNKNOWN_FIELD", "meta", "Z-2", 1, key=K)],
            "accounting": {"rows_in": 2, "duplicates": 0},
        },
        {
            "key": K,
            "description": "exactly 64 levels (top-level array = 1, record = 2, 62 nested arrays) is not a file error",
        },
    )
    file_error_case(
        "23-json-depth-65",
        {"input.json": nested(63)},
        "MALFORMED_FILE",
        "65 levels (one more than case 22) is deeper than 64: MALFORMED_FILE",
    )

    # ---------------------------------------------------------------- 24-29 JSON file errors
    file_error_case(
        "24-json-invalid-utf8",
        {"input.json": ("[" + rec + ', "description": "caf').encode() + b"\xe9" + b'"}]'},
        "INVALID_ENCODING",
        "a JSON document that is not UTF-8 (a Latin-1 byte) is INVALID_ENCODING",
    )
    file_error_case(
        "25-json-malformed",
        {"input.json": "[" + rec + "}, " + rec.replace("Z-1", "Z-2")},
        "MALFORMED_FILE",
        "truncated JSON is MALFORMED_FILE; the complete first record is not stored",
    )
    file_error_case(
        "26-json-wrong-top-level",
        {"input.json": '"just a string"\n'},
        "MALFORMED_FILE",
        "a top-level string is the wrong top-level JSON type: MALFORMED_FILE",
    )
    file_error_case(
        "27-json-object-without-transactions",
        {"input.json": '{"records": [' + rec + "}]}\n"},
        "MALFORMED_FILE",
        'an object that is not {"transactions": [...]} is MALFORMED_FILE',
    )
    file_error_case(
        "28-json-empty-array", {"input.json": "[]\n"}, "EMPTY_FILE", "an empty array is EMPTY_FILE"
    )
    file_error_case(
        "29-json-wrapped-empty",
        {"input.json": '{"transactions": []}'},
        "EMPTY_FILE",
        "an empty wrapped array is EMPTY_FILE",
    )

    # ---------------------------------------------------------------- 30-36 CSV file errors
    file_error_case(
        "30-csv-empty-file",
        {"input.csv": b""},
        "EMPTY_FILE",
        "no bytes: EMPTY_FILE; the file status is failed (P30)",
        status_message="file: no header row",
    )
    file_error_case(
        "31-csv-header-only", {"input.csv": csv()}, "EMPTY_FILE", "a header and no rows: EMPTY_FILE"
    )
    file_error_case(
        "32-csv-header-missing-column",
        {
            "input.csv": csv(
                "H-1,ACC1,1,EUR,DEBIT,,",
                header="transaction_id,account_id,amount,currency,transaction_type,merchant_id,description",
            )
        },
        "INVALID_HEADER",
        "header without the required timestamp column: INVALID_HEADER (a file error has no field: its message names the column), nothing stored",
        status_message='header: missing required column "timestamp"',
    )
    file_error_case(
        "33-csv-header-unknown-column",
        {
            "input.csv": csv(
                "H-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,,x", header=HEADER + ",note"
            )
        },
        "INVALID_HEADER",
        "header with an unknown column: INVALID_HEADER",
    )
    file_error_case(
        "34-csv-header-duplicate-column",
        {
            "input.csv": csv(
                "H-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,,1", header=HEADER + ",amount"
            )
        },
        "INVALID_HEADER",
        "header with a duplicate column: INVALID_HEADER",
    )
    name = "35-csv-header-reordered-optional-absent"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "2024-01-01T00:00:00Z,5.25,O-1,eur,ACC1,refund",
                "2024-01-02T00:00:00Z,6,O-2,EUR,ACC2,DEBIT",
                header="timestamp,amount,transaction_id,currency,account_id,transaction_type",
            )
        },
        {
            "transactions": [
                tx("O-1", "ACC1", "5.25", "EUR", "REFUND", JAN_1, 2, key=K),
                tx("O-2", "ACC2", "6", "EUR", "DEBIT", "2024-01-02T00:00:00", 3, key=K),
            ],
            "errors": [],
            "accounting": {"rows_in": 2, "duplicates": 0},
        },
        {
            "key": K,
            "description": "columns in any order; optional columns may be left out of the header",
        },
    )
    file_error_case(
        "36-csv-header-invalid-utf8",
        {
            "input.csv": b"transaction_id,account_id,amount,currency,transaction_type,timestamp,merchant_id,descripci\xf3n\n"
            b"H-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,\n"
        },
        "INVALID_ENCODING",
        "a CSV header that is not UTF-8: INVALID_ENCODING file error",
    )

    # ---------------------------------------------------------------- 37-38 CSV row errors
    name = "37-csv-row-invalid-utf8"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": (
                csv("E-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,ok").encode()
                + b"E-2,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,caf\xe9\n"
                + b"E-3,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,\xe2\x82\n"
                + b"E-4,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,caf\xc3\xa9\n"
            )
        },
        {
            "transactions": [
                tx("E-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, key=K, desc="ok"),
                tx("E-4", "ACC1", "1", "EUR", "DEBIT", JAN_1, 5, key=K, desc="café"),
            ],
            "errors": [
                err("INVALID_ENCODING", None, None, 3, key=K),
                err("INVALID_ENCODING", None, None, 4, key=K),
            ],
            "accounting": {"rows_in": 4, "duplicates": 0},
        },
        {
            "key": K,
            "description": "rows whose bytes are not UTF-8 (Latin-1 byte, truncated sequence) are INVALID_ENCODING; the rows around them are stored",
        },
    )
    name = "38-csv-malformed-row"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "W-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "W-2,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,,extra",
                "W-3,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z",
                "W-4,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [
                tx("W-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, key=K),
                tx("W-4", "ACC1", "1", "EUR", "DEBIT", JAN_1, 5, key=K),
            ],
            "errors": [
                err("MALFORMED_ROW", None, None, 3, key=K),
                err("MALFORMED_ROW", None, None, 4, key=K),
            ],
            "accounting": {"rows_in": 4, "duplicates": 0},
        },
        {
            "key": K,
            "description": "rows with too many or too few cells are MALFORMED_ROW; the rows around them are stored",
        },
    )

    # ---------------------------------------------------------------- 39 first error wins
    name = "39-first-error-in-table-order"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "X-1,BAD-ACCT,1,XYZ,DEBIT,2024-01-01T00:00:00Z,,",
                "X-2,ACC1,,EUR,DEBIT,not-a-date,,",
                f"X-3,ACC1,1,EUR,WITHDRAWAL,2024-01-01T00:00:00Z,,{'d' * 300}",
                "X-4,ACC1,1,XYZ,DEBIT,not-a-date,,",
                "X 5,,1,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "X-6,ACC1,abc,XYZ,DEBIT,2024-01-01T00:00:00Z,,",
                "X-7,ACC1,0,XYZ,DEBIT,2024-01-01T00:00:00Z,,",
                "X-8,ACC1,1,EUR,DEBIT,1999-01-01T00:00:00Z," + "M" * 65 + ",",
                "X-9,ACC1,1.234,XYZ,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [],
            "errors": [
                err("INVALID_FORMAT", "account_id", "X-1", 2, key=K),
                err("MISSING_FIELD", "amount", "X-2", 3, key=K),
                err("INVALID_VALUE", "transaction_type", "X-3", 4, key=K),
                err("UNKNOWN_CURRENCY", "currency", "X-4", 5, key=K),
                err("INVALID_FORMAT", "transaction_id", None, 6, key=K),
                err("INVALID_FORMAT", "amount", "X-6", 7, key=K),
                err("INVALID_VALUE", "amount", "X-7", 8, key=K),
                err("INVALID_VALUE", "timestamp", "X-8", 9, key=K),
                err("UNKNOWN_CURRENCY", "currency", "X-9", 10, key=K),
            ],
            "accounting": {"rows_in": 9, "duplicates": 0},
        },
        {
            "key": K,
            "description": "a record with several errors is reported once, with its first error in the order of the field table; the precision check needs the currency, so an unknown currency comes first (handler decision P3)",
        },
    )

    # ---------------------------------------------------------------- 40-43 duplicates
    name = "40-duplicates-within-file"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "DUP-1,ACC1,10.50,EUR,DEBIT,2024-01-01T00:00:00Z,M,desc",
                "DUP-1,ACC1,10.50,EUR,DEBIT,2024-01-01T00:00:00Z,M,desc",
                "DUP-1, ACC1 ,10.500,eur,debit,2024-01-01T01:00:00+01:00,M ,desc ",
                "DUP-2,ACC1,3,EUR,CREDIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [
                tx(
                    "DUP-1",
                    "ACC1",
                    "10.5",
                    "EUR",
                    "DEBIT",
                    JAN_1,
                    2,
                    key=K,
                    merchant="M",
                    desc="desc",
                ),
                tx("DUP-2", "ACC1", "3", "EUR", "CREDIT", JAN_1, 5, key=K),
            ],
            "errors": [],
            "accounting": {"rows_in": 4, "duplicates": 2},
            "file_status": [status(K, rows=4, stored=2, duplicates=2, cursor=6)],
        },
        {
            "key": K,
            "description": "a record repeated in the file (also after normalisation: trimming, case, trailing zeros, offset) is a duplicate, not an error; the first one is stored",
        },
    )
    name = "41-duplicate-conflict"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "CF-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,M,first",
                "CF-1,ACC1,11,EUR,DEBIT,2024-01-01T00:00:00Z,M,first",
                "CF-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,M,changed",
                "CF-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,first",
            )
        },
        {
            "transactions": [
                tx(
                    "CF-1",
                    "ACC1",
                    "10",
                    "EUR",
                    "DEBIT",
                    JAN_1,
                    2,
                    key=K,
                    merchant="M",
                    desc="first",
                ),
            ],
            "errors": [
                err("DUPLICATE_CONFLICT", "transaction_id", "CF-1", 3, key=K),
                err("DUPLICATE_CONFLICT", "transaction_id", "CF-1", 4, key=K),
                err("DUPLICATE_CONFLICT", "transaction_id", "CF-1", 5, key=K),
            ],
            "accounting": {"rows_in": 4, "duplicates": 0},
        },
        {
            "key": K,
            "description": "same key (transaction_id, timestamp) with a different record_hash (amount, description, merchant) is DUPLICATE_CONFLICT; the first write wins",
        },
    )
    name = "42-same-id-different-timestamp"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "SI-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "SI-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00.001Z,,",
            )
        },
        {
            "transactions": [
                tx("SI-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2, key=K),
                tx("SI-1", "ACC1", "10", "EUR", "DEBIT", "2024-01-01T00:00:00.001", 3, key=K),
            ],
            "errors": [],
            "accounting": {"rows_in": 2, "duplicates": 0},
        },
        {
            "key": K,
            "description": "the table key is (transaction_id, timestamp): the same id at another instant is another item (attribute_not_exists only sees the item with the same key)",
        },
    )
    name = "43-preexisting-items"
    K = f"in/{name}.csv"
    pre_same = tx(
        "PRE-1",
        "ACC1",
        "10",
        "EUR",
        "DEBIT",
        JAN_1,
        7,
        key="in/earlier.csv",
        version="v-earlier",
        desc="same",
    )
    pre_same["ingested_at"] = 1700000000000
    pre_same["processor"] = "python3.11/0.0.0-earlier"
    pre_diff = tx(
        "PRE-2",
        "ACC1",
        "20",
        "EUR",
        "DEBIT",
        JAN_1,
        8,
        key="in/earlier.csv",
        version="v-earlier",
    )
    pre_diff["ingested_at"] = 1700000000001
    pre_diff["processor"] = "rust/0.0.0-earlier"
    case(
        name,
        {
            "input.csv": csv(
                "PRE-1,ACC1,10.00,EUR,debit,2024-01-01T00:00:00Z,,same",
                "PRE-2,ACC1,21,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "PRE-3,ACC1,30,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [
                pre_same,
                pre_diff,
                tx("PRE-3", "ACC1", "30", "EUR", "DEBIT", JAN_1, 4, key=K),
            ],
            "errors": [err("DUPLICATE_CONFLICT", "transaction_id", "PRE-2", 3, key=K)],
            "accounting": {"rows_in": 3, "duplicates": 1},
        },
        {
            "key": K,
            "preexisting": [pre_same, pre_diff],
            "description": "items stored earlier (by either implementation): same record_hash is a duplicate, a different one a conflict; stored items are never overwritten",
        },
    )

    # ---------------------------------------------------------------- 44-45 replays
    name = "44-replay-same-event"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "RP-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "RP-2,ACC1,0,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "RP-3,ACC1,30,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [
                tx("RP-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2, key=K),
                tx("RP-3", "ACC1", "30", "EUR", "DEBIT", JAN_1, 4, key=K),
            ],
            "errors": [err("INVALID_VALUE", "amount", "RP-2", 3, key=K)],
            "accounting": {"rows_in": 3, "duplicates": 0},
            # The later deliveries find every batch counted (P29): nothing is counted twice.
            "file_status": [status(K, rows=3, stored=2, errors={"INVALID_VALUE": 1}, cursor=5)],
        },
        {
            "key": K,
            "redeliver": 2,
            "description": "the same S3 event delivered three times (at-least-once): no new item, no new error row",
        },
    )
    name = "45-replay-new-version"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "RV-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "RV-2,ACC1,0,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "RV-3,ACC1,30,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [
                tx("RV-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2, key=K),
                tx("RV-3", "ACC1", "30", "EUR", "DEBIT", JAN_1, 4, key=K),
            ],
            "errors": [
                err("INVALID_VALUE", "amount", "RV-2", 3, key=K),
                err("INVALID_VALUE", "amount", "RV-2", 3, key=K, version="$VERSION_2"),
            ],
            "accounting": {"rows_in": 6, "duplicates": 2},
            "file_status": [
                status(K, rows=3, stored=2, errors={"INVALID_VALUE": 1}, cursor=5),
                status(
                    K,
                    rows=3,
                    duplicates=2,
                    errors={"INVALID_VALUE": 1},
                    cursor=5,
                    version="$VERSION_2",
                ),
            ],
        },
        {
            "key": K,
            "uploads": 2,
            "description": "the same content uploaded twice (two object versions): valid rows of version 2 are duplicates (the item keeps version 1's lineage); the invalid row is reported per version (error_id includes the version id)",
        },
    )

    # ---------------------------------------------------------------- 46-47 URL-encoded keys
    name = "46-url-encoded-key"
    K = "in/my file+1.csv"
    case(
        name,
        {
            "input.csv": csv(
                "K-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "K-2,ACC1,0,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [tx("K-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, key=K)],
            "errors": [err("INVALID_VALUE", "amount", "K-2", 3, key=K)],
            "accounting": {"rows_in": 2, "duplicates": 0},
        },
        {
            "key": K,
            "description": "key with a space and a plus arrives as in/my+file%2B1.csv in the event; lineage keeps the real key",
        },
    )
    name = "47-url-encoded-key-unicode"
    K = "in/Überweisungen März (1) & co=ok, 100%.json"
    case(
        name,
        {
            "input.json": json.dumps(
                [
                    {"transaction_id": "K-3", **base},
                    {"transaction_id": "K-4", **base, "x": 1},
                ]
            )
        },
        {
            "transactions": [tx("K-3", "ACC1", "1", "EUR", "DEBIT", JAN_1, 0, key=K)],
            "errors": [err("UNKNOWN_FIELD", "x", "K-4", 1, key=K)],
            "accounting": {"rows_in": 2, "duplicates": 0},
        },
        {
            "key": K,
            "description": "non-ASCII and reserved characters in the key (percent-encoded UTF-8 in the event)",
        },
    )

    # ---------------------------------------------------------------- 48-50 size and missing
    LIMIT_CSV = csv("LM-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,")
    file_error_case(
        "48-file-too-large",
        {"input.csv": LIMIT_CSV},
        "FILE_TOO_LARGE",
        "one byte over MAX_FILE_BYTES: FILE_TOO_LARGE, nothing stored",
        env={"MAX_FILE_BYTES": str(len(LIMIT_CSV.encode()) - 1)},
    )
    name = "49-file-at-size-limit"
    K = f"in/{name}.csv"
    case(
        name,
        {"input.csv": LIMIT_CSV},
        {
            "transactions": [tx("LM-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, key=K)],
            "errors": [],
            "accounting": {"rows_in": 1, "duplicates": 0},
        },
        {
            "key": K,
            "env": {"MAX_FILE_BYTES": str(len(LIMIT_CSV.encode()))},
            "description": "exactly MAX_FILE_BYTES is not over the limit",
        },
    )
    file_error_case(
        "50-object-not-found",
        {},
        "OBJECT_NOT_FOUND",
        "an event for an object that does not exist (deleted before processing): OBJECT_NOT_FOUND file error, returned normally",
        key="in/50-never-uploaded.csv",
        status_message="file: object (version) not found",
        version=None,
        missing_object=True,
    )

    # ---------------------------------------------------------------- 51-52 resume path
    # The Python processor works in batches of 1000 rows (it looks at the clock only after a
    # batch); sizes are chosen so that the files need 2 and 3 invocations there.
    CSV_ROWS = 1100
    name = "51-resume-csv"
    K = f"in/{name}.csv"
    rows = [
        f"RS-{i:04d},ACC{i % 7},{i}.{i % 100:02d},EUR,CREDIT,2024-04-01T00:00:00Z,,"
        for i in range(1, CSV_ROWS + 1)
    ]
    rows[99] = "RS-0100,ACC2,0,EUR,CREDIT,2024-04-01T00:00:00Z,,"  # line 101: first part
    rows[1049] = "RS-1050,ACC0,1050.5,XYZ,CREDIT,2024-04-01T00:00:00Z,,"  # line 1051: resumed part
    case(
        name,
        {"input.csv": csv(*rows)},
        {
            "transactions": [
                tx(
                    f"RS-{i:04d}",
                    f"ACC{i % 7}",
                    str(Decimal(f"{i}.{i % 100:02d}").normalize()) if i % 100 else str(i),
                    "EUR",
                    "CREDIT",
                    "2024-04-01T00:00:00",
                    i + 1,
                    key=K,
                )
                for i in range(1, CSV_ROWS + 1)
                if i not in (100, 1050)
            ],
            "errors": [
                err("INVALID_VALUE", "amount", "RS-0100", 101, key=K),
                err("UNKNOWN_CURRENCY", "currency", "RS-1050", 1051, key=K),
            ],
            "accounting": {"rows_in": CSV_ROWS, "duplicates": 0},
            "main_queue_min": {"resume_file": 1},
            # Two invocations, one status: the resumed one continues at the first one's cursor.
            "file_status": [
                status(
                    K,
                    rows=CSV_ROWS,
                    stored=CSV_ROWS - 2,
                    errors={"INVALID_VALUE": 1, "UNKNOWN_CURRENCY": 1},
                    cursor=CSV_ROWS + 2,
                )
            ],
        },
        {
            "key": K,
            "remaining_time_ms": 20000,
            "description": "the S3 invocation has less than TIME_SAFETY_MARGIN_MS left: it finishes a batch, sends resume_file, and the retry consumer finishes the file; every row stored once",
        },
    )
    JSON_ROWS = 2050
    name = "52-resume-json-chain"
    K = f"in/{name}.json"

    def ts(i):
        return f"2024-04-02T00:{i // 60 % 60:02d}:{i % 60:02d}"

    recs = [
        {
            "transaction_id": f"RJ-{i:04d}",
            "account_id": "ACC1",
            "amount": f"{i}",
            "currency": "JPY",
            "transaction_type": "DEBIT",
            "timestamp": ts(i) + "Z",
        }
        for i in range(JSON_ROWS)
    ]
    recs[17]["amount"] = "1.5"
    recs[1500]["transaction_type"] = "LOAN"
    case(
        name,
        {"input.json": json.dumps(recs)},
        {
            "transactions": [
                tx(f"RJ-{i:04d}", "ACC1", str(i), "JPY", "DEBIT", ts(i), i, key=K)
                for i in range(1, JSON_ROWS)
                if i not in (17, 1500)
            ],
            "errors": [
                err("INVALID_VALUE", "amount", "RJ-0000", 0, key=K),
                err("PRECISION_EXCEEDED", "amount", "RJ-0017", 17, key=K),
                err("INVALID_VALUE", "transaction_type", "RJ-1500", 1500, key=K),
            ],
            "accounting": {"rows_in": JSON_ROWS, "duplicates": 0},
            "main_queue_min": {"resume_file": 2},
            "file_status": [
                status(
                    K,
                    rows=JSON_ROWS,
                    stored=JSON_ROWS - 3,
                    errors={"INVALID_VALUE": 2, "PRECISION_EXCEEDED": 1},
                    cursor=JSON_ROWS,
                )
            ],
        },
        {
            "key": K,
            "remaining_time_ms": 20000,
            "retry_remaining_time_ms": 20000,
            "description": "every invocation (S3 and retry consumer) is short on time: the file is finished by a chain of resume_file messages, each invocation making progress",
        },
    )

    # ---------------------------------------------------------------- 53 DLQ unknown shapes
    name = "53-dlq-unknown-shapes"
    bodies = [
        "this is not json",
        '{"foo": 1}',
        "[1, 2, 3]",
        "42",
        '"a json string"',
        '{"kind": "something_else", "x": 1}',
        "null",
        '{"kind": "record_error", "error_code": 5, "source": "nowhere"}',
        '{"Records": [{"eventSource": "aws:sqs", "body": "x"}]}',
    ]
    case(
        name,
        {"dlq_messages.json": json.dumps(bodies, indent=1)},
        {
            "transactions": [],
            "errors": [
                {
                    "error_code": "UNKNOWN_FORMAT",
                    "error_type": "UNKNOWN_FORMAT",
                    "field": None,
                    "transaction_id": None,
                    "source_line": None,
                    "source_key": None,
                    "source_version_id": None,
                    "source_bucket": None,
                    "error_id": "$SHA256_BODY",
                    "timestamp": "$SENT_TIMESTAMP",
                    "dlq_message": i,
                }
                for i, b in enumerate(bodies)
            ],
            "accounting": {"rows_in": len(bodies), "duplicates": 0},
        },
        {
            "description": "messages on the DLQ not in our format are stored as UNKNOWN_FORMAT, error_id = sha256(body), timestamp = SentTimestamp"
        },
    )

    # ---------------------------------------------------------------- 55 at-least-once everywhere
    name = "55-at-least-once-every-delivery-twice"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "AL-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "AL-2,ACC1,0,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "AL-3,ACC1,30,XYZ,DEBIT,2024-01-01T00:00:00Z,,",
                "AL-4,ACC1,40,EUR,DEBIT,2024-01-01T00:00:00Z,M,d",
                "AL-4,ACC1,41,EUR,DEBIT,2024-01-01T00:00:00Z,M,d",
            )
        },
        {
            "transactions": [
                tx("AL-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2, key=K),
                tx("AL-4", "ACC1", "40", "EUR", "DEBIT", JAN_1, 5, key=K, merchant="M", desc="d"),
            ],
            "errors": [
                err("INVALID_VALUE", "amount", "AL-2", 3, key=K),
                err("UNKNOWN_CURRENCY", "currency", "AL-3", 4, key=K),
                err("DUPLICATE_CONFLICT", "transaction_id", "AL-4", 6, key=K),
            ],
            "accounting": {"rows_in": 5, "duplicates": 0},
            "file_status": [
                status(
                    K,
                    rows=5,
                    stored=2,
                    errors={"INVALID_VALUE": 1, "UNKNOWN_CURRENCY": 1, "DUPLICATE_CONFLICT": 1},
                    cursor=7,
                )
            ],
        },
        {
            "key": K,
            "deliver_twice": True,
            "description": "every delivery (the S3 event, every main-queue and DLQ batch) arrives twice: the outcome is the same as with one",
        },
    )

    # ---------------------------------------------------------------- 56 CRLF with row errors
    name = "56-csv-crlf-row-errors"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "CR-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,a",
                'CR-2,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,"two\r\nlines"',
                "CR-3,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,,",
                "CR-4,ACC1,2,EUR,DEBIT,2024-01-01T00:00:00Z,,b",
                eol="\r\n",
            )
        },
        {
            "transactions": [
                tx("CR-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, key=K, desc="a"),
                tx("CR-4", "ACC1", "2", "EUR", "DEBIT", JAN_1, 6, key=K, desc="b"),
            ],
            "errors": [
                err("INVALID_FORMAT", "description", "CR-2", 3, key=K),
                err("MALFORMED_ROW", None, None, 5, key=K),
            ],
            "accounting": {"rows_in": 4, "duplicates": 0},
            "file_status": [
                status(
                    K,
                    rows=4,
                    stored=2,
                    errors={"INVALID_FORMAT": 1, "MALFORMED_ROW": 1},
                    cursor=7,
                )
            ],
        },
        {
            "key": K,
            "description": "CRLF file: a quoted CRLF inside a value counts as a line break for source_line",
        },
    )

    # ---------------------------------------------------------------- 54 DLQ known shapes
    name = "54-dlq-known-shapes"
    PB = "s3-transactions-dev-123456789012"
    record_error = {
        "kind": "record_error",
        "error_code": "INVALID_VALUE",
        "error_message": "amount: must be greater than 0",
        "field": "amount",
        "transaction_id": "KS-1",
        "source": {
            "bucket": PB,
            "key": "in/a.csv",
            "version_id": "v-a",
            "line": 5,
            "last_modified": 1704067200000,
        },
        "record": {
            "transaction_id": "KS-1",
            "account_id": "****3000",
            "amount": "0",
            "currency": "EUR",
            "transaction_type": "DEBIT",
            "timestamp": "2024-01-01T00:00:00Z",
        },
        "failed_at": 1704067260000,
        "processor": "python3.11/1.0.0",
    }
    leaky_record_error = {
        "kind": "record_error",
        "error_code": "UNKNOWN_CURRENCY",
        "error_message": "currency: XYZ is not an ISO 4217 code",
        "field": "currency",
        "transaction_id": "KS-2",
        "source": {
            "bucket": PB,
            "key": "in/a.csv",
            "version_id": "v-a",
            "line": 6,
            "last_modified": 1704067200000,
        },
        "record": {
            "transaction_id": "KS-2",
            "account_id": "DE89370400440532013000",
            "amount": "1",
            "currency": "XYZ",
            "description": "must not be kept",
        },
        "failed_at": 1704067260000,
        "processor": "rust/1.0.0",
    }
    file_error = {
        "kind": "file_error",
        "error_code": "EMPTY_FILE",
        "error_message": "file: no rows",
        "field": None,
        "transaction_id": None,
        "source": {
            "bucket": PB,
            "key": "in/empty.csv",
            "version_id": None,
            "line": None,
            "last_modified": 1704067300000,
        },
        "failed_at": 1704067360000,
        "processor": "python3.11/1.0.0",
    }
    retry_record = {
        "kind": "retry_record",
        "record": {
            "transaction_id": "KS-3",
            "account_id": "ACC1",
            "amount": "12.5",
            "currency": "EUR",
            "transaction_type": "DEBIT",
            "timestamp": 1704067200000,
        },
        "source": {
            "bucket": PB,
            "key": "in/b.csv",
            "version_id": "v-b",
            "line": 7,
            "last_modified": 1704067400000,
        },
        "error": {"code": "ProvisionedThroughputExceededException", "message": "throttled"},
        "failed_at": 1704067460000,
        "processor": "python3.11/1.0.0",
    }
    resume_file = {
        "kind": "resume_file",
        "bucket": PB,
        "key": "in/big.csv",
        "version_id": "v-c",
        "start_line": 1002,
    }
    s3_event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "eu-central-1",
                "eventTime": "2024-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "transactions-upload",
                    "bucket": {
                        "name": PB,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{PB}",
                    },
                    "object": {
                        "key": "in/big+file%2B2.csv",
                        "size": 10,
                        "eTag": "0" * 32,
                        "versionId": "v-d",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }
    msgs = [
        record_error,
        leaky_record_error,
        file_error,
        retry_record,
        resume_file,
        s3_event,
        record_error,
    ]

    def row(code, etype, field, tid, line, key, version, ts=None, idx=None):
        r = {
            "error_code": code,
            "error_type": etype,
            "field": field,
            "transaction_id": tid,
            "source_line": line,
            "source_bucket": PB,
            "source_key": key,
            "source_version_id": version,
        }
        if ts is not None:
            r["timestamp"] = ts
        if idx is not None:
            r["dlq_message"] = idx
        return r

    case(
        name,
        {"dlq_messages.json": json.dumps(msgs, indent=1)},
        {
            "transactions": [],
            "errors": [
                row(
                    "INVALID_VALUE",
                    "VALIDATION",
                    "amount",
                    "KS-1",
                    5,
                    "in/a.csv",
                    "v-a",
                    1704067200000,
                ),
                row(
                    "UNKNOWN_CURRENCY",
                    "VALIDATION",
                    "currency",
                    "KS-2",
                    6,
                    "in/a.csv",
                    "v-a",
                    1704067200000,
                ),
                row("EMPTY_FILE", "FILE", None, None, None, "in/empty.csv", None, 1704067300000),
                row(
                    "RECORD_WRITE_FAILED",
                    "PROCESSING",
                    None,
                    "KS-3",
                    7,
                    "in/b.csv",
                    "v-b",
                    1704067400000,
                ),
                row(
                    "FILE_RESUME_FAILED",
                    "PROCESSING",
                    None,
                    None,
                    1002,
                    "in/big.csv",
                    "v-c",
                    "$SENT_TIMESTAMP",
                    4,
                ),
                row(
                    "FILE_PROCESSING_FAILED",
                    "PROCESSING",
                    None,
                    None,
                    None,
                    "in/big file+2.csv",
                    "v-d",
                    "$SENT_TIMESTAMP",
                    5,
                ),
            ],
            "accounting": {"rows_in": 7, "duplicates": 1},
        },
        {
            "description": "the processor's own message kinds on the DLQ (record_error, file_error; retry_record, resume_file and S3 events after the main queue's redrive); the same record_error twice gives one row (deterministic keys); a leaked account number and description are masked again"
        },
    )

    # ---------------------------------------------------------------- 57 store unavailable
    name = "57-store-failing-records-end-in-errors"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "SF-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "SF-2,ACC1,abc,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "SF-3,ACC1,30,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [],
            "errors": [
                err("RECORD_WRITE_FAILED", None, "SF-1", 2, key=K, etype="PROCESSING"),
                err("INVALID_FORMAT", "amount", "SF-2", 3, key=K),
                err("RECORD_WRITE_FAILED", None, "SF-3", 4, key=K, etype="PROCESSING"),
            ],
            "accounting": {"rows_in": 3, "duplicates": 0},
            "main_queue_min": {"retry_record": 2},
            # The two rows stay pending (P31): their retries are exhausted, a replay is due.
            "file_status": [
                status(
                    K,
                    rows=3,
                    errors={"INVALID_FORMAT": 1},
                    retry_lines=[2, 4],
                    cursor=5,
                    state="processing",
                )
            ],
        },
        {
            "key": K,
            "env": {"DYNAMODB_TABLE_NAME": "dynamodb-transactions-missing"},
            # The role may write only the stack's table: AWS refuses the PutItem (IAM is
            # evaluated before the table's existence), which the processor retries.
            "expected_refusals": [
                {
                    "action": "dynamodb:PutItem",
                    "resource": "arn:aws:dynamodb:*:table/dynamodb-transactions-missing",
                }
            ],
            "description": "every PutItem fails: valid records go to the main queue as retry_record, fail 3 receives, are redriven to the DLQ and stored as PROCESSING errors; nothing is dropped",
        },
    )

    # ---------------------------------------------------------------- 58 object unreadable
    name = "58-object-unreadable-ends-in-errors"
    K = f"in/{name}.csv"
    case(
        name,
        {"input.csv": csv("OU-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,")},
        {
            "transactions": [],
            "errors": [
                {
                    "error_code": "FILE_PROCESSING_FAILED",
                    "error_type": "PROCESSING",
                    "field": None,
                    "transaction_id": None,
                    "source_line": None,
                    "source_bucket": "$BUCKET",
                    "source_key": K,
                    "source_version_id": "$VERSION_1",
                }
            ],
            "accounting": {"rows_in": 1, "duplicates": 0},
            "main_queue_min": {"s3_event": 1},
        },
        {
            "key": K,
            "deny_get_object": True,
            "description": "GetObject is denied (403, retryable): the S3 invocation fails 3 times (async retries), Lambda's dead_letter_config puts the event on the main queue, the retry consumer fails it 3 times, the redrive moves it to the DLQ and it is stored as a PROCESSING error",
        },
    )

    # ---------------------------------------------------------------- 59-62 decisions shared by both
    name = "59-json-bom"
    K = f"in/{name}.json"
    case(
        name,
        {"input.json": b"\xef\xbb\xbf" + json.dumps([{"transaction_id": "JB-1", **base}]).encode()},
        {
            "transactions": [tx("JB-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 0, key=K)],
            "errors": [],
            "accounting": {"rows_in": 1, "duplicates": 0},
        },
        {
            "key": K,
            "description": "a UTF-8 BOM before a JSON document is accepted (handler decision P14)",
        },
    )
    name = "60-csv-blank-lines"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": "\n"
            + csv(
                "BL-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "",
                "BL-2,ACC1,2,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "\r",
                "BL-3,ACC1,0,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
            + "\n\n"
        },
        {
            "transactions": [
                tx("BL-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 3, key=K),
                tx("BL-2", "ACC1", "2", "EUR", "DEBIT", JAN_1, 5, key=K),
            ],
            "errors": [err("INVALID_VALUE", "amount", "BL-3", 7, key=K)],
            "accounting": {"rows_in": 3, "duplicates": 0},
        },
        {
            "key": K,
            "description": "blank lines (also before the header and a lone CR) are skipped but counted for source_line (handler decision P11)",
        },
    )
    name = "61-json-number-tokens-as-text"
    K = f"in/{name}.json"
    case(
        name,
        {
            "input.json": '[{"transaction_id": 42, "account_id": 12345678, "amount": 5, "currency": "EUR", '
            '"transaction_type": "DEBIT", "timestamp": "2024-01-01T00:00:00Z", "merchant_id": 7},\n'
            ' {"transaction_id": "NT-2", "account_id": "ACC1", "amount": 5, "currency": 978, '
            '"transaction_type": "DEBIT", "timestamp": "2024-01-01T00:00:00Z"},\n'
            ' {"transaction_id": 1.5, "account_id": "ACC1", "amount": 5, "currency": "EUR", '
            '"transaction_type": "DEBIT", "timestamp": "2024-01-01T00:00:00Z"}]'
        },
        {
            "transactions": [
                tx("42", "12345678", "5", "EUR", "DEBIT", JAN_1, 0, key=K, merchant="7"),
                tx("1.5", "ACC1", "5", "EUR", "DEBIT", JAN_1, 2, key=K),
            ],
            "errors": [err("UNKNOWN_CURRENCY", "currency", "NT-2", 1, key=K)],
            "accounting": {"rows_in": 3, "duplicates": 0},
        },
        {
            "key": K,
            "description": 'a JSON number in any field is its token text (handler decision P2): 42 is the id "42", currency 978 is UNKNOWN_CURRENCY; the number 1.5 is the valid id "1.5"',
        },
    )
    file_error_case(
        "62-json-whitespace-only",
        {"input.json": "  \n\t \n"},
        "EMPTY_FILE",
        "a JSON file with only whitespace is EMPTY_FILE (handler decision P14)",
    )

    # ---------------------------------------------------------------- 63 killed and re-run
    KILL_ROWS = 2100
    name = "63-killed-mid-file-status-exact"
    K = f"in/{name}.csv"
    rows = [
        f"KR-{i:04d},ACC{i % 5},{i},EUR,DEBIT,2024-06-01T00:00:00Z,,"
        for i in range(1, KILL_ROWS + 1)
    ]
    rows[9] = "KR-0010,ACC0,10,XYZ,DEBIT,2024-06-01T00:00:00Z,,"  # line 11: first batch
    rows[1499] = "KR-1500,ACC0,-1,EUR,DEBIT,2024-06-01T00:00:00Z,,"  # line 1501: killed batch
    case(
        name,
        {"input.csv": csv(*rows)},
        {
            "transactions": [
                tx(
                    f"KR-{i:04d}",
                    f"ACC{i % 5}",
                    str(i),
                    "EUR",
                    "DEBIT",
                    "2024-06-01T00:00:00",
                    i + 1,
                    key=K,
                )
                for i in range(1, KILL_ROWS + 1)
                if i not in (10, 1500)
            ],
            "errors": [
                err("UNKNOWN_CURRENCY", "currency", "KR-0010", 11, key=K),
                err("INVALID_VALUE", "amount", "KR-1500", 1501, key=K),
            ],
            "accounting": {"rows_in": KILL_ROWS, "duplicates": 0},
            # Rows the killed attempt stored in its unfinished batch are duplicates for the
            # re-run (P29): stored + duplicates is exact, their split depends on the kill.
            "file_status": [
                status(
                    K,
                    rows=KILL_ROWS,
                    killed=True,
                    errors={"UNKNOWN_CURRENCY": 1, "INVALID_VALUE": 1},
                    cursor=KILL_ROWS + 2,
                )
            ],
        },
        {
            "key": K,
            "crash": {"after_calls": 1300, "operation": "PutItem", "when": "s3"},
            "description": "the first S3 invocation is killed in its second batch (after 1300 PutItem calls); Lambda's retry re-reads the file: the first batch is not counted again, the second and third are counted once (P28, P29)",
        },
    )

    # ---------------------------------------------------------------- 64 replayed pending rows
    name = "64-replay-resolves-pending-rows"
    K = f"in/{name}.csv"
    case(
        name,
        {
            "input.csv": csv(
                "RP-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "RP-2,ACC1,abc,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "RP-3,ACC1,30,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        {
            "transactions": [
                tx("RP-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2, key=K),
                tx("RP-3", "ACC1", "30", "EUR", "DEBIT", JAN_1, 4, key=K),
            ],
            # The RECORD_WRITE_FAILED rows stay as the audit trail; their lines are stored now,
            # so the accounting counts them as history, not as outcomes (P32).
            "errors": [
                err("RECORD_WRITE_FAILED", None, "RP-1", 2, key=K, etype="PROCESSING"),
                err("INVALID_FORMAT", "amount", "RP-2", 3, key=K),
                err("RECORD_WRITE_FAILED", None, "RP-3", 4, key=K, etype="PROCESSING"),
            ],
            "accounting": {"rows_in": 3, "duplicates": 0},
            "main_queue_min": {"retry_record": 2, "resume_file": 1},
            # Pending after the first run (case 57's state); the replay's re-read stores both
            # rows, resolves both lines once and the file is done (P29, P32).
            "file_status": [status(K, rows=3, stored=2, errors={"INVALID_FORMAT": 1}, cursor=5)],
        },
        {
            "key": K,
            "env": {"DYNAMODB_TABLE_NAME": "dynamodb-transactions-missing"},
            "expected_refusals": [
                {
                    "action": "dynamodb:PutItem",
                    "resource": "arn:aws:dynamodb:*:table/dynamodb-transactions-missing",
                }
            ],
            "replay": True,
            "description": "every PutItem fails as in case 57 (two rows pending, RECORD_WRITE_FAILED rows); then the cause is fixed and a replay sends a resume_file from the smallest retryable line, as txnctl does: the re-read's batch was counted before, yet the rows it stores resolve their pending lines (P32): state done, retries_pending 0, each row stored once",
        },
    )

    # ---------------------------------------------------------------- 65 a file in ranges
    # P33-P35: the step is set to the offset of a line inside a quoted cell, so a quote-blind
    # splitter would cut there; the boundary must be the next row. Both ranges hold more than
    # one batch and resume (20 s left, under the 30 s margin, per main-queue invocation), and one main-queue invocation
    # is killed in the middle of a range.
    name = "65-ranges-quoted-boundary-resume-killed"
    K = f"in/{name}.csv"
    RANGE_ROWS = 2400
    QUOTED_AT = 1274  # the quoted cell whose inner line the step points at

    def range_row(i):
        merchant = f'"M\n{i},x"' if i % 7 == 0 else f"M{i}"
        currency = "XYZ" if i == 500 else "EUR"
        amount = "-1" if i == 1800 else str(i)
        return f"RG-{i:04d},ACC{i % 5},{amount},{currency},DEBIT,2024-06-01T00:00:00Z,{merchant},"

    rows = [range_row(i) for i in range(1, RANGE_ROWS + 1)]
    text = csv(*rows)
    line_of, offset_of = {}, {}
    line, offset = 2, len(HEADER) + 1
    for i, row in enumerate(rows, start=1):
        line_of[i], offset_of[i] = line, offset
        line += row.count("\n") + 1
        offset += len(row.encode()) + 1
    step = offset_of[QUOTED_AT] + rows[QUOTED_AT - 1].index("\n") + 1  # inside the quotes
    assert offset < 2 * step  # one boundary: two ranges
    boundary = QUOTED_AT + 1
    case(
        name,
        {"input.csv": text},
        {
            "transactions": [
                tx(
                    f"RG-{i:04d}",
                    f"ACC{i % 5}",
                    str(i),
                    "EUR",
                    "DEBIT",
                    "2024-06-01T00:00:00",
                    line_of[i],
                    key=K,
                    merchant=f"M\n{i},x" if i % 7 == 0 else f"M{i}",
                )
                for i in range(1, RANGE_ROWS + 1)
                if i not in (500, 1800)
            ],
            "errors": [
                err("UNKNOWN_CURRENCY", "currency", "RG-0500", line_of[500], key=K),
                err("INVALID_VALUE", "amount", "RG-1800", line_of[1800], key=K),
            ],
            "accounting": {"rows_in": RANGE_ROWS, "duplicates": 0},
            "main_queue_min": {"resume_file": 4},
            "file_status": [
                status(
                    K,
                    rows=RANGE_ROWS,
                    killed=True,
                    errors={"UNKNOWN_CURRENCY": 1, "INVALID_VALUE": 1},
                    # P28: a range's cursor ends at its last row's line + 1 (row 1274 spans
                    # two lines, so range 0 ends one line before range 1's first).
                    ranges=[
                        (0, line_of[boundary - 1] + 1),
                        (line_of[boundary], line_of[RANGE_ROWS] + 1),
                    ],
                )
            ],
        },
        {
            "key": K,
            "env": {"RANGE_SPLIT_BYTES": str(step)},
            "retry_remaining_time_ms": 20000,
            # The first main-queue invocation runs one batch of range 0 (1000 rows) and then
            # defers range 1 (P21): the kill must come inside that batch.
            "crash": {"after_calls": 500, "operation": "PutItem", "when": "sqs"},
            "description": "a CSV over RANGE_SPLIT_BYTES is split at the first row after the step (the step points inside a quoted cell); both ranges resume after each batch, one range invocation is killed mid-batch; every row is stored once with its physical line, the status has one cursor per range (P33-P35)",
        },
    )

    # ---------------------------------------------------------------- 66 a killed splitter
    # P34: the S3 invocation is killed right after its split UpdateItem, before any range
    # message; Lambda's retry finds the same split recorded and sends the messages again; the
    # event delivered once more after everything is done sends them a third time, and the
    # re-read ranges count nothing twice (P29).
    name = "66-ranges-killed-splitter-event-twice"
    K = f"in/{name}.csv"
    rows = [
        f"KS-{i:02d},ACC{i % 3},{0 if i == 17 else i},EUR,DEBIT,2024-01-01T00:00:00Z,,"
        for i in range(1, 41)
    ]
    text = csv(*rows)
    split_bytes = 600
    starts = row_starts(rows)
    ranges = p33_ranges(starts, p33_step(split_bytes, len(text.encode())))
    assert len(ranges) == 4
    case(
        name,
        {"input.csv": text},
        {
            "transactions": [
                tx(f"KS-{i:02d}", f"ACC{i % 3}", str(i), "EUR", "DEBIT", JAN_1, i + 1, key=K)
                for i in range(1, 41)
                if i != 17
            ],
            "errors": [err("INVALID_VALUE", "amount", "KS-17", 18, key=K)],
            "accounting": {"rows_in": 40, "duplicates": 0},
            # Every range message three times over: none by the killed splitter, then one set
            # per delivery of the event.
            "main_queue_min": {"resume_file": 2 * len(ranges)},
            "file_status": [
                status(K, rows=40, stored=39, errors={"INVALID_VALUE": 1}, ranges=ranges)
            ],
        },
        {
            "key": K,
            "env": {"RANGE_SPLIT_BYTES": str(split_bytes)},
            "crash": {"after_calls": 2, "operation": "UpdateItem", "when": "s3"},
            "redeliver": 1,
            "description": "the S3 invocation is killed after its second UpdateItem (status opened, split recorded), before any range message; Lambda's retry finds the same split and sends the range messages (P34); the event delivered again after the file is done sends them again, and the re-read ranges store and count nothing twice (P29)",
        },
    )

    # ---------------------------------------------------------------- 67 a row after a blank line
    # P33: the step is the first byte of a row that follows a blank line (BOM, CRLF line ends):
    # a blank line belongs to no row, so that row starts at the step and is the boundary; the
    # BOM counts in the byte offsets.
    name = "67-ranges-crlf-bom-blank-line-at-step"
    K = f"in/{name}.csv"
    rows = [
        f"CB-{i:02d},ACC1,{i}.5,EUR,CREDIT,2024-01-01T00:00:00Z,M{i},d{i}" for i in range(1, 31)
    ]
    rows.insert(10, "")  # a blank line before CB-11
    assert rows[25].startswith("CB-25,")
    rows[25] = rows[25].replace("EUR", "XYZ")
    bom = b"\xef\xbb\xbf"
    data = bom + csv(*rows, eol="\r\n").encode()
    starts = row_starts(rows, eol="\r\n", first_byte=len(bom))
    line_of = {
        r.split(",")[0]: line for r, (line, _) in zip([r for r in rows if r], starts, strict=True)
    }
    split_bytes = dict(zip(line_of, (start for _, start in starts), strict=True))["CB-11"]
    ranges = p33_ranges(starts, p33_step(split_bytes, len(data)))
    assert ranges[1][0] == line_of["CB-11"] == 13 and len(ranges) == 3
    case(
        name,
        {"input.csv": data},
        {
            "transactions": [
                tx(
                    f"CB-{i:02d}",
                    "ACC1",
                    f"{i}.5",
                    "EUR",
                    "CREDIT",
                    JAN_1,
                    line_of[f"CB-{i:02d}"],
                    key=K,
                    merchant=f"M{i}",
                    desc=f"d{i}",
                )
                for i in range(1, 31)
                if i != 25
            ],
            "errors": [err("UNKNOWN_CURRENCY", "currency", "CB-25", line_of["CB-25"], key=K)],
            "accounting": {"rows_in": 30, "duplicates": 0},
            "main_queue_min": {"resume_file": len(ranges)},
            "file_status": [
                status(K, rows=30, stored=29, errors={"UNKNOWN_CURRENCY": 1}, ranges=ranges)
            ],
        },
        {
            "key": K,
            "env": {"RANGE_SPLIT_BYTES": str(split_bytes)},
            "description": "RANGE_SPLIT_BYTES is the offset (BOM included) of the first byte of CB-11, which follows a blank CRLF line: the blank line belongs to no row, so CB-11 starts at the step and is range 1's first row (line 13); source_line stays the physical line (P11, P33)",
        },
    )

    # ---------------------------------------------------------------- 68 at most 100 ranges
    # P33: RANGE_SPLIT_BYTES 1 would make a range of every row; the step grows to
    # ceil(ContentLength / 100), so the split's one UpdateItem names at most 99 cursors.
    name = "68-ranges-at-most-100"
    K = f"in/{name}.csv"
    rows = [f"HR-{i:03d},ACC{i % 7},{i},EUR,DEBIT,2024-01-01T00:00:00Z,," for i in range(1, 221)]
    text = csv(*rows)
    step = p33_step(1, len(text.encode()))
    assert step == -(-len(text.encode()) // 100) > 1
    starts = row_starts(rows)
    ranges = p33_ranges(starts, step)
    assert 90 < len(ranges) <= 100
    case(
        name,
        {"input.csv": text},
        {
            "transactions": [
                tx(f"HR-{i:03d}", f"ACC{i % 7}", str(i), "EUR", "DEBIT", JAN_1, i + 1, key=K)
                for i in range(1, 221)
            ],
            "errors": [],
            "accounting": {"rows_in": 220, "duplicates": 0},
            "main_queue_min": {"resume_file": len(ranges)},
            "file_status": [status(K, rows=220, stored=220, ranges=ranges)],
        },
        {
            "key": K,
            "env": {"RANGE_SPLIT_BYTES": "1"},
            "description": f"RANGE_SPLIT_BYTES 1: the step grows to ceil(ContentLength / 100) = {step} bytes, so the file goes out in {len(ranges)} ranges of about two rows, not one range per row (P33); one UpdateItem records them all (P34)",
        },
    )

    # ---------------------------------------------------------------- 69 just over the threshold
    # P33, P34: over RANGE_SPLIT_BYTES by one byte, but no row starts at or after the step:
    # one range, "0", whose cursor is the unsplit file's; no split update, one range message.
    name = "69-ranges-just-over-threshold-one-range"
    K = f"in/{name}.csv"
    rows = [f"JO-{i},ACC1,{i},EUR,DEBIT,2024-01-01T00:00:00Z,," for i in range(1, 4)]
    text = csv(*rows)
    split_bytes = len(text.encode()) - 1
    assert p33_ranges(row_starts(rows), p33_step(split_bytes, len(text.encode()))) == [(0, 5)]
    case(
        name,
        {"input.csv": text},
        {
            "transactions": [
                tx(f"JO-{i}", "ACC1", str(i), "EUR", "DEBIT", JAN_1, i + 1, key=K)
                for i in range(1, 4)
            ],
            "errors": [],
            "accounting": {"rows_in": 3, "duplicates": 0},
            "main_queue_min": {"resume_file": 1},
            "file_status": [status(K, rows=3, stored=3, cursor=5)],
        },
        {
            "key": K,
            "env": {"RANGE_SPLIT_BYTES": str(split_bytes)},
            "description": "a CSV one byte over RANGE_SPLIT_BYTES whose last row starts before the step is one range: no split UpdateItem, one range message for range 0 (bytes [0, ContentLength)), and the status is the unsplit file's (cursor 0 only, P33, P34)",
        },
    )

    # ---------------------------------------------------------------- 70 a JSON array in ranges
    # P33 (JSON): the elements' strings hold brackets, braces, commas, escaped quotes and
    # backslashes; the step points inside such a string, so a bracket- or quote-blind splitter
    # would cut there; every boundary must be the first element starting at or after k * step.
    name = "70-json-ranges-tricky-strings"
    K = f"in/{name}.json"
    tricky = ["a,b]", '}{"', "\\", '\\"],[', "\\\\", "ü€ 𝄞", "[[[", '"', ", ]", '},{"x":']
    separators = [",", " ,", ",\n  ", "\n,\t"]

    def json_record(i):
        if i == 13:
            return ["TR-13", "not an object"]  # INVALID_FORMAT, field null (P12's shape)
        record = {
            "transaction_id": f"TR-{i:02d}",
            "account_id": f"ACC{i % 4}",
            "amount": i + 0.25 if i % 3 else str(i + 100),
            "currency": "XYZ" if i == 27 else "EUR",
            "transaction_type": "DEBIT",
            "timestamp": "2024-01-01T00:00:00Z",
            "merchant_id": f"M{tricky[i % len(tricky)]}",
            "description": tricky[(i + 3) % len(tricky)],
        }
        return record

    elements = [json.dumps(json_record(i), ensure_ascii=i % 2 == 0) for i in range(40)]
    text, starts = "[ ", []
    for i, element in enumerate(elements):
        if i:
            text += separators[i % len(separators)]
        starts.append((i, len(text.encode())))
        text += element
    text += "\n]\n"
    # The step: the '[' after '],' inside element 10's description, which is \"],[ (an
    # escaped backslash and an escaped quote before it).
    assert json.loads(elements[10])["description"] == '\\"],['
    inner = elements[10].index('\\"],[') + 4
    step = starts[10][1] + len(elements[10][:inner].encode())
    ranges = p33_ranges(starts, p33_step(step, len(text.encode())))
    assert len(ranges) >= 3 and ranges[1][0] == 11, ranges
    case(
        name,
        {"input.json": text},
        {
            "transactions": [
                tx(
                    f"TR-{i:02d}",
                    f"ACC{i % 4}",
                    str(i + 0.25) if i % 3 else str(i + 100),
                    "EUR",
                    "DEBIT",
                    JAN_1,
                    i,
                    key=K,
                    merchant=f"M{tricky[i % len(tricky)]}",
                    desc=tricky[(i + 3) % len(tricky)],
                )
                for i in range(40)
                if i not in (13, 27)
            ],
            "errors": [
                err("INVALID_FORMAT", None, None, 13, key=K),
                err("UNKNOWN_CURRENCY", "currency", "TR-27", 27, key=K),
            ],
            "accounting": {"rows_in": 40, "duplicates": 0},
            "main_queue_min": {"resume_file": len(ranges)},
            "file_status": [
                status(
                    K,
                    rows=40,
                    stored=38,
                    errors={"INVALID_FORMAT": 1, "UNKNOWN_CURRENCY": 1},
                    ranges=ranges,
                )
            ],
        },
        {
            "key": K,
            "env": {"RANGE_SPLIT_BYTES": str(step)},
            "description": f"a JSON array over RANGE_SPLIT_BYTES is split by element (P33): the step ({step}) points at the '[' of the '],[' after an escaped quote inside element 10's description, so range 1 starts at element 11; strings with brackets, braces, commas, escaped quotes and backslashes never end an element; {len(ranges)} ranges, each element stored once with its 0-based index as source_line, one cursor per range (ids are element indexes)",
        },
    )

    # ---------------------------------------------------------------- 71 the object form in ranges
    # P33 (JSON): {"transactions": [...]} with a BOM and CRLF white space is split as the array
    # is; the offsets count the BOM and the object's prefix; range 0 starts at element 0.
    name = "71-json-ranges-transactions-object"
    K = f"in/{name}.json"
    bom = b"\xef\xbb\xbf"
    prefix = '{\r\n  "transactions" : [\r\n    '
    elements = [
        json.dumps(
            {
                "transaction_id": f"TO-{i:02d}",
                "account_id": "ACC9",
                "amount": f"{i}.5",
                "currency": "CHF",
                "transaction_type": "credit",
                "timestamp": "2024-01-01T01:00:00+01:00",
                "description": f'line {i}: {{not: [json]}}, "q"',
            }
        )
        for i in range(30)
    ]
    body = prefix
    starts = []
    for i, element in enumerate(elements):
        if i:
            body += ",\r\n    "
        starts.append((i, len(bom) + len(body.encode())))
        body += element
    data = bom + (body + "\r\n  ]\r\n}\r\n").encode()
    split_bytes = len(data) // 3
    ranges = p33_ranges(starts, p33_step(split_bytes, len(data)))
    assert len(ranges) == 3, ranges
    case(
        name,
        {"input.json": data},
        {
            "transactions": [
                tx(
                    f"TO-{i:02d}",
                    "ACC9",
                    f"{i}.5",
                    "CHF",
                    "CREDIT",
                    JAN_1,
                    i,
                    key=K,
                    desc=f'line {i}: {{not: [json]}}, "q"',
                )
                for i in range(30)
            ],
            "errors": [],
            "accounting": {"rows_in": 30, "duplicates": 0},
            "main_queue_min": {"resume_file": len(ranges)},
            "file_status": [status(K, rows=30, stored=30, ranges=ranges)],
        },
        {
            "key": K,
            "env": {"RANGE_SPLIT_BYTES": str(split_bytes)},
            "description": 'the {"transactions": [...]} form (BOM, CRLF white space) over RANGE_SPLIT_BYTES is split by element as an array is (P33): the byte offsets count the BOM and the prefix; three ranges, each element stored once with its index',
        },
    )

    # ---------------------------------------------------------------- 72 malformed: not split
    # P33 (JSON): a document over RANGE_SPLIT_BYTES that the unsplit path rejects is not split:
    # its elements before the error are never stored, and the file error is the unsplit one,
    # with the whole document's line and column (P25).
    name = "72-json-ranges-malformed-not-split"
    K = f"in/{name}.json"
    lines = [
        json.dumps(
            {
                "transaction_id": f"MN-{i:02d}",
                "account_id": "ACC1",
                "amount": "1",
                "currency": "EUR",
                "transaction_type": "DEBIT",
                "timestamp": "2024-01-01T00:00:00Z",
                "description": 'a "quoted", [bracketed] text',
            }
        )
        for i in range(30)
    ]
    lines[24] = lines[24].replace('"amount": "1", ', '"amount": "1" ')  # a missing ','
    text = "[\n" + ",\n".join(lines) + "\n]\n"
    column = lines[24].index('"currency"') + 1  # where reading stops: line 26 (after "[")
    file_error_case(
        name,
        {"input.json": text},
        "MALFORMED_FILE",
        f"a JSON array over RANGE_SPLIT_BYTES whose element 24 lacks a ',' is not split (P33): nothing stored, no range message, and the file error is the unsplit one (line 26, column {column}, P25)",
        status_message=f"file: not valid JSON at line 26, column {column}",
        env={"RANGE_SPLIT_BYTES": "200"},
    )

    # ---------------------------------------------------------------- 73 JSON ranges resume
    # P35 (JSON): two ranges of about 1100 elements: each resumes after its first batch (20 s
    # left, under the 30 s margin) with the next element's index as start_line, and one range
    # invocation is killed in the middle of a batch and re-run (P29).
    name = "73-json-ranges-resume-killed"
    K = f"in/{name}.json"
    count = 2200

    def resume_record(i):
        return {
            "transaction_id": f"JR-{i:04d}",
            "account_id": f"ACC{i % 5}",
            "amount": "-1" if i == 1500 else str(i + 1),
            "currency": "XYZ" if i == 400 else "EUR",
            "transaction_type": "DEBIT",
            "timestamp": "2024-06-01T00:00:00Z",
            "merchant_id": f"M,{i}]" if i % 7 == 0 else f"M{i}",
        }

    elements = [json.dumps(resume_record(i)) for i in range(count)]
    text, starts = "[\n", []
    for i, element in enumerate(elements):
        if i:
            text += ",\n"
        starts.append((i, len(text.encode())))
        text += element
    text += "\n]\n"
    split_bytes = len(text.encode()) // 2
    ranges = p33_ranges(starts, p33_step(split_bytes, len(text.encode())))
    assert len(ranges) == 2 and 1000 < ranges[1][0] < count - 1000, ranges
    case(
        name,
        {"input.json": text},
        {
            "transactions": [
                tx(
                    f"JR-{i:04d}",
                    f"ACC{i % 5}",
                    str(i + 1),
                    "EUR",
                    "DEBIT",
                    "2024-06-01T00:00:00",
                    i,
                    key=K,
                    merchant=f"M,{i}]" if i % 7 == 0 else f"M{i}",
                )
                for i in range(count)
                if i not in (400, 1500)
            ],
            "errors": [
                err("UNKNOWN_CURRENCY", "currency", "JR-0400", 400, key=K),
                err("INVALID_VALUE", "amount", "JR-1500", 1500, key=K),
            ],
            "accounting": {"rows_in": count, "duplicates": 0},
            "main_queue_min": {"resume_file": 4},
            "file_status": [
                status(
                    K,
                    rows=count,
                    killed=True,
                    errors={"UNKNOWN_CURRENCY": 1, "INVALID_VALUE": 1},
                    ranges=ranges,
                )
            ],
        },
        {
            "key": K,
            "env": {"RANGE_SPLIT_BYTES": str(split_bytes)},
            "retry_remaining_time_ms": 20000,
            # As in case 65: the first main-queue invocation runs one batch of range 0 and
            # defers range 1 (P21); the kill comes inside that batch.
            "crash": {"after_calls": 500, "operation": "PutItem", "when": "sqs"},
            "description": "a JSON array in two ranges of about 1100 elements (P33): each range resumes after a batch with a range message whose start_line is the next element's index, one range invocation is killed mid-batch and re-run; every element is stored once, each range's cursor ends past its last element (P28, P29, P35)",
        },
    )

    # ---------------------------------------------------------------- 74 throttled writes yield
    # P37: a record's conditional PutItem answered with each of DynamoDB's three throttle codes,
    # several times over, is retried by the processor after its backoff and stored once; no
    # record becomes a retry_record.
    name = "74-throttled-writes-yield"
    K = f"in/{name}.csv"
    rows = [f"TH-{i},ACC{i % 2},{i}.25,EUR,CREDIT,2024-01-01T00:00:00Z,," for i in range(1, 7)]
    throttles = [
        ("TH-2", "ThrottlingException", 5),
        ("TH-4", "ProvisionedThroughputExceededException", 5),
        ("TH-6", "RequestLimitExceeded", 3),
    ]
    case(
        name,
        {"input.csv": csv(*rows)},
        {
            "transactions": [
                tx(f"TH-{i}", f"ACC{i % 2}", f"{i}.25", "EUR", "CREDIT", JAN_1, i + 1, key=K)
                for i in range(1, 7)
            ],
            "errors": [],
            "accounting": {"rows_in": 6, "duplicates": 0},
            "main_queue_max": {"retry_record": 0},
            "file_status": [status(K, rows=6, stored=6, cursor=8)],
        },
        {
            "key": K,
            "throttle": [
                {"transaction_id": tid, "code": code, "times": times}
                for tid, code, times in throttles
            ],
            "description": "three records' PutItem calls are throttled 5, 5 and 3 times, one DynamoDB throttle code each (ThrottlingException, ProvisionedThroughputExceededException, RequestLimitExceeded): the processor retries each after its jittered backoff (P37) and stores every record once, with no retry_record",
        },
    )

    print(len(CASES), "cases")


if __name__ == "__main__":
    build()
