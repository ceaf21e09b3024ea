"""Publish the metrics the AWS services would (AWS/Lambda per invocation, AWS/SQS queue depths)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pipeline_local.records import InvocationRecord
from pipeline_local.wiring import Wiring


def put_lambda_metrics(
    cloudwatch: Any, records: Sequence[InvocationRecord], *, at: dt.datetime | None = None
) -> int:
    """One datapoint per function and minute of the invocations (or all at `at`, which tests
    use to place invocations in a given alarm period)."""
    buckets: dict[tuple[str, dt.datetime], list[InvocationRecord]] = defaultdict(list)
    for rec in records:
        minute = at or dt.datetime.fromtimestamp(rec.started, dt.UTC).replace(
            second=0, microsecond=0
        )
        buckets[(rec.function_name, minute)].append(rec)
    data: list[dict[str, Any]] = []
    for (name, minute), recs in sorted(buckets.items()):
        dims = [{"Name": "FunctionName", "Value": name}]
        durations = [r.duration_ms for r in recs]
        for metric, values, unit in (
            ("Invocations", [1.0] * len(recs), "Count"),
            ("Errors", [1.0 if r.error else 0.0 for r in recs], "Count"),
            ("Duration", durations, "Milliseconds"),
        ):
            data.append(
                {
                    "MetricName": metric,
                    "Dimensions": dims,
                    "Timestamp": minute,
                    "StatisticValues": {
                        "SampleCount": float(len(values)),
                        "Sum": float(sum(values)),
                        "Minimum": float(min(values)),
                        "Maximum": float(max(values)),
                    },
                    "Unit": unit,
                }
            )
    for i in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[i : i + 500])
    return len(data)


def put_queue_metrics(
    sqs: Any, cloudwatch: Any, wiring: Wiring, when: dt.datetime | None = None
) -> dict[str, int]:
    when = when or dt.datetime.now(dt.UTC)
    visible: dict[str, int] = {}
    data: list[dict[str, Any]] = []
    for q in wiring.queues.values():
        attrs = sqs.get_queue_attributes(
            QueueUrl=q.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        visible[q.name] = int(attrs["ApproximateNumberOfMessages"])
        for metric, attr in (
            ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessages"),
            ("ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesNotVisible"),
        ):
            data.append(
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "QueueName", "Value": q.name}],
                    "Timestamp": when,
                    "Value": float(attrs[attr]),
                    "Unit": "Count",
                }
            )
    if data:
        cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=data)
    return visible
