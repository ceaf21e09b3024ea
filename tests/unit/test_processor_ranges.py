"""Large files in ranges (contract/decisions.md P33 to P35) in the Python processor: the range
boundaries that the splitter finds, and that the rows of the ranges together are exactly the
rows of the whole file, with the same source_line, whatever the quoting, line ends and errors."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from pipeline_local.scratch_stack import lib_table
from tests.unit.conftest import (
    HANDLER_ENV,
    HEADER,
    FakeContext,
    Pipeline,
    csv_bytes,
    iter_chunks,
    row_csv,
    s3_event,
    sqs_event,
    valid_row,
)

LIB = Path(__file__).resolve().parents[2] / "lib"


def row_tuples(proc: Any, rows: Any) -> list[tuple[int, str | None, dict[str, Any]]]:
    assert not isinstance(rows, proc.FileError), rows
    return [
        (row.line, row.error.code if row.error else None, dict(row.values or {})) for row in rows
    ]


def whole_rows(proc: Any, data: bytes) -> list[tuple[int, str | None, dict[str, Any]]]:
    return row_tuples(proc, proc.csv_rows(iter_chunks(data, 1 << 20)))


def split(proc: Any, data: bytes, step: int, chunk: int = 7) -> list[Any]:
    bounds = proc.csv_range_bounds(iter_chunks(data, chunk), step)
    assert not isinstance(bounds, proc.FileError), bounds
    return list(proc.plan_ranges(bounds, len(data)))


def ranged_rows(proc: Any, data: bytes, ranges: list[Any]) -> list[tuple[int, Any, Any]]:
    """The rows of every range, read as a range consumer reads them (P35), in range order."""
    rows: list[tuple[int, Any, Any]] = []
    for file_range in ranges:
        piece = iter_chunks(data[file_range.start_byte : file_range.end_byte], 5)
        if file_range.line == 0:
            rows += row_tuples(proc, proc.csv_rows(piece))
        else:
            header = iter_chunks(data[: ranges[1].start_byte], 3)
            rows += row_tuples(proc, proc.csv_range_rows(header, piece, file_range.line))
    return rows


def check_ranges(proc: Any, data: bytes, step: int) -> list[Any]:
    ranges = split(proc, data, step)
    assert ranges[0].line == 0 and ranges[0].start_byte == 0
    assert ranges[-1].end_byte == len(data)
    for before, after in itertools.pairwise(ranges):
        assert before.end_byte == after.start_byte and before.line < after.line
    assert ranged_rows(proc, data, ranges) == whole_rows(proc, data)
    return ranges


def tricky_file(newline: str = "\n", bom: bool = False) -> bytes:
    """Quoted line breaks (LF and CRLF) and commas, blank lines, doubled quotes, a quote inside
    an unquoted cell, rows the reader cannot read (P10), a bare CR, invalid UTF-8."""
    rows = []
    for index in range(1, 61):
        kind = index % 10
        if kind == 1:
            rows.append(row_csv(valid_row(index, description='one\ntwo\r\nthree, "four"')))
        elif kind == 2:
            rows.append("")  # a blank line
            rows.append(row_csv(valid_row(index)))
        elif kind == 3:
            rows.append(row_csv(valid_row(index, merchant_id='a"b')))  # literal quote
        elif kind == 4:
            rows.append(f'x{index},A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,"m"x,d')  # P10
        elif kind == 5:
            rows.append(row_csv(valid_row(index, description="\n\n\n")))
        elif kind == 6:
            rows.append(f"y{index},A1,1,EUR,DEBIT,2024-03-01T10:00:00Z,m\rm,d")  # bare CR
        else:
            rows.append(row_csv(valid_row(index)))
    data = csv_bytes(*rows, newline=newline)
    data = data.replace(b"tx-00007", b"tx-\xff0007")  # a row that is not UTF-8
    return (b"\xef\xbb\xbf" if bom else b"") + data


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_ranges_hold_the_rows_of_the_file_exactly(proc: Any, newline: str, bom: bool) -> None:
    data = tricky_file(newline, bom)
    assert len({code for _, code, _ in whole_rows(proc, data)}) == 3  # valid, MALFORMED, ENCODING
    counts = set()
    for step in (1, 2, 3, 5, 17, 64, 100, 333, 1000, len(data) // 2, len(data)):
        counts.add(len(check_ranges(proc, data, step)))
    assert max(counts) > 50 and 1 in counts  # from a range per row to one range


def test_a_boundary_is_never_inside_a_quoted_cell(proc: Any) -> None:
    # The quoted cell's inner line starts exactly at the step: the boundary moves past it.
    head = csv_bytes(row_csv(valid_row(1)))
    quoted = row_csv(valid_row(2, description="inner\n" + "tx-00009,looks,like,a,row"))
    data = head + (quoted + "\n" + row_csv(valid_row(3)) + "\n").encode()
    inner = data.index(b"tx-00009,looks")
    ranges = check_ranges(proc, data, inner)
    assert [r.start_byte for r in ranges[1:]] == [data.index(b"tx-00003")]
    assert ranges[1].line == 5  # header 1, row 1 on 2, row 2 on 3-4, row 3 on 5


def test_a_quote_inside_an_unquoted_cell_does_not_open_a_quote(proc: Any) -> None:
    # A quote-parity scanner would see a quoted cell from 'a"b' to the next quote and put the
    # boundary in the wrong place; the reader keeps it literal (P10), and so does the split.
    rows = [row_csv(valid_row(i, merchant_id='a"b' if i == 2 else "m")) for i in range(1, 9)]
    check_ranges(proc, csv_bytes(*rows), 40)


def test_an_overlong_line_keeps_the_offsets(proc: Any) -> None:
    big = row_csv(valid_row(2, description="x" * (proc.MAX_ROW_BYTES + 10)))
    data = csv_bytes(row_csv(valid_row(1)), big, row_csv(valid_row(3)), row_csv(valid_row(4)))
    ranges = check_ranges(proc, data, 1000)  # the overlong row starts before byte 1000
    assert [(r.line, r.start_byte) for r in ranges] == [(0, 0), (4, data.index(b"tx-00003"))]


def test_the_splitter_reports_the_file_errors_of_the_unsplit_reader(proc: Any) -> None:
    for data in (b"", b"\n\n", HEADER.encode() + b"\n", b"nope,columns\n1,2\n"):
        expected = proc.csv_rows(iter_chunks(data, 4))
        if not isinstance(expected, proc.FileError):  # a header and no row: the caller's EMPTY_FILE
            assert list(expected) == []
            expected = proc.FileError(proc.EMPTY_FILE, "file: no rows")
        assert proc.csv_range_bounds(iter_chunks(data, 4), 1) == expected


def reader_bounds(proc: Any, data: bytes, step: int) -> Any:
    """The boundaries as the row reader alone finds them, without the quote-free scan."""
    feed = proc._LineFeed(iter_chunks(data, 1 << 20))
    opened = proc._csv_header(feed)
    if isinstance(opened, proc.FileError):
        return opened
    return proc._reader_bounds(opened[0], feed, step, step, 0, [])


# Mostly quote-free lines, so that the scan runs over several lines before a quote or a bare CR
# hands the rest to the reader; blank lines, CRLF, invalid UTF-8.
scan_pieces = st.lists(
    st.sampled_from(
        ["tx-1,", "ACC,", "10.5,", "EUR", "\n", "\n", "\n", "\r\n", "\n\n", " ", "\xff"] * 4
        + ['"', '""', '"a\nb"', "\r", "x" * 40]
    ),
    max_size=200,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=scan_pieces,
    head=st.sampled_from([HEADER + "\n", HEADER + "\r\n", "\ufeff" + HEADER + "\n", '"a\nb"\n']),
    step=st.integers(min_value=1, max_value=120),
    chunk=st.integers(min_value=1, max_value=64),
    row_limit=st.sampled_from([None, 30]),
)
def test_the_quote_free_scan_finds_the_reader_s_boundaries(
    proc: Any, pieces: list[str], head: str, step: int, chunk: int, row_limit: int | None
) -> None:
    data = (head + "".join(pieces)).encode("utf-8").replace(b"\xc3\xbf", b"\xff")
    with pytest.MonkeyPatch.context() as patch:
        if row_limit is not None:  # lines longer than a row may be: the reader's to report
            patch.setattr(proc, "MAX_ROW_BYTES", row_limit)
        assert proc.csv_range_bounds(iter_chunks(data, chunk), step) == reader_bounds(
            proc, data, step
        )


def test_the_quote_free_scan_reads_a_large_plain_file_by_bytes_searches(proc: Any) -> None:
    """A quote-free file is split without the row reader: about 100 rows' reads, not 20,000."""
    rows = [row_csv(valid_row(n)) for n in range(1, 20_001)]
    data = csv_bytes(*rows)
    reads = 0
    real = proc._next_csv_row

    def counted(reader: Any, feed: Any) -> Any:
        nonlocal reads
        reads += 1
        return real(reader, feed)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(proc, "_next_csv_row", counted)
        bounds = proc.csv_range_bounds(iter_chunks(data, 1 << 16), 20_000)
    assert reads == 1  # the header
    assert bounds == reader_bounds(proc, data, 20_000) and len(bounds) > 50


def test_range_messages_round_trip_and_bad_ones_are_not_ours(proc: Any) -> None:
    source = proc.SourceInfo("b", "k.csv", "v1", None)
    file_range = proc.FileRange(41, 1000, 2000)
    body = proc.encode_message(proc.range_message(source, file_range, 57))
    work = proc.parse_queue_message("m1", body)
    assert work.targets == ((proc.ObjectRef("b", "k.csv", "v1", file_range=file_range), 57),)
    for broken in ({"end_byte": None}, {"start_byte": 2000}, {"range_line": -1}):
        doc = {**json.loads(body), **broken}
        assert proc.parse_queue_message("m1", json.dumps(doc)) is None
    partial = {k: v for k, v in json.loads(body).items() if k != "end_byte"}
    assert proc.parse_queue_message("m1", json.dumps(partial)) is None


def test_range_step_grows_to_at_most_max_ranges(proc: Any) -> None:
    cfg = Pipeline(proc).cfg
    cfg_split = type(cfg)(**{**cfg.__dict__, "range_split_bytes": 1000})
    assert proc.range_step(cfg_split, "csv", 1000) == 0  # not above the threshold
    assert proc.range_step(cfg_split, "json", 5000) == 1000  # JSON arrays are split too
    assert proc.range_step(cfg_split, "csv", 5000) == 1000
    assert proc.range_step(cfg_split, "csv", 1_000_001) == 10_001  # 100 ranges at most
    cfg_never = type(cfg)(**{**cfg.__dict__, "range_split_bytes": 0})
    assert proc.range_step(cfg_never, "csv", 10**9) == 0  # 0: never split
    # lib/'s default: 1 MiB, the smallest Terraform allows.
    assert proc.range_step(cfg, "csv", 2**20 + 1) == 2**20


def test_a_quote_blind_splitter_would_fail_these_checks(proc: Any) -> None:
    """The checks above can fail: ranges cut after the first LF past each step (a scanner that
    ignores quoting) give other rows than the whole file, on the same test file."""
    data = tricky_file()
    naive = []
    for step in range(64, len(data), 64):
        cut = data.index(b"\n", step) + 1
        if cut < len(data) and (not naive or cut > naive[-1][1]):
            naive.append((data.count(b"\n", 0, cut) + 1, cut))
    ranges = list(proc.plan_ranges(naive, len(data)))
    try:
        got = ranged_rows(proc, data, ranges)
    except AssertionError:  # a range began inside the header's or a cell's quotes
        return
    assert got != whole_rows(proc, data)


class RangedPipeline(Pipeline):
    """The processor on the fakes with RANGE_SPLIT_BYTES set."""

    range_split_bytes: int = 0

    @property
    def cfg(self) -> Any:
        return dataclasses.replace(super().cfg, range_split_bytes=self.range_split_bytes)


def outcome(pipe: Pipeline) -> tuple[list[Any], list[Any]]:
    """What a file left behind: stored (transaction_id, source_line), record errors by line."""
    stored = sorted((i["transaction_id"], int(i["source_line"])) for i in pipe.transactions())
    errors = sorted(
        (m["source"]["line"], m["error_code"]) for m in pipe.dlq() if m["kind"] == "record_error"
    )
    return stored, errors


def split_ends_as_unsplit(
    proc: Any, key: str, data: bytes, remaining_ms: int
) -> tuple[list[dict[str, Any]], tuple[list[Any], list[Any]]]:
    """Run `data` once unsplit and once split in 900-byte ranges, every range on the queue
    processed side by side (resuming after every batch when `remaining_ms` is 0); assert both
    leave the same items and record errors. Returns the range messages and that outcome."""
    whole = Pipeline(proc, batch_rows=7)
    whole.run_file(key, data)
    whole.drain()
    ranged = RangedPipeline(proc, batch_rows=7)
    ranged.range_split_bytes = 900
    result = ranged.run_file(key, data)
    assert result["files"][0]["rows"] == 0 and ranged.transactions() == []
    messages = ranged.main()
    assert len(messages) > 3
    assert messages[0]["range_line"] == 0
    assert all(m["start_line"] == m["range_line"] for m in messages)
    rounds = ranged.drain(lambda: FakeContext(remaining=lambda: remaining_ms))
    assert rounds == 1 if remaining_ms else rounds > 3
    assert outcome(ranged) == outcome(whole)
    return messages, outcome(whole)


@pytest.mark.parametrize("remaining_ms", [300_000, 0])
def test_a_split_file_ends_as_the_unsplit_file(proc: Any, remaining_ms: int) -> None:
    """Every range on the queue, processed side by side (resuming after every batch when the
    clock says so): the same items and the same record errors as one unsplit run."""
    _, (stored, errors) = split_ends_as_unsplit(
        proc, "in/big.csv", tricky_file("\r\n", bom=True), remaining_ms
    )
    assert len(stored) > 30 and len(errors) > 10


# --------------------------------------------------------------------------------------------
# The file status of a split file (P34, P35) against moto's in-process S3, DynamoDB and SQS.


@pytest.fixture()
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any, Any]]:
    for name in list(os.environ):  # an emulator's endpoint (set by other suites) bypasses moto
        if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE":
            monkeypatch.delenv(name)
    for name, value in HANDLER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(LIB))
    with mock_aws():
        import processor_function as proc

        region = "eu-central-1"
        s3 = boto3.client("s3", region_name=region)
        ddb = boto3.client("dynamodb", region_name=region)
        sqs = boto3.client("sqs", region_name=region)
        s3.create_bucket(
            Bucket="bucket-ranges", CreateBucketConfiguration={"LocationConstraint": region}
        )
        s3.put_bucket_versioning(
            Bucket="bucket-ranges", VersioningConfiguration={"Status": "Enabled"}
        )
        lib_table("file_status").create(ddb, "status")
        lib_table("transactions").create(ddb, "transactions")
        cfg = dataclasses.replace(
            proc.load_config(HANDLER_ENV),
            table_name="transactions",
            queue_url=sqs.create_queue(QueueName="main")["QueueUrl"],
            dlq_url=sqs.create_queue(QueueName="dlq")["QueueUrl"],
            file_status_table="status",
            batch_rows=5,
            range_split_bytes=700,
        )
        yield proc, proc.Aws(s3=s3, dynamodb=ddb, sqs=sqs), cfg
    sys.modules.pop("processor_function", None)


def receive_all(aws: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(message["Body"])
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def status_item(aws: Any, version: str) -> dict[str, Any]:
    key = {"source_key": {"S": "in/big.csv"}, "source_version_id": {"S": version}}
    return dict(aws.dynamodb.get_item(TableName="status", Key=key)["Item"])


def test_a_split_is_recorded_once_and_its_ranges_count_every_row_once(moto_env: Any) -> None:
    proc, aws, cfg = moto_env
    data = tricky_file()
    version = aws.s3.put_object(Bucket="bucket-ranges", Key="in/big.csv", Body=data)["VersionId"]
    event = s3_event("in/big.csv", version, bucket="bucket-ranges")
    proc.handle_event(event, FakeContext(), aws, cfg)
    first = receive_all(aws, cfg.queue_url)
    split = status_item(aws, version)
    ids = sorted(int(line) for line in split["cursors"]["M"])
    assert ids == [json.loads(body)["range_line"] for body in first]
    assert int(split["ranges_open"]["N"]) == len(first) > 3
    assert all(int(v["N"]) == int(k) for k, v in split["cursors"]["M"].items())
    # The event delivered again: the same split, the same messages, nothing changed.
    proc.handle_event(event, FakeContext(), aws, cfg)
    assert receive_all(aws, cfg.queue_url) == first
    assert status_item(aws, version)["cursors"] == split["cursors"]
    # A range whose invocation was killed after its writes, before its first count: the
    # re-run stores nothing twice and counts each row once (P29).
    killed = proc.parse_queue_message("m", first[1])
    original = proc.status_batch
    proc.status_batch = lambda *args, **kwargs: (_ for _ in ()).throw(SystemExit("killed"))
    try:
        with pytest.raises(SystemExit):
            proc.process_object(aws, cfg, *killed.targets[0], proc.Invocation("r", None, 0))
    finally:
        proc.status_batch = original
    proc.handle_event(sqs_event(first[1:] + first[:1]), FakeContext(), aws, cfg)
    assert receive_all(aws, cfg.queue_url) == []
    done = status_item(aws, version)
    rows = whole_rows(proc, data)
    errors = {code: sum(1 for _, c, _ in rows if c == code) for _, code, _ in rows if code}
    stored = int(done["stored"]["N"]) + int(done["duplicates"]["N"])
    assert done["state"] == {"S": "done"} and int(done["ranges_open"]["N"]) == 0
    assert int(done["rows_seen"]["N"]) == len(rows)
    assert stored + sum(int(v["N"]) for v in done["record_errors"]["M"].values()) == len(rows)
    assert {k: int(v["N"]) for k, v in done["record_errors"]["M"].items()}.keys() >= errors.keys()
    items = aws.dynamodb.scan(TableName="transactions")["Items"]
    assert len(items) == stored and int(done["duplicates"]["N"]) > 0  # the killed range's rows
