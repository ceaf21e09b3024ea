"""JSON arrays in ranges (contract/decisions.md P33 to P35) in the Python processor: the element
scanner's boundaries against an independent oracle (json's raw_decode), the ranges' rows
against the whole document's, and the documents that must not be split (the unsplit path
reports them exactly as before)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tests.unit.conftest import Pipeline, iter_chunks, valid_row
from tests.unit.test_processor_ranges import RangedPipeline, outcome, split_ends_as_unsplit

# Strings that a scanner must not take for structure: brackets, braces, commas, escaped quotes
# and backslashes, a backslash right before the closing quote, non-ASCII text.
TRICKY = ["a,b]", '}{"', "\\", '\\"],[', "\\\\", "ü€ 𝄞", "[[[", '"', ", ]", "}}"]


def tricky_document(form: str = "array", count: int = 60, ws: str = " ") -> bytes:
    """A document whose elements hold every TRICKY string, with varied white space between
    them, a nested array and object in each record, and some elements that are not objects."""
    elements = []
    for i in range(count):
        record: Any = {
            **valid_row(i),
            "description": TRICKY[i % len(TRICKY)],
            "merchant_id": f"m{i}" if i % 4 else None,
        }
        if i % 11 == 5:
            record = [TRICKY[i % len(TRICKY)], {"x": [1, 2]}]  # INVALID_FORMAT, not an object
        elif i % 13 == 7:
            record = "text, with ] inside"
        elif i % 17 == 3:
            record = 12.50
        elements.append(json.dumps(record, ensure_ascii=i % 2 == 0))
    separators = [",", f"{ws},", f",{ws}\n", f"\r\n,\t{ws}"]
    body = elements[0]
    for i, element in enumerate(elements[1:]):
        body += separators[i % len(separators)] + element
    array = f"[{ws}{body}\n]"
    text = array if form == "array" else f'{{ "transactions" :\n{array} }}\n'
    return text.encode("utf-8")


def oracle_starts(data: bytes) -> tuple[list[int], int]:
    """Every element's first byte and the closing bracket's offset, found by json's own
    decoder (raw_decode), independently of the scanner."""
    text = data.decode("utf-8")
    decoder = json.JSONDecoder()
    pos = text.index("[", text.index("transactions") if text.lstrip().startswith("{") else 0)
    pos += 1
    starts: list[int] = []
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            return starts, len(text[:pos].encode())
        starts.append(len(text[:pos].encode()))
        _, pos = decoder.raw_decode(text, pos)


def expected_bounds(starts: list[int], step: int) -> list[tuple[int, int]]:
    """P33 as written: for k = 1, 2, ..., the first element (never element 0) starting at or
    after k * step."""
    bounds: list[tuple[int, int]] = []
    k = 1
    while k * step <= starts[-1]:
        later = [(i, s) for i, s in enumerate(starts) if i > 0 and s >= k * step]
        if later and later[0] not in bounds:
            bounds.append(later[0])
        k += 1
    return bounds


def test_the_same_boundaries_as_the_rust_scanner(proc: Any) -> None:
    # The literal of the_same_boundaries_as_the_python_scanner in
    # crates/txn-core/src/json_ranges/tests.rs; the offsets are counted by hand: elements at 1,
    # 12, 18, 29, 42, 45, ']' at 54.
    doc = rb"""[{"a":"],"},"\"]",{"b":"\\"},[1,"[",{}],  7, {"c":"x"}]"""
    split = proc.json_range_bounds(iter_chunks(doc, 2), 12)
    assert (split.first_byte, split.end_byte) == (1, 54)
    assert split.bounds == [(1, 12), (3, 29), (4, 42)]
    assert proc.json_range_bounds(iter_chunks(doc, 2), 20).bounds == [(3, 29), (4, 42)]


def rows_of(proc: Any, rows: Any) -> list[tuple[int, str | None, Any]]:
    return [(r.line, r.error.code if r.error else None, r.values) for r in rows]


@pytest.mark.parametrize("form", ["array", "object"])
@pytest.mark.parametrize("chunk", [1, 3, 64, 1 << 20])
def test_boundaries_are_the_oracles_element_starts(proc: Any, form: str, chunk: int) -> None:
    data = tricky_document(form)
    starts, close = oracle_starts(data)
    for step in (1, 50, 137, 400, 1000, len(data) - 1):
        split = proc.json_range_bounds(iter_chunks(data, chunk), step)
        assert split is not None
        assert (split.first_byte, split.end_byte) == (starts[0], close)
        assert split.bounds == expected_bounds(starts, step), step


@pytest.mark.parametrize("form", ["array", "object"])
@pytest.mark.parametrize("step", [1, 90, 333, 2000])
def test_the_ranges_rows_are_the_whole_documents_rows(proc: Any, form: str, step: int) -> None:
    data = b"\xef\xbb\xbf" + tricky_document(form, ws="\t ")
    whole = rows_of(proc, proc.json_rows(proc.parse_json_document(data)))
    split = proc.json_range_bounds(iter_chunks(data, 5), step)
    ranges = proc.plan_ranges(split.bounds, split.end_byte, split.first_byte)
    assert ranges[0].line == 0 and ranges[0].start_byte == split.first_byte
    got = []
    for r in ranges:
        piece = iter_chunks(data[r.start_byte : r.end_byte], 3)
        got += rows_of(proc, proc.json_range_rows(piece, r.start_byte, r.line))
    assert got == whole
    assert {code for _, code, _ in whole} == {None, "INVALID_FORMAT"}


NOT_SPLIT = {
    "not JSON": b'[{"a": 1}, {"a": 2]',
    "trailing comma": b'[{"a": 1}, {"a": 2},]',
    "no comma": b'[{"a": 1} {"a": 2}]',
    "empty array": b"[ ]",
    "NaN": b'[{"a": 1}, NaN]',
    "Infinity in a record": b'[{"a": 1}, {"a": -Infinity}]',
    "lone surrogate": b'[{"a": 1}, {"a": "\\ud800"}]',
    "too deep": b'[{"a": 1}, ' + b"[" * 64 + b"]" * 64 + b"]",
    "too deep in the object form": b'{"transactions": [{"a": 1}, ' + b"[" * 63 + b"]" * 63 + b"]}",
    "not UTF-8": b'[{"a": 1}, {"a": "\xff"}]',
    "text after": b'[{"a": 1}, {"a": 2}] x',
    "unterminated string": b'[{"a": 1}, {"a": "2}]',
    "a second key": b'{"transactions": [{"a": 1}], "more": 1}',
    "an escaped key": b'{"transaction\\u0073": [{"a": 1}, {"a": 2}]}',
    "another key": b'{"records": [{"a": 1}, {"a": 2}]}',
    "a top-level string": b'"[1, 2]"',
    "white space only": b" \n ",
    "nothing": b"",
    "a partial BOM": b"\xef\xbb[1]",
}


@pytest.mark.parametrize("name", list(NOT_SPLIT))
def test_documents_that_are_not_the_simple_shape_are_not_split(proc: Any, name: str) -> None:
    assert proc.json_range_bounds(iter_chunks(NOT_SPLIT[name], 2), 1) is None


def test_the_deepest_documents_that_parse_are_split(proc: Any) -> None:
    # 64 levels in all: the top level counts (P14), the element is at level 2 (3 in the
    # object form), so these are the deepest documents the unsplit path accepts.
    deepest = b'[{"a": 1}, ' + b"[" * 63 + b"]" * 63 + b"]"
    assert not isinstance(proc.parse_json_document(deepest), proc.FileError)
    assert proc.json_range_bounds(iter_chunks(deepest, 3), 1) is not None
    in_object = b'{"transactions": [{"a": 1}, ' + b"[" * 62 + b"]" * 62 + b"]}"
    assert not isinstance(proc.parse_json_document(in_object), proc.FileError)
    assert proc.json_range_bounds(iter_chunks(in_object, 3), 1) is not None


def test_every_mutant_that_is_split_parses_whole_with_the_same_elements(proc: Any) -> None:
    """Random edits of a small document with the bytes that matter to the scanner: whatever is
    split parses whole (P33a: a file error is never split), with one range boundary per element
    at step 1 (bench/differential.py compares the same scan with the Rust one)."""
    rng = random.Random(12)
    base = tricky_document(count=6)
    alphabet = [
        b'"',
        b"\\",
        b",",
        b"[",
        b"]",
        b"{",
        b"}",
        b" ",
        b"\n",
        b"1",
        b"NaN",
        b"\\u",
        b"\xff",
    ]
    split_count = 0
    for _ in range(1500):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(data))
            if rng.random() < 0.6:
                data[pos:pos] = rng.choice(alphabet)
            else:
                del data[pos : pos + rng.randint(1, 3)]
        split = proc.json_range_bounds(iter_chunks(bytes(data), 7), 1)
        whole = proc.parse_json_document(bytes(data))
        if split is None:
            continue
        split_count += 1
        assert not isinstance(whole, proc.FileError), bytes(data)
        assert len(split.bounds) + 1 == len(whole)
    assert split_count > 100  # the mutants that stay valid JSON


def test_a_range_whose_bytes_changed_is_a_read_failure(proc: Any) -> None:
    with pytest.raises(OSError):
        list(proc.json_range_rows([b'{"a": 1}, {"a": 2'], 10, 3))
    with pytest.raises(OSError):
        list(proc.json_range_rows([b'{"a": 1} {"a": 2}'], 10, 3))
    assert [r.line for r in proc.json_range_rows([b' {"a": 1} ,\n{"a": 2}, '], 10, 3)] == [3, 4]


def test_an_escape_blind_scanner_would_fail_these_checks(proc: Any) -> None:
    """The checks above can fail: element starts found by a scanner that ignores backslash
    escapes (a '\\"' ends its string) are not the oracle's on the tricky document."""
    data = tricky_document()
    text = data.decode("utf-8")
    starts, depth, in_string = [], 0, False
    for i, c in enumerate(text):
        if in_string:
            in_string = c != '"'
        elif c == '"':
            in_string = True
            if depth == 1 and text[:i].rstrip()[-1] in "[,":
                starts.append(len(text[:i].encode()))
        elif c in "[{":
            if depth == 1 and text[:i].rstrip()[-1] in "[,":
                starts.append(len(text[:i].encode()))
            depth += 1
        elif c in "]}":
            depth -= 1
    assert starts != oracle_starts(data)[0]


@pytest.mark.parametrize("remaining_ms", [300_000, 0])
def test_a_split_json_file_ends_as_the_unsplit_file(proc: Any, remaining_ms: int) -> None:
    """Every range on the queue, processed side by side (resuming after every batch when the
    clock says so): the same items and the same record errors as one unsplit run."""
    data = tricky_document("object")
    messages, (stored, errors) = split_ends_as_unsplit(proc, "in/big.json", data, remaining_ms)
    assert messages[0]["start_byte"] > 0
    assert messages[-1]["end_byte"] == data.rindex(b"]")
    assert len(stored) > 30 and len(errors) > 5


def test_a_malformed_json_over_the_threshold_reports_as_unsplit(proc: Any) -> None:
    data = tricky_document()[:-3] + b",]"  # a trailing comma: MALFORMED_FILE
    whole = Pipeline(proc)
    whole.run_file("in/bad.json", data)
    ranged = RangedPipeline(proc)
    ranged.range_split_bytes = 100
    ranged.run_file("in/bad.json", data)
    assert ranged.main() == [] and ranged.transactions() == []
    assert [m["error_code"] for m in ranged.dlq()] == ["MALFORMED_FILE"]
    strip = ("failed_at", "processor")
    assert [{k: v for k, v in m.items() if k not in strip} for m in ranged.dlq()] == [
        {k: v for k, v in m.items() if k not in strip} for m in whole.dlq()
    ]


def test_a_json_file_without_a_boundary_is_one_range(proc: Any) -> None:
    """Over the threshold, but no element after the first starts at or after the step: one
    range "0", from element 0's first byte to the closing bracket (P33a, P34)."""
    data = tricky_document(count=5)
    ranged = RangedPipeline(proc)
    ranged.range_split_bytes = len(data) - 1
    ranged.run_file("in/one.json", data)
    (message,) = ranged.main()
    assert (message["range_line"], message["start_byte"], message["end_byte"]) == (
        0,
        data.index(b"{"),
        data.rindex(b"]"),
    )
    ranged.drain()
    whole = Pipeline(proc)
    whole.run_file("in/one.json", data)
    assert outcome(ranged) == outcome(whole) and len(outcome(whole)[0]) == 4  # 3: a number
