"""DLQ processor: stores every dead-letter message as one row (or more) of the errors table.

Implements design.md sections 4, 5, 6 and 8 for the DLQ consumer. Packaged alone by
archive_file: standard library and boto3 only. Endpoints come only from the standard
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables, which boto3 reads itself.

Where design.md leaves something open, this module follows the decisions D1 to D10 and Q1 to
Q3 in contract/decisions.md (cited by number in comments); contract/schemas/ describes its
messages and table items.
"""

import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:  # the client type comes from the stub packages of requirements-dev.txt
    from mypy_boto3_dynamodb import DynamoDBClient

VERSION = "1.0.0"
PROCESSOR = f"python3.11/{VERSION}"

# The function's environment: lib/main.tf (local.functions.dlq_processor) sets every one of
# these and owns every default; they are read once, at init, into CONFIG. tests/unit/
# test_configuration.py fails when this list and that block differ.
ENV_TABLE_NAME = "ERRORS_TABLE_NAME"
ENV_ENVIRONMENT = "ENVIRONMENT"
ENV_METRIC_NAMESPACE = "METRIC_NAMESPACE"
ENV_ERROR_RETENTION_DAYS = "ERROR_RETENTION_DAYS"
ENV_VARIABLES = (ENV_TABLE_NAME, ENV_ENVIRONMENT, ENV_METRIC_NAMESPACE, ENV_ERROR_RETENTION_DAYS)

ECHO_MAX_KEYS = 32
ECHO_MAX_KEY_CHARS = 64
ECHO_MAX_VALUE_CHARS = 256
MAX_MESSAGE_CHARS = 1024

VALIDATION = "VALIDATION"
FILE = "FILE"
PROCESSING = "PROCESSING"
UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
RECORD_WRITE_FAILED = "RECORD_WRITE_FAILED"
FILE_RESUME_FAILED = "FILE_RESUME_FAILED"
FILE_PROCESSING_FAILED = "FILE_PROCESSING_FAILED"

_TRIM = " \t\n\r\f"
_TRANSACTION_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")

dynamodb_client = boto3.client(
    "dynamodb", config=BotoConfig(retries={"mode": "standard", "max_attempts": 5})
)


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


LOGGER = logging.getLogger("dlq_processor")
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
# Configuration.


class ConfigError(RuntimeError):
    """A function variable is missing or invalid: the execution environment cannot start."""


@dataclass(frozen=True)
class Config:
    """The function's environment, typed (see ENV_VARIABLES)."""

    table_name: str
    environment: str
    metric_namespace: str
    retention_days: int


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
        environment=_env_text(env, ENV_ENVIRONMENT),
        metric_namespace=_env_text(env, ENV_METRIC_NAMESPACE),
        retention_days=_env_whole_number(env, ENV_ERROR_RETENTION_DAYS, 1),
    )


# Read once per execution environment, at init: a missing or invalid variable fails the init
# with ConfigError, which names it, before any message is taken.
CONFIG = load_config(os.environ)


# --------------------------------------------------------------------------------------------
# Interpreting messages (pure functions).


@dataclass(frozen=True)
class SqsMessage:
    message_id: str
    body: str
    sent_timestamp: int | None
    receive_count: int | None


@dataclass(frozen=True)
class ErrorRecord:
    error_id: str
    timestamp: int
    detected_at: int
    error_code: str
    error_type: str
    error_message: str
    retryable: bool
    transaction_id: str | None = None
    field: str | None = None
    source_bucket: str | None = None
    source_key: str | None = None
    source_version_id: str | None = None
    source_line: int | None = None
    record: Mapping[str, str] | None = None


def _count_attribute(value: Any) -> int | None:
    """SentTimestamp or ApproximateReceiveCount: ASCII decimal digits, as SQS sends them, or a
    non-negative JSON integer; anything else counts as absent (Q2)."""
    if isinstance(value, str):
        return int(value) if value.isascii() and value.isdigit() else None
    return _nonneg_int(value)


def sqs_message(record: Mapping[str, Any]) -> SqsMessage:
    """The parts of one SQS event record this function uses (Q1, Q2)."""
    attributes = record.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    message_id = record.get("messageId")
    body = record.get("body")
    return SqsMessage(
        message_id=message_id if isinstance(message_id, str) else "",
        body=body if isinstance(body, str) else _ascii_json(body),
        sent_timestamp=_count_attribute(attributes.get("SentTimestamp")),
        receive_count=_count_attribute(attributes.get("ApproximateReceiveCount")),
    )


def _ascii_json(value: Any) -> str:
    """Compact JSON text with every non-ASCII character escaped (Q1)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def _nonneg_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def error_id(bucket: str, key: str, version_id: str | None, line: int | None, code: str) -> str:
    """Deterministic error id (design.md section 4, decision D4)."""
    line_text = "" if line is None else str(line)
    return _sha256("\x1f".join((bucket, key, version_id or "", line_text, code)))


def clean_text(text: str) -> str:
    return _SURROGATE_RE.sub("\ufffd", text)


def mask_account(value: Any) -> str:
    if not isinstance(value, str):
        return "****"
    text = value.strip(_TRIM)
    return "****" + text[-4:] if len(text) > 4 else "****"


def masked_record(record: Any) -> dict[str, str] | None:
    """A masked map of strings for the errors table (decision D8)."""
    if not isinstance(record, dict):
        return None
    out: dict[str, str] = {}
    for key, value in record.items():
        if len(out) >= ECHO_MAX_KEYS:
            break
        if key == "description" or value is None:
            continue
        name = clean_text(str(key)[:ECHO_MAX_KEY_CHARS]) or "_"
        if key == "account_id":
            text = mask_account(value)
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        out[name] = clean_text(text[:ECHO_MAX_VALUE_CHARS])
    return out


def _transaction_id(value: Any) -> str | None:
    if isinstance(value, str):
        text = value.strip(_TRIM)
        if _TRANSACTION_ID_RE.fullmatch(text):
            return text
    return None


@dataclass(frozen=True)
class _Source:
    bucket: str
    key: str
    version_id: str | None
    line: int | None
    last_modified: int | None


def _source(doc: Any) -> _Source | None:
    if not isinstance(doc, dict):
        return None
    bucket, key = doc.get("bucket"), doc.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None
    return _Source(
        bucket=bucket,
        key=key,
        version_id=_opt_str(doc.get("version_id")),
        line=_nonneg_int(doc.get("line")),
        last_modified=_nonneg_int(doc.get("last_modified")),
    )


def _text(value: Any, fallback: str) -> str:
    text = value if isinstance(value, str) and value else fallback
    return clean_text(text[:MAX_MESSAGE_CHARS])


def _from_error_message(doc: dict[str, Any], message: SqsMessage, now: int) -> ErrorRecord | None:
    code = doc.get("error_code")
    source = _source(doc.get("source"))
    if not isinstance(code, str) or not code or source is None:
        return None
    is_record = doc.get("kind") == "record_error"
    field = doc.get("field")
    return ErrorRecord(
        error_id=error_id(source.bucket, source.key, source.version_id, source.line, code),
        timestamp=_first_int(source.last_modified, message.sent_timestamp, now),
        detected_at=_first_int(_nonneg_int(doc.get("failed_at")), now),
        error_code=clean_text(code[:MAX_MESSAGE_CHARS]),
        error_type=VALIDATION if is_record else FILE,
        error_message=_text(doc.get("error_message"), code),
        retryable=False,
        transaction_id=_transaction_id(doc.get("transaction_id")) if is_record else None,
        field=clean_text(field[:ECHO_MAX_VALUE_CHARS]) if isinstance(field, str) else None,
        source_bucket=source.bucket,
        source_key=source.key,
        source_version_id=source.version_id,
        source_line=source.line,
        record=masked_record(doc.get("record")) if is_record else None,
    )


def _from_retry_record(doc: dict[str, Any], message: SqsMessage, now: int) -> ErrorRecord | None:
    record = doc.get("record")
    source = _source(doc.get("source"))
    if not isinstance(record, dict) or source is None:
        return None
    error = doc.get("error")
    last: dict[str, Any] = error if isinstance(error, dict) else {}
    last_code = last.get("code") if isinstance(last.get("code"), str) else "unknown"
    last_text = last.get("message") if isinstance(last.get("message"), str) else ""
    return ErrorRecord(
        error_id=error_id(
            source.bucket, source.key, source.version_id, source.line, RECORD_WRITE_FAILED
        ),
        timestamp=_first_int(source.last_modified, message.sent_timestamp, now),
        detected_at=_first_int(_nonneg_int(doc.get("failed_at")), now),
        error_code=RECORD_WRITE_FAILED,
        error_type=PROCESSING,
        error_message=_text(
            f"record could not be stored after retries; last error: {last_code}: {last_text}",
            RECORD_WRITE_FAILED,
        ),
        retryable=True,
        transaction_id=_transaction_id(record.get("transaction_id")),
        source_bucket=source.bucket,
        source_key=source.key,
        source_version_id=source.version_id,
        source_line=source.line,
        record=masked_record(record),
    )


def _from_resume_file(doc: dict[str, Any], message: SqsMessage, now: int) -> ErrorRecord | None:
    bucket, key = doc.get("bucket"), doc.get("key")
    start_line = _nonneg_int(doc.get("start_line"))
    if not isinstance(bucket, str) or not isinstance(key, str) or start_line is None:
        return None
    version_id = _opt_str(doc.get("version_id"))
    return ErrorRecord(
        error_id=error_id(bucket, key, version_id, start_line, FILE_RESUME_FAILED),
        timestamp=_first_int(message.sent_timestamp, now),
        detected_at=now,
        error_code=FILE_RESUME_FAILED,
        error_type=PROCESSING,
        error_message=f"file processing could not be resumed from line {start_line}",
        retryable=True,
        source_bucket=bucket,
        source_key=key,
        source_version_id=version_id,
        source_line=start_line,
    )


def _from_s3_event(doc: dict[str, Any], message: SqsMessage, now: int) -> list[ErrorRecord]:
    records = doc.get("Records")
    if not isinstance(records, list) or not records:
        return []
    rows: list[ErrorRecord] = []
    for record in records:
        try:
            bucket = record["s3"]["bucket"]["name"]
            raw_key = record["s3"]["object"]["key"]
            version_id = _opt_str(record["s3"]["object"].get("versionId"))
        except (KeyError, TypeError, AttributeError):
            return []
        if not isinstance(bucket, str) or not isinstance(raw_key, str):
            return []
        key = unquote_plus(raw_key)
        rows.append(
            ErrorRecord(
                error_id=error_id(bucket, key, version_id, None, FILE_PROCESSING_FAILED),
                timestamp=_first_int(message.sent_timestamp, now),
                detected_at=now,
                error_code=FILE_PROCESSING_FAILED,
                error_type=PROCESSING,
                error_message="file processing failed after all retries",
                retryable=True,
                source_bucket=bucket,
                source_key=key,
                source_version_id=version_id,
            )
        )
    return rows


def _first_int(*values: int | None) -> int:
    for value in values:
        if value is not None:
            return value
    return 0


def unknown_format(message: SqsMessage, reason: str, now: int) -> ErrorRecord:
    return ErrorRecord(
        error_id=_sha256(message.body),
        timestamp=_first_int(message.sent_timestamp, now),
        detected_at=now,
        error_code=UNKNOWN_FORMAT,
        error_type=UNKNOWN_FORMAT,
        error_message=reason,
        retryable=False,
    )


def interpret_message(message: SqsMessage, now: int) -> list[ErrorRecord]:
    """The error rows for one DLQ message. Accepts any body (decision D1)."""
    try:
        doc = json.loads(message.body)
    except (ValueError, RecursionError):
        return [unknown_format(message, "message body is not JSON", now)]
    try:
        rows = _known_rows(doc, message, now)
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError):
        rows = []  # a shape we do not know after all: stored as UNKNOWN_FORMAT
    return rows or [unknown_format(message, "message body is not in a known format", now)]


def _known_rows(doc: Any, message: SqsMessage, now: int) -> list[ErrorRecord]:
    if not isinstance(doc, dict):
        return []
    kind = doc.get("kind")
    row: ErrorRecord | None = None
    if kind in ("record_error", "file_error"):
        row = _from_error_message(doc, message, now)
    elif kind == "retry_record":
        row = _from_retry_record(doc, message, now)
    elif kind == "resume_file":
        row = _from_resume_file(doc, message, now)
    elif kind is None and _is_s3_event(doc):
        return _from_s3_event(doc, message, now)
    return [row] if row is not None else []


def _is_s3_event(doc: dict[str, Any]) -> bool:
    records = doc.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)
    )


def to_item(row: ErrorRecord, message: SqsMessage, expires_at: int) -> dict[str, Any]:
    """The DynamoDB item: exactly the attributes of design.md section 8, absent when unknown."""
    item: dict[str, Any] = {
        "error_id": {"S": row.error_id},
        "timestamp": {"N": str(row.timestamp)},
        "detected_at": {"N": str(row.detected_at)},
    }
    if row.transaction_id:
        item["transaction_id"] = {"S": row.transaction_id}
    item["error_code"] = {"S": row.error_code}
    item["error_type"] = {"S": row.error_type}
    item["error_message"] = {"S": row.error_message or row.error_code}
    if row.field:
        item["field"] = {"S": row.field}
    item["retryable"] = {"BOOL": row.retryable}
    if row.source_bucket:
        item["source_bucket"] = {"S": clean_text(row.source_bucket)}
    if row.source_key:
        item["source_key"] = {"S": clean_text(row.source_key)}
    if row.source_version_id:
        item["source_version_id"] = {"S": clean_text(row.source_version_id)}
    if row.source_line is not None:
        item["source_line"] = {"N": str(row.source_line)}
    if row.record is not None:
        item["record"] = {"M": {k: {"S": v} for k, v in row.record.items()}}
    if message.message_id:
        item["sqs_message_id"] = {"S": message.message_id}
    if message.receive_count is not None:
        item["receive_count"] = {"N": str(message.receive_count)}
    item["expires_at"] = {"N": str(expires_at)}
    return item


# --------------------------------------------------------------------------------------------
# Storage and the handler.


def store_item(dynamodb: "DynamoDBClient", table_name: str, item: Mapping[str, Any]) -> bool:
    """True when stored now, False when it was already there (a replay). Raises otherwise."""
    try:
        dynamodb.put_item(
            TableName=table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(error_id)",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def handle_event(
    event: Any, context: Any, dynamodb: "DynamoDBClient", cfg: Config, now: int | None = None
) -> dict[str, Any]:
    """Store every message of the batch; report only the ones that could not be stored."""
    request_id = str(getattr(context, "aws_request_id", "") or "")
    current = now_ms() if now is None else now
    expires_at = current // 1000 + cfg.retention_days * 86400
    records: Sequence[Any] = (event.get("Records") or []) if isinstance(event, dict) else []
    failures: list[dict[str, str]] = []
    stored = replays = 0
    for record in records:
        message = sqs_message(record if isinstance(record, dict) else {})
        try:
            rows = interpret_message(message, current)
            for row in rows:
                if store_item(dynamodb, cfg.table_name, to_item(row, message, expires_at)):
                    stored += 1
                else:
                    replays += 1
                log_event(
                    logging.INFO,
                    "error stored",
                    request_id=request_id,
                    message_id=message.message_id,
                    error_id=row.error_id,
                    error_code=row.error_code,
                    error_type=row.error_type,
                    bucket=row.source_bucket,
                    key=row.source_key,
                    line=row.source_line,
                )
        except (ClientError, BotoCoreError) as exc:
            failures.append({"itemIdentifier": message.message_id})
            log_event(
                logging.ERROR,
                "error could not be stored",
                request_id=request_id,
                message_id=message.message_id,
                reason=type(exc).__name__,
            )
        except Exception:  # one bad message must not fail the whole batch
            failures.append({"itemIdentifier": message.message_id})
            LOGGER.exception(
                "unexpected failure",
                extra={"fields": {"request_id": request_id, "message_id": message.message_id}},
            )
    log_event(
        logging.INFO,
        "batch done",
        request_id=request_id,
        messages=len(records),
        stored=stored,
        replays=replays,
        failed=len(failures),
    )
    emit_metrics(cfg.metric_namespace, cfg.environment, {"ErrorsStored": (stored, "Count")})
    return {"batchItemFailures": failures}


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (dlq_processor_function.lambda_handler)."""
    return handle_event(event, context, dynamodb_client, CONFIG)
