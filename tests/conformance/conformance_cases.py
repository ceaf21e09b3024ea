"""Load the conformance cases from cases/: one folder a case, its input, options and expectation.

A case is a folder `cases/<NN-name>/`:
- an input file: `input.csv` / `input.json` (uploaded to S3), and/or `dlq_messages.json` (a list
  of raw message bodies put straight on the DLQ; a non-string entry is sent as its JSON text);
- optional `case.json`:
    key                      object key to upload to (default `in/<case>.<ext>`)
    uploads                  how many times the input is uploaded (new object versions), default 1;
                             each upload is followed by its S3 event and a drain of the queues
    redeliver                extra deliveries of the first upload's S3 event (at-least-once)
    deliver_twice            every invocation (S3 event and SQS batch) is delivered twice
    missing_object           deliver an event for `key` without uploading anything
    deny_get_object          a bucket policy statement denies s3:GetObject and s3:GetObjectVersion
                             (403) before the first delivery (the applied policy is restored
                             after the case); implies that the S3 invocation must fail (it is
                             retryable) and that the model refuses the reads
    preexisting              items put into the transactions table before anything runs
    remaining_time_ms        invocation timeout of the S3-triggered invocation (default 300000)
    retry_remaining_time_ms  invocation timeout of main-queue (retry consumer) invocations
    env                      processor environment overrides (e.g. MAX_FILE_BYTES)
    dlq_env                  DLQ processor environment overrides
    replay                   after everything else, the processor's `env` overrides are dropped
                             (the cause is fixed) and a resume_file is sent to the main queue
                             for the first upload, from the smallest source_line of its
                             retryable error rows (0 without a line), as `txnctl replay` does
    impls                    the implementations that run the case (default: all); the others
                             skip it, saying so (a feature one of them lacks)
    crash                    {"after_calls", "operation", "when": "s3" | "sqs"}: the processor's
                             first such invocation is killed after that many calls (file_status.py)
    throttle                 [{"transaction_id", "times", "code"}]: the next `times` PutItem calls
                             of that record to the transactions table are answered with the
                             DynamoDB throttle `code` (HTTP 400), through the stack's gateway; a
                             case whose throttles were not all answered fails (contract P37)
    expected_refusals        calls the authorization model must refuse in this case, each
                             {"action", "resource"} (fnmatch patterns); any other refusal fails
                             the case, naming principal, action, resource and why
- `expected.json`, written by hand from design.md:
    transactions  every item of the transactions table, ALL attributes except `ingested_at`
                  (checked to be a recent epoch ms unless the expected item gives it);
    errors        every row of the errors table, projected on the attributes the expected row
                  names (normally error_code, error_type, field, transaction_id, source_line,
                  source_key, source_version_id); `dlq_message: i` links a row to the i-th body
                  of dlq_messages.json (for the $SHA256_BODY / $SENT_TIMESTAMP tokens);
    queues        messages left on each queue at the end (normally 0);
    main_queue_min  lower bounds on the distinct messages of each kind that went through the
                  main queue (`resume_file`, `retry_record`, `s3_event`), proving that a path
                  was taken (exact counts depend on an implementation's batch size);
    main_queue_max  upper bounds on the same counts (0: a path that must not be taken);
    accounting    rows_in (data rows delivered, per object version; a file error counts as one
                  row) and duplicates: rows_in must equal stored + duplicates + error rows.
  Tokens: $BUCKET, $VERSION_<n> (version id of the n-th upload), $RECORD_HASH (computed from
  the expected item by the rule of design.md section 2), $PROCESSOR (`python3.11/<version>` or
  `rust/<version>`), $SHA256_BODY, $SENT_TIMESTAMP. A missing attribute and a NULL compare
  equal to JSON null; numbers compare by value (DynamoDB normalises them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).resolve().parent / "cases"


@dataclass
class Case:
    name: str
    path: Path
    config: dict[str, Any]
    expected: dict[str, Any]

    @property
    def input_file(self) -> Path | None:
        for name in ("input.csv", "input.json"):
            if (self.path / name).exists():
                return self.path / name
        return None

    @property
    def key(self) -> str:
        if "key" in self.config:
            return str(self.config["key"])
        suffix = self.input_file.suffix if self.input_file else ".csv"
        return f"in/{self.name}{suffix}"

    @property
    def dlq_bodies(self) -> list[str]:
        path = self.path / "dlq_messages.json"
        if not path.exists():
            return []
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [e if isinstance(e, str) else json.dumps(e) for e in entries]


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(p for p in CASES_DIR.iterdir() if p.is_dir()):
        config_path = path / "case.json"
        cases.append(
            Case(
                name=path.name,
                path=path,
                config=_load_json(config_path) if config_path.exists() else {},
                expected=_load_json(path / "expected.json"),
            )
        )
    return cases


CASES = load_cases()
