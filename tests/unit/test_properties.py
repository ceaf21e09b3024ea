"""Property tests (hypothesis) of the two handlers against in-process fakes.

- Any bytes, as a CSV or a JSON file, never make the handler raise, and every row is accounted
  for: stored + duplicates + errors == data rows, or exactly one file error and nothing stored.
- Generated CSV files with a known number of rows (some with invalid UTF-8) report exactly one
  outcome per row, at the row's physical start line.
- Any valid record is stored unchanged (normalised as design.md section 2 says); amounts keep
  their exact decimal value.
- The DLQ processor stores any body.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import string
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.conftest import (
    ERRORS_TABLE,
    HANDLER_ENV,
    HEADER,
    FakeContext,
    FakeDynamoDB,
    Pipeline,
    iter_chunks,
    sqs_event,
)

FAST = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COLUMNS = HEADER.split(",")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An independent excerpt of ISO 4217 (not the module's table): code -> minor unit.
MINOR_UNITS = {"EUR": 2, "USD": 2, "JPY": 0, "KWD": 3, "BHD": 3, "CLF": 4, "ISK": 0, "XCG": 2}


def run_file(proc: Any, key: str, data: bytes) -> tuple[Pipeline, dict[str, Any]]:
    pipe = Pipeline(proc, batch_rows=7)
    result = pipe.run_file(key, data)
    (summary,) = result["files"]
    return pipe, summary


def assert_accounted(pipe: Pipeline, summary: dict[str, Any]) -> None:
    items = pipe.transactions()
    messages = pipe.dlq()
    assert pipe.main() == []
    if summary["file_error"]:
        assert items == [] and summary["stored"] == 0
        assert [m["kind"] for m in messages] == ["file_error"]
        assert messages[0]["error_code"] == summary["file_error"]
        return
    parts = summary["stored"] + summary["duplicates"] + summary["invalid"] + summary["retried"]
    assert summary["rows"] == parts and summary["rows"] > 0
    assert len(items) == summary["stored"]
    assert len(messages) == summary["invalid"]
    assert all(m["kind"] == "record_error" for m in messages)
    lines = [int(i["source_line"]) for i in items] + [m["source"]["line"] for m in messages]
    assert len(set(lines)) == len(lines)


# --------------------------------------------------------------------------------------------
# Arbitrary bytes


@FAST
@given(body=st.binary(max_size=3000), header=st.sampled_from(["", HEADER + "\n", HEADER + "\r\n"]))
def test_any_bytes_as_csv(proc: Any, body: bytes, header: str) -> None:
    pipe, summary = run_file(proc, "in/any.csv", header.encode() + body)
    assert_accounted(pipe, summary)


csv_alphabet = st.sampled_from(
    [*'ab,"\r\n \t', "tx-1", "EUR", "10.5", "DEBIT", "2024-03-01T10:00:00Z", "\xff", "\xc3", "é"]
)


@FAST
@given(pieces=st.lists(csv_alphabet, max_size=300))
def test_csv_like_bytes(proc: Any, pieces: list[str]) -> None:
    body = "".join(pieces).encode("utf-8").replace(b"\xc3\xbf", b"\xff")
    pipe, summary = run_file(proc, "in/any.csv", HEADER.encode() + b"\n" + body)
    assert_accounted(pipe, summary)


@FAST
@given(body=st.binary(max_size=3000))
def test_any_bytes_as_json(proc: Any, body: bytes) -> None:
    pipe, summary = run_file(proc, "in/any.json", body)
    assert_accounted(pipe, summary)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["10.5", "EUR", "DEBIT", "2024-03-01T10:00:00Z", "tx-1", "ACC1"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from([*COLUMNS, "x", ""]), children, max_size=9)
    ),
    max_leaves=30,
)


@FAST
@given(records=st.lists(json_values, max_size=12), wrapped=st.booleans())
def test_any_json_records(proc: Any, records: list[Any], wrapped: bool) -> None:
    document: Any = {"transactions": records} if wrapped else records
    pipe, summary = run_file(proc, "in/any.json", json.dumps(document).encode())
    assert_accounted(pipe, summary)
    if records:
        assert summary["file_error"] is None and summary["rows"] == len(records)


@FAST
@given(data=st.binary(max_size=2000), size=st.integers(min_value=1, max_value=64))
def test_csv_reading_does_not_depend_on_chunking(proc: Any, data: bytes, size: int) -> None:
    def read(chunk: int) -> Any:
        rows = proc.csv_rows(iter_chunks(HEADER.encode() + b"\n" + data, chunk))
        if isinstance(rows, proc.FileError):
            return rows
        return [(r.line, r.error, r.values) for r in rows]

    assert read(size) == read(1 << 20)


# --------------------------------------------------------------------------------------------
# Generated CSV with a known number of rows


cell_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
valid_cells = st.sampled_from(
    ["tx-1", "ACC1", "10.5", "eur", "debit", "2024-03-01T10:00:00Z", "", " m ", "a,b", 'q"q']
)


@FAST
@given(
    rows=st.lists(
        st.tuples(st.lists(valid_cells | cell_text, min_size=8, max_size=8), st.booleans()),
        min_size=1,
        max_size=25,
    ),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_every_generated_row_is_reported_once(
    proc: Any, rows: list[tuple[list[str], bool]], newline: str
) -> None:
    data = (HEADER + newline).encode()
    line = 2
    expected: dict[int, bool] = {}  # start line -> row has invalid UTF-8
    for cells, corrupt in rows:
        buffer = io.StringIO()
        # "\r\n" as terminator makes the writer quote every cell holding a CR or an LF.
        csv.writer(buffer, lineterminator="\r\n").writerow(cells)
        text = buffer.getvalue()[:-2] + newline
        encoded = text.encode("utf-8")
        if corrupt:
            encoded = encoded[: -len(newline)] + b"\xff" + newline.encode()
        expected[line] = corrupt
        line += text.count("\n")
        data += encoded
    pipe, summary = run_file(proc, "in/generated.csv", data)
    assert summary["file_error"] is None
    assert summary["rows"] == len(rows)
    assert_accounted(pipe, summary)
    reported: dict[int, str | None] = {int(i["source_line"]): None for i in pipe.transactions()}
    for message in pipe.dlq():
        reported[message["source"]["line"]] = message["error_code"]
    assert set(reported) <= set(expected)
    assert len(set(expected) - set(reported)) == summary["duplicates"]
    for start, corrupt in expected.items():
        if corrupt:
            assert reported[start] == "INVALID_ENCODING"


# --------------------------------------------------------------------------------------------
# Valid records survive storage unchanged


def trimmed(text: str) -> str:
    return text.strip(" \t\n\r\f")


padding = st.sampled_from(["", " ", "\t", "  "])
no_controls = st.characters(blacklist_categories=("Cs", "Cc"))


@st.composite
def amounts(draw: Any, minor: int) -> tuple[str, Decimal]:
    units = draw(st.integers(min_value=1, max_value=10**12 * 10**minor - 1))
    value = Decimal(units).scaleb(-minor)
    text = format(value, "f")
    if "." in text and draw(st.booleans()):
        text = text.rstrip("0").rstrip(".")
    text = "0" * draw(st.integers(0, 3)) + text
    if draw(st.booleans()):
        text += ("." if "." not in text else "") + "0" * draw(st.integers(1, 4))
    return text, value


@st.composite
def timestamps(draw: Any) -> tuple[str, int]:
    seconds = draw(st.integers(946684800, 4102444799))
    with_fraction = draw(st.booleans())
    digits = draw(st.text(alphabet=string.digits, min_size=1, max_size=9)) if with_fraction else ""
    offset = draw(st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59))
    local = EPOCH + timedelta(seconds=seconds, minutes=offset)
    sign = "+" if offset >= 0 else "-"
    zone = draw(st.sampled_from(["Z", "z", "offset"])) if offset == 0 else "offset"
    if zone == "offset":
        zone = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    separator = draw(st.sampled_from(["T", "t"]))
    text = local.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + (f".{digits}" if digits else "") + zone
    millis = seconds * 1000 + (int((digits + "000")[:3]) if digits else 0)
    return text, millis


@st.composite
def valid_records(draw: Any, index: int) -> tuple[dict[str, str], dict[str, Any]]:
    currency = draw(st.sampled_from(sorted(MINOR_UNITS)))
    amount_text, amount = draw(amounts(MINOR_UNITS[currency]))
    ts_text, millis = draw(timestamps())
    tx_type = draw(st.sampled_from(["DEBIT", "CREDIT", "TRANSFER", "PAYMENT", "REFUND"]))
    casing = draw(st.sampled_from([str.upper, str.lower, str.title]))
    ident = draw(st.text(string.ascii_letters + string.digits + "._:-", min_size=1, max_size=58))
    ident = f"{index:05d}{ident}"[:64]
    account = draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=34))
    merchant = draw(st.none() | st.text(alphabet=no_controls, max_size=64))
    description = draw(st.none() | st.text(alphabet=no_controls, max_size=256))
    pad = draw(padding)
    record = {
        "transaction_id": pad + ident + pad,
        "account_id": account,
        "amount": pad + amount_text,
        "currency": casing(currency) + pad,
        "transaction_type": casing(tx_type),
        "timestamp": ts_text,
    }
    if merchant is not None:
        record["merchant_id"] = merchant
    if description is not None:
        record["description"] = description
    expected: dict[str, Any] = {
        "transaction_id": ident,
        "account_id": account,
        "amount": amount,
        "currency": currency,
        "transaction_type": tx_type,
        "timestamp": millis,
    }
    if merchant is not None and trimmed(merchant):
        expected["merchant_id"] = trimmed(merchant)
    if description is not None and trimmed(description):
        expected["description"] = trimmed(description)
    return record, expected


def canonical(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def spec_hash(expected: dict[str, Any]) -> str:
    parts = [
        expected["transaction_id"],
        expected["account_id"],
        canonical(expected["amount"]),
        expected["currency"],
        expected["transaction_type"],
        str(expected["timestamp"]),
        expected.get("merchant_id", ""),
        expected.get("description", ""),
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def encode_file(
    records: list[dict[str, str]], fmt: str, number_amounts: bool, newline: str
) -> bytes:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=newline)
        writer.writerow(COLUMNS)
        for record in records:
            writer.writerow([record.get(name, "") for name in COLUMNS])
        return buffer.getvalue().encode("utf-8")
    docs = []
    for record in records:
        if number_amounts:
            number = record["amount"].strip().lstrip("0") or "0"
            number = "0" + number if number.startswith(".") else number
            text = json.dumps({**record, "amount": "@@AMOUNT@@"}, ensure_ascii=False)
            docs.append(text.replace('"@@AMOUNT@@"', number))
        else:
            docs.append(json.dumps(record, ensure_ascii=False))
    return ("[" + ",".join(docs) + "]").encode("utf-8")


@FAST
@given(
    data=st.data(),
    count=st.integers(min_value=1, max_value=12),
    fmt=st.sampled_from(["csv", "json"]),
    number_amounts=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_valid_records_survive_storage_unchanged(
    proc: Any, data: Any, count: int, fmt: str, number_amounts: bool, newline: str
) -> None:
    drawn = [data.draw(valid_records(i)) for i in range(count)]
    records = [r for r, _ in drawn]
    pipe, summary = run_file(
        proc, f"in/valid.{fmt}", encode_file(records, fmt, number_amounts, newline)
    )
    assert (summary["stored"], summary["invalid"], summary["file_error"]) == (count, 0, None)
    raw_items = {raw["transaction_id"]["S"]: raw for raw in pipe.ddb.raw_items()}
    items = {item["transaction_id"]: item for item in pipe.transactions()}
    for _, expected in drawn:
        item = items[expected["transaction_id"]]
        projected = {name: item[name] for name in expected if name in item}
        assert projected == expected
        assert set(item) - set(expected) == {
            "status",
            "status_shard",
            "source_bucket",
            "source_key",
            "source_version_id",
            "source_line",
            "ingested_at",
            "processor",
            "record_hash",
        }
        assert item["amount"] == expected["amount"]  # exact Decimal equality
        raw_amount = raw_items[expected["transaction_id"]]["amount"]["N"]
        assert raw_amount == canonical(expected["amount"])
        assert item["record_hash"] == spec_hash(expected)
        assert item["status"] == "PROCESSED"
        shard = item["status_shard"].removeprefix("PROCESSED#")
        shards = proc.CONFIG.status_index_shards  # the environment's, lib/provider.tf's default
        assert item["status_shard"].startswith("PROCESSED#") and 0 <= int(shard) < shards


@FAST
@given(
    integer=st.text(string.digits, min_size=1, max_size=14),
    fraction=st.none() | st.text(string.digits, min_size=1, max_size=30),
)
def test_amounts_keep_exact_decimal_values(proc: Any, integer: str, fraction: str | None) -> None:
    text = integer + (f".{fraction}" if fraction is not None else "")
    value = Decimal(text)
    result = proc.parse_amount(text)
    if value <= 0 or value >= Decimal(10) ** 12:
        assert result.code == "INVALID_VALUE"
        return
    assert Decimal(result.canonical) == value
    assert result.canonical == canonical(value)
    significant = (fraction or "").rstrip("0")
    assert result.fraction_digits == len(significant)
    for number in (False, True):
        token = proc.JsonNumber(text) if number else text
        record = {**_base_record(), "amount": token, "currency": "CLF"}
        outcome = proc.validate_record(record)
        if len(significant) <= 4:
            assert Decimal(outcome.amount) == value
        else:
            assert outcome.code == "PRECISION_EXCEEDED"


def _base_record() -> dict[str, str]:
    return {
        "transaction_id": "t1",
        "account_id": "A1",
        "transaction_type": "DEBIT",
        "timestamp": "2024-03-01T10:00:00Z",
    }


@FAST
@given(record=st.dictionaries(st.sampled_from([*COLUMNS, "other"]), json_values, max_size=9))
def test_validation_never_raises(proc: Any, record: dict[str, Any]) -> None:
    result = proc.validate_record(record)
    if isinstance(result, proc.RecordError):
        assert result.field is None or result.field in result.message
    else:
        proc.record_hash(result)


# --------------------------------------------------------------------------------------------
# The DLQ processor accepts any body


@FAST
@given(bodies=st.lists(st.text(max_size=200) | json_values.map(json.dumps), min_size=1, max_size=5))
def test_dlq_stores_any_body(dlq: Any, bodies: list[str]) -> None:
    ddb = FakeDynamoDB()
    cfg = dlq.load_config(HANDLER_ENV)
    response = dlq.handle_event(sqs_event(bodies), FakeContext(), ddb, cfg, now=1_800_000_000_000)
    assert response == {"batchItemFailures": []}
    rows = ddb.items(ERRORS_TABLE)
    assert len(rows) >= len(bodies)
    for body in bodies:
        digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
        try:
            json.loads(body)
        except ValueError:
            assert any(row["error_id"] == digest for row in rows)
    for row in rows:
        assert row["error_type"] in {"VALIDATION", "FILE", "PROCESSING", "UNKNOWN_FORMAT"}
        assert "transaction_id" not in row or row["transaction_id"]


message_keys = st.sampled_from(
    [
        "kind",
        "error_code",
        "error_message",
        "field",
        "transaction_id",
        "source",
        "record",
        "error",
        "failed_at",
        "bucket",
        "key",
        "version_id",
        "start_line",
        "line",
        "last_modified",
        "Records",
        "eventSource",
        "s3",
    ]
)
message_values = st.recursive(
    json_scalars | st.sampled_from(["record_error", "file_error", "retry_record", "resume_file"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(message_keys, children, max_size=6)
    ),
    max_leaves=25,
)
message_shapes = st.fixed_dictionaries(
    {"kind": st.sampled_from(["record_error", "file_error", "retry_record", "resume_file"])},
    optional={
        "error_code": message_values,
        "source": message_values,
        "record": message_values,
        "bucket": message_values,
        "key": message_values,
        "start_line": message_values,
        "transaction_id": message_values,
        "failed_at": message_values,
    },
) | st.dictionaries(message_keys, message_values, max_size=6)


@FAST
@given(bodies=st.lists(message_shapes.map(json.dumps), min_size=1, max_size=4))
def test_dlq_stores_any_message_like_body(dlq: Any, bodies: list[str]) -> None:
    ddb = FakeDynamoDB()
    cfg = dlq.load_config(HANDLER_ENV)
    response = dlq.handle_event(sqs_event(bodies), FakeContext(), ddb, cfg, now=1_800_000_000_000)
    assert response == {"batchItemFailures": []}
    assert len(ddb.items(ERRORS_TABLE)) >= len(set(bodies))


@FAST
@given(bodies=st.lists(message_shapes.map(json.dumps) | st.text(max_size=50), max_size=4))
def test_main_queue_accepts_any_body(proc: Any, bodies: list[str]) -> None:
    pipe = Pipeline(proc)
    response = pipe.invoke(sqs_event(bodies)) if bodies else {"batchItemFailures": []}
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    # Every message is either failed (to be redelivered), forwarded, or handled.
    assert failed <= {f"msg-{i}" for i in range(len(bodies))}
