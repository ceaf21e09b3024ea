"""Large files in ranges (contract/decisions.md P33 to P35) in the Python processor: the range
boundaries that the splitter finds, and that the rows of the ranges together are exactly the
rows of the whole file, with the same source_line, whatever the quoting, line ends and errors."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

import pytest

from tests.unit.conftest import (
    HEADER,
    FakeContext,
    Pipeline,
    csv_bytes,
    iter_chunks,
    row_csv,
    valid_row,
)


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
    assert proc.range_step(cfg_split, "json", 5000) == 0  # JSON is not split (P33)
    assert proc.range_step(cfg_split, "csv", 5000) == 1000
    assert proc.range_step(cfg_split, "csv", 1_000_001) == 10_001  # 100 ranges at most
    assert proc.range_step(cfg, "csv", 10**9) == 0  # 0: never split


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


@pytest.mark.parametrize("remaining_ms", [300_000, 0])
def test_a_split_file_ends_as_the_unsplit_file(proc: Any, remaining_ms: int) -> None:
    """Every range on the queue, processed side by side (resuming after every batch when the
    clock says so): the same items and the same record errors as one unsplit run."""
    data = tricky_file("\r\n", bom=True)
    whole = Pipeline(proc, batch_rows=7)
    whole.run_file("in/big.csv", data)
    whole.drain()
    ranged = RangedPipeline(proc, batch_rows=7)
    ranged.range_split_bytes = 900
    result = ranged.run_file("in/big.csv", data)
    assert result["files"][0]["rows"] == 0 and ranged.transactions() == []
    messages = ranged.main()
    assert len(messages) > 3
    assert [m["range_line"] for m in messages][0] == 0
    assert all(m["start_line"] == m["range_line"] for m in messages)
    rounds = ranged.drain(lambda: FakeContext(remaining=lambda: remaining_ms))
    assert rounds == 1 if remaining_ms else rounds > 3
    assert outcome(ranged) == outcome(whole)
    assert len(outcome(whole)[0]) > 30 and len(outcome(whole)[1]) > 10
