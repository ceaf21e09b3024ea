"""Unit tests of lib/processor_function.py: pure functions, then handler runs against fakes/moto."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.unit.conftest import (
    BUCKET,
    DLQ_URL,
    HANDLER_ENV,
    HEADER,
    LAST_MODIFIED_MS,
    MAIN_URL,
    TABLE,
    FakeContext,
    Pipeline,
    client_error,
    csv_bytes,
    iter_chunks,
    row_csv,
    s3_event,
    sqs_event,
    valid_row,
)

# --------------------------------------------------------------------------------------------
# Validation of one record


def check(proc: Any, **overrides: Any) -> Any:
    record: dict[str, Any] = valid_row(1)
    for name, value in overrides.items():
        if value is ...:
            record.pop(name, None)
        else:
            record[name] = value
    return proc.validate_record(record)


def assert_error(result: Any, code: str, field: str | None) -> None:
    assert type(result).__name__ == "RecordError", result
    assert (result.code, result.field) == (code, field), result
    if field is not None:
        assert field in result.message


def test_valid_record_is_normalised(proc: Any) -> None:
    tx = check(
        proc,
        transaction_id="  tx-1 ",
        amount="0010.500",
        currency=" eur",
        transaction_type="Debit",
        timestamp="2024-03-01T11:00:00.1239+01:00",
        merchant_id="",
        description=" Café ☕ ",
    )
    assert tx == proc.Transaction(
        transaction_id="tx-1",
        account_id="DE89370400440532010001",
        amount="10.5",
        currency="EUR",
        transaction_type="DEBIT",
        timestamp=1709287200123,
        merchant_id=None,
        description="Café ☕",
    )


@pytest.mark.parametrize("name", ["transaction_id", "account_id", "amount", "currency"])
@pytest.mark.parametrize("value", [..., None, "", "   ", "\t\r\n"])
def test_missing_required_field(proc: Any, name: str, value: Any) -> None:
    assert_error(check(proc, **{name: value}), "MISSING_FIELD", name)


@pytest.mark.parametrize("name", ["transaction_type", "timestamp"])
def test_missing_required_field_late_in_table(proc: Any, name: str) -> None:
    assert_error(check(proc, **{name: None}), "MISSING_FIELD", name)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a" * 64, True),
        ("a" * 65, False),
        ("A-z_0.9:x", True),
        ("tx 1", False),
        ("tx/1", False),
        ("tëx", False),
        ("tx\u00001", False),
    ],
)
def test_transaction_id_rule(proc: Any, value: str, ok: bool) -> None:
    result = check(proc, transaction_id=value)
    if ok:
        assert result.transaction_id == value
    else:
        assert_error(result, "INVALID_FORMAT", "transaction_id")


@pytest.mark.parametrize(
    ("value", "ok"),
    [("A" * 34, True), ("A" * 35, False), ("DE89-3704", False), ("DE89 3704", False), ("x", True)],
)
def test_account_id_rule(proc: Any, value: str, ok: bool) -> None:
    result = check(proc, account_id=value)
    if ok:
        assert result.account_id == value
    else:
        assert_error(result, "INVALID_FORMAT", "account_id")


@pytest.mark.parametrize(
    "value", ["1e3", "1E3", "+5", ".5", "5.", "1,000", "1 000", "0x10", "١٢", "NaN", "--5", "5-"]
)
def test_amount_syntax(proc: Any, value: str) -> None:
    assert_error(check(proc, amount=value), "INVALID_FORMAT", "amount")


@pytest.mark.parametrize("value", ["0", "0.00", "-5", "-0", "-0.01", "1000000000000", "1e12x"])
def test_amount_value(proc: Any, value: str) -> None:
    expected = "INVALID_FORMAT" if value == "1e12x" else "INVALID_VALUE"
    assert_error(check(proc, amount=value), expected, "amount")


@pytest.mark.parametrize(
    ("amount", "currency", "canonical"),
    [
        ("999999999999.99", "EUR", "999999999999.99"),
        ("0.01", "EUR", "0.01"),
        ("10.500", "EUR", "10.5"),
        ("000010.10000", "EUR", "10.1"),
        ("100", "JPY", "100"),
        ("100.000", "JPY", "100"),
        ("1.234", "KWD", "1.234"),
        ("1.2340", "KWD", "1.234"),
        ("1.2345", "CLF", "1.2345"),
        ("7", "XCG", "7"),
        ("7.25", "ZWG", "7.25"),
    ],
)
def test_amount_canonical(proc: Any, amount: str, currency: str, canonical: str) -> None:
    assert check(proc, amount=amount, currency=currency).amount == canonical


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("10.505", "EUR"), ("100.5", "JPY"), ("1.2345", "KWD"), ("0.001", "USD"), ("1.00001", "CLF")],
)
def test_amount_precision(proc: Any, amount: str, currency: str) -> None:
    assert_error(check(proc, amount=amount, currency=currency), "PRECISION_EXCEEDED", "amount")


def test_check_order_follows_the_table(proc: Any) -> None:
    # amount syntax before currency; currency before precision; precision before type.
    assert_error(check(proc, amount="1e3", currency="XXX"), "INVALID_FORMAT", "amount")
    assert_error(check(proc, amount="1.001", currency="XXX"), "UNKNOWN_CURRENCY", "currency")
    assert_error(
        check(proc, amount="1.001", transaction_type="NOPE"), "PRECISION_EXCEEDED", "amount"
    )
    assert_error(
        check(proc, transaction_id="bad id", account_id=None), "INVALID_FORMAT", "transaction_id"
    )
    assert_error(
        check(proc, timestamp="yesterday", description="\x00", extra="1"),
        "INVALID_FORMAT",
        "timestamp",
    )
    assert_error(check(proc, description="\x00", extra="1"), "INVALID_FORMAT", "description")
    assert_error(check(proc, transaction_id=None, extra="1"), "MISSING_FIELD", "transaction_id")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eur", "EUR"),
        ("Eur", "EUR"),
        (" usd ", "USD"),
        ("xcg", "XCG"),
        ("XAD", "XAD"),
        ("ZWG", "ZWG"),
        ("VED", "VED"),
        ("SLE", "SLE"),
    ],
)
def test_currency_accepted(proc: Any, value: str, expected: str) -> None:
    assert check(proc, currency=value, amount="1").currency == expected


@pytest.mark.parametrize(
    "value",
    [
        "XAU",
        "XDR",
        "XXX",
        "XTS",
        "EURO",
        "EU",
        "HRK",
        "BGN",
        "ANG",
        "ZWL",
        "\u0131dr",
        "€",
        "E U R",
    ],
)
def test_currency_rejected(proc: Any, value: str) -> None:
    assert_error(check(proc, currency=value), "UNKNOWN_CURRENCY", "currency")


def test_currency_table(proc: Any) -> None:
    table = proc.CURRENCY_MINOR_UNITS
    assert len(table) == 165
    assert table["EUR"] == 2 and table["JPY"] == 0 and table["KWD"] == 3 and table["CLF"] == 4
    assert all(len(code) == 3 and code.isupper() and code.isascii() for code in table)
    assert not {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT"} & set(table)
    assert not {"XSU", "XTS", "XUA", "XXX"} & set(table)


@pytest.mark.parametrize("value", ["debit", "CREDIT", "Transfer", "payment", " refund "])
def test_transaction_type_accepted(proc: Any, value: str) -> None:
    assert check(proc, transaction_type=value).transaction_type == value.strip().upper()


@pytest.mark.parametrize("value", ["WITHDRAWAL", "DEBITS", "deb\u0131t", "D E B I T", "1"])
def test_transaction_type_rejected(proc: Any, value: str) -> None:
    assert_error(check(proc, transaction_type=value), "INVALID_VALUE", "transaction_type")


def _ms(text: str) -> int:
    dt = datetime.fromisoformat(text)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-02-29T00:00:00Z", _ms("2024-02-29T00:00:00+00:00")),
        ("2000-02-29T12:00:00Z", _ms("2000-02-29T12:00:00+00:00")),
        ("2024-03-01t10:00:00z", _ms("2024-03-01T10:00:00+00:00")),
        ("2024-03-01T10:00:00.9999Z", _ms("2024-03-01T10:00:00.999+00:00")),
        ("2024-03-01T10:00:00.1Z", _ms("2024-03-01T10:00:00.100+00:00")),
        ("2024-03-01T10:00:00.123456789Z", _ms("2024-03-01T10:00:00.123+00:00")),
        ("2024-03-01T15:30:00+05:30", _ms("2024-03-01T10:00:00+00:00")),
        ("2024-03-01T05:00:00-05:00", _ms("2024-03-01T10:00:00+00:00")),
        ("2024-03-01T10:00:00-00:00", _ms("2024-03-01T10:00:00+00:00")),
        ("2000-01-01T00:00:00Z", 946684800000),
        ("2000-01-01T01:00:00+01:00", 946684800000),
        ("2099-12-31T23:59:59.999Z", 4102444799999),
    ],
)
def test_timestamp_accepted(proc: Any, value: str, expected: int) -> None:
    assert check(proc, timestamp=value).timestamp == expected


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T23:60:00Z",
        "2024-12-31T23:59:60Z",
        "2024-01-01T00:00:00",
        "2024-01-01 00:00:00Z",
        "2024-01-01T00:00Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00+0100",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+01:60",
        "2024-01-01",
        "24-01-01T00:00:00Z",
        "1709287200000",
        "\uff12\uff10\uff12\uff14-01-01T00:00:00Z",
    ],
)
def test_timestamp_format(proc: Any, value: str) -> None:
    assert_error(check(proc, timestamp=value), "INVALID_FORMAT", "timestamp")


@pytest.mark.parametrize(
    "value",
    [
        "1999-12-31T23:59:59.999Z",
        "2000-01-01T00:30:00+01:00",
        "2100-01-01T00:00:00Z",
        "2099-12-31T23:00:00-01:00",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
    ],
)
def test_timestamp_range(proc: Any, value: str) -> None:
    assert_error(check(proc, timestamp=value), "INVALID_VALUE", "timestamp")


def test_days_from_civil_matches_datetime(proc: Any) -> None:
    epoch = datetime(1970, 1, 1).date()
    for year in (1, 1600, 1969, 1970, 2000, 2024, 2100, 9999):
        for month, day in ((1, 1), (2, 28), (3, 1), (12, 31)):
            date = datetime(year, month, day).date()
            assert proc.days_from_civil(year, month, day) == (date - epoch).days


@pytest.mark.parametrize(("name", "limit"), [("merchant_id", 64), ("description", 256)])
def test_optional_lengths(proc: Any, name: str, limit: int) -> None:
    assert getattr(check(proc, **{name: "é" * limit}), name) == "é" * limit
    assert_error(check(proc, **{name: "x" * (limit + 1)}), "INVALID_FORMAT", name)
    assert getattr(check(proc, **{name: ""}), name) is None
    assert getattr(check(proc, **{name: None}), name) is None


@pytest.mark.parametrize("char", ["\t", "\x00", "\x1f", "\x7f", "\x85", "\x9f"])
def test_description_control_characters(proc: Any, char: str) -> None:
    assert_error(check(proc, description=f"a{char}b"), "INVALID_FORMAT", "description")


def test_merchant_id_has_no_character_rule(proc: Any) -> None:
    assert check(proc, merchant_id="M\x01/ü").merchant_id == "M\x01/ü"


def test_unknown_field(proc: Any) -> None:
    assert_error(check(proc, zeta="1", Amount="2"), "UNKNOWN_FIELD", "Amount")
    assert_error(check(proc, status="PROCESSED"), "UNKNOWN_FIELD", "status")
    assert_error(check(proc, extra=None), "UNKNOWN_FIELD", "extra")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("amount", True),
        ("amount", [1]),
        ("currency", {"code": "EUR"}),
        ("transaction_id", False),
        ("timestamp", []),
        ("merchant_id", {}),
        ("description", True),
    ],
)
def test_wrong_json_types(proc: Any, name: str, value: Any) -> None:
    assert_error(check(proc, **{name: value}), "INVALID_FORMAT", name)


def test_json_numbers_are_token_text(proc: Any) -> None:
    number = proc.JsonNumber
    tx = check(proc, amount=number("10.50"), account_id=number("12345678"))
    assert (tx.amount, tx.account_id) == ("10.5", "12345678")
    assert_error(check(proc, amount=number("1e3")), "INVALID_FORMAT", "amount")
    assert_error(check(proc, amount=number("1.0E+2")), "INVALID_FORMAT", "amount")
    assert_error(check(proc, timestamp=number("1709287200000")), "INVALID_FORMAT", "timestamp")


def test_record_hash_vector(proc: Any) -> None:
    tx = proc.Transaction("tx-1", "DE89", "10.5", "EUR", "DEBIT", 1709287200000, None, "café")
    joined = "tx-1\x1fDE89\x1f10.5\x1fEUR\x1fDEBIT\x1f1709287200000\x1f\x1fcafé"
    assert proc.record_hash(tx) == hashlib.sha256(joined.encode("utf-8")).hexdigest()
    other = proc.Transaction("tx-1", "DE89", "10.5", "EUR", "DEBIT", 1709287200000, "", "café")
    assert proc.record_hash(other) == proc.record_hash(tx)


def test_equivalent_inputs_hash_equally(proc: Any) -> None:
    a = check(proc, amount="10.5", currency="EUR", transaction_type="DEBIT")
    b = check(proc, amount="010.500", currency="eur", transaction_type="debit")
    assert proc.record_hash(a) == proc.record_hash(b)
    c = check(proc, amount="10.51")
    assert proc.record_hash(a) != proc.record_hash(c)


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


# --------------------------------------------------------------------------------------------
# Masking and messages


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("DE89370400440532013000", "****3000"),
        (" DE8937 ", "****8937"),
        ("12345", "****2345"),
        ("1234", "****"),
        ("", "****"),
        (12345, "****"),
        (["DE89370400440532013000"], "****"),
    ],
)
def test_mask_account(proc: Any, value: Any, masked: str) -> None:
    assert proc.mask_account(value) == masked


def test_masked_record(proc: Any) -> None:
    record = {
        "transaction_id": " t1 ",
        "account_id": "DE89370400440532013000",
        "amount": proc.JsonNumber("1e3"),
        "description": "secret",
        "merchant_id": None,
        "flag": True,
        "nested": {"a": [1, "b"]},
        "k" * 100: "v" * 1000,
    }
    masked = proc.masked_record(record)
    assert masked == {
        "transaction_id": "t1",
        "account_id": "****3000",
        "amount": "1e3",
        "flag": "true",
        "nested": '{"a":[1,"b"]}',
        "k" * 64: "v" * 256,
    }
    many = {f"k{i}": "v" for i in range(100)}
    assert len(proc.masked_record(many)) == 32


def source(proc: Any) -> Any:
    return proc.SourceInfo(BUCKET, "in/a.csv", "v1", LAST_MODIFIED_MS)


def test_record_error_message(proc: Any) -> None:
    error = proc.RecordError("INVALID_VALUE", "amount", "amount: must be greater than 0")
    values = valid_row(7, amount="-1")
    message = proc.record_error_message(error, source(proc), 9, values, 1234)
    assert message == {
        "kind": "record_error",
        "error_code": "INVALID_VALUE",
        "error_message": "amount: must be greater than 0",
        "field": "amount",
        "transaction_id": "tx-00007",
        "source": {
            "bucket": BUCKET,
            "key": "in/a.csv",
            "version_id": "v1",
            "line": 9,
            "last_modified": LAST_MODIFIED_MS,
        },
        "record": {
            "transaction_id": "tx-00007",
            "account_id": "****0007",
            "amount": "-1",
            "currency": "EUR",
            "transaction_type": "DEBIT",
            "timestamp": "2024-03-01T10:00:00Z",
            "merchant_id": "m-1",
        },
        "failed_at": 1234,
        "processor": "python3.11/1.0.0",
    }
    bad_id = proc.record_error_message(
        error, source(proc), 9, valid_row(1, transaction_id="a b"), 1
    )
    assert bad_id["transaction_id"] is None


def test_file_error_message(proc: Any) -> None:
    error = proc.FileError("INVALID_HEADER", "header: unknown column 'x'")
    message = proc.file_error_message(error, source(proc), 55)
    assert message == {
        "kind": "file_error",
        "error_code": "INVALID_HEADER",
        "error_message": "header: unknown column 'x'",
        "source": {
            "bucket": BUCKET,
            "key": "in/a.csv",
            "version_id": "v1",
            "line": None,
            "last_modified": LAST_MODIFIED_MS,
        },
        "failed_at": 55,
        "processor": "python3.11/1.0.0",
    }


def test_encode_message_is_ascii_and_bounded(proc: Any) -> None:
    error = proc.RecordError("UNKNOWN_FIELD", "x", "x: unknown field")
    values = {f"{'é' * 64}{i}": "\U0001f600" * 300 for i in range(40)}
    body = proc.encode_message(proc.record_error_message(error, source(proc), 2, values, 1))
    assert body.isascii() and len(body) <= 262_144
    huge = {"record": {"x": "y" * 300_000}, "kind": "record_error"}
    assert json.loads(proc.encode_message(huge))["record"] is None


def test_send_messages_batches_by_count_and_size(proc: Any, pipe: Pipeline) -> None:
    bodies = [json.dumps({"i": i}) for i in range(25)]
    proc.send_messages(pipe.sqs, DLQ_URL, bodies)
    assert pipe.sqs.calls == 3 and pipe.sqs.queues[DLQ_URL] == bodies
    big = ["x" * 100_000] * 5
    proc.send_messages(pipe.sqs, MAIN_URL, big)
    assert pipe.sqs.calls == 6 and len(pipe.sqs.queues[MAIN_URL]) == 5


def test_send_messages_retries_failed_entries(proc: Any, pipe: Pipeline) -> None:
    pipe.sqs.fail_calls = 2
    pipe.sqs.raise_calls = 1
    proc.send_messages(pipe.sqs, DLQ_URL, ["a", "b"])
    assert pipe.sqs.queues[DLQ_URL] == ["a", "b"]


def test_send_messages_raises_when_entries_keep_failing(proc: Any, pipe: Pipeline) -> None:
    pipe.sqs.fail_calls = 10
    with pytest.raises(proc.TransientError):
        proc.send_messages(pipe.sqs, DLQ_URL, ["a"])


# --------------------------------------------------------------------------------------------
# Handler runs against in-process fakes


def test_stores_every_attribute(pipe: Pipeline) -> None:
    data = csv_bytes(row_csv(valid_row(1)), row_csv(valid_row(2, merchant_id="", description="")))
    result = pipe.run_file("in/batch.csv", data)
    (file_result,) = result["files"]
    assert file_result["rows"] == 2 and file_result["stored"] == 2
    version = file_result["version_id"]
    items = sorted(pipe.ddb.raw_items(), key=lambda item: item["transaction_id"]["S"])
    first = dict(items[0])
    ingested = first.pop("ingested_at")
    assert int(ingested["N"]) > LAST_MODIFIED_MS
    record_hash = first.pop("record_hash")["S"]
    assert first == {
        "transaction_id": {"S": "tx-00001"},
        "account_id": {"S": "DE89370400440532010001"},
        "amount": {"N": "10.5"},
        "currency": {"S": "EUR"},
        "transaction_type": {"S": "DEBIT"},
        "timestamp": {"N": "1709287200000"},
        "merchant_id": {"S": "m-1"},
        "description": {"S": "coffee"},
        "status": {"S": "PROCESSED"},
        "source_bucket": {"S": BUCKET},
        "source_key": {"S": "in/batch.csv"},
        "source_version_id": {"S": version},
        "source_line": {"N": "2"},
        "processor": {"S": "python3.11/1.0.0"},
    }
    parts = ["tx-00001", "DE89370400440532010001", "10.5", "EUR", "DEBIT", "1709287200000"]
    expected_hash = hashlib.sha256("\x1f".join([*parts, "m-1", "coffee"]).encode()).hexdigest()
    assert record_hash == expected_hash
    assert "merchant_id" not in items[1] and "description" not in items[1]
    assert pipe.dlq() == [] and pipe.main() == []


def test_json_file_end_to_end(pipe: Pipeline) -> None:
    records = [valid_row(1), {**valid_row(2), "amount": 1.5}, [1], {**valid_row(4), "x": 1}]
    text = json.dumps({"transactions": records}).replace('"amount": 1.5', '"amount": 1.50')
    result = pipe.run_file("in/batch.JSON", text.encode())
    assert result["files"][0]["stored"] == 2 and result["files"][0]["invalid"] == 2
    lines = sorted(int(item["source_line"]) for item in pipe.transactions())
    assert lines == [0, 1]
    assert sorted((m["source"]["line"], m["error_code"]) for m in pipe.dlq()) == [
        (2, "INVALID_FORMAT"),
        (3, "UNKNOWN_FIELD"),
    ]


def test_url_encoded_key(pipe: Pipeline) -> None:
    key = "in/daily report (1)+ü.csv"
    version = pipe.s3.put(key, csv_bytes(row_csv(valid_row(1))))
    pipe.invoke(s3_event("in/daily+report+%281%29%2B%C3%BC.csv", version))
    (item,) = pipe.transactions()
    assert item["source_key"] == key


def test_unversioned_event_uses_returned_version(pipe: Pipeline) -> None:
    version = pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    pipe.invoke(s3_event("in/a.csv"))
    assert pipe.transactions()[0]["source_version_id"] == version
    assert pipe.s3.calls[0]["VersionId"] is None


def test_mixed_file_accounting_and_messages(pipe: Pipeline) -> None:
    rows = [
        row_csv(valid_row(1)),
        row_csv(valid_row(2, amount="abc")),
        "a,b",
        row_csv(valid_row(4, currency="XAU")),
        row_csv(valid_row(5)),
    ]
    result = pipe.run_file("in/mixed.csv", csv_bytes(*rows))
    summary = result["files"][0]
    assert (summary["rows"], summary["stored"], summary["invalid"]) == (5, 2, 3)
    codes = sorted((m["source"]["line"], m["error_code"], m["field"]) for m in pipe.dlq())
    assert codes == [
        (3, "INVALID_FORMAT", "amount"),
        (4, "MALFORMED_ROW", None),
        (5, "UNKNOWN_CURRENCY", "currency"),
    ]
    for message in pipe.dlq():
        assert message["source"]["last_modified"] == LAST_MODIFIED_MS
        assert "description" not in (message["record"] or {})


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY_FILE"),
        (HEADER.encode() + b"\n", "EMPTY_FILE"),
        (b"\xef\xbb\xbf\n\n", "EMPTY_FILE"),
        (b"transaction_id\n1\n", "INVALID_HEADER"),
        (b"\xff\xfe" + HEADER.encode("utf-16-le"), "INVALID_ENCODING"),
    ],
)
def test_csv_file_errors_end_to_end(pipe: Pipeline, data: bytes, code: str) -> None:
    result = pipe.run_file("in/bad.csv", data)
    assert result["files"][0]["file_error"] == code
    (message,) = pipe.dlq()
    assert message["kind"] == "file_error" and message["error_code"] == code
    assert message["source"]["last_modified"] == LAST_MODIFIED_MS
    assert pipe.transactions() == []


def test_unsupported_suffix(pipe: Pipeline) -> None:
    result = pipe.run_file("in/data.txt", b"anything")
    assert result["files"][0]["file_error"] == "MALFORMED_FILE"
    assert pipe.s3.calls == []


def test_object_not_found_uses_event_time(pipe: Pipeline) -> None:
    result = pipe.invoke(s3_event("in/gone.csv", "v9"))
    assert result["files"][0]["file_error"] == "OBJECT_NOT_FOUND"
    (message,) = pipe.dlq()
    assert message["source"]["last_modified"] == 1714566616000
    assert message["source"]["version_id"] == "v9"
    pipe.s3.put("in/there.csv", b"x")
    pipe.invoke(s3_event("in/there.csv", "no-such-version"))
    assert pipe.dlq()[1]["error_code"] == "OBJECT_NOT_FOUND"


def test_file_too_large(pipe: Pipeline) -> None:
    pipe.max_file_bytes = 100
    data = csv_bytes(row_csv(valid_row(1)))
    assert len(data) > 100
    assert pipe.run_file("in/big.csv", data)["files"][0]["file_error"] == "FILE_TOO_LARGE"
    pipe.max_file_bytes = len(data)
    assert pipe.run_file("in/ok.csv", data)["files"][0]["stored"] == 1


def test_transient_s3_failure_raises_on_s3_event(pipe: Pipeline, proc: Any) -> None:
    pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    for error in (
        client_error("InternalError", 500, "GetObject"),
        client_error("AccessDenied", 403, "GetObject"),
    ):
        pipe.s3.get_error = error
        with pytest.raises(proc.TransientError):
            pipe.invoke(s3_event("in/a.csv"))
    assert pipe.dlq() == [] and pipe.transactions() == []


def test_transient_s3_failure_fails_only_that_message(pipe: Pipeline) -> None:
    pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    pipe.s3.get_error = client_error("SlowDown", 503, "GetObject")
    resume = json.dumps({"kind": "resume_file", "bucket": BUCKET, "key": "in/a.csv",
                         "version_id": None, "start_line": 0})  # fmt: skip
    garbage = "not json"
    response = pipe.invoke(sqs_event([resume, garbage]))
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert pipe.sqs.queues[DLQ_URL] == [garbage]


def test_queue_failure_raises_so_nothing_is_lost(pipe: Pipeline, proc: Any) -> None:
    pipe.sqs.fail_calls = 100
    with pytest.raises(proc.TransientError):
        pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1, amount="x"))))


def test_replay_counts_duplicates(pipe: Pipeline) -> None:
    version = pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1)), row_csv(valid_row(2))))
    pipe.invoke(s3_event("in/a.csv", version))
    again = pipe.invoke(s3_event("in/a.csv", version))["files"][0]
    assert (again["stored"], again["duplicates"]) == (0, 2)
    assert len(pipe.transactions()) == 2 and pipe.dlq() == []


def test_conflict_with_stored_item(pipe: Pipeline) -> None:
    pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    result = pipe.run_file("in/b.csv", csv_bytes(row_csv(valid_row(1, amount="11"))))
    assert result["files"][0]["invalid"] == 1
    (message,) = pipe.dlq()
    assert (message["error_code"], message["field"]) == ("DUPLICATE_CONFLICT", "transaction_id")
    assert message["transaction_id"] == "tx-00001"
    assert message["record"]["account_id"] == "****0001"
    (item,) = pipe.transactions()
    assert item["amount"] == Decimal("10.5") and item["source_key"] == "in/a.csv"


def test_duplicates_within_a_file_first_in_file_order_wins(proc: Any) -> None:
    rows = [row_csv(valid_row(1, amount=str(n))) for n in range(1, 6)]
    rows += [row_csv(valid_row(2)), row_csv(valid_row(2))]
    for _ in range(5):
        pipe = Pipeline(proc)
        summary = pipe.run_file("in/dups.csv", csv_bytes(*rows))["files"][0]
        assert (summary["stored"], summary["duplicates"], summary["invalid"]) == (2, 1, 4)
        amounts = {item["transaction_id"]: item["amount"] for item in pipe.transactions()}
        assert amounts == {"tx-00001": Decimal("1"), "tx-00002": Decimal("10.5")}
        assert sorted(m["source"]["line"] for m in pipe.dlq()) == [3, 4, 5, 6]


def test_same_id_other_timestamp_is_another_item(pipe: Pipeline) -> None:
    rows = [row_csv(valid_row(1)), row_csv(valid_row(1, timestamp="2024-03-02T10:00:00Z"))]
    assert pipe.run_file("in/a.csv", csv_bytes(*rows))["files"][0]["stored"] == 2


def throttle_first(limit: int) -> Any:
    seen: dict[str, int] = {}

    def fail(item: Any) -> Exception | None:
        key = item["transaction_id"]["S"]
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            return client_error("ProvisionedThroughputExceededException", 400, "PutItem")
        return None

    return fail


def test_transient_write_failures_become_retry_records(pipe: Pipeline) -> None:
    pipe.ddb.fail = throttle_first(1)
    result = pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1)), row_csv(valid_row(2))))
    assert result["files"][0]["retried"] == 2 and pipe.transactions() == []
    retry = pipe.main()
    assert {m["kind"] for m in retry} == {"retry_record"}
    assert retry[0]["record"]["account_id"].startswith("DE89")  # full record, main queue only
    assert retry[0]["error"]["code"] == "ProvisionedThroughputExceededException"
    assert retry[0]["source"]["line"] in (2, 3)
    pipe.drain()
    items = sorted(pipe.transactions(), key=lambda i: i["transaction_id"])
    assert [(i["transaction_id"], i["source_line"]) for i in items] == [
        ("tx-00001", 2),
        ("tx-00002", 3),
    ]
    assert pipe.dlq() == []


def test_retry_record_failing_again_is_reported(pipe: Pipeline, proc: Any) -> None:
    pipe.ddb.fail = throttle_first(2)
    pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    bodies = pipe.sqs.take(MAIN_URL)
    assert pipe.invoke(sqs_event(bodies)) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert pipe.invoke(sqs_event(bodies)) == {"batchItemFailures": []}
    assert pipe.invoke(sqs_event(bodies)) == {"batchItemFailures": []}  # replay: duplicate
    assert len(pipe.transactions()) == 1


def test_retry_record_conflict_goes_to_dlq(pipe: Pipeline, proc: Any) -> None:
    tx = proc.validate_record(valid_row(1))
    src = proc.SourceInfo(BUCKET, "in/a.csv", "v1", LAST_MODIFIED_MS)
    message = proc.retry_record_message(tx, src, 2, "ThrottlingException", "slow", 1)
    pipe.run_file("in/b.csv", csv_bytes(row_csv(valid_row(1, amount="3"))))
    response = pipe.invoke(sqs_event([proc.encode_message(message)]))
    assert response == {"batchItemFailures": []}
    (conflict,) = pipe.dlq()
    assert conflict["error_code"] == "DUPLICATE_CONFLICT"
    assert conflict["record"]["account_id"] == "****0001"
    assert "description" not in conflict["record"]


def test_s3_event_from_dead_letter_config(pipe: Pipeline) -> None:
    version = pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    event = s3_event("in/a.csv", version)
    assert pipe.invoke(sqs_event([json.dumps(event)])) == {"batchItemFailures": []}
    assert len(pipe.transactions()) == 1


def test_unknown_messages_are_forwarded_unchanged(pipe: Pipeline) -> None:
    bodies = [
        "{}",
        "[1,2]",
        '{"kind": "retry_record", "record": {}}',
        '{"kind": "resume_file", "bucket": "b", "key": 5, "start_line": 0}',
        '{"Records": 5}',
        '{"Records": [{"eventSource": "aws:s3", "s3": []}]}',
        "\u00e9t\u00e9",
    ]
    assert pipe.invoke(sqs_event(bodies)) == {"batchItemFailures": []}
    assert pipe.sqs.queues[DLQ_URL] == bodies
    assert pipe.invoke({"hello": "world"}) == {"forwarded": True}


def test_ignores_non_create_events(pipe: Pipeline) -> None:
    event = s3_event("in/a.csv", eventName="ObjectRemoved:Delete")
    assert pipe.invoke(event) == {"files": []}


class Clock:
    """A context whose remaining time drops by `step` ms at every look."""

    def __init__(self, start: int, step: int) -> None:
        self.left = start
        self.step = step

    def __call__(self) -> FakeContext:
        return FakeContext(remaining=self.tick)

    def tick(self) -> int:
        self.left -= self.step
        return self.left


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_resume_file_covers_every_row_once(proc: Any, fmt: str) -> None:
    pipe = Pipeline(proc, batch_rows=3)
    rows = [valid_row(i) for i in range(1, 12)]
    rows[4]["amount"] = "bad"
    rows[5]["merchant_id"] = "multi\nline"  # a quoted line break in CSV
    data = csv_bytes(*[row_csv(r) for r in rows]) if fmt == "csv" else json.dumps(rows).encode()
    low = lambda: 1_000  # noqa: E731 - always under the 30 s margin
    result = pipe.run_file(f"in/big.{fmt}", data, FakeContext(remaining=low))
    first = result["files"][0]
    assert first["resume_line"] is not None and first["stored"] == 3
    (resume,) = pipe.main()
    assert resume == {
        "kind": "resume_file",
        "bucket": BUCKET,
        "key": f"in/big.{fmt}",
        "version_id": first["version_id"],
        "start_line": first["resume_line"],
    }
    rounds = pipe.drain(lambda: FakeContext(remaining=low))
    assert rounds == 3  # one batch of 3 per invocation: 11 rows in 1 + 3 invocations
    lines = sorted(int(i["source_line"]) for i in pipe.transactions())
    if fmt == "csv":
        expected = [2, 3, 4, 5, 7, 9, 10, 11, 12, 13]
    else:
        expected = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert lines == expected
    assert [m["error_code"] for m in pipe.dlq()] == ["INVALID_FORMAT"]


def test_resume_only_after_the_clock_runs_low(proc: Any) -> None:
    pipe = Pipeline(proc, batch_rows=2)
    data = csv_bytes(*[row_csv(valid_row(i)) for i in range(1, 10)])
    clock = Clock(start=40_000, step=3_000)  # 37 s, 34 s, 31 s, 28 s...
    result = pipe.run_file("in/a.csv", data, clock())
    assert result["files"][0]["stored"] == 8 and result["files"][0]["resume_line"] == 10
    pipe.drain()
    assert len(pipe.transactions()) == 9


def test_deferred_files_when_out_of_time(pipe: Pipeline) -> None:
    v1 = pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    v2 = pipe.s3.put("in/b.csv", csv_bytes(row_csv(valid_row(2))))
    event = s3_event("in/a.csv", v1)
    event["Records"] += s3_event("in/b.csv", v2)["Records"]
    result = pipe.invoke(event, FakeContext(remaining=lambda: 10))
    assert [f["stored"] for f in result["files"]] == [1, 0]
    (resume,) = pipe.main()
    assert (resume["key"], resume["version_id"], resume["start_line"]) == ("in/b.csv", v2, 0)
    pipe.drain()
    assert len(pipe.transactions()) == 2


def test_logs_and_metrics_carry_no_personal_data(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        row_csv(valid_row(1, account_id="SECRETACCOUNT1", description="private words")),
        row_csv(valid_row(2, account_id="SECRETACCOUNT2", description="more", amount="x")),
    ]
    pipe.run_file("in/a.csv", csv_bytes(*rows), FakeContext(aws_request_id="req-42"))
    out = capsys.readouterr().out
    assert "SECRETACCOUNT" not in out and "private words" not in out
    docs = [json.loads(line) for line in out.splitlines()]
    (log,) = [d for d in docs if d.get("message") == "file processed"]
    assert log["level"] == "INFO" and log["request_id"] == "req-42"
    assert (log["bucket"], log["key"], log["stored"], log["invalid"]) == (BUCKET, "in/a.csv", 1, 1)
    (emf,) = [d for d in docs if "_aws" in d]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == HANDLER_ENV["METRIC_NAMESPACE"]
    assert directive["Dimensions"] == [["Environment"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {
        "RecordsProcessed",
        "RecordsInvalid",
        "RecordsDuplicate",
        "RecordsRetried",
        "FilesFailed",
        "FileProcessingTime",
    }
    assert (emf["Environment"], emf["RecordsProcessed"], emf["RecordsInvalid"]) == ("test", 1, 1)
    for line in pipe.sqs.queues[DLQ_URL]:
        assert "SECRETACCOUNT" not in line and "more" not in line


def test_load_config(proc: Any) -> None:
    env = {
        "DYNAMODB_TABLE_NAME": "t",
        "SQS_QUEUE_URL": "q",
        "DLQ_URL": "d",
        "ENVIRONMENT": "prod",
        "METRIC_NAMESPACE": "Ns",
        "MAX_FILE_BYTES": "10",
        "TIME_SAFETY_MARGIN_MS": "0",
    }
    cfg = proc.load_config(env)
    assert (cfg.table_name, cfg.queue_url, cfg.dlq_url, cfg.environment) == ("t", "q", "d", "prod")
    assert (cfg.metric_namespace, cfg.max_file_bytes, cfg.time_safety_margin_ms) == ("Ns", 10, 0)
    for name in env:  # no default for any of them: lib/main.tf sets every one
        for broken in ({k: v for k, v in env.items() if k != name}, {**env, name: ""}):
            with pytest.raises(proc.ConfigError, match=f"{name} is missing or empty"):
                proc.load_config(broken)
    bad_values = [
        ("MAX_FILE_BYTES", "0"),
        ("MAX_FILE_BYTES", "256 MiB"),
        ("TIME_SAFETY_MARGIN_MS", "-1"),
        ("TIME_SAFETY_MARGIN_MS", "3e4"),
    ]
    for name, bad in bad_values:
        with pytest.raises(proc.ConfigError, match=f"{name} must be a whole number"):
            proc.load_config({**env, name: bad})


def test_config_is_read_once_at_init(proc: Any) -> None:
    assert proc.CONFIG == proc.load_config(HANDLER_ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        proc.CONFIG.max_file_bytes = 1


# --------------------------------------------------------------------------------------------
# The real entry point against moto (real boto3 request shapes)


def test_lambda_handler_with_moto(proc: Any, handler_env: None) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-central-1")
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        sqs = boto3.client("sqs", region_name="eu-central-1")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "transaction_id", "AttributeType": "S"},
                {"AttributeName": "timestamp", "AttributeType": "N"},
            ],
            KeySchema=[
                {"AttributeName": "transaction_id", "KeyType": "HASH"},
                {"AttributeName": "timestamp", "KeyType": "RANGE"},
            ],
        )
        main_url = sqs.create_queue(QueueName="sqs-transactions-test")["QueueUrl"]
        dlq_url = sqs.create_queue(QueueName="sqs-transactions-dlq-test")["QueueUrl"]
        import os

        os.environ["SQS_QUEUE_URL"] = main_url
        os.environ["DLQ_URL"] = dlq_url
        rows = [row_csv(valid_row(1)), row_csv(valid_row(2, amount="0"))]
        key = "in/moto file.csv"
        version = s3.put_object(Bucket=BUCKET, Key=key, Body=csv_bytes(*rows))["VersionId"]
        event = s3_event("in/moto+file.csv", version)
        first = proc.lambda_handler(event, FakeContext())["files"][0]
        assert (first["stored"], first["invalid"]) == (1, 1)
        conflict_rows = [row_csv(valid_row(1)), row_csv(valid_row(1, currency="USD"))]
        version2 = s3.put_object(Bucket=BUCKET, Key=key, Body=csv_bytes(*conflict_rows))[
            "VersionId"
        ]
        second = proc.lambda_handler(s3_event("in/moto+file.csv", version2), FakeContext())
        assert (second["files"][0]["duplicates"], second["files"][0]["invalid"]) == (1, 1)
        items = ddb.scan(TableName=TABLE)["Items"]
        assert len(items) == 1 and items[0]["amount"] == {"N": "10.5"}
        assert items[0]["source_version_id"] == {"S": version}
        received = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
        codes = sorted(json.loads(m["Body"])["error_code"] for m in received)
        assert codes == ["DUPLICATE_CONFLICT", "INVALID_VALUE"]
        missing = proc.lambda_handler(s3_event("in/none.csv"), FakeContext())
        assert missing["files"][0]["file_error"] == "OBJECT_NOT_FOUND"


def test_csv_memory_stays_flat(proc: Any) -> None:
    import tracemalloc

    line = row_csv(valid_row(1)).encode() + b"\n"
    rows_per_chunk = (64 << 10) // len(line)
    chunk = line * rows_per_chunk
    chunks = 16  # a 1 MiB file, produced lazily

    def stream() -> Any:
        yield HEADER.encode() + b"\n"
        for _ in range(chunks):
            yield chunk

    tracemalloc.start()
    try:
        count = 0
        for row in proc.csv_rows(stream()):
            proc.validate_record(row.values)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows_per_chunk * chunks
    assert peak < 256 << 10  # far below the 1 MiB read: rows are never all kept
