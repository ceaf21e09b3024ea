"""Transaction file processor: S3 events and the main queue's retry consumer.

Implements sections 2 to 6 and 8 of design.md. Packaged alone by archive_file: standard library
and boto3 only, no sibling modules. Endpoints come only from the standard AWS_ENDPOINT_URL /
AWS_ENDPOINT_URL_<SERVICE> variables, which boto3 reads itself.

Where design.md leaves something open, this module follows the processor's decisions (P1,
P2, ...) and those of both functions (Q1 to Q3) in contract/decisions.md (cited by number in
comments); contract/schemas/ describes its messages and table items.
"""

import csv
import hashlib
import itertools
import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import unquote_plus

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:  # the client types come from the stub packages of requirements-dev.txt
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

VERSION = "1.0.0"
PROCESSOR = f"python3.11/{VERSION}"

# The function's environment: lib/main.tf (local.functions.processor) sets every one of these
# and owns every default; they are read once, at init, into CONFIG. tests/unit/
# test_configuration.py fails when this list and that block differ.
ENV_TABLE_NAME = "DYNAMODB_TABLE_NAME"
ENV_QUEUE_URL = "SQS_QUEUE_URL"
ENV_DLQ_URL = "DLQ_URL"
ENV_FILE_STATUS_TABLE_NAME = "FILE_STATUS_TABLE_NAME"
ENV_ENVIRONMENT = "ENVIRONMENT"
ENV_METRIC_NAMESPACE = "METRIC_NAMESPACE"
ENV_MAX_FILE_BYTES = "MAX_FILE_BYTES"
ENV_TIME_SAFETY_MARGIN_MS = "TIME_SAFETY_MARGIN_MS"
ENV_STATUS_INDEX_SHARDS = "STATUS_INDEX_SHARDS"
ENV_RANGE_SPLIT_BYTES = "RANGE_SPLIT_BYTES"
ENV_VARIABLES = (
    ENV_TABLE_NAME,
    ENV_QUEUE_URL,
    ENV_DLQ_URL,
    ENV_FILE_STATUS_TABLE_NAME,
    ENV_ENVIRONMENT,
    ENV_METRIC_NAMESPACE,
    ENV_MAX_FILE_BYTES,
    ENV_TIME_SAFETY_MARGIN_MS,
    ENV_STATUS_INDEX_SHARDS,
    ENV_RANGE_SPLIT_BYTES,
)

# Constants of the implementation, not deployment tunables: BATCH_ROWS bounds P17's "one batch",
# WRITE_WORKERS is this implementation's own write concurrency (the ceiling of P37's limit); the
# others are contract limits.
BATCH_ROWS = 1000
WRITE_WORKERS = 16
READ_CHUNK_BYTES = 1 << 20
MAX_ROW_BYTES = 1 << 20
MAX_JSON_DEPTH = 64
CSV_FIELD_LIMIT = 131_072  # csv.field_size_limit()'s default, the cell limit of P12
SQS_MAX_BYTES = 262_144
SQS_BATCH_ENTRIES = 10
SEND_ATTEMPTS = 4
ECHO_MAX_KEYS = 32
ECHO_MAX_KEY_CHARS = 64
ECHO_MAX_VALUE_CHARS = 256
MAX_TEXT_IN_MESSAGE = 1024

MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TIMESTAMP_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z (exclusive)

FIELDS = (
    "transaction_id",
    "account_id",
    "amount",
    "currency",
    "transaction_type",
    "timestamp",
    "merchant_id",
    "description",
)
REQUIRED_FIELDS = FIELDS[:6]
TRANSACTION_TYPES = frozenset({"DEBIT", "CREDIT", "TRANSFER", "PAYMENT", "REFUND"})

# ISO 4217 list one (published 2026-01-01): alphabetic code -> minor unit. The "N.A." codes are
# deliberately absent (decision P5). A copy of contract/currencies.json, embedded because the
# handler is packaged alone; tests/unit/test_contract.py fails when the two differ.
CURRENCY_MINOR_UNITS: Mapping[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
    "BAM": 2, "BBD": 2, "BDT": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2, "BOV": 2,
    "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2, "CHE": 2,
    "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2, "COU": 2, "CRC": 2, "CUP": 2,
    "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2,
    "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0,
    "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2,
    "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2,
    "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2,
    "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2,
    "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2,
    "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2,
    "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2,
    "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2,
    "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0,
    "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2, "VES": 2, "VND": 0,
    "VUV": 0, "WST": 2, "XAD": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0, "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip

# Record-level error codes.
MISSING_FIELD = "MISSING_FIELD"
INVALID_FORMAT = "INVALID_FORMAT"
INVALID_VALUE = "INVALID_VALUE"
UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
PRECISION_EXCEEDED = "PRECISION_EXCEEDED"
UNKNOWN_FIELD = "UNKNOWN_FIELD"
MALFORMED_ROW = "MALFORMED_ROW"
INVALID_ENCODING = "INVALID_ENCODING"
DUPLICATE_CONFLICT = "DUPLICATE_CONFLICT"
# File-level error codes.
EMPTY_FILE = "EMPTY_FILE"
MALFORMED_FILE = "MALFORMED_FILE"
INVALID_HEADER = "INVALID_HEADER"
FILE_TOO_LARGE = "FILE_TOO_LARGE"
OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"

_TRIM = " \t\n\r\f"
_BOM = b"\xef\xbb\xbf"
_FIELD_SET = frozenset(FIELDS)
_TRANSACTION_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ACCOUNT_ID_RE = re.compile(r"[A-Za-z0-9]{1,34}")
_AMOUNT_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})

# Standard, not adaptive, retries (P37): adaptive mode's client-side rate limiter is per client,
# so a throttled transactions table would also slow the status table's writes, and the SDK
# retry quota still runs dry under sustained throttling. The processor's own limiter and
# backoff (WriteLimiter, WriteBackoff) take over where the SDK's retries end.
_BOTO_CONFIG = BotoConfig(
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=WRITE_WORKERS * 2,
)
s3_client = boto3.client("s3", config=_BOTO_CONFIG)
dynamodb_client = boto3.client("dynamodb", config=_BOTO_CONFIG)
sqs_client = boto3.client("sqs", config=_BOTO_CONFIG)


# --------------------------------------------------------------------------------------------
# Logging and metrics: one JSON object per line on stdout.


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "level": record.levelname,
            "message": record.getMessage(),
            "timestamp": int(record.created * 1000),
            "logger": record.name,
        }
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class _StdoutHandler(logging.Handler):
    """Writes to the current sys.stdout (the Lambda runtime ships stdout to CloudWatch)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # logging must never break processing
            self.handleError(record)


LOGGER = logging.getLogger("transaction_processor")
for _old_handler in [h for h in LOGGER.handlers if h.get_name() == "json-stdout"]:
    LOGGER.removeHandler(_old_handler)  # a re-import (tests) must not duplicate log lines
_handler = _StdoutHandler()
_handler.set_name("json-stdout")
_handler.setFormatter(_JsonFormatter())
LOGGER.addHandler(_handler)
LOGGER.setLevel(logging.INFO)
LOGGER.propagate = False


def log_event(level: int, message: str, **fields: Any) -> None:
    """One JSON log line. Callers pass only ids, codes and counts, never record contents."""
    LOGGER.log(level, message, extra={"fields": fields})


def record_count_metrics(
    stored: int, invalid: int, duplicates: int, retried: int
) -> dict[str, tuple[int, str]]:
    """The per-record counters both the S3 path and the retry path report."""
    return {
        "RecordsProcessed": (stored, "Count"),
        "RecordsInvalid": (invalid, "Count"),
        "RecordsDuplicate": (duplicates, "Count"),
        "RecordsRetried": (retried, "Count"),
    }


def emit_metrics(namespace: str, environment: str, values: Mapping[str, tuple[float, str]]) -> None:
    """Write one CloudWatch Embedded Metric Format line: {name: (value, unit)}."""
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": now_ms(),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["Environment"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        "Environment": environment,
    }
    for name, (value, _) in values.items():
        doc[name] = value
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------------------------
# Writes that yield to throttling (P37): an AIMD limit on the conditional writes in flight and,
# for a throttled write, capped exponential backoff with full jitter. Written by hand: the
# handler is packaged alone with boto3 (no tenacity or backoff at run time), and the Rust
# processor (crates/processor/src/pace.rs) must decide exactly as this does.

# DynamoDB's throttling answers, the 400 errors it calls "OK to retry"
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


def _throttle_not_retried(response: Any = None, **_: Any) -> bool | None:
    """botocore's needs-retry handler for the transaction writes' PutItem (P37): False for a
    throttling answer (botocore's endpoint then does not retry, whatever the handlers after
    this one say), None for anything else (the standard retry handler decides). So every
    throttle reaches the processor's limiter and its 50 ms backoff, not botocore's 1 s one.
    Hand-written: botocore's retry configuration has no per-error setting."""
    if response is None:  # no answer (a connection error): not a throttle
        return None
    parsed = response[1] if isinstance(response, tuple) and len(response) == 2 else {}
    error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
    return False if error.get("Code") in THROTTLING_CODES else None


# The records' conditional PutItems on a client of their own (Aws.transaction_writes): its own
# retry quota, and no botocore retry of a throttle (registered before the standard handler of
# "needs-retry.dynamodb", a more specific event name is emitted first).
transaction_writes_client = boto3.client("dynamodb", config=_BOTO_CONFIG)
# The stubs type a handler as returning None; botocore's endpoint reads its value (needs-retry).
transaction_writes_client.meta.events.register_first(
    "needs-retry.dynamodb.PutItem",
    _throttle_not_retried,  # type: ignore[arg-type]
)


@dataclass(frozen=True)
class WriteBackoff:
    """How long a throttled write waits before it is sent again (P37): "full jitter", a random
    wait in [0, min(cap, base * 2**n)) before retry n + 1 (AWS Architecture Blog, "Exponential
    Backoff And Jitter"; the SDKs back off the same way,
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html), at most
    `retries` times per record: about a minute of waiting, where DynamoDB's guide advises
    giving up (Programming.Errors.html). Fields only so that tests can wait less."""

    base_ms: int = 50
    cap_ms: int = 2_000
    retries: int = 64

    def delay_ms(self, retry: int) -> float:
        # Not for security: spreading the retries of many writers is all the randomness does.
        return random.random() * min(self.cap_ms, self.base_ms << min(retry, 32))


class WriteLimiter:
    """The AIMD limit on one invocation's conditional writes in flight (P37).

    It starts at `ceiling` (the writers). A throttled write halves it (floor 1) once per
    window: a throttle of a write sent before the last halving reports load that was already
    cut and does not halve again. Each `limit` writes answered without a throttle raise it by
    one, up to `ceiling`. The counters are reported once per invocation (log_write_pace).
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = self.ceiling
        self.lowest = self.ceiling
        self.in_flight = 0
        self.window = 0  # halvings so far
        self.answered = 0  # writes answered without a throttle since the last change
        self.throttled = 0  # throttling answers seen
        self.retried = 0  # throttled writes sent again by the processor
        self.gave_up = 0  # throttled writes that became retry_records
        self._cond = threading.Condition()

    def acquire(self) -> int:
        """Wait for a free slot; the ticket is the window the write is sent in."""
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait()
            self.in_flight += 1
            return self.window

    def throttle(self, ticket: int, retried: bool) -> int:
        """Count a throttle of a write sent in window `ticket` (the first of a window halves the
        limit), and the write as sent again (`retried`) or handed on as a retry_record, and keep
        the slot: the write waits its backoff holding it and is sent again in the window
        returned. A write sleeping in its backoff is still in flight, so that a lowered limit
        bounds how many records ask again, not only how many requests are in the air
        (released, hundreds of sleeping writes each asked again at their own pace)."""
        with self._cond:
            if retried:
                self.retried += 1
            else:
                self.gave_up += 1
            self.throttled += 1
            if ticket == self.window:
                self.limit = max(1, self.limit // 2)
                self.lowest = min(self.lowest, self.limit)
                self.window += 1
                self.answered = 0
            return self.window

    def release_counted(self) -> None:
        """Free the slot of a write whose throttle `throttle` already counted."""
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def release_answered(self) -> None:
        """Free the slot of a write answered without a throttle: the answer counts towards
        raising the limit. (A throttle is counted when it happens, by `throttle`.)"""
        with self._cond:
            self.in_flight -= 1
            self.answered += 1
            if self.answered >= self.limit:
                self.answered = 0
                self.limit = min(self.ceiling, self.limit + 1)
            self._cond.notify_all()


# --------------------------------------------------------------------------------------------
# Configuration and dependencies.


class ConfigError(RuntimeError):
    """A function variable is missing or invalid: the execution environment cannot start."""


@dataclass(frozen=True)
class Config:
    """The function's environment, typed (see ENV_VARIABLES)."""

    table_name: str
    queue_url: str
    dlq_url: str
    environment: str
    metric_namespace: str
    max_file_bytes: int
    time_safety_margin_ms: int
    status_index_shards: int  # status_shard values per status (P40)
    # Not variables (see BATCH_ROWS): fields only so that tests can use smaller batches.
    batch_rows: int = BATCH_ROWS
    write_workers: int = WRITE_WORKERS
    file_status_table: str = ""  # per-file status (P26); empty: not written (unit tests)
    range_split_bytes: int = 0  # RANGE_SPLIT_BYTES (P33): a larger CSV is split; 0 = never
    write_backoff: WriteBackoff = WriteBackoff()  # P37; a field so that tests can wait less


def _env_text(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if value is None or not value.strip():
        raise ConfigError(f"environment variable {name} is missing or empty")
    return value


def _env_whole_number(env: Mapping[str, str], name: str, minimum: int) -> int:
    text = _env_text(env, name)
    if not re.fullmatch(r"[0-9]{1,18}", text) or int(text) < minimum:
        raise ConfigError(
            f"environment variable {name} must be a whole number of at least {minimum}, "
            f"not {json.dumps(text)}"
        )
    return int(text)


def load_config(env: Mapping[str, str]) -> Config:
    """Every variable of ENV_VARIABLES, checked; no defaults here (lib/ owns them)."""
    return Config(
        table_name=_env_text(env, ENV_TABLE_NAME),
        queue_url=_env_text(env, ENV_QUEUE_URL),
        dlq_url=_env_text(env, ENV_DLQ_URL),
        file_status_table=_env_text(env, ENV_FILE_STATUS_TABLE_NAME),
        environment=_env_text(env, ENV_ENVIRONMENT),
        metric_namespace=_env_text(env, ENV_METRIC_NAMESPACE),
        max_file_bytes=_env_whole_number(env, ENV_MAX_FILE_BYTES, 1),
        time_safety_margin_ms=_env_whole_number(env, ENV_TIME_SAFETY_MARGIN_MS, 0),
        status_index_shards=_env_whole_number(env, ENV_STATUS_INDEX_SHARDS, 1),
        range_split_bytes=_env_whole_number(env, ENV_RANGE_SPLIT_BYTES, 0),
    )


# Read once per execution environment, at init: a missing or invalid variable fails the init
# with ConfigError, which names it, before any event is taken.
CONFIG = load_config(os.environ)


@dataclass(frozen=True)
class Aws:
    s3: "S3Client"
    dynamodb: "DynamoDBClient"
    sqs: "SQSClient"
    # The records' conditional PutItems (P37) on a client of their own, so that its retry
    # quota, drained by a throttled table, is not the file status updates' quota; None: the
    # one DynamoDB client (unit tests).
    transaction_writes: "DynamoDBClient | None" = None

    @property
    def writes(self) -> "DynamoDBClient":
        """The client that sends the records' conditional PutItems."""
        return self.transaction_writes or self.dynamodb


class TransientError(Exception):
    """A failure that a later retry can fix: the invocation (or queue message) must fail."""


@dataclass
class Invocation:
    """Per-invocation context: request id for logs, the clock for resume_file and the limit on
    the invocation's writes in flight (P37).

    The clock may stop work only after at least one batch was finished in this invocation, so
    every invocation makes progress (design.md section 5).
    """

    margin_ms: int
    request_id: str = ""
    remaining_ms: Callable[[], int] | None = None
    batches_done: int = 0
    writes: WriteLimiter = field(default_factory=lambda: WriteLimiter(WRITE_WORKERS))

    def batch_done(self) -> None:
        self.batches_done += 1

    def can_wait(self, wait_ms: float) -> bool:
        """Whether a throttled write may wait `wait_ms` and still end before the margin (P37)."""
        return self.remaining_ms is None or self.remaining_ms() - wait_ms > self.margin_ms

    def expired(self) -> bool:
        if self.batches_done == 0 or self.remaining_ms is None:
            return False
        return self.remaining_ms() < self.margin_ms

    def log(self, level: int, message: str, **fields: Any) -> None:
        log_event(level, message, request_id=self.request_id, **fields)


# --------------------------------------------------------------------------------------------
# Records and validation (design.md sections 2 and 3).


class JsonNumber(str):
    """The verbatim text of a JSON number token; it never goes through a binary float."""

    __slots__ = ()


@dataclass(frozen=True)
class RecordError:
    code: str
    field: str | None
    message: str


# A conditional write that found a different record under the same key, on either write path.
DUPLICATE_CONFLICT_ERROR = RecordError(
    DUPLICATE_CONFLICT,
    "transaction_id",
    "transaction_id: already stored with the same timestamp and different content",
)


@dataclass(frozen=True)
class FileError:
    code: str
    message: str  # names the offending column or part of the file


@dataclass(frozen=True)
class Transaction:
    transaction_id: str
    account_id: str
    amount: str  # canonical decimal text (decision P4)
    currency: str
    transaction_type: str
    timestamp: int  # epoch milliseconds, UTC
    merchant_id: str | None = None
    description: str | None = None

    def canonical_fields(self) -> tuple[str, ...]:
        return (
            self.transaction_id,
            self.account_id,
            self.amount,
            self.currency,
            self.transaction_type,
            str(self.timestamp),
            self.merchant_id or "",
            self.description or "",
        )


@dataclass(frozen=True)
class Amount:
    canonical: str
    fraction_digits: int


def record_hash(tx: Transaction) -> str:
    """Hex SHA-256 of the validated fields in table order, joined with U+001F (decision P9)."""
    return hashlib.sha256("\x1f".join(tx.canonical_fields()).encode("utf-8")).hexdigest()


def status_shard(status: str, transaction_id: str, shards: int) -> str:
    """The status-index key of an item (decision P40): "<status>#<n>", n = the first 8 bytes
    of SHA-256(transaction_id) as a big-endian integer, mod `shards`. Stable for a key, so
    every write of one transaction_id lands on the same shard in both implementations."""
    digest = hashlib.sha256(transaction_id.encode("utf-8")).digest()
    return f"{status}#{int.from_bytes(digest[:8], 'big') % shards}"


def trim(text: str) -> str:
    return text.strip(_TRIM)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def field_text(record: Mapping[str, Any], name: str) -> str | RecordError | None:
    """The trimmed text of a field, None when absent, or INVALID_FORMAT for a wrong JSON type."""
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return trim(value) or None
    return RecordError(INVALID_FORMAT, name, f"{name}: wrong JSON type ({_json_type(value)})")


def _required(record: Mapping[str, Any], name: str) -> str | RecordError:
    text = field_text(record, name)
    if text is None:
        return RecordError(MISSING_FIELD, name, f"{name}: required field is missing or empty")
    return text


def parse_amount(text: str) -> Amount | RecordError:
    """Syntax, then value (> 0 and < 10^12), exactly on the digits (decision P4)."""
    match = _AMOUNT_RE.fullmatch(text)
    if match is None:
        return RecordError(
            INVALID_FORMAT,
            "amount",
            "amount: must be a plain decimal number like 12.34 (no exponent, '+', separators)",
        )
    negative, integer, fraction = match.group(1), match.group(2), match.group(3) or ""
    int_digits = integer.lstrip("0")
    frac_digits = fraction.rstrip("0")
    if negative or not (int_digits or frac_digits):
        return RecordError(INVALID_VALUE, "amount", "amount: must be greater than 0")
    if len(int_digits) > 12:
        return RecordError(INVALID_VALUE, "amount", "amount: must be less than 10^12")
    canonical = (int_digits or "0") + (f".{frac_digits}" if frac_digits else "")
    return Amount(canonical, len(frac_digits))


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_rfc3339_ms(text: str) -> int | None:
    """Epoch milliseconds (fraction truncated) of an RFC 3339 date-time, None if malformed."""
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = 0
    if match.group(8):
        off_hour, off_minute = int(match.group(9)), int(match.group(10))
        if off_hour > 23 or off_minute > 59:
            return None
        offset = (off_hour * 3600 + off_minute * 60) * (1 if match.group(8) == "+" else -1)
    millis = int(((match.group(7) or "") + "000")[:3])
    seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (seconds - offset) * 1000 + millis


def parse_timestamp(text: str) -> int | RecordError:
    millis = parse_rfc3339_ms(text)
    if millis is None:
        return RecordError(
            INVALID_FORMAT,
            "timestamp",
            "timestamp: must be an RFC 3339 date-time with offset, e.g. 2024-01-31T12:00:00Z",
        )
    if not MIN_TIMESTAMP_MS <= millis < MAX_TIMESTAMP_MS:
        return RecordError(
            INVALID_VALUE,
            "timestamp",
            "timestamp: must be from 2000-01-01T00:00:00Z to before 2100-01-01T00:00:00Z",
        )
    return millis


def _upper_ascii(text: str) -> str | None:
    return text.upper() if text.isascii() else None


_Checked = TypeVar("_Checked")


class _Rejected(Exception):
    """validate_record's early exit: carries the first RecordError a field check found."""

    def __init__(self, error: RecordError) -> None:
        super().__init__(error.code)
        self.error = error


def _accepted(checked: _Checked | RecordError) -> _Checked:
    """A field check's value, or its RecordError raised as _Rejected."""
    if isinstance(checked, RecordError):
        raise _Rejected(checked)
    return checked


def _reject(code: str, field: str, message: str) -> NoReturn:
    raise _Rejected(RecordError(code, field, message))


def validate_record(record: Mapping[str, Any]) -> Transaction | RecordError:
    """Validate one input record; the first error in table order wins (decision P3)."""
    try:
        return _validated(record)
    except _Rejected as rejected:
        return rejected.error


def _validated(record: Mapping[str, Any]) -> Transaction:
    """validate_record's checks in table order; the first failing one raises _Rejected."""
    transaction_id = _accepted(_required(record, "transaction_id"))
    if not _TRANSACTION_ID_RE.fullmatch(transaction_id):
        _reject(
            INVALID_FORMAT,
            "transaction_id",
            "transaction_id: must be 1 to 64 characters of A-Z a-z 0-9 . _ : -",
        )
    account_id = _accepted(_required(record, "account_id"))
    if not _ACCOUNT_ID_RE.fullmatch(account_id):
        _reject(
            INVALID_FORMAT, "account_id", "account_id: must be 1 to 34 characters of A-Z a-z 0-9"
        )
    amount = _accepted(parse_amount(_accepted(_required(record, "amount"))))
    currency = _upper_ascii(_accepted(_required(record, "currency")))
    minor_unit = CURRENCY_MINOR_UNITS.get(currency) if currency else None
    if currency is None or minor_unit is None:
        _reject(UNKNOWN_CURRENCY, "currency", "currency: not an accepted ISO 4217 currency code")
    if amount.fraction_digits > minor_unit:
        _reject(
            PRECISION_EXCEEDED,
            "amount",
            f"amount: more than {minor_unit} fraction digits for {currency}",
        )
    transaction_type = _upper_ascii(_accepted(_required(record, "transaction_type")))
    if transaction_type not in TRANSACTION_TYPES:
        _reject(
            INVALID_VALUE,
            "transaction_type",
            "transaction_type: must be one of DEBIT, CREDIT, TRANSFER, PAYMENT, REFUND",
        )
    timestamp = _accepted(parse_timestamp(_accepted(_required(record, "timestamp"))))
    merchant_id = _accepted(field_text(record, "merchant_id"))
    if merchant_id is not None and len(merchant_id) > 64:
        _reject(INVALID_FORMAT, "merchant_id", "merchant_id: at most 64 characters")
    description = _accepted(field_text(record, "description"))
    if description is not None and (len(description) > 256 or _CONTROL_RE.search(description)):
        _reject(
            INVALID_FORMAT,
            "description",
            "description: at most 256 characters and no control characters",
        )
    unknown = sorted(key for key in record if key not in _FIELD_SET)
    if unknown:
        name = str(unknown[0])[:ECHO_MAX_VALUE_CHARS]
        _reject(UNKNOWN_FIELD, name, f"{name}: unknown field")
    return Transaction(
        transaction_id=transaction_id,
        account_id=account_id,
        amount=amount.canonical,
        currency=currency,
        transaction_type=transaction_type,
        timestamp=timestamp,
        merchant_id=merchant_id,
        description=description,
    )


# --------------------------------------------------------------------------------------------
# Reading files: CSV as a stream of rows, JSON as one document.


@dataclass(frozen=True)
class SourceRow:
    line: int  # CSV: 1-based physical line where the row starts; JSON: 0-based array index
    values: Mapping[str, Any] | None
    error: RecordError | None = None


class _RowTooLong(Exception):
    pass


def physical_lines(
    chunks: Iterable[bytes], limit: int = MAX_ROW_BYTES, dropped: list[int] | None = None
) -> Iterator[bytes | None]:
    """Split a byte stream on LF (kept); a line longer than `limit` bytes yields None instead
    (its size is appended to `dropped` first, for byte offsets: P33).

    Holds at most one line (bounded by `limit`) besides the current chunk: memory stays flat.
    """
    buffer = bytearray()
    overflow = False
    overflow_size = 0
    for chunk in chunks:
        start = 0
        size = len(chunk)
        while start < size:
            newline = chunk.find(b"\n", start)
            end = size if newline < 0 else newline + 1
            if overflow:
                overflow_size += end - start
            else:
                if newline >= 0 and not buffer and end - start <= limit:
                    yield chunk[start:end]
                    start = end
                    continue
                buffer += chunk[start:end]
                if len(buffer) > limit:
                    overflow = True
                    overflow_size = len(buffer)
                    buffer.clear()
            if newline >= 0:
                if overflow:
                    overflow = False
                    if dropped is not None:
                        dropped.append(overflow_size)
                    yield None
                else:
                    yield bytes(buffer)
                    buffer.clear()
            start = end
    if overflow:
        if dropped is not None:
            dropped.append(overflow_size)
        yield None
    elif buffer:
        yield bytes(buffer)


class _LineFeed:
    """Feeds decoded physical lines to csv.reader and tracks the current row's lines and bytes.

    Invalid UTF-8 is decoded with surrogateescape so that csv can still find the row's end; the
    row is then reported as INVALID_ENCODING.
    """

    def __init__(self, chunks: Iterable[bytes], first_line: int = 1, first_byte: int = 0) -> None:
        self._dropped: list[int] = []
        self._lines = physical_lines(chunks, dropped=self._dropped)
        self.lines_read = first_line - 1  # a range starts on its own line (P35)
        # The object offset after the lines read, BOM included (range offsets, P33).
        self.bytes_read = first_byte
        self.row_start_byte = 0
        self.row_bytes = 0
        self.row_invalid = False

    def start_row(self) -> None:
        self.row_start_byte = self.bytes_read
        self.row_bytes = 0
        self.row_invalid = False

    def __iter__(self) -> "_LineFeed":
        return self

    def __next__(self) -> str:
        raw = next(self._lines)
        self.lines_read += 1
        if raw is None:
            self.bytes_read += self._dropped.pop()
            raise _RowTooLong
        self.bytes_read += len(raw)
        if self.lines_read == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        self.row_bytes += len(raw)
        if self.row_bytes > MAX_ROW_BYTES:
            raise _RowTooLong
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.row_invalid = True
            return raw.decode("utf-8", "surrogateescape")


def _next_csv_row(reader: Any, feed: _LineFeed) -> tuple[int, list[str] | RecordError | None]:
    """(start line, cells or row-level error) of the next non-blank row; cells None at the end.

    The start line is the physical line on which the row begins (decisions P11, P12).
    """
    while True:
        feed.start_row()
        line = feed.lines_read + 1
        try:
            cells = next(reader)
        except StopIteration:
            return line, None
        except _RowTooLong:
            return line, RecordError(MALFORMED_ROW, None, "row: longer than 1 MiB")
        except csv.Error as exc:
            if feed.row_invalid:
                return line, RecordError(INVALID_ENCODING, None, "row: bytes are not valid UTF-8")
            return line, RecordError(MALFORMED_ROW, None, f"row: {csv_reason(exc)}")
        if not cells:
            continue
        if feed.row_invalid:
            return line, RecordError(INVALID_ENCODING, None, "row: bytes are not valid UTF-8")
        return line, cells


# csv.Error texts are CPython's (and change between versions); messages name the reason in the
# contract's words instead (contract/decisions.md, "Message texts").
_CSV_REASONS = (
    ("',' expected after", "a closing quote must be followed by ',' or the line end"),
    ("unexpected end of data", "a quoted cell is not closed at the end of the file"),
    ("new-line character seen in unquoted field", "a bare CR inside an unquoted cell"),
    ("field larger than field limit", f"a cell longer than {CSV_FIELD_LIMIT} characters"),
)


def csv_reason(exc: csv.Error) -> str:
    """The reason a row is unreadable, in the contract's words (P10, P12)."""
    text = str(exc)
    for prefix, reason in _CSV_REASONS:
        if text.startswith(prefix):
            return f"unreadable CSV, {reason}"
    return "unreadable CSV"


def quoted(text: str) -> str:
    """A name in a message: a JSON string literal (the same in every implementation)."""
    return json.dumps(text, ensure_ascii=False)


def check_header(names: Sequence[str]) -> FileError | None:
    """INVALID_HEADER for an unknown, empty or duplicate name, or a missing column (P13)."""
    seen: set[str] = set()
    for name in names:
        shown = name[:ECHO_MAX_KEY_CHARS]
        if name not in _FIELD_SET:
            return FileError(INVALID_HEADER, f"header: unknown column {quoted(shown)}")
        if name in seen:
            return FileError(INVALID_HEADER, f"header: duplicate column {quoted(shown)}")
        seen.add(name)
    for name in REQUIRED_FIELDS:
        if name not in seen:
            return FileError(INVALID_HEADER, f"header: missing required column {quoted(name)}")
    return None


def csv_rows(chunks: Iterable[bytes]) -> FileError | Iterator[SourceRow]:
    """Read the header now; return a lazy iterator over the data rows (never all in memory)."""
    feed = _LineFeed(chunks)
    opened = _csv_header(feed)
    if isinstance(opened, FileError):
        return opened
    reader, names = opened
    return _csv_data_rows(reader, feed, names)


def _csv_header(feed: _LineFeed) -> FileError | tuple[Any, list[str]]:
    """The reader over `feed` and the checked header names (P13), or the header's file error."""
    reader = csv.reader(feed, strict=True)
    _, header = _next_csv_row(reader, feed)
    if header is None:
        return FileError(EMPTY_FILE, "file: no header row")
    if isinstance(header, RecordError):
        if header.code == INVALID_ENCODING:
            return FileError(INVALID_ENCODING, "header: bytes are not valid UTF-8")
        return FileError(MALFORMED_FILE, "header: " + header.message.removeprefix("row: "))
    names = [trim(name) for name in header]
    problem = check_header(names)
    if problem is not None:
        return problem
    return reader, names


def _csv_data_rows(reader: Any, feed: _LineFeed, names: list[str]) -> Iterator[SourceRow]:
    width = len(names)
    while True:
        line, row = _next_csv_row(reader, feed)
        if row is None:
            return
        if isinstance(row, RecordError):
            yield SourceRow(line, None, row)
        elif len(row) != width:
            error = RecordError(
                MALFORMED_ROW, None, f"row: {len(row)} cells where the header has {width}"
            )
            yield SourceRow(line, None, error)
        else:
            yield SourceRow(line, dict(zip(names, row, strict=True)))


# --------------------------------------------------------------------------------------------
# JSON documents.


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _exceeds_depth(document: Any, limit: int) -> bool:
    if type(document) is not list and type(document) is not dict:
        return False
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def _has_lone_surrogate(document: Any) -> bool:
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE_RE.search(node):
                return True
        elif type(node) is dict:
            stack.extend(node.keys())
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return False


def _load_json(text: str, depth_limit: int) -> FileError | Any:
    """A JSON value parsed with P14's checks (constants, nesting, lone surrogates), or why not.
    `depth_limit`: the levels the value may use (the document's top level is level 1)."""
    try:
        document = json.loads(
            text, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=_reject_constant
        )
    except RecursionError:
        return FileError(MALFORMED_FILE, f"file: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    except json.JSONDecodeError as exc:  # CPython's wording is left out (not the contract's)
        return FileError(
            MALFORMED_FILE, f"file: not valid JSON at line {exc.lineno}, column {exc.colno}"
        )
    except ValueError as exc:  # a constant, from _reject_constant
        return FileError(MALFORMED_FILE, f"file: not valid JSON ({exc})")
    if _exceeds_depth(document, depth_limit):
        return FileError(MALFORMED_FILE, f"file: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE_ESCAPE_RE.search(text) and _has_lone_surrogate(document):
        return FileError(MALFORMED_FILE, "file: JSON string escapes a lone UTF-16 surrogate")
    return document


def parse_json_document(data: bytes) -> FileError | list[Any]:
    """The list of records of a JSON file, or its file error (P14)."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return FileError(INVALID_ENCODING, "file: not valid UTF-8")
    del data
    if not trim(text):
        return FileError(EMPTY_FILE, "file: no JSON content")
    document = _load_json(text, MAX_JSON_DEPTH)
    del text
    if isinstance(document, FileError):
        return document
    if isinstance(document, list):
        records = document
    elif (
        isinstance(document, dict)
        and list(document) == ["transactions"]
        and isinstance(document["transactions"], list)
    ):
        records = document["transactions"]
    else:
        return FileError(
            MALFORMED_FILE, 'file: top level must be an array or {"transactions": [...]}'
        )
    if not records:
        return FileError(EMPTY_FILE, "file: no records")
    return records


def json_row(index: int, record: Any) -> SourceRow:
    """One array element as a row: its line is its 0-based index."""
    if isinstance(record, dict):
        return SourceRow(index, record)
    return SourceRow(
        index, None, RecordError(INVALID_FORMAT, None, "record: must be a JSON object")
    )


def json_rows(records: list[Any]) -> Iterator[SourceRow]:
    for index, record in enumerate(records):
        yield json_row(index, record)


def file_format(key: str) -> str | None:
    lowered = key.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith(".json"):
        return "json"
    return None


# --------------------------------------------------------------------------------------------
# Messages (design.md section 5).


@dataclass(frozen=True)
class SourceInfo:
    bucket: str
    key: str
    version_id: str | None
    last_modified: int | None

    def object_fields(self) -> dict[str, str | None]:
        """The object version read, as messages and log lines name it."""
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id}

    def to_json(self, line: int | None) -> dict[str, Any]:
        return {**self.object_fields(), "line": line, "last_modified": self.last_modified}


def mask_account(value: Any) -> str:
    """'****' plus the last 4 characters; only '****' for short or non-text values (P20)."""
    if not isinstance(value, str):
        return "****"
    text = trim(value)
    return "****" + text[-4:] if len(text) > 4 else "****"


def _echo_text(value: Any) -> str:
    if isinstance(value, str):
        text = trim(value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text[:ECHO_MAX_VALUE_CHARS]


def masked_record(values: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The input record for the errors path: account_id masked, description dropped (P20)."""
    if values is None:
        return None
    out: dict[str, str] = {}
    for key, value in values.items():
        if len(out) >= ECHO_MAX_KEYS:
            break
        if key == "description" or value is None:
            continue
        name = str(key)[:ECHO_MAX_KEY_CHARS]
        out[name] = mask_account(value) if key == "account_id" else _echo_text(value)
    return out


def candidate_transaction_id(values: Mapping[str, Any] | None) -> str | None:
    if values is None:
        return None
    text = field_text(values, "transaction_id")
    if isinstance(text, str) and _TRANSACTION_ID_RE.fullmatch(text):
        return text
    return None


def record_error_message(
    error: RecordError,
    source: SourceInfo,
    line: int,
    values: Mapping[str, Any] | None,
    failed_at: int,
    transaction_id: str | None = None,
) -> dict[str, Any]:
    return {
        "kind": "record_error",
        "error_code": error.code,
        "error_message": error.message[:MAX_TEXT_IN_MESSAGE],
        "field": error.field,
        "transaction_id": transaction_id or candidate_transaction_id(values),
        "source": source.to_json(line),
        "record": masked_record(values),
        "failed_at": failed_at,
        "processor": PROCESSOR,
    }


def file_error_message(error: FileError, source: SourceInfo, failed_at: int) -> dict[str, Any]:
    return {
        "kind": "file_error",
        "error_code": error.code,
        "error_message": error.message[:MAX_TEXT_IN_MESSAGE],
        "source": source.to_json(None),
        "failed_at": failed_at,
        "processor": PROCESSOR,
    }


def transaction_to_json(tx: Transaction) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "transaction_id": tx.transaction_id,
        "account_id": tx.account_id,
        "amount": tx.amount,
        "currency": tx.currency,
        "transaction_type": tx.transaction_type,
        "timestamp": tx.timestamp,
    }
    if tx.merchant_id is not None:
        doc["merchant_id"] = tx.merchant_id
    if tx.description is not None:
        doc["description"] = tx.description
    return doc


def retry_record_message(
    tx: Transaction, source: SourceInfo, line: int, code: str, message: str, failed_at: int
) -> dict[str, Any]:
    return {
        "kind": "retry_record",
        "record": transaction_to_json(tx),
        "source": source.to_json(line),
        "error": {"code": code, "message": message[:MAX_TEXT_IN_MESSAGE]},
        "failed_at": failed_at,
        "processor": PROCESSOR,
    }


def resume_file_message(
    bucket: str, key: str, version_id: str | None, start_line: int
) -> dict[str, Any]:
    return {
        "kind": "resume_file",
        "bucket": bucket,
        "key": key,
        "version_id": version_id,
        "start_line": start_line,
    }


def _ascii_json(value: Any) -> str:
    """Compact JSON text with every non-ASCII character escaped: the form of every message body
    this function writes (Q1)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def encode_message(body: Mapping[str, Any]) -> str:
    """Compact ASCII JSON under the SQS limit; an echoed record is dropped if it is too big."""
    text = _ascii_json(body)
    if len(text) > SQS_MAX_BYTES and body.get("record") is not None:
        if body.get("kind") == "retry_record":  # pragma: no cover - validated records are small
            raise ValueError("retry_record message over the SQS size limit")
        text = _ascii_json({**body, "record": None})
    return text


def _message_batches(bodies: Sequence[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode("utf-8"))
        if batch and (len(batch) == SQS_BATCH_ENTRIES or size + length > SQS_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += length
    if batch:
        yield batch


def send_messages(sqs: "SQSClient", queue_url: str, bodies: Sequence[str]) -> None:
    """SendMessageBatch in batches of 10; retry every Failed entry; raise if any is still failing.

    Raising (TransientError) makes the invocation or the queue message fail and be retried, so
    no message is ever lost.
    """
    for batch in _message_batches(bodies):
        pending = {str(index): body for index, body in enumerate(batch)}
        problem = ""
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                time.sleep(0.05 * 2**attempt)
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": ident, "MessageBody": body} for ident, body in pending.items()
            ]
            try:
                response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                problem = _error_code(exc)
                continue
            succeeded = {entry.get("Id") for entry in response.get("Successful") or []}
            failed = response.get("Failed") or []
            if failed:
                problem = str(failed[0].get("Code") or "Failed entry")
            pending = {i: b for i, b in pending.items() if i not in succeeded}
            if not pending:
                break
        if pending:
            raise TransientError(
                f"SendMessageBatch left {len(pending)} message(s) unsent: {problem}"
            )


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message") or "")[:MAX_TEXT_IN_MESSAGE]
    return str(exc)[:MAX_TEXT_IN_MESSAGE]


# --------------------------------------------------------------------------------------------
# DynamoDB writes (design.md section 4).


STATUS_PROCESSED = "PROCESSED"


@dataclass(frozen=True)
class WriteOutcome:
    status: str  # "stored" | "duplicate" | "conflict" | "failed"
    error_code: str = ""
    error_message: str = ""


def build_item(
    tx: Transaction, source: SourceInfo, line: int, ingested_at: int, shards: int
) -> dict[str, dict[str, str]]:
    item: dict[str, dict[str, str]] = {
        "transaction_id": {"S": tx.transaction_id},
        "account_id": {"S": tx.account_id},
        "amount": {"N": tx.amount},
        "currency": {"S": tx.currency},
        "transaction_type": {"S": tx.transaction_type},
        "timestamp": {"N": str(tx.timestamp)},
    }
    if tx.merchant_id is not None:
        item["merchant_id"] = {"S": tx.merchant_id}
    if tx.description is not None:
        item["description"] = {"S": tx.description}
    item["status"] = {"S": STATUS_PROCESSED}
    item["status_shard"] = {"S": status_shard(STATUS_PROCESSED, tx.transaction_id, shards)}
    item["source_bucket"] = {"S": source.bucket}
    item["source_key"] = {"S": source.key}
    if source.version_id:
        item["source_version_id"] = {"S": source.version_id}
    item["source_line"] = {"N": str(line)}
    item["ingested_at"] = {"N": str(ingested_at)}
    item["processor"] = {"S": PROCESSOR}
    item["record_hash"] = {"S": record_hash(tx)}
    return item


def put_transaction(
    dynamodb: "DynamoDBClient", table_name: str, item: Mapping[str, Any]
) -> WriteOutcome:
    """Conditional PutItem; compare record_hash with the stored item when it already exists."""
    try:
        dynamodb.put_item(
            TableName=table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(transaction_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return WriteOutcome("stored")
    except ClientError as exc:
        code = _error_code(exc)
        if code == "ConditionalCheckFailedException":
            # botocore's ClientError response type does not list Item; DynamoDB returns it here
            # because of ReturnValuesOnConditionCheckFailure.
            old = exc.response.get("Item")
            old_hash = (old.get("record_hash") or {}).get("S") if isinstance(old, dict) else None
            if old_hash is None:
                return WriteOutcome("failed", code, "stored item not returned for comparison")
            if old_hash == item["record_hash"]["S"]:
                return WriteOutcome("duplicate")
            return WriteOutcome("conflict")
        return WriteOutcome("failed", code, _error_text(exc))
    except BotoCoreError as exc:
        return WriteOutcome("failed", _error_code(exc), _error_text(exc))


def put_yielding(
    dynamodb: "DynamoDBClient",
    table_name: str,
    item: Mapping[str, Any],
    inv: Invocation,
    backoff: WriteBackoff,
) -> WriteOutcome:
    """put_transaction within the invocation's limit of writes in flight. A throttled write
    waits (backoff), holding its slot, and is sent again while the record has retries left and
    the invocation has time beyond its margin; then it is reported failed, a retry_record (P37,
    P18)."""
    limiter = inv.writes
    retry = 0
    ticket = limiter.acquire()
    gave_up = False
    try:
        while True:
            outcome = put_transaction(dynamodb, table_name, item)
            if outcome.status != "failed" or outcome.error_code not in THROTTLING_CODES:
                return outcome
            wait_ms = backoff.delay_ms(retry)
            gave_up = retry >= backoff.retries or not inv.can_wait(wait_ms)
            ticket = limiter.throttle(ticket, retried=not gave_up)
            if gave_up:
                return outcome
            retry += 1
            time.sleep(wait_ms / 1000)
    finally:
        # Answered (or an exception, counted as Rust counts a cancelled write): the answer
        # counts towards raising the limit; given up: its throttle is counted already.
        if gave_up:
            limiter.release_counted()
        else:
            limiter.release_answered()


def write_items(
    dynamodb: "DynamoDBClient",
    table_name: str,
    items: Sequence[Mapping[str, Any]],
    pool: ThreadPoolExecutor,
    inv: Invocation,
    backoff: WriteBackoff,
) -> list[WriteOutcome]:
    """Concurrent conditional writes that yield to throttling (P37); items sharing a key go in
    file order (decision P17)."""
    waves: list[list[int]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        key = (item["transaction_id"]["S"], item["timestamp"]["N"])
        wave = seen.get(key, 0)
        seen[key] = wave + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(index)
    outcomes: list[WriteOutcome] = [WriteOutcome("failed")] * len(items)
    for wave_indexes in waves:
        results = pool.map(
            lambda i: put_yielding(dynamodb, table_name, items[i], inv, backoff),
            wave_indexes,
        )
        for index, outcome in zip(wave_indexes, results, strict=True):
            outcomes[index] = outcome
    return outcomes


# --------------------------------------------------------------------------------------------
# Per-file status (decisions P26 to P31): one item per object version in the status table,
# updated only by conditional UpdateItem, so that every invocation working on a file (first run,
# resumes, re-runs of a killed invocation) adds each row exactly once.

STATUS_RANGE = "0"  # the id of the range that covers the whole file (P28: ranges of issue 12)
STATE_RECEIVED = "received"
STATE_PROCESSING = "processing"
STATE_DONE = "done"
STATE_FAILED = "failed"
_STATUS_NAMES = {"#state": "state", "#stored": "stored"}  # reserved words in DynamoDB


def iso_ms(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and "Z" (the status item's activity times)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def status_key(key: str, version_id: str | None) -> dict[str, dict[str, str]]:
    """The status item's key; an unversioned object is version "null", as S3 names it (P26)."""
    return {"source_key": {"S": key}, "source_version_id": {"S": version_id or "null"}}


def _num(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _status_common(now: int) -> tuple[list[str], dict[str, Any]]:
    """SET clauses every creating update shares: the item's attributes when it is new (P26)."""
    clauses = [
        "source_bucket = :bucket",
        "processor = :processor",
        "last_activity = :now",
        "first_activity = if_not_exists(first_activity, :now)",
        "activity_day = if_not_exists(activity_day, :day)",
        "rows_seen = if_not_exists(rows_seen, :zero)",
        "#stored = if_not_exists(#stored, :zero)",
        "duplicates = if_not_exists(duplicates, :zero)",
        "retries_pending = if_not_exists(retries_pending, :zero)",
        "record_errors = if_not_exists(record_errors, :no_errors)",
        "cursors = if_not_exists(cursors, :cursors)",
        "ranges_open = if_not_exists(ranges_open, :one)",
    ]
    stamp = iso_ms(now)
    values = {
        ":processor": {"S": PROCESSOR},
        ":now": {"S": stamp},
        ":day": {"S": stamp[:10]},
        ":zero": _num(0),
        ":one": _num(1),
        ":no_errors": {"M": {}},
        ":cursors": {"M": {STATUS_RANGE: _num(0)}},
    }
    return clauses, values


def _status_update(dynamodb: Any, table: str, **params: Any) -> dict[str, Any] | None:
    """One UpdateItem; None when its condition failed (the update was already made: P29)."""
    try:
        return dict(dynamodb.update_item(TableName=table, **params))
    except ClientError as exc:
        if _error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise TransientError(f"UpdateItem (file status) failed: {_error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise TransientError(f"UpdateItem (file status) failed: {_error_code(exc)}") from exc


def status_open(aws: Aws, cfg: Config, source: SourceInfo) -> None:
    """The object was taken: create the item as "received", or touch it (P27)."""
    if not cfg.file_status_table:
        return
    now = now_ms()
    clauses, values = _status_common(now)
    clauses.append("#state = if_not_exists(#state, :received)")
    _status_update(
        aws.dynamodb,
        cfg.file_status_table,
        Key=status_key(source.key, source.version_id),
        UpdateExpression="SET " + ", ".join(clauses),
        ExpressionAttributeNames=_STATUS_NAMES,
        ExpressionAttributeValues={
            **values,
            ":bucket": {"S": source.bucket},
            ":received": {"S": STATE_RECEIVED},
        },
    )


def status_failed(aws: Aws, cfg: Config, source: SourceInfo, error: FileError) -> None:
    """A file error: state "failed" with file_error, unless the version is done already (P30)."""
    if not cfg.file_status_table:
        return
    now = now_ms()
    clauses, values = _status_common(now)
    clauses += ["#state = :failed", "file_error = :file_error"]
    _status_update(
        aws.dynamodb,
        cfg.file_status_table,
        Key=status_key(source.key, source.version_id),
        UpdateExpression="SET " + ", ".join(clauses),
        ConditionExpression="attribute_not_exists(#state) OR #state <> :done",
        ExpressionAttributeNames=_STATUS_NAMES,
        ExpressionAttributeValues={
            **values,
            ":bucket": {"S": source.bucket},
            ":failed": {"S": STATE_FAILED},
            ":done": {"S": STATE_DONE},
            ":file_error": {
                "M": {
                    "error_code": {"S": error.code},
                    "error_message": {"S": error.message[:MAX_TEXT_IN_MESSAGE]},
                }
            },
        },
    )


@dataclass
class BatchStatus:
    """What one batch adds to its file's status (P28)."""

    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    record_errors: dict[str, int] | None = None
    retry_lines: list[int] | None = None
    # (line, "stored" | "duplicate" | "conflict") of its rows that ended here: a re-read
    # resolves those of them still pending from an earlier count (P32).
    settled: list[tuple[int, str]] | None = None


def status_batch(
    aws: Aws,
    cfg: Config,
    source: SourceInfo,
    counted: BatchStatus,
    cursor_from: int,
    cursor_to: int,
    end_of_range: bool,
    range_id: str = STATUS_RANGE,
) -> bool:
    """Add one batch to the status, once: only while the range's cursor is `cursor_from` (P28).

    Returns False when the batch was counted before (a re-run re-read it: P29)."""
    if not cfg.file_status_table:
        return True
    now = now_ms()
    names = {**_STATUS_NAMES, "#range": range_id}
    values: dict[str, Any] = {
        ":processing": {"S": STATE_PROCESSING},
        ":now": {"S": iso_ms(now)},
        ":processor": {"S": PROCESSOR},
        ":from": _num(cursor_from),
        ":to": _num(cursor_to),
        ":rows": _num(counted.rows),
        ":stored": _num(counted.stored),
        ":duplicates": _num(counted.duplicates),
        ":retries": _num(len(counted.retry_lines or [])),
    }
    adds = [
        "rows_seen :rows",
        "#stored :stored",
        "duplicates :duplicates",
        "retries_pending :retries",
    ]
    for index, (code, count) in enumerate(sorted((counted.record_errors or {}).items())):
        names[f"#e{index}"] = code
        values[f":e{index}"] = _num(count)
        adds.append(f"record_errors.#e{index} :e{index}")
    if counted.retry_lines:
        values[":retry_lines"] = {"NS": [str(line) for line in counted.retry_lines]}
        adds.append("pending_retry_lines :retry_lines")
    if end_of_range:
        values[":minus_one"] = _num(-1)
        adds.append("ranges_open :minus_one")
    expression = (
        "SET #state = :processing, last_activity = :now, processor = :processor,"
        " cursors.#range = :to ADD " + ", ".join(adds)
    )
    try:
        aws.dynamodb.update_item(
            TableName=cfg.file_status_table,
            Key=status_key(source.key, source.version_id),
            UpdateExpression=expression,
            ConditionExpression="cursors.#range = :from",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if _error_code(exc) != "ConditionalCheckFailedException":
            raise TransientError(f"UpdateItem (file status) failed: {_error_code(exc)}") from exc
        old_item = exc.response.get("Item")
        status_reread_resolved(
            aws, cfg, source, old_item if isinstance(old_item, dict) else {}, counted.settled
        )
        return False
    except BotoCoreError as exc:
        raise TransientError(f"UpdateItem (file status) failed: {_error_code(exc)}") from exc
    return True


def status_reread_resolved(
    aws: Aws,
    cfg: Config,
    source: SourceInfo,
    old_item: Mapping[str, Any],
    settled: Sequence[tuple[int, str]] | None,
) -> None:
    """A batch counted before was read again (a replay's resume_file, a re-run, an S3 event
    again): each of its rows that the earlier count left pending (pending_retry_lines of the
    item as it was, ALL_OLD) and that this re-read stored, found duplicate or DUPLICATE_CONFLICT
    is resolved as its retry_record would be, once (P29's conditional UpdateItem; P32)."""
    pending_lines = (old_item.get("pending_retry_lines") or {}).get("NS") or []
    pending = {int(line) for line in pending_lines}
    for line, outcome in sorted(settled or []):
        if line in pending:
            # A concurrent retry_record of the same line may win: contains() lets one move it.
            status_retry_resolved(aws, cfg, source, line, outcome)


def status_finish(aws: Aws, cfg: Config, key: str, version_id: str | None) -> None:
    """ "done" once every range reached its end and no retry is pending (P28); idempotent."""
    if not cfg.file_status_table:
        return
    _status_update(
        aws.dynamodb,
        cfg.file_status_table,
        Key=status_key(key, version_id),
        UpdateExpression="SET #state = :done, last_activity = :now",
        ConditionExpression=(
            "#state = :processing AND ranges_open = :zero AND retries_pending = :zero"
        ),
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={
            ":done": {"S": STATE_DONE},
            ":processing": {"S": STATE_PROCESSING},
            ":now": {"S": iso_ms(now_ms())},
            ":zero": _num(0),
        },
    )


def _range_cursor(item: Mapping[str, Any], line: int) -> int | None:
    """The cursor of the range holding `line` (ranges are keyed by their first line: P28)."""
    cursors = (item.get("cursors") or {}).get("M") or {}
    starts = sorted(int(start) for start in cursors if start.isdigit() and int(start) <= line)
    if not starts:
        return None
    value = cursors[str(starts[-1])].get("N")
    return int(value) if value is not None else None


def status_retry_resolved(
    aws: Aws, cfg: Config, source: SourceInfo, line: int, outcome: str
) -> bool:
    """A pending retry_record ended (stored, duplicate or DUPLICATE_CONFLICT): move its row from
    retries_pending to its outcome, once (P29). False: its batch is not counted yet, so the
    message must come back later."""
    if not cfg.file_status_table:
        return True
    # Only the names the expression uses (DynamoDB refuses unused ones).
    names: dict[str, str] = {}
    if outcome == "stored":
        names["#stored"] = "stored"
        counter = "#stored"
    elif outcome == "duplicate":
        counter = "duplicates"
    else:
        names["#code"] = DUPLICATE_CONFLICT
        counter = "record_errors.#code"
    # DynamoDB refuses an empty ExpressionAttributeNames map: send it only when used.
    optional_names: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
    try:
        aws.dynamodb.update_item(
            TableName=cfg.file_status_table,
            Key=status_key(source.key, source.version_id),
            UpdateExpression=(
                "SET last_activity = :now, processor = :processor"
                f" ADD retries_pending :minus_one, {counter} :one"
                " DELETE pending_retry_lines :line_set"
            ),
            ConditionExpression="contains(pending_retry_lines, :line)",
            **optional_names,
            ExpressionAttributeValues={
                ":now": {"S": iso_ms(now_ms())},
                ":processor": {"S": PROCESSOR},
                ":minus_one": _num(-1),
                ":one": _num(1),
                ":line": _num(line),
                ":line_set": {"NS": [str(line)]},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if _error_code(exc) != "ConditionalCheckFailedException":
            raise TransientError(f"UpdateItem (file status) failed: {_error_code(exc)}") from exc
        old_item = exc.response.get("Item")
        cursor = _range_cursor(old_item if isinstance(old_item, dict) else {}, line)
        # Not pending: resolved before, or never counted as pending (a re-run stored it), once
        # the batch holding the line is counted; before that, the batch update is yet to come.
        return cursor is None or cursor > line
    except BotoCoreError as exc:
        raise TransientError(f"UpdateItem (file status) failed: {_error_code(exc)}") from exc
    status_finish(aws, cfg, source.key, source.version_id)
    return True


# --------------------------------------------------------------------------------------------
# File processing.


@dataclass(frozen=True)
class FileRange:
    """One range of a split file (P33): its id is the source_line of its first row."""

    line: int
    start_byte: int
    end_byte: int  # exclusive


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None = None
    event_time: int | None = None  # epoch ms of the S3 event, fallback for last_modified
    file_range: FileRange | None = None  # a range message's range (P35); None: the whole file


@dataclass
class FileResult:
    bucket: str
    key: str
    version_id: str | None = None
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    invalid: int = 0
    retried: int = 0
    file_error: str | None = None
    resume_line: int | None = None
    elapsed_ms: int = 0


@dataclass
class BatchCounts:
    stored: int = 0
    duplicates: int = 0
    invalid: int = 0
    retried: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)  # for the file status
    retry_lines: list[int] = field(default_factory=list)  # lines sent as retry_record
    # (line, "stored" | "duplicate" | "conflict"): rows that ended in this batch (P32)
    settled_lines: list[tuple[int, str]] = field(default_factory=list)

    def add_error(self, code: str) -> None:
        self.invalid += 1
        self.errors_by_code[code] = self.errors_by_code.get(code, 0) + 1


@dataclass(frozen=True)
class OpenedObject:
    body: Any
    content_length: int
    last_modified: int | None
    version_id: str | None


def _is_not_found(exc: ClientError, with_version: bool) -> bool:
    code = _error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _NOT_FOUND_CODES or status == 404 or (with_version and code == "InvalidArgument")


def _datetime_ms(value: datetime | None) -> int | None:
    if value is None or not hasattr(value, "timestamp"):
        return None
    return int(value.timestamp()) * 1000 + value.microsecond // 1000


def open_object(
    s3: "S3Client", ref: ObjectRef, byte_range: tuple[int, int] | None = None
) -> OpenedObject | FileError:
    """GetObject of the version, or of its bytes [first, end) (a range of a split file: P35)."""
    params: GetObjectRequestTypeDef = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        params["VersionId"] = ref.version_id
    if byte_range is not None:
        params["Range"] = f"bytes={byte_range[0]}-{byte_range[1] - 1}"
    try:
        response = s3.get_object(**params)
    except ClientError as exc:
        if _is_not_found(exc, bool(ref.version_id)):
            return FileError(OBJECT_NOT_FOUND, "file: object (version) not found")
        raise TransientError(f"GetObject failed: {_error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise TransientError(f"GetObject failed: {_error_code(exc)}") from exc
    return OpenedObject(
        body=response["Body"],
        content_length=int(response.get("ContentLength") or 0),
        last_modified=_datetime_ms(response.get("LastModified")),
        version_id=ref.version_id or response.get("VersionId") or None,
    )


def handle_batch(
    aws: Aws,
    cfg: Config,
    source: SourceInfo,
    batch: Sequence[SourceRow],
    pool: ThreadPoolExecutor,
    inv: Invocation,
) -> BatchCounts:
    """Validate, write and report one batch; all its messages are sent before it returns."""
    counts = BatchCounts()
    timestamp = now_ms()
    dlq_messages: list[str] = []
    retry_messages: list[str] = []
    valid: list[tuple[SourceRow, Transaction]] = []
    for row in batch:
        result = row.error or validate_record(row.values or {})
        if isinstance(result, RecordError):
            message = record_error_message(result, source, row.line, row.values, timestamp)
            dlq_messages.append(encode_message(message))
            counts.add_error(result.code)
        else:
            valid.append((row, result))
    items = [
        build_item(tx, source, row.line, timestamp, cfg.status_index_shards) for row, tx in valid
    ]
    outcomes = write_items(aws.writes, cfg.table_name, items, pool, inv, cfg.write_backoff)
    for (row, tx), outcome in zip(valid, outcomes, strict=True):
        if outcome.status in ("stored", "duplicate", "conflict"):
            counts.settled_lines.append((row.line, outcome.status))
        if outcome.status == "stored":
            counts.stored += 1
        elif outcome.status == "duplicate":
            counts.duplicates += 1
        elif outcome.status == "conflict":
            counts.add_error(DUPLICATE_CONFLICT)
            error = DUPLICATE_CONFLICT_ERROR
            message = record_error_message(
                error, source, row.line, row.values, timestamp, tx.transaction_id
            )
            dlq_messages.append(encode_message(message))
        else:
            counts.retried += 1
            counts.retry_lines.append(row.line)
            message = retry_record_message(
                tx, source, row.line, outcome.error_code, outcome.error_message, timestamp
            )
            retry_messages.append(encode_message(message))
    send_messages(aws.sqs, cfg.dlq_url, dlq_messages)
    send_messages(aws.sqs, cfg.queue_url, retry_messages)
    return counts


def _process_rows(
    aws: Aws,
    cfg: Config,
    source: SourceInfo,
    rows: FileError | Iterator[SourceRow],
    start_line: int,
    inv: Invocation,
    result: FileResult,
    file_range: FileRange | None = None,
) -> None:
    """Runs the batches of a file's (or a range's) rows from `start_line` on, then settles the
    file: its reader's FileError, or EMPTY_FILE for a whole file without rows, is reported;
    otherwise the status is finished unless a resume_file carries the rest (P21, P28)."""
    if isinstance(rows, FileError):
        _report_file_error(aws, cfg, source, rows, result)
        return
    cursor = start_line  # where this invocation expects the status's cursor (P28)
    with ThreadPoolExecutor(max_workers=cfg.write_workers) as pool:
        pending = next(rows, None)
        while pending is not None:
            batch: list[SourceRow] = []
            while pending is not None and len(batch) < cfg.batch_rows:
                result.rows += 1
                if pending.line >= start_line:
                    batch.append(pending)
                pending = next(rows, None)
            if batch:
                counts = handle_batch(aws, cfg, source, batch, pool, inv)
                result.stored += counts.stored
                result.duplicates += counts.duplicates
                result.invalid += counts.invalid
                result.retried += counts.retried
                # The row after this batch, or past the last row at the end of the file.
                cursor_to = pending.line if pending is not None else batch[-1].line + 1
                status_batch(
                    aws,
                    cfg,
                    source,
                    BatchStatus(
                        rows=len(batch),
                        stored=counts.stored,
                        duplicates=counts.duplicates,
                        record_errors=counts.errors_by_code,
                        retry_lines=counts.retry_lines,
                        settled=counts.settled_lines,
                    ),
                    cursor,
                    cursor_to,
                    end_of_range=pending is None,
                    range_id=STATUS_RANGE if file_range is None else str(file_range.line),
                )
                cursor = cursor_to
                inv.batch_done()
            if pending is not None and inv.expired():
                message = resume_file_message(
                    source.bucket, source.key, source.version_id, pending.line
                )
                if file_range is not None:  # the same range, from the next row (P35)
                    message = range_message(source, file_range, pending.line)
                send_messages(aws.sqs, cfg.queue_url, [encode_message(message)])
                result.resume_line = pending.line
                return
    if result.rows == 0 and file_range is None:
        _report_file_error(aws, cfg, source, FileError(EMPTY_FILE, "file: no rows"), result)
    else:
        status_finish(aws, cfg, source.key, source.version_id)


def _report_file_error(
    aws: Aws, cfg: Config, source: SourceInfo, error: FileError, result: FileResult
) -> None:
    send_messages(
        aws.sqs, cfg.dlq_url, [encode_message(file_error_message(error, source, now_ms()))]
    )
    status_failed(aws, cfg, source, error)
    result.file_error = error.code


def process_object(
    aws: Aws, cfg: Config, ref: ObjectRef, start_line: int, inv: Invocation
) -> FileResult:
    """Process one object from `start_line` on. File errors are results; raises TransientError."""
    if ref.file_range is not None:
        return process_range(aws, cfg, ref, ref.file_range, start_line, inv)
    started = time.monotonic()
    result = FileResult(bucket=ref.bucket, key=ref.key, version_id=ref.version_id)
    unread = SourceInfo(ref.bucket, ref.key, ref.version_id, ref.event_time)
    kind = file_format(ref.key)
    if kind is None:
        error = FileError(MALFORMED_FILE, "file: unsupported type, expected a .csv or .json key")
        _report_file_error(aws, cfg, unread, error, result)
        return _finish(cfg, inv, result, started)
    opened = open_object(aws.s3, ref)
    if isinstance(opened, FileError):
        _report_file_error(aws, cfg, unread, opened, result)
        return _finish(cfg, inv, result, started)
    result.version_id = opened.version_id
    source = SourceInfo(ref.bucket, ref.key, opened.version_id, opened.last_modified)
    try:
        status_open(aws, cfg, source)
        if opened.content_length > cfg.max_file_bytes:
            error = FileError(FILE_TOO_LARGE, f"file: larger than {cfg.max_file_bytes} bytes")
            _report_file_error(aws, cfg, source, error, result)
            return _finish(cfg, inv, result, started)
        if start_line == 0 and range_step(cfg, kind, opened.content_length):
            if split_object(aws, cfg, source, opened, kind, result):
                return _finish(cfg, inv, result, started)
            # An unsplit run began before (P34), or a JSON document not split (P33): go on
            # unsplit, from a fresh read.
            opened.body.close()
            reopened = open_object(aws.s3, replace(ref, version_id=opened.version_id))
            if isinstance(reopened, FileError):
                _report_file_error(aws, cfg, source, reopened, result)
                return _finish(cfg, inv, result, started)
            opened = reopened
        if kind == "csv":
            rows: FileError | Iterator[SourceRow] = csv_rows(
                opened.body.iter_chunks(READ_CHUNK_BYTES)
            )
        else:
            # JSON is read whole, bounded by MAX_FILE_BYTES (design.md section 2, P14).
            records = parse_json_document(opened.body.read())
            rows = records if isinstance(records, FileError) else json_rows(records)
        _process_rows(aws, cfg, source, rows, start_line, inv, result)
    except (BotoCoreError, OSError) as exc:
        raise TransientError(f"reading the object failed: {_error_code(exc)}") from exc
    finally:
        opened.body.close()
    return _finish(cfg, inv, result, started)


def _finish(cfg: Config, inv: Invocation, result: FileResult, started: float) -> FileResult:
    result.elapsed_ms = int((time.monotonic() - started) * 1000)
    level = logging.WARNING if result.file_error else logging.INFO
    # Every field of the result: ids, counts and codes, never record contents.
    inv.log(level, "file error" if result.file_error else "file processed", **asdict(result))
    emit_metrics(
        cfg.metric_namespace,
        cfg.environment,
        {
            **record_count_metrics(
                result.stored, result.invalid, result.duplicates, result.retried
            ),
            "FilesFailed": (1 if result.file_error else 0, "Count"),
            "FileProcessingTime": (result.elapsed_ms, "Milliseconds"),
        },
    )
    return result


# --------------------------------------------------------------------------------------------
# Events.


def s3_event_refs(event: Any) -> list[ObjectRef] | None:
    """Objects named by an S3 event (keys URL-decoded), or None if this is not an S3 event."""
    if not isinstance(event, dict):
        return None
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return None
    refs: list[ObjectRef] = []
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            return None
        try:
            bucket = record["s3"]["bucket"]["name"]
            raw_key = record["s3"]["object"]["key"]
            version_id = record["s3"]["object"].get("versionId")
        except (KeyError, TypeError, AttributeError):
            return None
        if not isinstance(bucket, str) or not isinstance(raw_key, str):
            return None
        name = record.get("eventName")
        if isinstance(name, str) and not name.startswith("ObjectCreated"):
            log_event(logging.INFO, "ignored S3 event", event_name=name, bucket=bucket)
            continue
        event_time = record.get("eventTime")
        refs.append(
            ObjectRef(
                bucket=bucket,
                key=unquote_plus(raw_key),
                version_id=version_id if isinstance(version_id, str) and version_id else None,
                event_time=parse_rfc3339_ms(event_time) if isinstance(event_time, str) else None,
            )
        )
    return refs


def _is_sqs_event(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


@dataclass(frozen=True)
class RetryWork:
    message_id: str
    transaction: Transaction
    source: SourceInfo
    line: int


@dataclass(frozen=True)
class FileWork:
    message_id: str
    targets: tuple[tuple[ObjectRef, int], ...]


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def transaction_from_json(doc: Any) -> Transaction | None:
    """Rebuild a validated record from a retry_record message (None if it is not one)."""
    if not isinstance(doc, dict) or set(doc) - _FIELD_SET:
        return None
    timestamp = _int_or_none(doc.get("timestamp"))
    if timestamp is None or not MIN_TIMESTAMP_MS <= timestamp < MAX_TIMESTAMP_MS:
        return None
    texts = {name: doc.get(name) for name in FIELDS if name != "timestamp"}
    if any(value is not None and not isinstance(value, str) for value in texts.values()):
        return None
    # Re-validate every text field; the timestamp was checked above as epoch milliseconds.
    checked = validate_record({**texts, "timestamp": "2000-01-01T00:00:00Z"})
    if isinstance(checked, RecordError) or checked.amount != doc.get("amount"):
        return None
    return Transaction(
        transaction_id=checked.transaction_id,
        account_id=checked.account_id,
        amount=checked.amount,
        currency=checked.currency,
        transaction_type=checked.transaction_type,
        timestamp=timestamp,
        merchant_id=checked.merchant_id,
        description=checked.description,
    )


def _object_from_json(doc: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """The bucket, key and version id a message (or its source) names; None when the bucket or
    key is not text, or the version id is neither text nor null (an empty one is none)."""
    bucket, key, version = doc.get("bucket"), doc.get("key"), doc.get("version_id")
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None
    if version is not None and not isinstance(version, str):
        return None
    return bucket, key, version or None


def _source_from_json(doc: Any) -> tuple[SourceInfo, int] | None:
    if not isinstance(doc, dict):
        return None
    named = _object_from_json(doc)
    line = _int_or_none(doc.get("line"))
    if named is None or line is None:
        return None
    return SourceInfo(*named, _int_or_none(doc.get("last_modified"))), line


def parse_queue_message(message_id: str, body: str) -> RetryWork | FileWork | None:
    """Classify a main-queue message body; None when it is not in a known format."""
    try:
        return _parse_queue_message(message_id, json.loads(body))
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError):
        return None


def _parse_queue_message(message_id: str, doc: Any) -> RetryWork | FileWork | None:
    if not isinstance(doc, dict):
        return None
    kind = doc.get("kind")
    if kind == "retry_record":
        tx = transaction_from_json(doc.get("record"))
        located = _source_from_json(doc.get("source"))
        if tx is None or located is None:
            return None
        return RetryWork(message_id, tx, located[0], located[1])
    if kind == "resume_file":
        named = _object_from_json(doc)
        start = _int_or_none(doc.get("start_line"))
        if named is None or start is None:
            return None
        # A range message with a missing or bad range field raises ValueError: not our format.
        ref = ObjectRef(*named, file_range=range_from_json(doc))
        return FileWork(message_id, ((ref, start),))
    if kind is None:
        refs = s3_event_refs(doc)
        if refs is not None:
            return FileWork(message_id, tuple((ref, 0) for ref in refs))
    return None


def _process_files(
    aws: Aws, cfg: Config, work: FileWork, inv: Invocation, results: list[FileResult]
) -> None:
    for ref, start_line in work.targets:
        if inv.expired():
            # Out of time before this file started: defer it (decision P21).
            message = resume_file_message(ref.bucket, ref.key, ref.version_id, start_line)
            if ref.file_range is not None:  # a range stays a range (P35)
                source = SourceInfo(ref.bucket, ref.key, ref.version_id, None)
                message = range_message(source, ref.file_range, start_line)
            send_messages(aws.sqs, cfg.queue_url, [encode_message(message)])
            results.append(FileResult(ref.bucket, ref.key, ref.version_id, resume_line=start_line))
            continue
        results.append(process_object(aws, cfg, ref, start_line, inv))


def _retry_writes(aws: Aws, cfg: Config, works: Sequence[RetryWork], inv: Invocation) -> list[str]:
    """Write retried records; return the message ids that must be redelivered."""
    if not works:
        return []
    timestamp = now_ms()
    items = [
        build_item(w.transaction, w.source, w.line, timestamp, cfg.status_index_shards)
        for w in works
    ]
    with ThreadPoolExecutor(max_workers=cfg.write_workers) as pool:
        outcomes = write_items(aws.writes, cfg.table_name, items, pool, inv, cfg.write_backoff)
    inv.batch_done()
    failed: list[str] = []
    counts = BatchCounts()
    conflicts: list[tuple[RetryWork, str]] = []
    resolved: list[tuple[RetryWork, str]] = []
    for work, outcome in zip(works, outcomes, strict=True):
        if outcome.status == "stored":
            counts.stored += 1
            resolved.append((work, "stored"))
        elif outcome.status == "duplicate":
            counts.duplicates += 1
            resolved.append((work, "duplicate"))
        elif outcome.status == "conflict":
            counts.invalid += 1
            error = DUPLICATE_CONFLICT_ERROR
            values = transaction_to_json(work.transaction)
            values["timestamp"] = str(work.transaction.timestamp)
            message = record_error_message(
                error, work.source, work.line, values, timestamp, work.transaction.transaction_id
            )
            conflicts.append((work, encode_message(message)))
        else:
            counts.retried += 1
            failed.append(work.message_id)
    for work, body in conflicts:
        try:
            send_messages(aws.sqs, cfg.dlq_url, [body])
            resolved.append((work, "conflict"))
        except TransientError:
            failed.append(work.message_id)
    for work, outcome_name in resolved:
        # The row leaves retries_pending (P29); not yet pending: the message comes back later.
        try:
            if not status_retry_resolved(aws, cfg, work.source, work.line, outcome_name):
                failed.append(work.message_id)
        except TransientError:
            failed.append(work.message_id)
    inv.log(
        logging.INFO,
        "retried records",
        messages=len(works),
        stored=counts.stored,
        duplicates=counts.duplicates,
        invalid=counts.invalid,
        failed_again=counts.retried,
    )
    emit_metrics(
        cfg.metric_namespace,
        cfg.environment,
        record_count_metrics(counts.stored, counts.invalid, counts.duplicates, counts.retried),
    )
    return failed


def handle_sqs_event(
    aws: Aws, cfg: Config, records: Sequence[Mapping[str, Any]], inv: Invocation
) -> dict[str, Any]:
    """Main-queue batch: returns batchItemFailures for the messages to redeliver only."""
    failed: list[str] = []
    retries: list[RetryWork] = []
    files: list[FileWork] = []
    unknown: list[tuple[str, str]] = []
    for record in records:
        message_id = record.get("messageId")
        message_id = message_id if isinstance(message_id, str) else ""
        body = record.get("body")
        body = body if isinstance(body, str) else _ascii_json(body)
        work = parse_queue_message(message_id, body)
        if isinstance(work, RetryWork):
            retries.append(work)
        elif isinstance(work, FileWork):
            files.append(work)
        else:
            unknown.append((message_id, body))
    for message_id, body in unknown:
        try:
            send_messages(aws.sqs, cfg.dlq_url, [body])
            inv.log(logging.WARNING, "unknown message forwarded to DLQ", message_id=message_id)
        except TransientError:
            failed.append(message_id)
    failed.extend(_retry_writes(aws, cfg, retries, inv))
    results: list[FileResult] = []
    for work in files:
        try:
            _process_files(aws, cfg, work, inv, results)
        except Exception:  # one bad message must not fail the whole batch
            LOGGER.exception(
                "queue message failed",
                extra={"fields": {"request_id": inv.request_id, "message_id": work.message_id}},
            )
            failed.append(work.message_id)
    return {"batchItemFailures": [{"itemIdentifier": ident} for ident in failed]}


def handle_s3_event(
    aws: Aws, cfg: Config, refs: Sequence[ObjectRef], inv: Invocation
) -> dict[str, Any]:
    """Direct S3 notification: bad files are results; TransientError propagates (retry)."""
    results: list[FileResult] = []
    _process_files(aws, cfg, FileWork("", tuple((ref, 0) for ref in refs)), inv, results)
    return {
        "files": [
            {
                "bucket": r.bucket,
                "key": r.key,
                "version_id": r.version_id,
                "rows": r.rows,
                "stored": r.stored,
                "duplicates": r.duplicates,
                "invalid": r.invalid,
                "retried": r.retried,
                "file_error": r.file_error,
                "resume_line": r.resume_line,
            }
            for r in results
        ]
    }


# --------------------------------------------------------------------------------------------
# Large files in ranges (decisions P33 to P36): the S3 event's invocation streams a large CSV
# or JSON object once to find row- or element-aligned byte ranges, records them in the file
# status in one update, and sends one range message per range to the main queue, whose
# invocations process the ranges side by side, each with its own cursor and resume.

MAX_RANGES = 100  # P33: the step grows with the object, so the split's one UpdateItem stays small


def range_step(cfg: Config, kind: str, content_length: int) -> int:
    """Bytes per range for this object, or 0 when it is not split (P33)."""
    if cfg.range_split_bytes <= 0 or content_length <= cfg.range_split_bytes:
        return 0
    return max(cfg.range_split_bytes, -(-content_length // MAX_RANGES))


def csv_range_bounds(chunks: Iterable[bytes], step: int) -> FileError | list[tuple[int, int]]:
    """(first line, first byte) of every range after the first, or the file's error (P33).

    A boundary is exactly where the reader that processes the rows (P10-P12) starts a row:
    never inside a quoted cell or a skipped line. That reader alone took 14.8 s to split a
    1M-row file at a 512 MB Lambda's CPU share (docs/benchmarks.md), all in one invocation.
    But a run of lines with no '"' and no CR other than a line's CRLF can only be rows of one
    line each, blank lines skipped, so the split skips such runs with bytes searches
    (_QuoteFreeScan) and hands the rest of the file to the reader at the first line that has
    either. The header is always the reader's. Only the current row, or the bytes up to the
    next boundary, are held in memory."""
    tracked = _TrackedChunks(chunks)
    feed = _LineFeed(tracked)
    opened = _csv_header(feed)
    if isinstance(opened, FileError):
        return opened
    reader, _ = opened
    rest = tracked.rest_from(feed.bytes_read)
    if rest is None:  # not expected: the reader stopped inside a chunk it was handed
        return _reader_bounds(reader, feed, step, step, 0, [])
    scan = _QuoteFreeScan(rest, feed.bytes_read, feed.lines_read + 1, tracked)
    taken = scan.bounds(step)
    if taken is None:  # the whole file after the header was quote-free
        if scan.rows == 0:
            return FileError(EMPTY_FILE, "file: no rows")
        return scan.found
    offset, line = taken
    feed = _LineFeed(itertools.chain([scan.rest()], tracked), first_line=line, first_byte=offset)
    reader = csv.reader(feed, strict=True)
    return _reader_bounds(reader, feed, step, scan.next_at, scan.rows, scan.found)


def _reader_bounds(
    reader: Any, feed: _LineFeed, step: int, next_at: int, rows: int, bounds: list[tuple[int, int]]
) -> FileError | list[tuple[int, int]]:
    """The boundaries from the reader's position to the end, after `rows` rows and `bounds`."""
    while True:
        line, row = _next_csv_row(reader, feed)
        if row is None:
            break
        rows += 1
        if rows > 1 and feed.row_start_byte >= next_at:
            bounds.append((line, feed.row_start_byte))
            next_at = (feed.row_start_byte // step + 1) * step
    if rows == 0:
        return FileError(EMPTY_FILE, "file: no rows")
    return bounds


class _TrackedChunks:
    """A chunk iterator that remembers the last chunk it handed out and where it began, so that
    the split can take the stream over from the reader after the header."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._last = b""
        self._last_start = 0

    def __iter__(self) -> "_TrackedChunks":
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self._last_start += len(self._last)
        self._last = chunk
        return chunk

    def rest_from(self, offset: int) -> bytes | None:
        """The last chunk's bytes from `offset` on; None when `offset` is not in it."""
        if not self._last_start <= offset <= self._last_start + len(self._last):
            return None
        return self._last[offset - self._last_start :]


# What a quote-free run must not hold: a quote (a cell may span lines), or a CR that does not end
# its line. csv reads a bare CR as a line end; the reader gets LF-ended lines and reports one as
# an unreadable row, so a bare CR is no boundary either way, but the reader's is the word on it.
_SCAN_STOP = re.compile(rb'"|\r(?!\n)')
_BLANK_LINES = (b"\n", b"\r\n")  # lines csv reads as no cells, which _next_csv_row skips


class _QuoteFreeScan:
    """csv_range_bounds' fast path: finds the row starts at or after each step over lines that
    hold no _SCAN_STOP, with bytes searches, and stops (_ScanStop) at the first line that holds
    one, which is a row's start: the reader takes over there. It stops as well at a line longer
    than a row may be, only so as not to hold it whole (the reader drops its bytes)."""

    def __init__(self, head: bytes, offset: int, line: int, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = bytearray(head)
        self._base = offset  # the object offset of _buf[0]
        self._pos = 0  # the start of line number _line in _buf; everything before is scanned
        self._line = line
        self.rows = 0  # rows seen; only whether 0, 1 or more matters (the first is no boundary)
        self.found: list[tuple[int, int]] = []
        self.next_at = 0

    def rest(self) -> bytes:
        """The bytes from the current line on, for the reader that takes over."""
        return bytes(self._buf[self._pos :])

    def _more(self) -> bool:
        """Read the next chunk, dropping what was scanned; False at the end of the object."""
        for chunk in self._chunks:
            if chunk:
                del self._buf[: self._pos]
                self._base += self._pos
                self._pos = 0
                self._buf += chunk
                return True
        return False

    def _skip(self, end: int) -> None:
        """Count the lines from _pos to `end` (a line start or the end) as scanned; at a line
        that holds a _SCAN_STOP, stop there."""
        stop = _SCAN_STOP.search(self._buf, self._pos, end)
        if stop is not None:
            end = self._buf.rfind(b"\n", self._pos, stop.start()) + 1 or self._pos
        self._line += self._buf.count(b"\n", self._pos, end)
        self._pos = end
        if stop is not None:
            raise _ScanStop

    def _row_line(self) -> tuple[int, int] | None:
        """From _pos, past blank lines, the next row's line (start, end) in _buf; None at the
        end of the object."""
        while True:
            newline = self._buf.find(b"\n", self._pos)
            while newline < 0:
                if len(self._buf) - self._pos > MAX_ROW_BYTES:
                    raise _ScanStop
                if not self._more():
                    break
                newline = self._buf.find(b"\n", self._pos)
            end = newline + 1 if newline >= 0 else len(self._buf)
            if end - self._pos > MAX_ROW_BYTES:
                raise _ScanStop
            line = bytes(self._buf[self._pos : end])
            if not line:
                return None
            if _SCAN_STOP.search(line):
                raise _ScanStop
            if line not in _BLANK_LINES:
                return self._pos, end
            self._pos = end
            self._line += 1

    def _to_next_at(self) -> bool:
        """Move to the first line that starts at or after next_at; False at the end first."""
        while self._base + self._pos < self.next_at:
            before = self.next_at - 1 - self._base  # the byte before next_at, at or after _pos
            newline = self._buf.find(b"\n", before) if before < len(self._buf) else -1
            if newline >= 0:
                self._skip(newline + 1)
                return True
            self._skip(self._buf.rfind(b"\n", self._pos) + 1 or self._pos)
            if len(self._buf) - self._pos > MAX_ROW_BYTES:
                raise _ScanStop
            if not self._more():
                self._skip(len(self._buf))  # the last line, which starts before next_at
                return False
        return True

    def bounds(self, step: int) -> tuple[int, int] | None:
        """Scan to the end: None, or (offset, line) of the line where the reader takes over;
        `found`, `rows` and `next_at` say what the scan found before it."""
        self.next_at = step
        try:
            # The first row is no boundary; from the second on, a row is one if it starts at or
            # after next_at, so only the first row at or after it needs looking at.
            first = True
            while first or self._to_next_at():
                row = self._row_line()
                if row is None:
                    return None
                start, end = row
                at = self._base + start
                self.rows += 1
                if self.rows > 1 and at >= self.next_at:
                    self.found.append((self._line, at))
                    self.next_at = (at // step + 1) * step
                self._pos = end
                self._line += 1
                first = False
        except _ScanStop:
            return self._base + self._pos, self._line
        return None


class _ScanStop(Exception):
    """_QuoteFreeScan met a line only the reader can read."""


def plan_ranges(
    bounds: Sequence[tuple[int, int]], content_length: int, first_byte: int = 0
) -> list[FileRange]:
    """The ranges between the boundaries; range 0 starts at `first_byte`: 0 for a CSV (the
    header is in range 0), the first element's first byte for a JSON array (P33). The last
    range ends at `content_length` (a JSON array: its closing bracket's offset)."""
    starts = [(0, first_byte), *bounds]
    ends = [start for _, start in bounds] + [content_length]
    return [FileRange(line, start, end) for (line, start), end in zip(starts, ends, strict=True)]


# JSON arrays by element (P33). No streaming JSON parser is allowed in this file (standard
# library and boto3 only; ijson is not), and json.loads needs the whole text, so a small
# structural scanner finds the elements: it only knows strings (with backslash escapes) and
# bracket nesting, and hands each element's bytes to json.loads (_load_json), which validates it
# as P14 does. A boundary is therefore only trusted for elements that parse: a document the
# scanner cannot read as the simple shape is not split, and the unsplit path reports it as
# before. crates/txn-core/src/json_ranges.rs is the same scanner, byte for byte.

_JSON_WS = re.compile(rb"[^ \t\n\r]")  # the first byte that is not JSON white space
_STRING_STOP = re.compile(rb'["\\]')  # the end of a string or an escape in it
_NESTING_STOP = re.compile(rb'[][{}"]')  # what changes the nesting inside an array or object
_SCALAR_STOP = re.compile(rb"[ \t\n\r,\]]")  # what ends a number or literal element
_TRANSACTIONS_KEY = b'"transactions"'


class JsonRangeChangedError(OSError):
    """A range's bytes are not the elements the split saw (the object was replaced under an
    unversioned key): a read failure, retryable (P35), never a wrong row."""


class _ScanFeed:
    """A byte stream with absolute offsets; holds only the bytes from `keep` on (the current
    element) besides the chunk being scanned."""

    def __init__(self, chunks: Iterable[bytes], base: int) -> None:
        self._chunks = iter(chunks)
        self.buf = bytearray()
        self.base = base  # the offset of buf[0] in the object
        self.pos = 0  # the scan position in buf
        self.keep = 0  # buf[keep:] is still needed

    def more(self) -> bool:
        """Append the next chunk (dropping what is no longer needed); False at the end."""
        for chunk in self._chunks:
            if not chunk:
                continue
            if self.keep:
                del self.buf[: self.keep]
                self.base += self.keep
                self.pos -= self.keep
                self.keep = 0
            self.buf += chunk
            return True
        return False

    def offset(self) -> int:
        return self.base + self.pos

    def search(self, pattern: re.Pattern[bytes]) -> int | None:
        """Move to the next byte that `pattern` matches and return it; None at the end."""
        while True:
            found = pattern.search(self.buf, self.pos)
            if found is not None:
                self.pos = found.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self.more():
                return None

    def skip_ws(self) -> int | None:
        """Release what was scanned, skip JSON white space; the next byte or None at the end."""
        self.keep = self.pos
        return self.search(_JSON_WS)

    def take(self, literal: bytes) -> bool:
        """Step over `literal` if the stream goes on with it."""
        while len(self.buf) - self.pos < len(literal):
            if not self.more():
                return False
        if self.buf[self.pos : self.pos + len(literal)] != literal:
            return False
        self.pos += len(literal)
        return True


def _scan_string_rest(feed: _ScanFeed) -> bool:
    """After a string's opening quote: to past its closing quote; False when unterminated."""
    while True:
        stop = feed.search(_STRING_STOP)
        if stop is None:
            return False
        feed.pos += 1
        if stop == 0x22:  # '"'
            return True
        # A backslash: the byte after it is escaped, whatever it is ('"' and '\\' included).
        if feed.pos >= len(feed.buf) and not feed.more():
            return False
        feed.pos += 1


def _scan_element(feed: _ScanFeed) -> bytes | None:
    """The bytes of the array element that starts at feed.pos (feed.pos moves past it); None
    when a string or a nesting is not closed at the end of the stream. A number or literal
    runs to white space, ',' or ']' (json.loads then decides whether it is one)."""
    feed.keep = feed.pos
    first = feed.buf[feed.pos]
    if first == 0x22:  # '"'
        feed.pos += 1
        if not _scan_string_rest(feed):
            return None
    elif first in (0x5B, 0x7B):  # '[' '{'
        depth = 0
        while True:
            stop = feed.search(_NESTING_STOP)
            if stop is None:
                return None
            feed.pos += 1
            if stop == 0x22:
                if not _scan_string_rest(feed):
                    return None
            elif stop in (0x5B, 0x7B):
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    break
    else:
        feed.search(_SCALAR_STOP)
    return bytes(feed.buf[feed.keep : feed.pos])


def _load_element(data: bytes, level: int) -> FileError | Any:
    """An element parsed alone with P14's checks, its nesting counted from the document's top
    level (the element is at `level`: 2 in a top-level array, 3 in {"transactions": [...]})."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return FileError(INVALID_ENCODING, "file: not valid UTF-8")
    return _load_json(text, MAX_JSON_DEPTH - (level - 1))


@dataclass(frozen=True)
class JsonSplit:
    """Where a JSON array's elements are (P33): the first element's first byte, the closing
    bracket's offset, and (index, first byte) of every range's first element after range 0."""

    first_byte: int
    end_byte: int
    bounds: list[tuple[int, int]]


def json_range_bounds(chunks: Iterable[bytes], step: int) -> JsonSplit | None:
    """Scan a JSON document once for its range boundaries (P33); None when it is not the simple
    shape (UTF-8 with an optional BOM; a top-level array, or an object whose one key is
    "transactions" holding an array; at least one element; every element parses alone with
    P14's checks), so that a document the unsplit path would reject is never split. Holds one
    element at a time."""
    feed = _ScanFeed(chunks, 0)
    if feed.take(_BOM):
        feed.keep = feed.pos
    first = feed.skip_ws()
    feed.pos += 1
    if first == 0x5B:  # '['
        level = 2
    elif first == 0x7B:  # '{': the plain key "transactions" and an array, nothing else
        level = 3
        if feed.skip_ws() != 0x22 or not feed.take(_TRANSACTIONS_KEY):
            return None
        if feed.skip_ws() != 0x3A:  # ':'
            return None
        feed.pos += 1
        if feed.skip_ws() != 0x5B:
            return None
        feed.pos += 1
    else:
        return None
    stop = feed.skip_ws()
    if stop is None or stop == 0x5D:  # no element: EMPTY_FILE or MALFORMED_FILE, unsplit
        return None
    first_byte = feed.offset()
    bounds: list[tuple[int, int]] = []
    next_at = step
    index = 0
    while True:
        start = feed.offset()
        element = _scan_element(feed)
        if element is None or isinstance(_load_element(element, level), FileError):
            return None
        if index > 0 and start >= next_at:
            bounds.append((index, start))
            next_at = (start // step + 1) * step
        index += 1
        stop = feed.skip_ws()
        if stop == 0x2C:  # ','
            feed.pos += 1
            stop = feed.skip_ws()
            if stop is None or stop == 0x5D:  # a trailing comma
                return None
        elif stop == 0x5D:  # ']'
            break
        else:
            return None
    end_byte = feed.offset()
    feed.pos += 1
    if level == 3:
        if feed.skip_ws() != 0x7D:  # '}'
            return None
        feed.pos += 1
    if feed.skip_ws() is not None:  # anything but white space after the document
        return None
    return JsonSplit(first_byte, end_byte, bounds)


def json_range_rows(
    chunks: Iterable[bytes], first_byte: int, first_index: int
) -> Iterator[SourceRow]:
    """The elements of one range of a split JSON array (P35): the range's bytes start at an
    element and hold elements separated by ',' and white space, up to the next range's first
    element or the array's closing bracket. Raises JsonRangeChangedError when they do not."""
    feed = _ScanFeed(chunks, first_byte)
    index = first_index
    stop = feed.skip_ws()
    while stop is not None:
        start = feed.offset()
        element = _scan_element(feed)
        # Level 2: the split checked the element at its real level; this only guards the parse.
        value = None if element is None else _load_element(element, 2)
        if element is None or isinstance(value, FileError):
            raise JsonRangeChangedError(f"no JSON element at byte {start}")
        yield json_row(index, value)
        index += 1
        stop = feed.skip_ws()
        if stop == 0x2C:  # ','
            feed.pos += 1
            stop = feed.skip_ws()
        elif stop is not None:
            raise JsonRangeChangedError(f"no ',' after the element at byte {start}")


def csv_range_rows(
    header_chunks: Iterable[bytes], range_chunks: Iterable[bytes], first_line: int
) -> FileError | Iterator[SourceRow]:
    """The data rows of a range that does not hold the header; lines count from `first_line`."""
    opened = _csv_header(_LineFeed(header_chunks))
    if isinstance(opened, FileError):
        return opened
    _, names = opened
    feed = _LineFeed(range_chunks, first_line=first_line)
    return _csv_data_rows(csv.reader(feed, strict=True), feed, names)


def range_message(source: SourceInfo, file_range: FileRange, start_line: int) -> dict[str, Any]:
    """A resume_file for one range (P35)."""
    return {
        **resume_file_message(source.bucket, source.key, source.version_id, start_line),
        "range_line": file_range.line,
        "start_byte": file_range.start_byte,
        "end_byte": file_range.end_byte,
    }


def range_from_json(doc: Mapping[str, Any]) -> FileRange | None:
    """The range of a resume_file (P35); None without one. Raises ValueError when some of the
    three fields are missing or not non-negative integers, or the range is empty."""
    names = ("range_line", "start_byte", "end_byte")
    present = [name for name in names if name in doc]
    if not present:
        return None
    values = [_int_or_none(doc.get(name)) for name in names]
    line, start, end = values
    if line is None or start is None or end is None or start >= end:
        raise ValueError("not a range message")
    return FileRange(line, start, end)


def _status_split(aws: Aws, cfg: Config, source: SourceInfo, ranges: Sequence[FileRange]) -> str:
    """Record the ranges in the status, once (P34): "split" when this call made the split,
    "again" when the same split was made before, "unsplit" when an unsplit run began, "other"
    when another split was made."""
    if not cfg.file_status_table or len(ranges) < 2:
        return "split"
    names = {"#state": "state", "#r0": STATUS_RANGE}
    values: dict[str, Any] = {
        ":processing": {"S": STATE_PROCESSING},
        ":now": {"S": iso_ms(now_ms())},
        ":processor": {"S": PROCESSOR},
        ":zero": _num(0),
        ":one": _num(1),
        ":ranges": _num(len(ranges)),
    }
    clauses = [
        "#state = :processing",
        "last_activity = :now",
        "processor = :processor",
        "ranges_open = :ranges",
    ]
    for index, file_range in enumerate(ranges[1:], start=1):
        names[f"#r{index}"] = str(file_range.line)
        values[f":l{index}"] = _num(file_range.line)
        clauses.append(f"cursors.#r{index} = :l{index}")
    try:
        aws.dynamodb.update_item(
            TableName=cfg.file_status_table,
            Key=status_key(source.key, source.version_id),
            UpdateExpression="SET " + ", ".join(clauses),
            ConditionExpression=(
                "cursors.#r0 = :zero AND ranges_open = :one AND attribute_not_exists(cursors.#r1)"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return "split"
    except ClientError as exc:
        if _error_code(exc) != "ConditionalCheckFailedException":
            raise TransientError(f"UpdateItem (file split) failed: {_error_code(exc)}") from exc
        response: Mapping[str, Any] = exc.response  # with ALL_OLD, the item as it was
        item = response.get("Item") or {}
    except BotoCoreError as exc:
        raise TransientError(f"UpdateItem (file split) failed: {_error_code(exc)}") from exc
    recorded = set((item.get("cursors") or {}).get("M") or {})
    if recorded == {str(file_range.line) for file_range in ranges}:
        return "again"
    return "unsplit" if recorded <= {STATUS_RANGE} else "other"


def split_object(
    aws: Aws, cfg: Config, source: SourceInfo, opened: OpenedObject, kind: str, result: FileResult
) -> bool:
    """Split a large object into ranges and queue them (P33-P35). False: the caller processes
    it unsplit from a fresh read (an unsplit run of this version began before, or a JSON
    document is not the simple shape that is split)."""
    step = range_step(cfg, kind, opened.content_length)
    chunks = opened.body.iter_chunks(READ_CHUNK_BYTES)
    if kind == "json":
        split = json_range_bounds(chunks, step)
        if split is None:  # the unsplit path reads it and reports what it reports (P33)
            return False
        ranges = plan_ranges(split.bounds, split.end_byte, split.first_byte)
    else:
        bounds = csv_range_bounds(chunks, step)
        if isinstance(bounds, FileError):
            _report_file_error(aws, cfg, source, bounds, result)
            return True
        ranges = plan_ranges(bounds, opened.content_length)
    outcome = _status_split(aws, cfg, source, ranges)
    if outcome == "unsplit":
        return False
    if outcome == "other":
        log_event(
            logging.WARNING,
            "file split differently before; its range messages carry it",
            **source.object_fields(),
        )
        return True
    bodies = [encode_message(range_message(source, r, r.line)) for r in ranges]
    send_messages(aws.sqs, cfg.queue_url, bodies)
    log_event(
        logging.INFO,
        "file split into ranges",
        **source.object_fields(),
        ranges=len(ranges),
        again=outcome == "again",
    )
    result.resume_line = 0  # nothing processed here: every row is in a queued range
    return True


def _open_bytes(aws: Aws, ref: ObjectRef, first: int, end: int) -> OpenedObject | FileError:
    """GetObject of the bytes [first, end) of the object version (a Range request)."""
    return open_object(aws.s3, ref, (first, end))


def process_range(
    aws: Aws, cfg: Config, ref: ObjectRef, file_range: FileRange, start_line: int, inv: Invocation
) -> FileResult:
    """Process one range of a split file from `start_line` on (P35)."""
    started = time.monotonic()
    result = FileResult(bucket=ref.bucket, key=ref.key, version_id=ref.version_id)
    opened = _open_bytes(aws, ref, file_range.start_byte, file_range.end_byte)
    if isinstance(opened, FileError):
        unread = SourceInfo(ref.bucket, ref.key, ref.version_id, ref.event_time)
        _report_file_error(aws, cfg, unread, opened, result)
        return _finish(cfg, inv, result, started)
    source = SourceInfo(ref.bucket, ref.key, opened.version_id, opened.last_modified)
    header: OpenedObject | FileError | None = None
    try:
        chunks = opened.body.iter_chunks(READ_CHUNK_BYTES)
        rows: FileError | Iterator[SourceRow]
        if file_format(ref.key) == "json":  # the range starts at an element: no header
            rows = json_range_rows(chunks, file_range.start_byte, file_range.line)
        elif file_range.line == 0:
            rows = csv_rows(chunks)
        else:
            # The header is in range 0: read from the object's start until it is parsed.
            header = _open_bytes(aws, ref, 0, file_range.start_byte)
            if isinstance(header, FileError):
                _report_file_error(aws, cfg, source, header, result)
                return _finish(cfg, inv, result, started)
            rows = csv_range_rows(
                header.body.iter_chunks(READ_CHUNK_BYTES), chunks, file_range.line
            )
            header.body.close()
        # A range's reader finding a FileError is not expected: the split read the same bytes.
        _process_rows(aws, cfg, source, rows, start_line, inv, result, file_range)
    except (BotoCoreError, OSError) as exc:
        raise TransientError(f"reading the object failed: {_error_code(exc)}") from exc
    finally:
        opened.body.close()
    return _finish(cfg, inv, result, started)


def log_write_pace(inv: Invocation) -> None:
    """One line per invocation whose writes met throttling (P37): how they yielded."""
    limiter = inv.writes
    if limiter.throttled:
        inv.log(
            logging.WARNING,
            "writes yielded to throttling",
            throttled=limiter.throttled,
            retried=limiter.retried,
            gave_up=limiter.gave_up,
            lowest_limit=limiter.lowest,
            limit=limiter.limit,
        )


def handle_event(event: Any, context: Any, aws: Aws, cfg: Config) -> dict[str, Any]:
    """Dispatch one invocation: main-queue batch, S3 notification, or anything else."""
    inv = Invocation(
        request_id=str(getattr(context, "aws_request_id", "") or ""),
        remaining_ms=getattr(context, "get_remaining_time_in_millis", None),
        margin_ms=cfg.time_safety_margin_ms,
        writes=WriteLimiter(cfg.write_workers),
    )
    try:
        return _dispatch(event, aws, cfg, inv)
    finally:
        log_write_pace(inv)


def _dispatch(event: Any, aws: Aws, cfg: Config, inv: Invocation) -> dict[str, Any]:
    if _is_sqs_event(event):
        return handle_sqs_event(aws, cfg, event["Records"], inv)
    refs = s3_event_refs(event)
    if refs is not None:
        return handle_s3_event(aws, cfg, refs, inv)
    # Not an event this function knows: keep it (UNKNOWN_FORMAT in the errors table).
    send_messages(aws.sqs, cfg.dlq_url, [_ascii_json(event)])
    inv.log(logging.WARNING, "unknown event forwarded to DLQ")
    return {"forwarded": True}


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (processor_function.lambda_handler)."""
    return handle_event(
        event,
        context,
        Aws(s3_client, dynamodb_client, sqs_client, transaction_writes_client),
        CONFIG,
    )
