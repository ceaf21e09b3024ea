"""Build the deterministic sample set, with the outcome of every row known in advance.

`generate(seed)` builds a `SampleSet`: a few thousand valid transactions across many currencies
(JPY with 0 decimals, KWD/BHD/OMR/JOD/TND with 3) in several CSV and JSON files, plus files and
rows that exercise every record and file error code of design.md section 3, replays of earlier
rows (duplicates) and DUPLICATE_CONFLICTs. Every row carries the line the processor records for
it (`source_line`: 1-based physical line for CSV, the header being line 1; 0-based array index
for JSON) and its intended outcome: a validated `Txn`, or a record error code.

This module is the samples' public face: the types (sample_model), the ledger that predicts
every row's outcome (sample_ledger) and the comparison with the tables (sample_reconcile) are
importable from here as `samples.X`.

CLI: `python -m pipeline_local.samples DIR [--seed N]` writes the files and a manifest.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline_local.sample_edge_files import (
    file_errors,
    record_errors_csv,
    record_errors_json,
    replays_file,
)
from pipeline_local.sample_ledger import Expected, Ledger
from pipeline_local.sample_model import (
    COLUMNS,
    DEFAULT_SEED,
    FILE_CODES,
    MINOR_UNITS,
    PREFIX,
    RECORD_CODES,
    REQUIRED,
    SAMPLE_MAX_FILE_BYTES,
    TYPES,
    Row,
    SampleFile,
    SampleSet,
    Txn,
)
from pipeline_local.sample_reconcile import Accounting, FileAccount, Upload, account
from pipeline_local.sample_writers import (
    CsvBuilder,
    Gen,
    JsonBuilder,
    add_txn,
    valid_file,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_SEED",
    "FILE_CODES",
    "MINOR_UNITS",
    "PREFIX",
    "RECORD_CODES",
    "REQUIRED",
    "SAMPLE_MAX_FILE_BYTES",
    "TYPES",
    "Accounting",
    "Expected",
    "FileAccount",
    "Ledger",
    "Row",
    "SampleFile",
    "SampleSet",
    "Txn",
    "Upload",
    "account",
    "bulk_file",
    "generate",
    "main",
    "new_versions",
    "write",
]


def generate(
    seed: int = DEFAULT_SEED, *, scale: float = 1.0, max_file_bytes: int | None = None
) -> SampleSet:
    """The sample set. `scale` shrinks the four bulk files (tests use a smaller set)."""
    max_file_bytes = max_file_bytes or SAMPLE_MAX_FILE_BYTES
    gen = Gen(seed)

    def n(count: int) -> int:
        return max(12, int(count * scale))

    europe = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK")
    asia_gulf = ("JPY", "KRW", "ISK", "KWD", "BHD", "OMR", "JOD", "TND", "SGD", "HKD", "INR")
    files: list[SampleFile] = []

    # File 01 keeps the text of its rows so that file 05 can replay them.
    b = CsvBuilder(PREFIX + "01-card-payments.csv")
    texts01: list[dict[str, str]] = []
    for i in range(n(900)):
        txn, text = gen.txn(f"T01-{i:06d}", gen.rng.choice(europe))
        texts01.append(text)
        b.add(text, Row(b.next_line, txn.transaction_id, txn=txn))
    f01 = b.build("card payments, European currencies, LF line ends")
    files.append(f01)
    files.append(
        valid_file(
            gen,
            PREFIX + "02-wire transfers+fx.json",
            "T02",
            n(700),
            "wire transfers in every currency; amounts as strings and number tokens",
        )
    )
    files.append(
        valid_file(
            gen,
            PREFIX + "03-asia-gulf.csv",
            "T03",
            n(600),
            "JPY/KRW/ISK (0 decimals), KWD/BHD/OMR/JOD/TND (3); BOM, CRLF, other column order",
            currencies=asia_gulf,
            columns=(
                "timestamp",
                "currency",
                "amount",
                "transaction_id",
                "transaction_type",
                "account_id",
                "description",
                "merchant_id",
            ),
            crlf=True,
            bom=True,
        )
    )
    files.append(
        valid_file(
            gen,
            PREFIX + "04-settlements.json",
            "T04",
            n(500),
            'settlements in an object {"transactions": [...]}',
            wrapped=True,
        )
    )
    files.append(replays_file(gen, PREFIX + "05-replays.csv", f01, texts01))
    files.append(record_errors_csv(gen, PREFIX + "06-record-errors.csv"))
    files.append(record_errors_json(gen, PREFIX + "07 record errors ü.json"))
    files.extend(file_errors(gen, max_file_bytes))
    files.append(
        SampleFile(
            PREFIX + "notes.txt",
            b"not a transaction file\n",
            [],
            "suffix .txt: no notification",
            dispatched=False,
        )
    )
    files.append(
        SampleFile(
            PREFIX + "LEGACY.CSV",
            f01.body[:400],
            [],
            "suffix .CSV: filters are case-sensitive, no notification",
            dispatched=False,
        )
    )
    return SampleSet(seed=seed, max_file_bytes=max_file_bytes, files=files)


def bulk_file(key: str, count: int, *, seed: int = DEFAULT_SEED, tag: str = "TB") -> SampleFile:
    """One valid file of `count` rows (CSV or JSON by the key's suffix), e.g. to span several
    1000-row batches of the processor."""
    gen = Gen(seed)
    if key.endswith(".json"):
        return valid_file(gen, key, tag, count, f"{count} valid records")
    return valid_file(gen, key, tag, count, f"{count} valid rows")


def new_versions(samples: SampleSet, seed: int = DEFAULT_SEED + 1) -> list[SampleFile]:
    """Second versions of two bulk files: changed amounts (conflicts), new rows, replays."""
    gen = Gen(seed)
    out: list[SampleFile] = []
    for old in samples.files[:2]:
        fmt_json = old.fmt == "json"
        builder: CsvBuilder | JsonBuilder = (
            JsonBuilder(old.key) if fmt_json else CsvBuilder(old.key)
        )
        for i, row in enumerate(old.rows):
            txn = row.txn
            assert txn is not None
            if i % 10 == 3:  # corrected amount: a conflict with the stored first version
                txn = Txn(**{**txn.__dict__, "amount": txn.amount + 1})
            add_txn(builder, txn, gen.rng, note="v2")
        for i in range(len(old.rows) // 10):
            txn, _ = gen.txn(f"{str(old.rows[0].transaction_id)[:3]}V2-{i:06d}")
            add_txn(builder, txn, gen.rng, note="v2 new")
        out.append(builder.build(f"new version of {old.key}"))
    return out


def write(samples: SampleSet, directory: Path) -> None:
    """Write every sample file (keys become paths) and manifest.json under `directory`."""
    for f in samples.files:
        path = directory / f.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.body)
    (directory / "manifest.json").write_text(json.dumps(samples.manifest(), indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the sample transaction files")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--max-file-bytes", type=int, default=SAMPLE_MAX_FILE_BYTES)
    args = parser.parse_args(argv)
    samples = generate(args.seed, scale=args.scale, max_file_bytes=args.max_file_bytes)
    write(samples, args.directory)
    ledger = Ledger()
    for f in samples.dispatched:
        exp = ledger.process(f)
        print(
            f"{f.key:52} rows {exp.rows:5}  stored {exp.stored:5}  dup {exp.duplicates:3}  "
            f"errors {dict(exp.errors)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
