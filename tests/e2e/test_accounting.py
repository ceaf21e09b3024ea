"""Every row of every uploaded file ends in exactly one place, upload after upload.

The tests of this module build on each other, in file order, on one emptied stack: the sample
files, the same files again (new versions, all replays), the same S3 events delivered again
(at-least-once delivery), then new versions of two keys (corrections, new rows, replays).
`samples.Ledger` carries the expected outcome from one upload to the next.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

import pytest

from pipeline_local import samples as sample_files
from pipeline_local.dispatcher import Dispatcher
from tests.e2e.conftest import E2E


@dataclass
class History:
    e2e: E2E
    dispatcher: Dispatcher
    ledger: sample_files.Ledger = field(default_factory=sample_files.Ledger)
    uploads: list[sample_files.Upload] = field(default_factory=list)


@pytest.fixture(scope="module")
def history(e2e: E2E) -> Iterator[History]:
    e2e.clean()
    hist = History(e2e, e2e.dispatcher())
    yield hist
    e2e.clean()


def _assert_accounted(acc: sample_files.Accounting) -> None:
    assert acc.problems() == []
    assert acc.ok
    mismatches = {f.key: f.mismatches for f in acc.files if f.mismatches}
    assert mismatches == {}


def test_first_upload_every_row_in_exactly_one_place(
    history: History, samples: sample_files.SampleSet
) -> None:
    e2e = history.e2e
    uploads = e2e.upload(samples.files, history.ledger)
    pending = history.dispatcher.pending_events()
    e2e.delete_versions_to_vanish(uploads)
    outcomes = history.dispatcher.deliver(pending)
    history.dispatcher.drain()
    history.uploads += uploads

    acc = e2e.account(history.uploads)
    _assert_accounted(acc)

    # Every error code of design.md section 3 occurred, and nothing else.
    codes = Counter(r["error_code"] for r in e2e.error_rows())
    assert set(codes) == set(sample_files.RECORD_CODES) | set(sample_files.FILE_CODES)
    # The notification filters decided what was dispatched: only .csv/.json (case-sensitive).
    dispatched_keys = {o.pending.key for o in outcomes}
    assert dispatched_keys == {f.key for f in samples.dispatched}
    # Keys arrive URL-encoded as S3 encodes them, with the version id.
    odd = next(o for o in outcomes if "ü" in o.pending.key)
    obj = odd.pending.event["Records"][0]["s3"]["object"]
    assert obj["key"] == "incoming/2024/07+record+errors+%C3%BC.json"
    assert unquote_plus(obj["key"]) == odd.pending.key
    assert obj["versionId"] == odd.pending.version_id
    # No file needed an asynchronous retry.
    assert all(o.result.attempts == 1 and o.result.error is None for o in outcomes)
    # The handlers' EMF metrics (what the dashboard and the operators see) agree with the
    # tables: every invocation's output arrived whole, from either implementation.
    rows = e2e.error_rows()
    expected = {
        "RecordsProcessed": len(e2e.items()),
        "RecordsDuplicate": sum(f.duplicates for f in acc.files),
        "RecordsInvalid": sum(r["error_type"] == "VALIDATION" for r in rows),
        "RecordsRetried": 0,
        "FilesFailed": sum(r["error_type"] == "FILE" for r in rows),
        "ErrorsStored": len(rows),
    }
    emf = history.dispatcher.sink.emf
    assert {name: sum(doc.get(name, 0) for doc in emf) for name in expected} == expected


def test_everything_again_adds_no_transaction(
    history: History, samples: sample_files.SampleSet
) -> None:
    e2e = history.e2e
    items_before = {(i["transaction_id"], i["timestamp"]) for i in e2e.items()}
    errors_before = len(e2e.error_rows())

    uploads = e2e.upload(samples.files, history.ledger)
    pending = history.dispatcher.pending_events()
    assert {(p.key, p.version_id) for p in pending} == {
        (u.sample.key, u.version_id) for u in uploads
    }
    e2e.delete_versions_to_vanish(uploads)
    history.dispatcher.deliver(pending)
    history.dispatcher.drain()
    history.uploads += uploads

    acc = e2e.account(history.uploads)
    _assert_accounted(acc)
    assert {(i["transaction_id"], i["timestamp"]) for i in e2e.items()} == items_before
    second = [f for f in acc.files if f.version_id in {u.version_id for u in uploads}]
    assert sum(f.stored for f in second) == 0
    assert sum(f.duplicates for f in second) > 0
    # New object versions are new occurrences of their errors (one row each), nothing more.
    assert len(e2e.error_rows()) == errors_before + sum(f.error_rows for f in second)


def test_redelivered_events_write_nothing(history: History) -> None:
    """S3 delivers at least once: the same events (same versions) again change nothing."""
    e2e = history.e2e
    items_before = sorted(json.dumps(i, sort_keys=True, default=str) for i in e2e.items())
    error_ids_before = sorted(r["error_id"] for r in e2e.error_rows())

    again = [o.pending for o in history.dispatcher.outcomes]
    history.dispatcher.deliver(again)
    history.dispatcher.drain()

    assert sorted(json.dumps(i, sort_keys=True, default=str) for i in e2e.items()) == items_before
    assert sorted(r["error_id"] for r in e2e.error_rows()) == error_ids_before
    _assert_accounted(e2e.account(history.uploads))


def test_new_versions_of_the_same_keys(history: History, samples: sample_files.SampleSet) -> None:
    e2e = history.e2e
    v2 = sample_files.new_versions(samples)
    uploads = e2e.upload(v2, history.ledger)
    history.dispatcher.run()
    history.uploads += uploads

    acc = e2e.account(history.uploads)
    _assert_accounted(acc)
    latest = {f.key: f for f in acc.files if f.version_id in {u.version_id for u in uploads}}
    for up in uploads:
        got = latest[up.sample.key]
        assert got.stored == up.expected.stored > 0  # the new rows
        assert got.errors["DUPLICATE_CONFLICT"] == up.expected.errors["DUPLICATE_CONFLICT"] > 0
        assert got.duplicates == up.expected.duplicates > 0
    # First write wins: a corrected amount never overwrites the stored item.
    stored = {i["transaction_id"]: i for i in e2e.items()}
    for up in uploads:
        for row in up.sample.rows:
            if up.expected.outcomes.get(row.line) == "DUPLICATE_CONFLICT":
                item = stored[row.transaction_id]
                assert item["source_version_id"] != up.version_id
