"""Record every invocation as the Lambda service does: files, duration, error, log lines."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from pipeline_local.constants import DEFAULT_TIMEOUT_MS
from pipeline_local.invokers import InvocationError, Invoker, ProcessLog, layers

if TYPE_CHECKING:
    from pipeline_local.logs import LogSink
    from pipeline_local.wiring import FunctionConfig


@dataclass
class InvocationRecord:
    function_name: str
    source: str  # "s3" | "sqs" | "other"
    started: float  # epoch seconds
    duration_ms: float
    error: str | None
    files: list[tuple[str, str | None]]  # (key, version_id) the event concerns
    records: int = 0


def files_in_event(event: Mapping[str, Any]) -> tuple[str, list[tuple[str, str | None]], int]:
    """Which object versions an event concerns: S3 records, or the pipeline's queue messages
    (retry_record, resume_file, record/file errors, a dead-lettered S3 event)."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records:
        return "other", [], 0
    files: list[tuple[str, str | None]] = []
    source = "other"
    for rec in records:
        if not isinstance(rec, Mapping):
            continue
        if rec.get("eventSource") == "aws:s3":
            source = "s3"
            obj = rec.get("s3", {}).get("object", {})
            files.append((unquote_plus(obj.get("key", "")), obj.get("versionId")))
        elif rec.get("eventSource") == "aws:sqs":
            source = "sqs"
            try:
                body = json.loads(rec.get("body") or "")
            except ValueError:
                continue
            files.extend(_files_in_body(body))
    return source, list(dict.fromkeys(files)), len(records)


def _files_in_body(body: Any) -> list[tuple[str, str | None]]:
    if not isinstance(body, Mapping):
        return []
    if isinstance(body.get("source"), Mapping):
        src = body["source"]
        return [(str(src.get("key")), src.get("version_id"))]
    if body.get("kind") == "resume_file":
        return [(str(body.get("key")), body.get("version_id"))]
    if "Records" in body:
        return files_in_event(body)[1]
    return []


def _process_log(invoker: Invoker) -> list[str]:
    """The output of a function that runs as its own process (`ProcessLog.log_lines`), also
    behind wrappers such as faults.CrashingInvoker; empty for an in-process handler."""
    for layer in layers(invoker):
        if isinstance(layer, ProcessLog):
            return layer.log_lines
    return []


class RecordingInvoker:
    """Wraps an invoker the way the Lambda service wraps a function: records every invocation,
    captures what the code writes to stdout (its log), and hands the log lines on."""

    def __init__(
        self,
        inner: Invoker,
        function: FunctionConfig,
        sink: LogSink,
    ) -> None:
        self.inner = inner
        self.function = function
        self.function_name = function.name
        self.sink = sink
        self.records: list[InvocationRecord] = []

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        source, files, count = files_in_event(event)
        started = time.time()
        t0 = time.monotonic()
        out = io.StringIO()
        error: str | None = None
        process_log = _process_log(self.inner)
        process_lines_before = len(process_log)
        try:
            with contextlib.redirect_stdout(out):
                return self.inner.invoke(event, timeout_ms=timeout_ms)
        except InvocationError as exc:
            error = str(exc)
            raise
        finally:
            duration = (time.monotonic() - t0) * 1000
            self.records.append(
                InvocationRecord(self.function_name, source, started, duration, error, files, count)
            )
            lines = out.getvalue().splitlines()
            lines += process_log[process_lines_before:]
            if error:
                lines.append(json.dumps({"level": "ERROR", "message": error[:2000]}))
            self.sink.write(self.function, lines, started)
