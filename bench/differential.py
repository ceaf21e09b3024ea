"""Differential test: txn-core (Rust) against the Python handlers on the same inputs.

Files (lib/processor_function.py): for every input file both sides report each row's outcome
(error code, field, message, transaction_id label, masked record; or the validated fields and
record_hash) or the file error, and for a JSON file the boundaries its split would take at step
1 (every element's first byte, P33a) or that it is not split; the reports must be identical.
Inputs: every conformance case's input plus mutated copies of them (random edits with the
characters that matter to CSV, JSON, numbers, dates and encodings).

DLQ messages (lib/dlq_processor_function.py): for SQS records whose bodies are the processor's
messages (built by the Python module), mutated (keys dropped, values of other JSON types,
numbers of every form, odd strings) or arbitrary text, both sides produce the errors-table
items (every attribute); they must be identical.

    .venv/bin/python bench/differential.py [--mutants 400] [--messages 2000] [--seed 1]

Needs the examples: `cargo build --release -p txn-core --examples` (in $CARGO_TARGET_DIR, else
target/). Exit status 0 when everything agrees, 1 on any difference (the first five of each kind
are printed), 2 without the examples. `make differential` (part of `make test`) runs it at the
size CI affords.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from pipeline_local.function_config import environment_names, tunable_defaults  # noqa: E402
from pipeline_local.invokers import load_handler_module  # noqa: E402

CASES = REPO / "tests" / "conformance" / "cases"
EXAMPLES = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "examples"
DUMP = EXAMPLES / "txn_dump"
DLQ_DUMP = EXAMPLES / "dlq_dump"
NOW_MS = 1_700_000_000_000
EXPIRES_AT = 1_731_536_000
# Inputs per dump process: large runs (`make test`'s) stay within a few hundred MB.
FILE_BATCH = 2000
# Mutants draw their source with a weight of 1 up to this many lines and inversely to the
# length beyond it: the four resume and range cases (1,100 to 2,700 lines) drawn as often as the
# others gave 4/5 of the rows compared while being 4 of 74 sources, mostly unmutated rows.
EVEN_DRAW_LINES = 100
MESSAGE_BATCH = 20000

INTERESTING = [
    b",",
    b'"',
    b'""',
    b"\n",
    b"\r",
    b"\r\n",
    b" ",
    b"\t",
    b"\x0c",
    b"\x0b",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xe9",
    b"\xc3\xa9",
    b"\xe2\x82",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"e",
    b"E",
    b".",
    b"-",
    b"+",
    b"0",
    b"9",
    b"T",
    b"t",
    b"Z",
    b"z",
    b":",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\\",
    b"\\u00e9",
    b"\\ud800",
    b"null",
    b"true",
    b"NaN",
    b"1e3",
    b"x" * 70,
    b"\x85",
    b"\xc2\xa0",
    b"\x1f",
]


def load_module(name: str, file: str) -> Any:
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    # The handlers read their whole environment at import; only their pure functions run here,
    # so the wiring is a placeholder and the tunables are lib/'s defaults.
    function = file.removesuffix("_function.py")
    for variable in environment_names(function):
        os.environ.setdefault(variable, "differential")
    os.environ.update(tunable_defaults(function))
    return load_handler_module(REPO / "lib" / file, name=name)


ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    7,
    1.5,
    -0.0,
    10**30,
    "",
    " ",
    "x",
    "\u00e9\u20ac",
    "\x00\x1f",
    [],
    [1, "a"],
    {},
    {"a": None},
    "1700000000000",
    "-5",
    1e300,
    "  T-1  ",
    "T 1",
    "****1234",
    # Whitespace the trimming must treat alike: stripped (\f \r \n \t) and kept (\v, NBSP, NEL).
    "\f T-1\r\n",
    "\x0bT-1",
    "\u00a0T-1\x85",
    "\tDE1234567\f",
]


def message_bodies(pf: Any, rng: random.Random, count: int) -> list[str]:
    """The processor's message kinds with random data, mutated, plus arbitrary text."""
    source = pf.SourceInfo("b", "in/k \u00fc.csv", "v1", 1_699_999_999_000)
    tx = pf.Transaction("T-1", "DE89370400440532013000", "10.5", "EUR", "DEBIT", 1704067200000)
    error = pf.RecordError("INVALID_VALUE", "amount", "amount: must be greater than 0")
    values = {"transaction_id": " T-1 ", "account_id": "DE1234567", "amount": "0", "x": [1]}
    bases = [
        pf.record_error_message(error, source, 3, values, 1_700_000_000_500),
        pf.file_error_message(pf.FileError("EMPTY_FILE", "file: no rows"), source, 5),
        pf.retry_record_message(tx, source, 4, "ThrottlingException", "slow", 6),
        pf.resume_file_message("b", "in/k.csv", "v1", 1001),
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "s3": {"bucket": {"name": "b"}, "object": {"key": "in/a+b%2B.csv"}},
                }
            ]
        },
    ]
    bodies: list[str] = []
    for _ in range(count):
        choice = rng.random()
        if choice < 0.08:
            bodies.append(rng.choice(["not json", "", "[1, 2]", "null", "NaN", '"s"', "{}"]))
            continue
        doc = json.loads(json.dumps(rng.choice(bases)))
        for _ in range(rng.randint(0, 3)):
            target = doc
            path = [doc]
            while isinstance(target, dict) and target and rng.random() < 0.5:
                key = rng.choice(list(target))
                if isinstance(target[key], dict):
                    target = target[key]
                    path.append(target)
                else:
                    break
            target = rng.choice(path)
            if not isinstance(target, dict) or not target:
                continue
            key = rng.choice(list(target))
            if rng.random() < 0.3:
                del target[key]
            else:
                # A copy: the shared value must neither change nor end up inside itself.
                target[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        bodies.append(json.dumps(doc, ensure_ascii=rng.random() < 0.5))
    return bodies


def sqs_records(bodies: list[str], rng: random.Random) -> list[dict[str, Any]]:
    records = []
    for i, body in enumerate(bodies):
        attributes: dict[str, Any] = {
            "ApproximateReceiveCount": rng.choice(["1", "3", "007", 4, " 2 ", "x", "-1", True]),
            "SentTimestamp": rng.choice(["1700000001234", "1_700_000_001_234", "", "-5", 1.5]),
        }
        if rng.random() < 0.1:
            attributes.pop("SentTimestamp")
        record: dict[str, Any] = {"messageId": f"m-{i}", "body": body, "attributes": attributes}
        if rng.random() < 0.05:  # what SQS never sends (Q1): other JSON types
            record["messageId"] = copy.deepcopy(rng.choice(ODD_VALUES))
            record["body"] = copy.deepcopy(rng.choice(ODD_VALUES))
        records.append(record)
    return records


def json_lines(text: str) -> list[str]:
    """The dump's JSON lines. Not str.splitlines: that also splits at U+0085, U+2028 and other
    characters a JSON string may hold unescaped."""
    return [line for line in text.split("\n") if line]


def compare_dlq(dlq: Any, count: int, seed: int) -> tuple[int, int]:
    """Compare `count` generated SQS records in batches (one dlq_dump process per batch)."""
    rng = random.Random(seed)
    pf = sys.modules["pf"]
    failures = 0
    for start in range(0, count, MESSAGE_BATCH):
        records = sqs_records(message_bodies(pf, rng, min(MESSAGE_BATCH, count - start)), rng)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "records.json"
            path.write_text(json.dumps(records))
            proc = subprocess.run(
                [str(DLQ_DUMP), str(path)], check=True, capture_output=True, text=True
            )
        got = [json.loads(line) for line in json_lines(proc.stdout)]
        for record, rust_items in zip(records, got, strict=True):
            message = dlq.sqs_message(record)
            rows = dlq.interpret_message(message, NOW_MS)
            want = [dlq.to_item(row, message, EXPIRES_AT) for row in rows]
            if json.loads(json.dumps(want)) != rust_items:
                failures += 1
                if failures <= 5:
                    print(f"DLQ MISMATCH body={str(record['body'])[:200]!r}")
                    print(f"  python: {json.dumps(want)[:600]}")
                    print(f"  rust:   {json.dumps(rust_items)[:600]}")
    return count, failures


def load_processor() -> Any:
    return load_module("pf", "processor_function.py")


def python_report(pf: Any, path: Path) -> list[Any]:
    out: list[Any] = [{"file": str(path)}]
    kind = pf.file_format(str(path))
    if kind is None:
        return [*out, {"unsupported": str(path)}]
    if kind == "csv":
        data = path.read_bytes()
        size = pf.READ_CHUNK_BYTES
        chunks = (data[i : i + size] for i in range(0, len(data), size))
        rows = pf.csv_rows(chunks)
    else:
        data = path.read_bytes()
        records = pf.parse_json_document(data)
        rows = records if isinstance(records, pf.FileError) else pf.json_rows(records)
        # The JSON split's scan (P33a) at step 1: every element after the first is a boundary,
        # so both sides must find every element's first byte, or both refuse to split.
        split = pf.json_range_bounds([data], 1)
        out.append(
            {"split": None if split is None else [split.first_byte, split.end_byte, split.bounds]}
        )
        if split is not None and isinstance(records, pf.FileError):
            out.append({"violation": "split, yet the whole document is a file error"})
    if isinstance(rows, pf.FileError):
        return [*out, {"file_error": rows.code, "message": rows.message}]
    for row in rows:
        result = row.error or pf.validate_record(row.values or {})
        masked = pf.masked_record(row.values)
        record = [list(kv) for kv in masked.items()] if masked is not None else None
        if isinstance(result, pf.RecordError):
            out.append(
                {
                    "line": row.line,
                    "code": result.code,
                    "field": result.field,
                    "message": result.message,
                    "txid": pf.candidate_transaction_id(row.values),
                    "record": record,
                }
            )
        else:
            out.append(
                {
                    "line": row.line,
                    "tx": [
                        *result.canonical_fields()[:5],
                        result.timestamp,
                        result.merchant_id,
                        result.description,
                    ],
                    "hash": pf.record_hash(result),
                    "record": record,
                }
            )
    return out


def rust_report(paths: list[Path]) -> dict[str, list[Any]]:
    proc = subprocess.run([str(DUMP), *map(str, paths)], check=True, capture_output=True, text=True)
    reports: dict[str, list[Any]] = {}
    current: list[Any] = []
    for line in json_lines(proc.stdout):
        doc = json.loads(line)
        if "file" in doc and len(doc) == 1:
            current = [doc]
            reports[doc["file"]] = current
        else:
            current.append(doc)
    return reports


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        pos = rng.randint(0, len(buf)) if buf else 0
        if op < 0.5:
            buf[pos:pos] = rng.choice(INTERESTING)
        elif op < 0.75 and buf:
            del buf[pos : pos + rng.randint(1, 4)]
        elif op < 0.85 and buf:
            buf = buf[: rng.randint(0, len(buf))]
        elif buf:
            end = buf.find(b"\n", pos)
            start = buf.rfind(b"\n", 0, pos) + 1
            if end > start:
                buf[end + 1 : end + 1] = buf[start : end + 1]
    return bytes(buf)


def compare_files(pf: Any, paths: list[Path], shown: int) -> tuple[int, int]:
    """(files that differ, rows compared) for `paths`, one txn_dump process for all of them;
    prints the differences while fewer than five (`shown`, from earlier batches) were."""
    rust = rust_report(paths)
    failures = 0
    rows = 0
    for path in paths:
        want = python_report(pf, path)
        got = rust.get(str(path))
        rows += len(want) - 1
        if json.loads(json.dumps(want)) != got:
            failures += 1
            if shown + failures <= 5:
                print(f"MISMATCH {path.name}")
                for w, g in zip(want, got or [], strict=False):
                    if json.loads(json.dumps(w)) != g:
                        print(f"  python: {json.dumps(w, ensure_ascii=False)[:400]}")
                        print(f"  rust:   {json.dumps(g, ensure_ascii=False)[:400]}")
                        break
                else:
                    print(f"  lengths differ: python {len(want)} rust {len(got or [])}")
    return failures, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=400)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not DUMP.exists() or not DLQ_DUMP.exists():
        print("missing examples: cargo build --release -p txn-core --examples")
        return 2
    started = time.monotonic()
    pf = load_processor()
    dlq = load_module("dlqf", "dlq_processor_function.py")
    messages, dlq_failures = compare_dlq(dlq, args.messages, args.seed)
    print(
        f"dlq: {messages - dlq_failures} passed, {dlq_failures} failed "
        f"({time.monotonic() - started:.1f} s)"
    )
    rng = random.Random(args.seed)
    sources = sorted(p for p in CASES.glob("*/input.*"))
    source_bytes = {p: p.read_bytes() for p in sources}
    weights = [min(1.0, EVEN_DRAW_LINES / max(1, source_bytes[p].count(b"\n"))) for p in sources]
    failures = 0
    rows = 0
    files = 0
    # The cases' own inputs first, then the mutants, in batches so that neither the temporary
    # files nor the reports of a large run are held at once.
    for start in range(-1, args.mutants, FILE_BATCH):
        with tempfile.TemporaryDirectory() as tmp:
            paths: list[Path] = []
            if start < 0:
                for src in sources:
                    dst = Path(tmp) / f"{src.parent.name}{src.suffix}"
                    dst.write_bytes(source_bytes[src])
                    paths.append(dst)
            for i in range(max(start, 0), min(start + FILE_BATCH, args.mutants)):
                src = rng.choices(sources, weights)[0]
                dst = Path(tmp) / f"mutant-{i:06d}-{src.parent.name}{src.suffix}"
                dst.write_bytes(mutate(source_bytes[src], rng))
                paths.append(dst)
            batch_failures, batch_rows = compare_files(pf, paths, failures)
        failures += batch_failures
        rows += batch_rows
        files += len(paths)
    print(
        f"files: {files - failures} passed, {failures} failed ({rows} rows compared; "
        f"{time.monotonic() - started:.1f} s in all, seed {args.seed})"
    )
    return 1 if failures or dlq_failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
