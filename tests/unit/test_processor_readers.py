"""Unit tests of lib/processor_function.py: reading CSV and JSON files into rows and file errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.conftest import (
    HEADER,
    csv_bytes,
    iter_chunks,
    row_csv,
    valid_row,
)

# --------------------------------------------------------------------------------------------
# CSV reading


def read_csv(proc: Any, data: bytes, chunk: int = 1 << 20) -> Any:
    rows = proc.csv_rows(iter_chunks(data, chunk))
    if isinstance(rows, proc.FileError):
        return rows
    return [
        (row.line, row.error.code if row.error else None, dict(row.values or {})) for row in rows
    ]


def test_physical_lines_across_chunks(proc: Any) -> None:
    data = b"ab\ncd\r\n\nlast"
    for size in range(1, len(data) + 1):
        assert list(proc.physical_lines(iter_chunks(data, size))) == [
            b"ab\n",
            b"cd\r\n",
            b"\n",
            b"last",
        ]


def test_physical_lines_overflow(proc: Any) -> None:
    data = b"short\n" + b"x" * 50 + b"\nok\n" + b"y" * 50
    for size in (1, 7, 64, 1000):
        lines = list(proc.physical_lines(iter_chunks(data, size), limit=20))
        assert lines == [b"short\n", None, b"ok\n", None]


def test_csv_basic_bom_crlf(proc: Any) -> None:
    data = b"\xef\xbb\xbf" + csv_bytes(row_csv(valid_row(1)), row_csv(valid_row(2)), newline="\r\n")
    rows = read_csv(proc, data)
    assert [(line, code) for line, code, _ in rows] == [(2, None), (3, None)]
    assert rows[0][2]["transaction_id"] == "tx-00001"
    assert rows[1][2]["description"] == "coffee"


def test_csv_quoting_and_line_numbers(proc: Any) -> None:
    data = csv_bytes(
        'q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,"m,1","say ""hi"""',
        'q2,A2,1,EUR,DEBIT,2024-03-01T10:00:00Z,m,"line one\nline two\r\nline three"',
        "",
        'q3,A3,1,EUR,DEBIT,2024-03-01T10:00:00Z,,"a\u00e9"',
    )
    rows = read_csv(proc, data)
    assert [(line, code) for line, code, _ in rows] == [(2, None), (3, None), (7, None)]
    assert rows[0][2]["merchant_id"] == "m,1"
    assert rows[0][2]["description"] == 'say "hi"'
    assert rows[1][2]["description"] == "line one\nline two\r\nline three"
    assert rows[2][2]["description"] == "aé"


def test_csv_same_result_for_any_chunking(proc: Any) -> None:
    data = (
        csv_bytes(
            'q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,"m,1","x\ny"',
            "q2,A2,1,EUR,DEBIT,2024-03-01T10:00:00Z,m,\ufffd",
            "a,b",
        )
        + b"q3,A3,1,EUR,DEBIT,2024-03-01T10:00:00Z,m,\xc3\n"
    )
    expected = read_csv(proc, data)
    assert [code for _, code, _ in expected] == [None, None, "MALFORMED_ROW", "INVALID_ENCODING"]
    for size in (1, 2, 3, 5, 17, 64):
        assert read_csv(proc, data, size) == expected


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ("q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,m", "MALFORMED_ROW"),
        ("q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,m,d,extra", "MALFORMED_ROW"),
        ('q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,"m"x,d', "MALFORMED_ROW"),
        ('q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,"m" ,d', "MALFORMED_ROW"),
        ("q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,m\rx,d", "MALFORMED_ROW"),
        ('q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,m"x,d', None),
        ("q1,A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,m\x00,d", None),
    ],
)
def test_csv_row_errors_keep_neighbours(proc: Any, row: str, code: str | None) -> None:
    data = csv_bytes(row_csv(valid_row(1)), row, row_csv(valid_row(3)))
    rows = read_csv(proc, data)
    assert [(line, c) for line, c, _ in rows] == [(2, None), (3, code), (4, None)]


def test_csv_invalid_utf8_row(proc: Any) -> None:
    bad = b"q2,A2,1,EUR,DEBIT,2024-03-01T10:00:00Z,m,caf\xe9\n"
    data = csv_bytes(row_csv(valid_row(1))) + bad + row_csv(valid_row(3)).encode() + b"\n"
    rows = read_csv(proc, data)
    assert [(line, c) for line, c, _ in rows] == [(2, None), (3, "INVALID_ENCODING"), (4, None)]
    # invalid bytes inside an unreadable row: encoding is reported first (P12)
    data = csv_bytes() + b'q2,"x\xff"y\n'
    assert [c for _, c, _ in read_csv(proc, data)] == ["INVALID_ENCODING"]


def test_csv_unterminated_quote_at_end(proc: Any) -> None:
    data = csv_bytes(row_csv(valid_row(1))) + b'q2,A2,1,EUR,DEBIT,2024-03-01T10:00:00Z,m,"open\n'
    assert [(line, c) for line, c, _ in read_csv(proc, data)] == [(2, None), (3, "MALFORMED_ROW")]


def test_csv_row_too_long(proc: Any) -> None:
    long_row = "q2,A2,1,EUR,DEBIT,2024-03-01T10:00:00Z,m," + "x" * (1 << 20)
    data = csv_bytes(row_csv(valid_row(1)), long_row, row_csv(valid_row(3)))
    for size in (4096, 1 << 20):
        rows = read_csv(proc, data, size)
        assert [(line, c) for line, c, _ in rows] == [(2, None), (3, "MALFORMED_ROW"), (4, None)]
    quoted = 'q2,A2,1,EUR,DEBIT,2024-03-01T10:00:00Z,m,"' + ("y" * 1000 + "\n") * 1100 + '"'
    rows = read_csv(proc, csv_bytes(quoted, row_csv(valid_row(3))))
    assert rows[0][:2] == (2, "MALFORMED_ROW")


def test_csv_blank_lines_are_skipped_but_counted(proc: Any) -> None:
    data = b"\n\r\n" + csv_bytes("", row_csv(valid_row(1)), "", "", row_csv(valid_row(2)))
    assert [(line, c) for line, c, _ in read_csv(proc, data)] == [(5, None), (8, None)]


def test_csv_header_is_trimmed_and_reorderable(proc: Any) -> None:
    header = " currency ,amount,transaction_id,account_id,timestamp,transaction_type"
    data = csv_bytes("eur,1,t1,A1,2024-03-01T10:00:00Z,debit", header=header)
    ((line, code, values),) = read_csv(proc, data)
    assert (line, code) == (2, None)
    assert proc.validate_record(values).currency == "EUR"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("transaction_id,account_id,amount,currency,transaction_type", "timestamp"),
        (HEADER + ",extra", "extra"),
        (HEADER + ",", ""),
        ("Transaction_ID," + HEADER.split(",", 1)[1], "Transaction_ID"),
        (HEADER + ",amount", "amount"),
        ("amount,amount," + HEADER, "amount"),
    ],
)
def test_csv_invalid_header(proc: Any, header: str, field: str) -> None:
    error = read_csv(proc, csv_bytes(row_csv(valid_row(1)), header=header))
    assert error.code == "INVALID_HEADER"
    assert json.dumps(field) in error.message


def test_csv_header_file_errors(proc: Any) -> None:
    assert read_csv(proc, b"").code == "EMPTY_FILE"
    assert read_csv(proc, b"\xef\xbb\xbf").code == "EMPTY_FILE"
    assert read_csv(proc, b"\n\r\n\n").code == "EMPTY_FILE"
    assert read_csv(proc, b"transaction_id,acc\xffount\nx\n").code == "INVALID_ENCODING"
    assert read_csv(proc, b'"transaction_id"x,amount\n').code == "MALFORMED_FILE"
    assert read_csv(proc, b"x" * (1 << 21)).code == "MALFORMED_FILE"
    assert read_csv(proc, csv_bytes()) == []  # header only: EMPTY_FILE is decided by the caller


# --------------------------------------------------------------------------------------------
# JSON reading


def read_json(proc: Any, data: bytes | str) -> Any:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    records = proc.parse_json_document(raw)
    if isinstance(records, proc.FileError):
        return records
    return list(proc.json_rows(records))


def test_json_array_and_wrapped(proc: Any) -> None:
    record = dict(valid_row(1))
    assert len(read_json(proc, json.dumps([record, record]))) == 2
    rows = read_json(proc, "\ufeff" + json.dumps({"transactions": [record]}))
    assert [row.line for row in rows] == [0]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "EMPTY_FILE"),
        ("  \n\t ", "EMPTY_FILE"),
        ("[]", "EMPTY_FILE"),
        ('{"transactions": []}', "EMPTY_FILE"),
        ('{"transactions": [], "meta": 1}', "MALFORMED_FILE"),
        ('{"records": [{}]}', "MALFORMED_FILE"),
        ('{"transactions": {}}', "MALFORMED_FILE"),
        ("42", "MALFORMED_FILE"),
        ('"text"', "MALFORMED_FILE"),
        ("null", "MALFORMED_FILE"),
        ("[{]", "MALFORMED_FILE"),
        ("[1,]", "MALFORMED_FILE"),
        ('[{"amount": NaN}]', "MALFORMED_FILE"),
        ('[{"amount": Infinity}]', "MALFORMED_FILE"),
        ('[{"description": "\\ud800"}]', "MALFORMED_FILE"),
        ('[{"\\udc00": 1}]', "MALFORMED_FILE"),
        ("[" * 65 + "]" * 65, "MALFORMED_FILE"),
        ("[" * 100_000 + "]" * 100_000, "MALFORMED_FILE"),
        ("[{}] x", "MALFORMED_FILE"),
    ],
)
def test_json_file_errors(proc: Any, text: str, code: str) -> None:
    assert read_json(proc, text).code == code


def test_json_depth_limit(proc: Any) -> None:
    inner = "[" * 62 + "1" + "]" * 62
    rows = read_json(proc, '[{"x": ' + inner + "}]")  # 1 array + 1 object + 62 = 64 levels
    assert len(rows) == 1
    inner = "[" * 63 + "1" + "]" * 63
    assert read_json(proc, '[{"x": ' + inner + "}]").code == "MALFORMED_FILE"


def test_json_invalid_utf8(proc: Any) -> None:
    assert read_json(proc, b'[{"description": "caf\xe9"}]').code == "INVALID_ENCODING"


def test_json_surrogate_pair_is_fine(proc: Any) -> None:
    (row,) = read_json(proc, '[{"description": "\\ud83d\\ude00"}]')
    assert row.values["description"] == "😀"


def test_json_non_object_records(proc: Any) -> None:
    rows = read_json(proc, '[1, "x", null, [], {"a": 1}]')
    assert [(r.line, r.error.code if r.error else None) for r in rows] == [
        (0, "INVALID_FORMAT"),
        (1, "INVALID_FORMAT"),
        (2, "INVALID_FORMAT"),
        (3, "INVALID_FORMAT"),
        (4, None),
    ]


def test_json_numbers_keep_their_text(proc: Any) -> None:
    (row,) = read_json(proc, '[{"amount": 10.50, "n": 1e400, "i": 123456789012345678901234567890}]')
    assert row.values == {"amount": "10.50", "n": "1e400", "i": "123456789012345678901234567890"}
    assert all(isinstance(v, proc.JsonNumber) for v in row.values.values())
