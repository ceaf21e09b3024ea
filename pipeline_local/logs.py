"""Ship function output as Lambda does: a log file, the CloudWatch log group, and EMF metrics."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipeline_local.clients import Clients
from pipeline_local.wiring import FunctionConfig


class LogSink:
    """Where function output goes: a local file per function, CloudWatch Logs in the emulator
    (the function's /aws/lambda/<name> group, as Lambda ships stdout), and Embedded Metric
    Format lines turned into metrics (as CloudWatch does with EMF)."""

    def __init__(
        self,
        clients: Clients,
        log_dir: Path | None = None,
        cloudwatch: bool = True,
        clients_for: Callable[[FunctionConfig], Clients] | None = None,
    ) -> None:
        self.clients = clients
        # Lambda ships a function's output with the function's execution role.
        self.clients_for = clients_for
        self.log_dir = log_dir
        self.cloudwatch = cloudwatch
        self.streams: dict[str, str] = {}
        self.emf: list[dict[str, Any]] = []
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)

    def write(self, fn: FunctionConfig, lines: Sequence[str], started: float) -> None:
        if not lines:
            return
        for line in lines:
            if '"_aws"' in line:
                with contextlib.suppress(ValueError):
                    doc = json.loads(line)
                    if isinstance(doc, dict) and "_aws" in doc:
                        self.emf.append(doc)
        if self.log_dir:
            with open(self.log_dir / f"{fn.name}.log", "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
        if self.cloudwatch:
            self._ship(fn, lines, started)

    def _ship(self, fn: FunctionConfig, lines: Sequence[str], started: float) -> None:
        logs = (self.clients_for(fn) if self.clients_for else self.clients)("logs")
        group = f"/aws/lambda/{fn.name}"
        stream = self.streams.get(fn.name)
        try:
            if stream is None:
                stream = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self.streams[fn.name] = stream
            ts = int(started * 1000)
            for i in range(0, len(lines), 5000):
                logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=[{"timestamp": ts, "message": m} for m in lines[i : i + 5000]],
                )
        except ClientError:
            self.cloudwatch = False  # no log group (or not allowed): keep the local file only

    def publish_emf(self) -> int:
        """Put the EMF lines' metrics (what CloudWatch extracts from the log group)."""
        cw = self.clients("cloudwatch")
        data: list[tuple[str, dict[str, Any]]] = []
        for doc in self.emf:
            meta = doc["_aws"]
            when = dt.datetime.fromtimestamp(meta.get("Timestamp", 0) / 1000, dt.UTC)
            for directive in meta.get("CloudWatchMetrics", []):
                for dims in directive.get("Dimensions", [[]]):
                    dimensions = [{"Name": d, "Value": str(doc.get(d, ""))} for d in dims]
                    for metric in directive.get("Metrics", []):
                        value = doc.get(metric["Name"])
                        if not isinstance(value, int | float):
                            continue
                        data.append(
                            (
                                directive["Namespace"],
                                {
                                    "MetricName": metric["Name"],
                                    "Dimensions": dimensions,
                                    "Timestamp": when,
                                    "Value": float(value),
                                    "Unit": metric.get("Unit", "None"),
                                },
                            )
                        )
        by_ns: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for ns, datum in data:
            by_ns[ns].append(datum)
        for ns, datums in by_ns.items():
            for i in range(0, len(datums), 500):
                cw.put_metric_data(Namespace=ns, MetricData=datums[i : i + 500])
        self.emf.clear()
        return len(data)
