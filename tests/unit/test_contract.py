"""The handlers against contract/: the embedded currency table and the decisions' location."""

from __future__ import annotations

import json
import re
from types import ModuleType

from pipeline_local.constants import CONTRACT_DIR, LIB_DIR
from pipeline_local.sample_model import MINOR_UNITS


def contract_minor_units() -> dict[str, int]:
    """contract/currencies.json: ISO 4217 code -> minor unit."""
    doc = json.loads((CONTRACT_DIR / "currencies.json").read_text(encoding="utf-8"))
    table = doc["minor_units"]
    assert isinstance(table, dict)
    return {str(code): int(unit) for code, unit in table.items()}


def test_embedded_currency_table_is_the_contracts(proc: ModuleType) -> None:
    """The handler is packaged alone and cannot read contract/ at run time, so it embeds a copy
    of contract/currencies.json; this fails when either drifts (txn-core includes the file)."""
    ours = dict(proc.CURRENCY_MINOR_UNITS)
    theirs = contract_minor_units()
    assert ours.keys() - theirs.keys() == set(), "codes only in lib/processor_function.py"
    assert theirs.keys() - ours.keys() == set(), "codes only in contract/currencies.json"
    changed = {c: (ours[c], theirs[c]) for c in ours if ours[c] != theirs[c]}
    assert changed == {}, "minor units differ (handler, contract)"


def test_the_sample_models_minor_units_are_the_contracts() -> None:
    """The sample model (the tests' oracle, and the benchmarks' source of minor units) lists
    the currencies the samples use; each must have the contract's minor unit."""
    theirs = contract_minor_units()
    changed = {c: (u, theirs.get(c)) for c, u in MINOR_UNITS.items() if theirs.get(c) != u}
    assert changed == {}, "minor units differ (sample model, contract)"


def test_currency_table_is_well_formed() -> None:
    table = contract_minor_units()
    assert list(table) == sorted(table), "keep contract/currencies.json sorted by code"
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in table)
    assert all(0 <= unit <= 4 for unit in table.values())
    # P5: the ISO 4217 codes whose minor unit is "N.A." are not transaction currencies.
    not_applicable = [
        "XAG",
        "XAU",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XDR",
        "XPD",
        "XPT",
        "XSU",
        "XTS",
        "XUA",
        "XXX",
    ]
    assert not set(not_applicable) & table.keys()


def test_decisions_live_in_the_contract(proc: ModuleType, dlq: ModuleType) -> None:
    """Every decision is written down once, in contract/decisions.md; the handlers point there."""
    text = (CONTRACT_DIR / "decisions.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- \*\*([PDQ]\d+)\.\*\*", text, flags=re.MULTILINE)
    # P39 is left free (issue 12's write-path decisions took P37 and P38; P40 came first).
    processor = [f"P{i}" for i in range(1, 39)] + ["P40"]
    both = [f"Q{i}" for i in range(1, 4)]
    assert listed == processor + [f"D{i}" for i in range(1, 11)] + both
    for module in (proc, dlq):
        assert "contract/decisions.md" in (module.__doc__ or "")


HEADER = "transaction_id,account_id,amount,currency,transaction_type,timestamp"
ROW = "T1,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z"


def row_messages(proc: ModuleType, data: bytes) -> list[str]:
    rows = proc.csv_rows(iter([data]))
    if isinstance(rows, proc.FileError):
        return [rows.message]
    return [row.error.message for row in rows if row.error is not None]


LONG_CELL = "x" * 131073
# P25's texts, input -> error_message (contract/message-texts.md lists them with their old texts).
CSV_TEXTS = {
    f'{HEADER}\n"T2"x,ACC1,1,EUR,DEBIT,2024-01-01T00:00:00Z\n': "row: unreadable CSV, a closing"
    " quote must be followed by ',' or the line end",
    f"{HEADER}\nT2,AC\rC1,1,EUR,DEBIT,2024-01-01T00:00:00Z\n": "row: unreadable CSV, a bare CR"
    " inside an unquoted cell",
    f'{HEADER}\n{ROW}\n"open': "row: unreadable CSV, a quoted cell is not closed at the end"
    " of the file",
    f"{HEADER}\n{LONG_CELL}\n": "row: unreadable CSV, a cell longer than 131072 characters",
    f'"{HEADER}\n': "header: unreadable CSV, a quoted cell is not closed at the end of the file",
    "transaction_id,note\n": 'header: unknown column "note"',
    'transaction_id,"a""b\tc"\n': 'header: unknown column "a\\"b\\tc"',
    "transaction_id,descripción\n": 'header: unknown column "descripción"',
    "transaction_id,transaction_id\n": 'header: duplicate column "transaction_id"',
    "transaction_id\n": 'header: missing required column "account_id"',
}
JSON_TEXTS = {
    "[1,]": "file: not valid JSON at line 1, column 4",
    "[\n1,\n]": "file: not valid JSON at line 3, column 1",
    '{"é": x}': "file: not valid JSON at line 1, column 7",
    "[NaN]": "file: not valid JSON (NaN is not allowed)",
    "[-Infinity]": "file: not valid JSON (-Infinity is not allowed)",
}


def test_csv_texts_are_the_contracts(proc: ModuleType) -> None:
    """P25: every csv.Error CPython raises here maps to a reason of the contract (a new CPython
    wording would fall back to a bare "unreadable CSV" and fail this)."""
    assert len(LONG_CELL) == proc.CSV_FIELD_LIMIT + 1
    for data, message in CSV_TEXTS.items():
        assert row_messages(proc, data.encode()) == [message], data


def test_json_texts_are_the_contracts(proc: ModuleType) -> None:
    """P25: the position where reading stopped, never CPython's wording."""
    for text, message in JSON_TEXTS.items():
        error = proc.parse_json_document(text.encode())
        assert isinstance(error, proc.FileError), text
        assert (error.code, error.message) == ("MALFORMED_FILE", message), text


def test_changed_texts_are_listed_as_they_are() -> None:
    """contract/message-texts.md: each row's "now" text (the first in its cell, unescaped as
    Markdown code) is one the two tests above expect, and every header/row/file text those
    tests pin is in the list."""
    pinned = set(CSV_TEXTS.values()) | set(JSON_TEXTS.values())
    table = (CONTRACT_DIR / "message-texts.md").read_text(encoding="utf-8")
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")][2:]
    now = [re.findall(r"`([^`]+)`", cells[2])[0] for cells in rows]
    assert len(rows) >= 11
    assert [text for text in now if text not in pinned] == []
    listed = set(now)
    # The same rule as a listed text, only another input (position, name or constant).
    same_rule = {
        "file: not valid JSON at line 3, column 1",
        "file: not valid JSON at line 1, column 7",
        "file: not valid JSON (-Infinity is not allowed)",
        'header: unknown column "descripción"',
    }
    assert sorted(pinned - listed - same_rule) == []


def test_item_schema_admits_every_status_shard_lib_allows() -> None:
    """The item schema's status_shard pattern (P40) follows lib/provider.tf's most
    status_index_shards: values 0 to that number less one, nothing above, no leading zero."""
    provider = (LIB_DIR / "provider.tf").read_text(encoding="utf-8")
    found = re.search(r"var\.status_index_shards <= (\d+)", provider)
    assert found, "lib/provider.tf bounds status_index_shards"
    most = int(found.group(1))
    schema = json.loads((CONTRACT_DIR / "schemas" / "transactions_item.json").read_text("utf-8"))
    pattern = schema["properties"]["status_shard"]["pattern"]
    admitted = [f"PROCESSED#{n}" for n in (0, 9, 10, most - 1)]
    refused = [f"PROCESSED#{most}", "PROCESSED#01", "PROCESSED#", "PROCESSED#-1"]
    assert [v for v in admitted if not re.search(pattern, v)] == []
    assert [v for v in refused if re.search(pattern, v)] == []
