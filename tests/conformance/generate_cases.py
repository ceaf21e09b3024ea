"""Source of tests/conformance/cases/*: inputs and hand-written expectations (from design.md).

    .venv/bin/python tests/conformance/generate_cases.py   # rewrites tests/conformance/cases/

Every expected value below is typed by hand from the spec (and, where the spec is silent, from
the decisions in contract/decisions.md, cited by number in the case descriptions); nothing
is recorded from an implementation. The helpers only add the constant per-item attributes
(status, source_bucket, the case's source_key, tokens), turn a UTC date-time computed by hand
into epoch ms, and spread a case's table (column_case: each row's cell and the value typed for
it) into its input rows, items and error rows.
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
# The required fields but transaction_id of a plain valid record, as written in most inputs.
PLAIN = {
    "account_id": "ACC1",
    "amount": "1",
    "currency": "EUR",
    "transaction_type": "DEBIT",
    "timestamp": "2024-01-01T00:00:00Z",
}


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


# The source_key of a tx(), err(), file_err() or status() row written without a key: case()
# puts in the case's own key.
CASE_KEY = object()


def tx(
    tid,
    acct,
    amount,
    cur,
    typ,
    ts_utc,
    line,
    *,
    key=CASE_KEY,
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


def err(code, field, tid, line, *, key=CASE_KEY, etype="VALIDATION", version="$VERSION_1"):
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


def errs(code, *rows):
    """The err() rows of one error code, each row (field, transaction_id, source_line)."""
    return [err(code, *row) for row in rows]


def file_err(code, *, key=CASE_KEY, etype="FILE", version="$VERSION_1"):
    return {
        "error_code": code,
        "error_type": etype,
        "field": None,
        "transaction_id": None,
        "source_line": None,
        "source_bucket": "$BUCKET",
        "source_key": key,
        "source_version_id": version,
    }


def status(
    key=CASE_KEY,
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
    for rows in (expected[k] for k in ("transactions", "errors", "file_status") if k in expected):
        for row in rows:
            if row["source_key"] is CASE_KEY:
                row["source_key"] = config["key"]
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


def record_case(
    name,
    inputs: dict[str, bytes | str],
    description,
    *,
    rows_in,
    transactions=(),
    errors=(),
    duplicates=0,
    main_queue_min=None,
    main_queue_max=None,
    file_status=None,
    key=None,
    **config,
):
    """A case of one input file and what it must leave: the stored items, the error rows, the
    accounting and, where given, the queue counts and the per-file status item (or a list of
    them, one per object version). The key is in/<name>.<ending of the one input file> unless
    given; config keys go between key and description."""
    if key is None:
        (fname,) = inputs
        key = f"in/{name}{Path(fname).suffix}"
    expected = {
        "transactions": list(transactions),
        "errors": list(errors),
        "accounting": {"rows_in": rows_in, "duplicates": duplicates},
    }
    optional = {
        "main_queue_min": main_queue_min,
        "main_queue_max": main_queue_max,
        "file_status": [file_status] if isinstance(file_status, dict) else file_status,
    }
    expected |= {label: value for label, value in optional.items() if value is not None}
    case(name, inputs, expected, {"key": key, **config, "description": description})


def file_error_case(
    name,
    inputs: dict[str, bytes | str],
    code,
    description,
    *,
    status_message=None,
    version="$VERSION_1",
    **config,
):
    """A case whose file is refused as a whole: nothing stored, one file error row and rows_in 1;
    with status_message, the failed per-file status it leaves (P30)."""
    failed = status(state="failed", file_error=(code, status_message), version=version)
    record_case(
        name,
        inputs,
        description,
        rows_in=1,
        errors=[file_err(code, version=version)],
        file_status=None if status_message is None else failed,
        **config,
    )


def dlq_case(name, messages, description, *, errors, rows_in, duplicates=0):
    """A case whose input is the bodies of messages put on the DLQ: no file, so no key."""
    expected = {
        "transactions": [],
        "errors": errors,
        "accounting": {"rows_in": rows_in, "duplicates": duplicates},
    }
    inputs = {"dlq_messages.json": json.dumps(messages, indent=1)}
    case(name, inputs, expected, {"description": description})


def column_case(name, column, code, entries, description, *, prefix=None, amount=("1", "1")):
    """A CSV case that tries cells of one column (or of a tuple of columns, with tuples of
    cells). Entry i (from 1), (cell, stored), is row f"{prefix}-{i}" (or the cell, where the
    column is transaction_id) on line i + 1: the plain row ACC1, amount[0], EUR, DEBIT,
    2024-01-01T00:00:00Z with no merchant_id or description, `cell` in `column`. It is stored
    with the values `stored` (typed by hand) in that column and amount[1], EUR, ... in the
    others, or, where `stored` is None, refused with `code` naming the (first) column."""
    many = not isinstance(column, str)
    columns = column if many else (column,)
    plain = {**PLAIN, "amount": amount[0]}

    def in_columns(value):
        return dict(zip(columns, value if many else (value,), strict=True))

    rows, transactions, errors = [], [], []
    for i, (cell, stored) in enumerate(entries, start=1):
        tid = f"{prefix}-{i}"
        row = {"transaction_id": tid, **plain, **in_columns(cell)}
        rows.append(",".join(row.values()) + ",,")
        if stored is None:
            known = columns[0] != "transaction_id"  # an invalid id is not known (P19)
            errors.append(err(code, columns[0], tid if known else None, i + 1))
            continue
        item = {"transaction_id": tid, **plain, "amount": amount[1], "timestamp": JAN_1}
        item |= in_columns(stored)
        transactions.append(tx(*item.values(), i + 1))
    inputs = {"input.csv": csv(*rows)}
    record_case(
        name, inputs, description, rows_in=len(entries), transactions=transactions, errors=errors
    )


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
    record_case(
        "01-csv-valid-basic",
        {
            "input.csv": csv(
                f"TX-0001,{IBAN_DE},125.50,EUR,DEBIT,2024-01-15T10:30:00Z,MERCH-001,Coffee beans",
                f"TX-0002,{IBAN_GB},99.99,GBP,credit,2024-01-15T11:00:00+01:00,,",
                "TX-0003, FR1420041010050500013M02606 , 1000 ,usd, Payment ,2024-02-29T23:59:59.5Z, M2 , Rent for March ",
                "TX-0004,NL91ABNA0417164300,5000,JPY,TRANSFER,2024-03-01T00:00:00-05:00,,Wire",
                "TX-0005,KW81CBKU0000000000001234560101,1.234,KWD,REFUND,2024-03-02T12:00:00.123Z,SHOP_9,",
            )
        },
        "valid CSV rows: trimming, case-insensitive type and currency, offsets, optional fields",
        transactions=[
            tx(
                "TX-0001",
                IBAN_DE,
                "125.5",
                "EUR",
                "DEBIT",
                "2024-01-15T10:30:00",
                2,
                merchant="MERCH-001",
                desc="Coffee beans",
            ),
            tx("TX-0002", IBAN_GB, "99.99", "GBP", "CREDIT", "2024-01-15T10:00:00", 3),
            tx(
                "TX-0003",
                "FR1420041010050500013M02606",
                "1000",
                "USD",
                "PAYMENT",
                "2024-02-29T23:59:59.500",
                4,
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
                merchant="SHOP_9",
            ),
        ],
        rows_in=5,
        file_status=status(rows=5, stored=5, cursor=7),
    )

    # ---------------------------------------------------------------- 02 JSON array
    record_case(
        "02-json-array-valid",
        {"input.json": JSON_02},
        "top-level JSON array; amount as string and number; null and empty optional fields are absent; source_line is the 0-based index",
        transactions=[
            tx(
                "J-1",
                IBAN_DE,
                "250",
                "EUR",
                "DEBIT",
                "2024-05-01T08:00:00",
                0,
                merchant="M-1",
                desc="Groceries",
            ),
            tx("J-2", "ACC123", "42.5", "CHF", "REFUND", "2024-05-01T07:15:30.250", 1),
            tx("J-3", "ACC123", "7", "JPY", "PAYMENT", "2024-05-02T00:00:00", 2),
        ],
        rows_in=3,
    )

    # ---------------------------------------------------------------- 03 JSON wrapped
    record_case(
        "03-json-wrapped-valid",
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
        '{"transactions": [...]} form; source_line is the index in that array',
        transactions=[
            tx("W-1", "ACC1", "10", "EUR", "CREDIT", "2024-07-01T12:00:00", 0),
            tx("W-3", "ACC1", "12", "EUR", "DEBIT", "2024-07-01T12:00:01", 2, merchant="SHOP"),
        ],
        errors=[err("MISSING_FIELD", "account_id", "W-2", 1)],
        rows_in=3,
    )

    # ---------------------------------------------------------------- 04 BOM + CRLF
    record_case(
        "04-csv-bom-crlf",
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
        "UTF-8 BOM, CRLF line ends, no final line break: the BOM is not part of the first column name, CR is not part of the last value",
        transactions=[
            tx("B-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, merchant="M1", desc="first"),
            tx("B-2", "ACC1", "2", "EUR", "DEBIT", JAN_1, 3),
            tx(
                "B-3",
                "ACC1",
                "3",
                "EUR",
                "DEBIT",
                JAN_1,
                4,
                merchant="M3",
                desc="last row without line break",
            ),
        ],
        rows_in=3,
    )

    # ---------------------------------------------------------------- 05 quoting
    record_case(
        "05-csv-quoting",
        {
            "input.csv": csv(
                'Q-1,ACC1,"1,5",EUR,DEBIT,2024-01-01T00:00:00Z,,',
                'Q-2,ACC1,10.00,EUR,DEBIT,2024-01-01T00:00:00Z,"ACME, Inc.","He said ""hi"", twice"',
                'Q-3,ACC1,11.00,EUR,DEBIT,2024-01-01T00:00:00Z,M,"line one\nline two"',
                'Q-4,ACC1,12.00,EUR,CREDIT,2024-01-01T00:00:00Z,"",""',
                '"Q-5","ACC1","13.00","EUR","CREDIT","2024-01-01T00:00:00Z","M5","all, quoted"',
            )
        },
        "RFC 4180 quoting: embedded commas and doubled quotes; a quoted newline (a control character in description) spans lines 4-5, so the next row is on line 6",
        transactions=[
            tx(
                "Q-2",
                "ACC1",
                "10",
                "EUR",
                "DEBIT",
                JAN_1,
                3,
                merchant="ACME, Inc.",
                desc='He said "hi", twice',
            ),
            tx("Q-4", "ACC1", "12", "EUR", "CREDIT", JAN_1, 6),
            tx("Q-5", "ACC1", "13", "EUR", "CREDIT", JAN_1, 7, merchant="M5", desc="all, quoted"),
        ],
        errors=[
            err("INVALID_FORMAT", "amount", "Q-1", 2),
            err("INVALID_FORMAT", "description", "Q-3", 4),
        ],
        rows_in=5,
    )

    # ---------------------------------------------------------------- 06 missing fields (CSV)
    record_case(
        "06-csv-missing-field",
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
        "an empty (or, after trimming, blank) cell is an absent field: MISSING_FIELD for each required field",
        transactions=[tx("M-8", "ACC1", "1", "EUR", "DEBIT", JAN_1, 9)],
        errors=errs(
            "MISSING_FIELD",
            ("transaction_id", None, 2),
            ("account_id", "M-2", 3),
            ("amount", "M-3", 4),
            ("currency", "M-4", 5),
            ("transaction_type", "M-5", 6),
            ("timestamp", "M-6", 7),
            ("amount", "M-7", 8),
        ),
        rows_in=8,
    )

    # ---------------------------------------------------------------- 07 JSON nulls
    record_case(
        "07-json-null-and-missing",
        {
            "input.json": json.dumps(
                [
                    {"transaction_id": None, **PLAIN},
                    {"transaction_id": "N-1", **{k: v for k, v in PLAIN.items() if k != "amount"}},
                    {"transaction_id": "N-2", **PLAIN, "timestamp": None},
                    {"transaction_id": "N-3", **PLAIN, "transaction_type": None},
                    {"transaction_id": "N-4", **PLAIN, "merchant_id": None, "description": None},
                    {},
                    {"transaction_id": "N-6", **PLAIN, "currency": "  "},
                ],
                indent=1,
            )
        },
        "JSON null means absent; an empty object misses transaction_id first (table order); a blank JSON string is absent too (handler decision P1)",
        transactions=[tx("N-4", "ACC1", "1", "EUR", "DEBIT", JAN_1, 4)],
        errors=errs(
            "MISSING_FIELD",
            ("transaction_id", None, 0),
            ("amount", "N-1", 1),
            ("timestamp", "N-2", 2),
            ("transaction_type", "N-3", 3),
            ("transaction_id", None, 5),
            ("currency", "N-6", 6),
        ),
        rows_in=7,
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
    record_case(
        "10-amount-syntax",
        {"input.csv": csv(*rows)},
        "amount syntax -?[0-9]+(\\.[0-9]+)?: exponent, sign, separators, .5, 5., non-ASCII digits are INVALID_FORMAT; leading zeros are fine",
        transactions=[
            tx("S-90", "ACC1", "12.5", "EUR", "DEBIT", JAN_1, 2 + len(bad)),
            tx("S-91", "ACC1", "7.1", "EUR", "DEBIT", JAN_1, 3 + len(bad)),
        ],
        errors=[err("INVALID_FORMAT", "amount", f"S-{i:02d}", 2 + i) for i in range(len(bad))],
        rows_in=len(rows),
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
    record_case(
        "15-timestamp-format",
        {"input.csv": csv(*rows)},
        "RFC 3339 date-time with offset (seconds required, offset with colon, real dates); fractions truncated to ms; offsets converted to UTC. Handler decision P7: lower-case t/z accepted, no space separator, no leap second",
        transactions=[
            tx(tid, "ACC1", "1", "EUR", "DEBIT", utc, 2 + len(bad_ts) + i)
            for i, (tid, _, utc) in enumerate(good)
        ],
        errors=[
            err("INVALID_FORMAT", "timestamp", f"F-{i:02d}", 2 + i) for i in range(len(bad_ts))
        ],
        rows_in=len(rows),
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
    M64 = "M" * 64
    D256 = "d" * 256
    E256 = "é" * 256
    record_case(
        "17-merchant-description-limits",
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
        "merchant_id up to 64 chars, description up to 256 chars (characters, not bytes) without control characters",
        transactions=[
            tx("L-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, merchant=M64),
            tx("L-3", "ACC1", "1", "EUR", "DEBIT", JAN_1, 4, desc=D256),
            tx("L-6", "ACC1", "1", "EUR", "DEBIT", JAN_1, 7, desc=E256),
            tx(
                "L-7",
                "ACC1",
                "1",
                "EUR",
                "DEBIT",
                JAN_1,
                8,
                merchant="Café Zürich",
                desc="Café ☕ für 2",
            ),
        ],
        errors=errs(
            "INVALID_FORMAT",
            ("merchant_id", "L-2", 3),
            ("description", "L-4", 5),
            ("description", "L-5", 6),
            ("description", "L-8", 9),
        ),
        rows_in=8,
    )

    # ---------------------------------------------------------------- 18 unknown JSON fields
    record_case(
        "18-json-unknown-field",
        {
            "input.json": json.dumps(
                [
                    {"transaction_id": "U-1", **PLAIN, "foo": 1},
                    {"transaction_id": "U-2", **PLAIN, "Amount": "2"},
                    {"transaction_id": "U-3", **PLAIN},
                    {"transaction_id": "U-4", **PLAIN, "status": "PROCESSED"},
                    {"transaction_id": "U-5", **PLAIN, "amount": "1,5", "zzz": 1, "aaa": 2},
                    {"transaction_id": "U-6", **PLAIN, "zzz": 1, "aaa": 2},
                ],
                indent=1,
            )
        },
        "unknown JSON keys (case-sensitive) make the record invalid: UNKNOWN_FIELD naming the key; checked after the table fields, smallest unknown key named (handler decision P3)",
        transactions=[tx("U-3", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2)],
        errors=[
            err("UNKNOWN_FIELD", "foo", "U-1", 0),
            err("UNKNOWN_FIELD", "Amount", "U-2", 1),
            err("UNKNOWN_FIELD", "status", "U-4", 3),
            err("INVALID_FORMAT", "amount", "U-5", 4),
            err("UNKNOWN_FIELD", "aaa", "U-6", 5),
        ],
        rows_in=6,
    )

    # ---------------------------------------------------------------- 19 JSON wrong types
    record_case(
        "19-json-wrong-types",
        {
            "input.json": json.dumps(
                [
                    {"transaction_id": "Y-1", **PLAIN, "amount": True},
                    {"transaction_id": "Y-2", **PLAIN, "amount": [1]},
                    {"transaction_id": "Y-3", **PLAIN, "account_id": {"iban": "X"}},
                    {"transaction_id": "Y-4", **PLAIN, "description": False},
                    {"transaction_id": "Y-5", **PLAIN, "timestamp": 1705314600000},
                    {"transaction_id": "Y-6", **PLAIN, "merchant_id": ["M"]},
                    "oops",
                    5,
                    ["Y-9"],
                    None,
                    {"transaction_id": "Y-11", **PLAIN},
                ],
                indent=1,
            )
        },
        "booleans, arrays, objects as field values and non-object records are INVALID_FORMAT",
        transactions=[tx("Y-11", "ACC1", "1", "EUR", "DEBIT", JAN_1, 10)],
        errors=errs(
            "INVALID_FORMAT",
            ("amount", "Y-1", 0),
            ("amount", "Y-2", 1),
            ("account_id", "Y-3", 2),
            ("description", "Y-4", 3),
            ("timestamp", "Y-5", 4),
            ("merchant_id", "Y-6", 5),
            (None, None, 6),
            (None, None, 7),
            (None, None, 8),
            (None, None, 9),
        ),
        rows_in=11,
    )

    # ---------------------------------------------------------------- 20 JSON exact decimals
    # (transaction_id, amount token, currency, the amount stored or the error code on amount);
    # source_line is the record's index.
    recs = [
        ("D-01", "999999999999.99", "EUR", "999999999999.99"),
        ("D-02", "0.10000000000000000000000000001", "EUR", "PRECISION_EXCEEDED"),
        ("D-03", "1.00000000000000000000001", "EUR", "PRECISION_EXCEEDED"),
        ("D-04", "999999999999.999999999999", "EUR", "PRECISION_EXCEEDED"),
        ("D-05", "1000000000000.0000000000001", "EUR", "INVALID_VALUE"),
        ("D-06", "12345678901.23", "EUR", "12345678901.23"),
        ("D-07", "10.500", "EUR", "10.5"),
        ("D-08", "1e3", "EUR", "INVALID_FORMAT"),
        ("D-09", "1E-2", "EUR", "INVALID_FORMAT"),
        ("D-10", "-0", "EUR", "INVALID_VALUE"),
        ("D-11", '"0.30000000000000000000"', "EUR", "0.3"),
        ("D-12", "0.1", "KWD", "0.1"),
        ("D-13", "123456789012.345", "KWD", "123456789012.345"),
        ("D-14", "999999999999.9990", "KWD", "999999999999.999"),
        ("D-15", "0.30000000000000004", "EUR", "PRECISION_EXCEEDED"),
        ("D-16", "99999999999999999999999999999999999999", "EUR", "INVALID_VALUE"),
    ]
    body = ",\n".join(
        f'  {{"transaction_id": "{tid}", "account_id": "ACC1", "amount": {amount}, '
        f'"currency": "{cur}", "transaction_type": "CREDIT", "timestamp": "2024-01-01T00:00:00Z"}}'
        for tid, amount, cur, _ in recs
    )
    record_case(
        "20-json-exact-decimals",
        {"input.json": "[\n" + body + "\n]\n"},
        "JSON number tokens checked by their own text, never through a binary float: many-digit fractions, values near 10^12, exponents",
        transactions=[
            tx(tid, "ACC1", out, cur, "CREDIT", JAN_1, i)
            for i, (tid, _, cur, out) in enumerate(recs)
            if not out.isupper()
        ],
        errors=[
            err(out, "amount", tid, i) for i, (tid, _, _, out) in enumerate(recs) if out.isupper()
        ],
        rows_in=16,
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
    record_case(
        "22-json-depth-64-accepted",
        {"input.json": nested(62)},
        "exactly 64 levels (top-level array = 1, record = 2, 62 nested arrays) is not a file error",
        transactions=[tx("Z-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 0)],
        errors=[err("UNKNOWN_FIELD", "meta", "Z-2", 1)],
        rows_in=2,
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
    record_case(
        "35-csv-header-reordered-optional-absent",
        {
            "input.csv": csv(
                "2024-01-01T00:00:00Z,5.25,O-1,eur,ACC1,refund",
                "2024-01-02T00:00:00Z,6,O-2,EUR,ACC2,DEBIT",
                header="timestamp,amount,transaction_id,currency,account_id,transaction_type",
            )
        },
        "columns in any order; optional columns may be left out of the header",
        transactions=[
            tx("O-1", "ACC1", "5.25", "EUR", "REFUND", JAN_1, 2),
            tx("O-2", "ACC2", "6", "EUR", "DEBIT", "2024-01-02T00:00:00", 3),
        ],
        rows_in=2,
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
    record_case(
        "37-csv-row-invalid-utf8",
        {
            "input.csv": (
                csv("E-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,ok").encode()
                + b"E-2,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,caf\xe9\n"
                + b"E-3,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,\xe2\x82\n"
                + b"E-4,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,caf\xc3\xa9\n"
            )
        },
        "rows whose bytes are not UTF-8 (Latin-1 byte, truncated sequence) are INVALID_ENCODING; the rows around them are stored",
        transactions=[
            tx("E-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, desc="ok"),
            tx("E-4", "ACC1", "1", "EUR", "DEBIT", JAN_1, 5, desc="café"),
        ],
        errors=[
            err("INVALID_ENCODING", None, None, 3),
            err("INVALID_ENCODING", None, None, 4),
        ],
        rows_in=4,
    )
    record_case(
        "38-csv-malformed-row",
        {
            "input.csv": csv(
                "W-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "W-2,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,,extra",
                "W-3,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z",
                "W-4,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        "rows with too many or too few cells are MALFORMED_ROW; the rows around them are stored",
        transactions=[
            tx("W-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2),
            tx("W-4", "ACC1", "1", "EUR", "DEBIT", JAN_1, 5),
        ],
        errors=[
            err("MALFORMED_ROW", None, None, 3),
            err("MALFORMED_ROW", None, None, 4),
        ],
        rows_in=4,
    )

    # ---------------------------------------------------------------- 39 first error wins
    record_case(
        "39-first-error-in-table-order",
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
        "a record with several errors is reported once, with its first error in the order of the field table; the precision check needs the currency, so an unknown currency comes first (handler decision P3)",
        errors=[
            err("INVALID_FORMAT", "account_id", "X-1", 2),
            err("MISSING_FIELD", "amount", "X-2", 3),
            err("INVALID_VALUE", "transaction_type", "X-3", 4),
            err("UNKNOWN_CURRENCY", "currency", "X-4", 5),
            err("INVALID_FORMAT", "transaction_id", None, 6),
            err("INVALID_FORMAT", "amount", "X-6", 7),
            err("INVALID_VALUE", "amount", "X-7", 8),
            err("INVALID_VALUE", "timestamp", "X-8", 9),
            err("UNKNOWN_CURRENCY", "currency", "X-9", 10),
        ],
        rows_in=9,
    )

    # ---------------------------------------------------------------- 40-43 duplicates
    record_case(
        "40-duplicates-within-file",
        {
            "input.csv": csv(
                "DUP-1,ACC1,10.50,EUR,DEBIT,2024-01-01T00:00:00Z,M,desc",
                "DUP-1,ACC1,10.50,EUR,DEBIT,2024-01-01T00:00:00Z,M,desc",
                "DUP-1, ACC1 ,10.500,eur,debit,2024-01-01T01:00:00+01:00,M ,desc ",
                "DUP-2,ACC1,3,EUR,CREDIT,2024-01-01T00:00:00Z,,",
            )
        },
        "a record repeated in the file (also after normalisation: trimming, case, trailing zeros, offset) is a duplicate, not an error; the first one is stored",
        transactions=[
            tx("DUP-1", "ACC1", "10.5", "EUR", "DEBIT", JAN_1, 2, merchant="M", desc="desc"),
            tx("DUP-2", "ACC1", "3", "EUR", "CREDIT", JAN_1, 5),
        ],
        rows_in=4,
        duplicates=2,
        file_status=status(rows=4, stored=2, duplicates=2, cursor=6),
    )
    record_case(
        "41-duplicate-conflict",
        {
            "input.csv": csv(
                "CF-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,M,first",
                "CF-1,ACC1,11,EUR,DEBIT,2024-01-01T00:00:00Z,M,first",
                "CF-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,M,changed",
                "CF-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,first",
            )
        },
        "same key (transaction_id, timestamp) with a different record_hash (amount, description, merchant) is DUPLICATE_CONFLICT; the first write wins",
        transactions=[
            tx("CF-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2, merchant="M", desc="first"),
        ],
        errors=errs(
            "DUPLICATE_CONFLICT",
            ("transaction_id", "CF-1", 3),
            ("transaction_id", "CF-1", 4),
            ("transaction_id", "CF-1", 5),
        ),
        rows_in=4,
    )
    record_case(
        "42-same-id-different-timestamp",
        {
            "input.csv": csv(
                "SI-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "SI-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00.001Z,,",
            )
        },
        "the table key is (transaction_id, timestamp): the same id at another instant is another item (attribute_not_exists only sees the item with the same key)",
        transactions=[
            tx("SI-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2),
            tx("SI-1", "ACC1", "10", "EUR", "DEBIT", "2024-01-01T00:00:00.001", 3),
        ],
        rows_in=2,
    )
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
        "PRE-2", "ACC1", "20", "EUR", "DEBIT", JAN_1, 8, key="in/earlier.csv", version="v-earlier"
    )
    pre_diff["ingested_at"] = 1700000000001
    pre_diff["processor"] = "rust/0.0.0-earlier"
    record_case(
        "43-preexisting-items",
        {
            "input.csv": csv(
                "PRE-1,ACC1,10.00,EUR,debit,2024-01-01T00:00:00Z,,same",
                "PRE-2,ACC1,21,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "PRE-3,ACC1,30,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        "items stored earlier (by either implementation): same record_hash is a duplicate, a different one a conflict; stored items are never overwritten",
        transactions=[
            pre_same,
            pre_diff,
            tx("PRE-3", "ACC1", "30", "EUR", "DEBIT", JAN_1, 4),
        ],
        errors=[err("DUPLICATE_CONFLICT", "transaction_id", "PRE-2", 3)],
        rows_in=3,
        duplicates=1,
        preexisting=[pre_same, pre_diff],
    )

    # ---------------------------------------------------------------- 44-45 replays
    def middle_invalid(prefix, amount):
        """Cases 44, 45, 57 and 64's input: three rows, of which the second (with `amount`) is
        invalid; and the items of the first and third once stored."""
        rows = [
            f"{prefix}-{i},ACC1,{a},EUR,DEBIT,2024-01-01T00:00:00Z,,"
            for i, a in ((1, 10), (2, amount), (3, 30))
        ]
        stored = [
            tx(f"{prefix}-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2),
            tx(f"{prefix}-3", "ACC1", "30", "EUR", "DEBIT", JAN_1, 4),
        ]
        return {"input.csv": csv(*rows)}, stored

    inputs, stored = middle_invalid("RP", "0")
    record_case(
        "44-replay-same-event",
        inputs,
        "the same S3 event delivered three times (at-least-once): no new item, no new error row",
        transactions=stored,
        errors=[err("INVALID_VALUE", "amount", "RP-2", 3)],
        rows_in=3,
        # The later deliveries find every batch counted (P29): nothing is counted twice.
        file_status=status(rows=3, stored=2, errors={"INVALID_VALUE": 1}, cursor=5),
        redeliver=2,
    )
    inputs, stored = middle_invalid("RV", "0")
    record_case(
        "45-replay-new-version",
        inputs,
        "the same content uploaded twice (two object versions): valid rows of version 2 are duplicates (the item keeps version 1's lineage); the invalid row is reported per version (error_id includes the version id)",
        transactions=stored,
        errors=[
            err("INVALID_VALUE", "amount", "RV-2", 3),
            err("INVALID_VALUE", "amount", "RV-2", 3, version="$VERSION_2"),
        ],
        rows_in=6,
        duplicates=2,
        file_status=[
            status(rows=3, stored=2, errors={"INVALID_VALUE": 1}, cursor=5),
            status(
                rows=3, duplicates=2, errors={"INVALID_VALUE": 1}, cursor=5, version="$VERSION_2"
            ),
        ],
        uploads=2,
    )

    # ---------------------------------------------------------------- 46-47 URL-encoded keys
    K = "in/my file+1.csv"
    record_case(
        "46-url-encoded-key",
        {
            "input.csv": csv(
                "K-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "K-2,ACC1,0,EUR,DEBIT,2024-01-01T00:00:00Z,,",
            )
        },
        "key with a space and a plus arrives as in/my+file%2B1.csv in the event; lineage keeps the real key",
        transactions=[tx("K-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2)],
        errors=[err("INVALID_VALUE", "amount", "K-2", 3)],
        key=K,
        rows_in=2,
    )
    K = "in/Überweisungen März (1) & co=ok, 100%.json"
    record_case(
        "47-url-encoded-key-unicode",
        {
            "input.json": json.dumps(
                [
                    {"transaction_id": "K-3", **PLAIN},
                    {"transaction_id": "K-4", **PLAIN, "x": 1},
                ]
            )
        },
        "non-ASCII and reserved characters in the key (percent-encoded UTF-8 in the event)",
        transactions=[tx("K-3", "ACC1", "1", "EUR", "DEBIT", JAN_1, 0)],
        errors=[err("UNKNOWN_FIELD", "x", "K-4", 1)],
        key=K,
        rows_in=2,
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
    record_case(
        "49-file-at-size-limit",
        {"input.csv": LIMIT_CSV},
        "exactly MAX_FILE_BYTES is not over the limit",
        transactions=[tx("LM-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2)],
        rows_in=1,
        env={"MAX_FILE_BYTES": str(len(LIMIT_CSV.encode()))},
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
    rows = [
        f"RS-{i:04d},ACC{i % 7},{i}.{i % 100:02d},EUR,CREDIT,2024-04-01T00:00:00Z,,"
        for i in range(1, CSV_ROWS + 1)
    ]
    rows[99] = "RS-0100,ACC2,0,EUR,CREDIT,2024-04-01T00:00:00Z,,"  # line 101: first part
    rows[1049] = "RS-1050,ACC0,1050.5,XYZ,CREDIT,2024-04-01T00:00:00Z,,"  # line 1051: resumed part
    record_case(
        "51-resume-csv",
        {"input.csv": csv(*rows)},
        "the S3 invocation has less than TIME_SAFETY_MARGIN_MS left: it finishes a batch, sends resume_file, and the retry consumer finishes the file; every row stored once",
        transactions=[
            tx(
                f"RS-{i:04d}",
                f"ACC{i % 7}",
                str(Decimal(f"{i}.{i % 100:02d}").normalize()) if i % 100 else str(i),
                "EUR",
                "CREDIT",
                "2024-04-01T00:00:00",
                i + 1,
            )
            for i in range(1, CSV_ROWS + 1)
            if i not in (100, 1050)
        ],
        errors=[
            err("INVALID_VALUE", "amount", "RS-0100", 101),
            err("UNKNOWN_CURRENCY", "currency", "RS-1050", 1051),
        ],
        rows_in=CSV_ROWS,
        main_queue_min={"resume_file": 1},
        # Two invocations, one status: the resumed one continues at the first one's cursor.
        file_status=status(
            rows=CSV_ROWS,
            stored=CSV_ROWS - 2,
            errors={"INVALID_VALUE": 1, "UNKNOWN_CURRENCY": 1},
            cursor=CSV_ROWS + 2,
        ),
        remaining_time_ms=20000,
    )
    JSON_ROWS = 2050

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
    record_case(
        "52-resume-json-chain",
        {"input.json": json.dumps(recs)},
        "every invocation (S3 and retry consumer) is short on time: the file is finished by a chain of resume_file messages, each invocation making progress",
        transactions=[
            tx(f"RJ-{i:04d}", "ACC1", str(i), "JPY", "DEBIT", ts(i), i)
            for i in range(1, JSON_ROWS)
            if i not in (17, 1500)
        ],
        errors=[
            err("INVALID_VALUE", "amount", "RJ-0000", 0),
            err("PRECISION_EXCEEDED", "amount", "RJ-0017", 17),
            err("INVALID_VALUE", "transaction_type", "RJ-1500", 1500),
        ],
        rows_in=JSON_ROWS,
        main_queue_min={"resume_file": 2},
        file_status=status(
            rows=JSON_ROWS,
            stored=JSON_ROWS - 3,
            errors={"INVALID_VALUE": 2, "PRECISION_EXCEEDED": 1},
            cursor=JSON_ROWS,
        ),
        remaining_time_ms=20000,
        retry_remaining_time_ms=20000,
    )

    # ---------------------------------------------------------------- 53 DLQ unknown shapes
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
    dlq_case(
        "53-dlq-unknown-shapes",
        bodies,
        "messages on the DLQ not in our format are stored as UNKNOWN_FORMAT, error_id = sha256(body), timestamp = SentTimestamp",
        errors=[
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
            for i in range(len(bodies))
        ],
        rows_in=len(bodies),
    )

    # ---------------------------------------------------------------- 55 at-least-once everywhere
    record_case(
        "55-at-least-once-every-delivery-twice",
        {
            "input.csv": csv(
                "AL-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "AL-2,ACC1,0,EUR,DEBIT,2024-01-01T00:00:00Z,,",
                "AL-3,ACC1,30,XYZ,DEBIT,2024-01-01T00:00:00Z,,",
                "AL-4,ACC1,40,EUR,DEBIT,2024-01-01T00:00:00Z,M,d",
                "AL-4,ACC1,41,EUR,DEBIT,2024-01-01T00:00:00Z,M,d",
            )
        },
        "every delivery (the S3 event, every main-queue and DLQ batch) arrives twice: the outcome is the same as with one",
        transactions=[
            tx("AL-1", "ACC1", "10", "EUR", "DEBIT", JAN_1, 2),
            tx("AL-4", "ACC1", "40", "EUR", "DEBIT", JAN_1, 5, merchant="M", desc="d"),
        ],
        errors=[
            err("INVALID_VALUE", "amount", "AL-2", 3),
            err("UNKNOWN_CURRENCY", "currency", "AL-3", 4),
            err("DUPLICATE_CONFLICT", "transaction_id", "AL-4", 6),
        ],
        rows_in=5,
        file_status=status(
            rows=5,
            stored=2,
            errors={"INVALID_VALUE": 1, "UNKNOWN_CURRENCY": 1, "DUPLICATE_CONFLICT": 1},
            cursor=7,
        ),
        deliver_twice=True,
    )

    # ---------------------------------------------------------------- 56 CRLF with row errors
    record_case(
        "56-csv-crlf-row-errors",
        {
            "input.csv": csv(
                "CR-1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,a",
                'CR-2,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,"two\r\nlines"',
                "CR-3,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z,,,",
                "CR-4,ACC1,2,EUR,DEBIT,2024-01-01T00:00:00Z,,b",
                eol="\r\n",
            )
        },
        "CRLF file: a quoted CRLF inside a value counts as a line break for source_line",
        transactions=[
            tx("CR-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 2, desc="a"),
            tx("CR-4", "ACC1", "2", "EUR", "DEBIT", JAN_1, 6, desc="b"),
        ],
        errors=[
            err("INVALID_FORMAT", "description", "CR-2", 3),
            err("MALFORMED_ROW", None, None, 5),
        ],
        rows_in=4,
        file_status=status(
            rows=4, stored=2, errors={"INVALID_FORMAT": 1, "MALFORMED_ROW": 1}, cursor=7
        ),
    )

    # ---------------------------------------------------------------- 54 DLQ known shapes
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

    dlq_case(
        "54-dlq-known-shapes",
        msgs,
        "the processor's own message kinds on the DLQ (record_error, file_error; retry_record, resume_file and S3 events after the main queue's redrive); the same record_error twice gives one row (deterministic keys); a leaked account number and description are masked again",
        errors=[
            row(
                "INVALID_VALUE", "VALIDATION", "amount", "KS-1", 5, "in/a.csv", "v-a", 1704067200000
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
        rows_in=7,
        duplicates=1,
    )

    # ---------------------------------------------------------------- 57 store unavailable
    # Cases 57 and 64: every PutItem is refused, as the role may write only the stack's table
    # (IAM is evaluated before the table's existence); the processor retries it.
    missing_table = {
        "env": {"DYNAMODB_TABLE_NAME": "dynamodb-transactions-missing"},
        "expected_refusals": [
            {
                "action": "dynamodb:PutItem",
                "resource": "arn:aws:dynamodb:*:table/dynamodb-transactions-missing",
            }
        ],
    }

    def write_failed(prefix):
        """Cases 57 and 64's error rows (their input is middle_invalid's): the valid rows' writes
        have failed for good."""
        return [
            err("RECORD_WRITE_FAILED", None, f"{prefix}-1", 2, etype="PROCESSING"),
            err("INVALID_FORMAT", "amount", f"{prefix}-2", 3),
            err("RECORD_WRITE_FAILED", None, f"{prefix}-3", 4, etype="PROCESSING"),
        ]

    inputs, _ = middle_invalid("SF", "abc")
    record_case(
        "57-store-failing-records-end-in-errors",
        inputs,
        "every PutItem fails: valid records go to the main queue as retry_record, fail 3 receives, are redriven to the DLQ and stored as PROCESSING errors; nothing is dropped",
        errors=write_failed("SF"),
        rows_in=3,
        main_queue_min={"retry_record": 2},
        # The two rows stay pending (P31): their retries are exhausted, a replay is due.
        file_status=status(
            rows=3, errors={"INVALID_FORMAT": 1}, retry_lines=[2, 4], cursor=5, state="processing"
        ),
        **missing_table,
    )

    # ---------------------------------------------------------------- 58 object unreadable
    record_case(
        "58-object-unreadable-ends-in-errors",
        {"input.csv": csv("OU-1,ACC1,10,EUR,DEBIT,2024-01-01T00:00:00Z,,")},
        "GetObject is denied (403, retryable): the S3 invocation fails 3 times (async retries), Lambda's dead_letter_config puts the event on the main queue, the retry consumer fails it 3 times, the redrive moves it to the DLQ and it is stored as a PROCESSING error",
        errors=[file_err("FILE_PROCESSING_FAILED", etype="PROCESSING")],
        rows_in=1,
        main_queue_min={"s3_event": 1},
        deny_get_object=True,
    )

    # ---------------------------------------------------------------- 59-62 decisions shared by both
    record_case(
        "59-json-bom",
        {
            "input.json": b"\xef\xbb\xbf"
            + json.dumps([{"transaction_id": "JB-1", **PLAIN}]).encode()
        },
        "a UTF-8 BOM before a JSON document is accepted (handler decision P14)",
        transactions=[tx("JB-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 0)],
        rows_in=1,
    )
    record_case(
        "60-csv-blank-lines",
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
        "blank lines (also before the header and a lone CR) are skipped but counted for source_line (handler decision P11)",
        transactions=[
            tx("BL-1", "ACC1", "1", "EUR", "DEBIT", JAN_1, 3),
            tx("BL-2", "ACC1", "2", "EUR", "DEBIT", JAN_1, 5),
        ],
        errors=[err("INVALID_VALUE", "amount", "BL-3", 7)],
        rows_in=3,
    )
    record_case(
        "61-json-number-tokens-as-text",
        {
            "input.json": '[{"transaction_id": 42, "account_id": 12345678, "amount": 5, "currency": "EUR", '
            '"transaction_type": "DEBIT", "timestamp": "2024-01-01T00:00:00Z", "merchant_id": 7},\n'
            ' {"transaction_id": "NT-2", "account_id": "ACC1", "amount": 5, "currency": 978, '
            '"transaction_type": "DEBIT", "timestamp": "2024-01-01T00:00:00Z"},\n'
            ' {"transaction_id": 1.5, "account_id": "ACC1", "amount": 5, "currency": "EUR", '
            '"transaction_type": "DEBIT", "timestamp": "2024-01-01T00:00:00Z"}]'
        },
        'a JSON number in any field is its token text (handler decision P2): 42 is the id "42", currency 978 is UNKNOWN_CURRENCY; the number 1.5 is the valid id "1.5"',
        transactions=[
            tx("42", "12345678", "5", "EUR", "DEBIT", JAN_1, 0, merchant="7"),
            tx("1.5", "ACC1", "5", "EUR", "DEBIT", JAN_1, 2),
        ],
        errors=[err("UNKNOWN_CURRENCY", "currency", "NT-2", 1)],
        rows_in=3,
    )
    file_error_case(
        "62-json-whitespace-only",
        {"input.json": "  \n\t \n"},
        "EMPTY_FILE",
        "a JSON file with only whitespace is EMPTY_FILE (handler decision P14)",
    )

    # ---------------------------------------------------------------- 63 killed and re-run
    KILL_ROWS = 2100
    rows = [
        f"KR-{i:04d},ACC{i % 5},{i},EUR,DEBIT,2024-06-01T00:00:00Z,,"
        for i in range(1, KILL_ROWS + 1)
    ]
    rows[9] = "KR-0010,ACC0,10,XYZ,DEBIT,2024-06-01T00:00:00Z,,"  # line 11: first batch
    rows[1499] = "KR-1500,ACC0,-1,EUR,DEBIT,2024-06-01T00:00:00Z,,"  # line 1501: killed batch
    record_case(
        "63-killed-mid-file-status-exact",
        {"input.csv": csv(*rows)},
        "the first S3 invocation is killed in its second batch (after 1300 PutItem calls); Lambda's retry re-reads the file: the first batch is not counted again, the second and third are counted once (P28, P29)",
        transactions=[
            tx(f"KR-{i:04d}", f"ACC{i % 5}", str(i), "EUR", "DEBIT", "2024-06-01T00:00:00", i + 1)
            for i in range(1, KILL_ROWS + 1)
            if i not in (10, 1500)
        ],
        errors=[
            err("UNKNOWN_CURRENCY", "currency", "KR-0010", 11),
            err("INVALID_VALUE", "amount", "KR-1500", 1501),
        ],
        rows_in=KILL_ROWS,
        # Rows the killed attempt stored in its unfinished batch are duplicates for the
        # re-run (P29): stored + duplicates is exact, their split depends on the kill.
        file_status=status(
            rows=KILL_ROWS,
            killed=True,
            errors={"UNKNOWN_CURRENCY": 1, "INVALID_VALUE": 1},
            cursor=KILL_ROWS + 2,
        ),
        crash={"after_calls": 1300, "operation": "PutItem", "when": "s3"},
    )

    # ---------------------------------------------------------------- 64 replayed pending rows
    inputs, stored = middle_invalid("RP", "abc")
    record_case(
        "64-replay-resolves-pending-rows",
        inputs,
        "every PutItem fails as in case 57 (two rows pending, RECORD_WRITE_FAILED rows); then the cause is fixed and a replay sends a resume_file from the smallest retryable line, as txnctl does: the re-read's batch was counted before, yet the rows it stores resolve their pending lines (P32): state done, retries_pending 0, each row stored once",
        transactions=stored,
        # The RECORD_WRITE_FAILED rows stay as the audit trail; their lines are stored now,
        # so the accounting counts them as history, not as outcomes (P32).
        errors=write_failed("RP"),
        rows_in=3,
        main_queue_min={"retry_record": 2, "resume_file": 1},
        # Pending after the first run (case 57's state); the replay's re-read stores both
        # rows, resolves both lines once and the file is done (P29, P32).
        file_status=status(rows=3, stored=2, errors={"INVALID_FORMAT": 1}, cursor=5),
        **missing_table,
        replay=True,
    )

    # ---------------------------------------------------------------- 65 a file in ranges
    # P33-P35: the step is set to the offset of a line inside a quoted cell, so a quote-blind
    # splitter would cut there; the boundary must be the next row. Both ranges hold more than
    # one batch and resume (20 s left, under the 30 s margin, per main-queue invocation), and one main-queue invocation
    # is killed in the middle of a range.
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
    record_case(
        "65-ranges-quoted-boundary-resume-killed",
        {"input.csv": text},
        "a CSV over RANGE_SPLIT_BYTES is split at the first row after the step (the step points inside a quoted cell); both ranges resume after each batch, one range invocation is killed mid-batch; every row is stored once with its physical line, the status has one cursor per range (P33-P35)",
        transactions=[
            tx(
                f"RG-{i:04d}",
                f"ACC{i % 5}",
                str(i),
                "EUR",
                "DEBIT",
                "2024-06-01T00:00:00",
                line_of[i],
                merchant=f"M\n{i},x" if i % 7 == 0 else f"M{i}",
            )
            for i in range(1, RANGE_ROWS + 1)
            if i not in (500, 1800)
        ],
        errors=[
            err("UNKNOWN_CURRENCY", "currency", "RG-0500", line_of[500]),
            err("INVALID_VALUE", "amount", "RG-1800", line_of[1800]),
        ],
        rows_in=RANGE_ROWS,
        main_queue_min={"resume_file": 4},
        file_status=status(
            rows=RANGE_ROWS,
            killed=True,
            errors={"UNKNOWN_CURRENCY": 1, "INVALID_VALUE": 1},
            # P28: a range's cursor ends at its last row's line + 1 (row 1274 spans
            # two lines, so range 0 ends one line before range 1's first).
            ranges=[
                (0, line_of[boundary - 1] + 1),
                (line_of[boundary], line_of[RANGE_ROWS] + 1),
            ],
        ),
        env={"RANGE_SPLIT_BYTES": str(step)},
        retry_remaining_time_ms=20000,
        # The first main-queue invocation runs one batch of range 0 (1000 rows) and then
        # defers range 1 (P21): the kill must come inside that batch.
        crash={"after_calls": 500, "operation": "PutItem", "when": "sqs"},
    )

    # ---------------------------------------------------------------- 66 a killed splitter
    # P34: the S3 invocation is killed right after its split UpdateItem, before any range
    # message; Lambda's retry finds the same split recorded and sends the messages again; the
    # event delivered once more after everything is done sends them a third time, and the
    # re-read ranges count nothing twice (P29).
    rows = [
        f"KS-{i:02d},ACC{i % 3},{0 if i == 17 else i},EUR,DEBIT,2024-01-01T00:00:00Z,,"
        for i in range(1, 41)
    ]
    text = csv(*rows)
    split_bytes = 600
    starts = row_starts(rows)
    ranges = p33_ranges(starts, p33_step(split_bytes, len(text.encode())))
    assert len(ranges) == 4
    record_case(
        "66-ranges-killed-splitter-event-twice",
        {"input.csv": text},
        "the S3 invocation is killed after its second UpdateItem (status opened, split recorded), before any range message; Lambda's retry finds the same split and sends the range messages (P34); the event delivered again after the file is done sends them again, and the re-read ranges store and count nothing twice (P29)",
        transactions=[
            tx(f"KS-{i:02d}", f"ACC{i % 3}", str(i), "EUR", "DEBIT", JAN_1, i + 1)
            for i in range(1, 41)
            if i != 17
        ],
        errors=[err("INVALID_VALUE", "amount", "KS-17", 18)],
        rows_in=40,
        # Every range message three times over: none by the killed splitter, then one set
        # per delivery of the event.
        main_queue_min={"resume_file": 2 * len(ranges)},
        file_status=status(rows=40, stored=39, errors={"INVALID_VALUE": 1}, ranges=ranges),
        env={"RANGE_SPLIT_BYTES": str(split_bytes)},
        crash={"after_calls": 2, "operation": "UpdateItem", "when": "s3"},
        redeliver=1,
    )

    # ---------------------------------------------------------------- 67 a row after a blank line
    # P33: the step is the first byte of a row that follows a blank line (BOM, CRLF line ends):
    # a blank line belongs to no row, so that row starts at the step and is the boundary; the
    # BOM counts in the byte offsets.
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
    record_case(
        "67-ranges-crlf-bom-blank-line-at-step",
        {"input.csv": data},
        "RANGE_SPLIT_BYTES is the offset (BOM included) of the first byte of CB-11, which follows a blank CRLF line: the blank line belongs to no row, so CB-11 starts at the step and is range 1's first row (line 13); source_line stays the physical line (P11, P33)",
        transactions=[
            tx(
                f"CB-{i:02d}",
                "ACC1",
                f"{i}.5",
                "EUR",
                "CREDIT",
                JAN_1,
                line_of[f"CB-{i:02d}"],
                merchant=f"M{i}",
                desc=f"d{i}",
            )
            for i in range(1, 31)
            if i != 25
        ],
        errors=[err("UNKNOWN_CURRENCY", "currency", "CB-25", line_of["CB-25"])],
        rows_in=30,
        main_queue_min={"resume_file": len(ranges)},
        file_status=status(rows=30, stored=29, errors={"UNKNOWN_CURRENCY": 1}, ranges=ranges),
        env={"RANGE_SPLIT_BYTES": str(split_bytes)},
    )

    # ---------------------------------------------------------------- 68 at most 100 ranges
    # P33: RANGE_SPLIT_BYTES 1 would make a range of every row; the step grows to
    # ceil(ContentLength / 100), so the split's one UpdateItem names at most 99 cursors.
    rows = [f"HR-{i:03d},ACC{i % 7},{i},EUR,DEBIT,2024-01-01T00:00:00Z,," for i in range(1, 221)]
    text = csv(*rows)
    step = p33_step(1, len(text.encode()))
    assert step == -(-len(text.encode()) // 100) > 1
    starts = row_starts(rows)
    ranges = p33_ranges(starts, step)
    assert 90 < len(ranges) <= 100
    record_case(
        "68-ranges-at-most-100",
        {"input.csv": text},
        f"RANGE_SPLIT_BYTES 1: the step grows to ceil(ContentLength / 100) = {step} bytes, so the file goes out in {len(ranges)} ranges of about two rows, not one range per row (P33); one UpdateItem records them all (P34)",
        transactions=[
            tx(f"HR-{i:03d}", f"ACC{i % 7}", str(i), "EUR", "DEBIT", JAN_1, i + 1)
            for i in range(1, 221)
        ],
        rows_in=220,
        main_queue_min={"resume_file": len(ranges)},
        file_status=status(rows=220, stored=220, ranges=ranges),
        env={"RANGE_SPLIT_BYTES": "1"},
    )

    # ---------------------------------------------------------------- 69 just over the threshold
    # P33, P34: over RANGE_SPLIT_BYTES by one byte, but no row starts at or after the step:
    # one range, "0", whose cursor is the unsplit file's; no split update, one range message.
    rows = [f"JO-{i},ACC1,{i},EUR,DEBIT,2024-01-01T00:00:00Z,," for i in range(1, 4)]
    text = csv(*rows)
    split_bytes = len(text.encode()) - 1
    assert p33_ranges(row_starts(rows), p33_step(split_bytes, len(text.encode()))) == [(0, 5)]
    record_case(
        "69-ranges-just-over-threshold-one-range",
        {"input.csv": text},
        "a CSV one byte over RANGE_SPLIT_BYTES whose last row starts before the step is one range: no split UpdateItem, one range message for range 0 (bytes [0, ContentLength)), and the status is the unsplit file's (cursor 0 only, P33, P34)",
        transactions=[
            tx(f"JO-{i}", "ACC1", str(i), "EUR", "DEBIT", JAN_1, i + 1) for i in range(1, 4)
        ],
        rows_in=3,
        main_queue_min={"resume_file": 1},
        file_status=status(rows=3, stored=3, cursor=5),
        env={"RANGE_SPLIT_BYTES": str(split_bytes)},
    )

    # ---------------------------------------------------------------- 70 a JSON array in ranges
    # P33 (JSON): the elements' strings hold brackets, braces, commas, escaped quotes and
    # backslashes; the step points inside such a string, so a bracket- or quote-blind splitter
    # would cut there; every boundary must be the first element starting at or after k * step.
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
    record_case(
        "70-json-ranges-tricky-strings",
        {"input.json": text},
        f"a JSON array over RANGE_SPLIT_BYTES is split by element (P33): the step ({step}) points at the '[' of the '],[' after an escaped quote inside element 10's description, so range 1 starts at element 11; strings with brackets, braces, commas, escaped quotes and backslashes never end an element; {len(ranges)} ranges, each element stored once with its 0-based index as source_line, one cursor per range (ids are element indexes)",
        transactions=[
            tx(
                f"TR-{i:02d}",
                f"ACC{i % 4}",
                str(i + 0.25) if i % 3 else str(i + 100),
                "EUR",
                "DEBIT",
                JAN_1,
                i,
                merchant=f"M{tricky[i % len(tricky)]}",
                desc=tricky[(i + 3) % len(tricky)],
            )
            for i in range(40)
            if i not in (13, 27)
        ],
        errors=[
            err("INVALID_FORMAT", None, None, 13),
            err("UNKNOWN_CURRENCY", "currency", "TR-27", 27),
        ],
        rows_in=40,
        main_queue_min={"resume_file": len(ranges)},
        file_status=status(
            rows=40, stored=38, errors={"INVALID_FORMAT": 1, "UNKNOWN_CURRENCY": 1}, ranges=ranges
        ),
        env={"RANGE_SPLIT_BYTES": str(step)},
    )

    # ---------------------------------------------------------------- 71 the object form in ranges
    # P33 (JSON): {"transactions": [...]} with a BOM and CRLF white space is split as the array
    # is; the offsets count the BOM and the object's prefix; range 0 starts at element 0.
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
    record_case(
        "71-json-ranges-transactions-object",
        {"input.json": data},
        'the {"transactions": [...]} form (BOM, CRLF white space) over RANGE_SPLIT_BYTES is split by element as an array is (P33): the byte offsets count the BOM and the prefix; three ranges, each element stored once with its index',
        transactions=[
            tx(
                f"TO-{i:02d}",
                "ACC9",
                f"{i}.5",
                "CHF",
                "CREDIT",
                JAN_1,
                i,
                desc=f'line {i}: {{not: [json]}}, "q"',
            )
            for i in range(30)
        ],
        rows_in=30,
        main_queue_min={"resume_file": len(ranges)},
        file_status=status(rows=30, stored=30, ranges=ranges),
        env={"RANGE_SPLIT_BYTES": str(split_bytes)},
    )

    # ---------------------------------------------------------------- 72 malformed: not split
    # P33 (JSON): a document over RANGE_SPLIT_BYTES that the unsplit path rejects is not split:
    # its elements before the error are never stored, and the file error is the unsplit one,
    # with the whole document's line and column (P25).
    lines = [
        json.dumps(
            {
                "transaction_id": f"MN-{i:02d}",
                **PLAIN,
                "description": 'a "quoted", [bracketed] text',
            }
        )
        for i in range(30)
    ]
    lines[24] = lines[24].replace('"amount": "1", ', '"amount": "1" ')  # a missing ','
    text = "[\n" + ",\n".join(lines) + "\n]\n"
    column = lines[24].index('"currency"') + 1  # where reading stops: line 26 (after "[")
    file_error_case(
        "72-json-ranges-malformed-not-split",
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
    record_case(
        "73-json-ranges-resume-killed",
        {"input.json": text},
        "a JSON array in two ranges of about 1100 elements (P33): each range resumes after a batch with a range message whose start_line is the next element's index, one range invocation is killed mid-batch and re-run; every element is stored once, each range's cursor ends past its last element (P28, P29, P35)",
        transactions=[
            tx(
                f"JR-{i:04d}",
                f"ACC{i % 5}",
                str(i + 1),
                "EUR",
                "DEBIT",
                "2024-06-01T00:00:00",
                i,
                merchant=f"M,{i}]" if i % 7 == 0 else f"M{i}",
            )
            for i in range(count)
            if i not in (400, 1500)
        ],
        errors=[
            err("UNKNOWN_CURRENCY", "currency", "JR-0400", 400),
            err("INVALID_VALUE", "amount", "JR-1500", 1500),
        ],
        rows_in=count,
        main_queue_min={"resume_file": 4},
        file_status=status(
            rows=count,
            killed=True,
            errors={"UNKNOWN_CURRENCY": 1, "INVALID_VALUE": 1},
            ranges=ranges,
        ),
        env={"RANGE_SPLIT_BYTES": str(split_bytes)},
        retry_remaining_time_ms=20000,
        # As in case 65: the first main-queue invocation runs one batch of range 0 and
        # defers range 1 (P21); the kill comes inside that batch.
        crash={"after_calls": 500, "operation": "PutItem", "when": "sqs"},
    )

    # ---------------------------------------------------------------- 74 throttled writes yield
    # P37: a record's conditional PutItem answered with each of DynamoDB's three throttle codes,
    # several times over, is retried by the processor after its backoff and stored once; no
    # record becomes a retry_record.
    rows = [f"TH-{i},ACC{i % 2},{i}.25,EUR,CREDIT,2024-01-01T00:00:00Z,," for i in range(1, 7)]
    throttles = [
        ("TH-2", "ThrottlingException", 5),
        ("TH-4", "ProvisionedThroughputExceededException", 5),
        ("TH-6", "RequestLimitExceeded", 3),
    ]
    record_case(
        "74-throttled-writes-yield",
        {"input.csv": csv(*rows)},
        "three records' PutItem calls are throttled 5, 5 and 3 times, one DynamoDB throttle code each (ThrottlingException, ProvisionedThroughputExceededException, RequestLimitExceeded): the processor retries each after its jittered backoff (P37) and stores every record once, with no retry_record",
        transactions=[
            tx(f"TH-{i}", f"ACC{i % 2}", f"{i}.25", "EUR", "CREDIT", JAN_1, i + 1)
            for i in range(1, 7)
        ],
        rows_in=6,
        main_queue_max={"retry_record": 0},
        file_status=status(rows=6, stored=6, cursor=8),
        throttle=[
            {"transaction_id": tid, "code": code, "times": times} for tid, code, times in throttles
        ],
    )

    print(len(CASES), "cases")


if __name__ == "__main__":
    build()
