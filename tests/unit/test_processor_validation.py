"""Unit tests of lib/processor_function.py: the validation of one record, rule by rule."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.conftest import (
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


def assert_kept_or_invalid_format(proc: Any, name: str, value: str, ok: bool) -> None:
    result = check(proc, **{name: value})
    if ok:
        assert getattr(result, name) == value
    else:
        assert_error(result, "INVALID_FORMAT", name)


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
    assert_kept_or_invalid_format(proc, "transaction_id", value, ok)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("A" * 34, True), ("A" * 35, False), ("DE89-3704", False), ("DE89 3704", False), ("x", True)],
)
def test_account_id_rule(proc: Any, value: str, ok: bool) -> None:
    assert_kept_or_invalid_format(proc, "account_id", value, ok)


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


ISO_CODES_OF_NO_CURRENCY = ["XAU", "XDR", "XXX", "XTS"]  # gold, SDR, no currency, testing
WITHDRAWN_CURRENCIES = ["HRK", "BGN", "ANG", "ZWL"]
NOT_CURRENCY_CODES = ["EURO", "EU", "\u0131dr", "€", "E U R"]


@pytest.mark.parametrize(
    "value", ISO_CODES_OF_NO_CURRENCY + WITHDRAWN_CURRENCIES + NOT_CURRENCY_CODES
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


# The error each rejected timestamp gets: INVALID_FORMAT, not the ISO 8601 form allowed or no
# real date and time; INVALID_VALUE, an instant before 2000-01-01T00:00:00Z or from 2100 on.
REJECTED_TIMESTAMPS = {
    "INVALID_FORMAT": [
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
    "INVALID_VALUE": [
        "1999-12-31T23:59:59.999Z",
        "2000-01-01T00:30:00+01:00",
        "2100-01-01T00:00:00Z",
        "2099-12-31T23:00:00-01:00",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
    ],
}


@pytest.mark.parametrize(
    ("value", "code"),
    [(value, code) for code, values in REJECTED_TIMESTAMPS.items() for value in values],
)
def test_timestamp_rejected(proc: Any, value: str, code: str) -> None:
    assert_error(check(proc, timestamp=value), code, "timestamp")


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
