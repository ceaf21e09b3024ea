"""Evaluate CloudWatch alarms (and their metric math) as CloudWatch would; moto never does."""

from __future__ import annotations

import ast
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_local.clients import Clients
from pipeline_local.constants import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from pipeline_local.authz.gateway import Gateway


@dataclass
class AlarmEvaluation:
    name: str
    emulator_state: str  # what moto reports (it never changes by itself)
    state: str  # what CloudWatch would decide from the datapoints
    reason: str
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    period_s: int
    metric: str  # the metric or expression evaluated
    datapoints: list[tuple[dt.datetime, float]]  # newest last, one per period with data
    actions: list[str]


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def eval_metric_math(expression: str, values: Mapping[str, float]) -> float | None:
    """The subset of CloudWatch metric math the alarms use: + - * /, comparisons, IF(c, a, b)."""
    tree = ast.parse(expression.strip(), mode="eval")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise KeyError(node.id)
            return values[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div):
                return left / right if right else float("nan")
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = ev(node.left), ev(node.comparators[0])
            ops = {
                ast.Gt: left > right,
                ast.GtE: left >= right,
                ast.Lt: left < right,
                ast.LtE: left <= right,
                ast.Eq: left == right,
                ast.NotEq: left != right,
            }
            return 1.0 if ops[type(node.ops[0])] else 0.0
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "IF"
            and len(node.args) == 3
        ):
            return ev(node.args[1]) if ev(node.args[0]) else ev(node.args[2])
        raise ValueError(f"unsupported metric math: {ast.dump(node)}")

    try:
        result = ev(tree)
    except KeyError:
        return None
    return None if result != result else float(result)  # NaN -> no datapoint


def _metric_stat_query(
    qid: str, metric: Mapping[str, Any], period: int, stat: str
) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": metric["Namespace"],
                "MetricName": metric["MetricName"],
                "Dimensions": metric.get("Dimensions", []),
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def evaluate_alarms(
    cloudwatch: Any, *, now: dt.datetime | None = None, lookback_periods: int = 6
) -> list[AlarmEvaluation]:
    """Evaluate every metric alarm the way CloudWatch would, from the stored datapoints."""
    now = now or dt.datetime.now(dt.UTC)
    out: list[AlarmEvaluation] = []
    for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
        metrics = alarm.get("Metrics")
        period = int(alarm.get("Period") or 0)
        queries: list[dict[str, Any]] = []
        expression = ""
        result_id = "m"
        if metrics:
            for q in metrics:
                if "MetricStat" in q:
                    ms = q["MetricStat"]
                    period = int(ms["Period"])
                    queries.append(_metric_stat_query(q["Id"], ms["Metric"], period, ms["Stat"]))
                elif q.get("ReturnData", True):
                    expression, result_id = q["Expression"], q["Id"]
        else:
            metric = {
                "Namespace": alarm["Namespace"],
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            }
            queries.append(_metric_stat_query("m", metric, period, alarm.get("Statistic", "Sum")))
        epoch = int(now.timestamp())
        end = dt.datetime.fromtimestamp(epoch - epoch % period + period, dt.UTC)
        start = end - dt.timedelta(seconds=period * lookback_periods)
        result = cloudwatch.get_metric_data(
            MetricDataQueries=queries, StartTime=start, EndTime=end
        )["MetricDataResults"]
        series: dict[str, dict[dt.datetime, float]] = {
            r["Id"]: dict(zip(r["Timestamps"], r["Values"], strict=True)) for r in result
        }
        stamps = sorted({t for s in series.values() for t in s})
        points: list[tuple[dt.datetime, float]] = []
        for t in stamps:
            if expression:
                values = {qid: s[t] for qid, s in series.items() if t in s}
                # Lambda publishes Errors whenever it publishes Invocations.
                value = eval_metric_math(expression, values)
            else:
                value = series.get(result_id, {}).get(t)
            if value is not None:
                points.append((t, value))
        n = int(alarm["EvaluationPeriods"])
        m = int(alarm.get("DatapointsToAlarm") or n)
        window_start = end - dt.timedelta(seconds=period * n)
        window = [(t, v) for t, v in points if t >= window_start]
        compare = _COMPARE[alarm["ComparisonOperator"]]
        threshold = float(alarm["Threshold"])
        breaching = [(t, v) for t, v in window if compare(v, threshold)]
        treat_missing = alarm.get("TreatMissingData", "missing")
        if len(breaching) >= m:
            state = "ALARM"
            reason = f"{len(breaching)} of the last {n} periods breach {threshold:g}"
        elif window or treat_missing in ("notBreaching", "ignore"):
            state = "OK"
            reason = f"{len(breaching)} of the last {n} periods breach {threshold:g} (need {m})"
        else:
            state = "INSUFFICIENT_DATA"
            reason = "no datapoints in the evaluation window"
        out.append(
            AlarmEvaluation(
                name=alarm["AlarmName"],
                emulator_state=alarm.get("StateValue", "?"),
                state=state,
                reason=reason,
                threshold=threshold,
                comparison=alarm["ComparisonOperator"],
                evaluation_periods=n,
                datapoints_to_alarm=m,
                period_s=period,
                metric=expression or f"{alarm.get('MetricName')} {alarm.get('Statistic')}",
                datapoints=points,
                actions=list(alarm.get("AlarmActions", [])),
            )
        )
    return out


def notify_alarm_actions(
    evaluations: Sequence[AlarmEvaluation], gateway: Gateway, clients: Clients
) -> list[tuple[str, str, bool, str]]:
    """What CloudWatch does for an alarm in ALARM (moto never does it): publish to every SNS
    topic among its actions, as the service principal cloudwatch.amazonaws.com, which the
    topic policy and the topic's KMS key policy must allow (decided by the gateway's model).
    Returns (alarm, topic, allowed, reason) per notification; allowed ones are published."""
    out: list[tuple[str, str, bool, str]] = []
    for alarm in evaluations:
        if alarm.state != "ALARM":
            continue
        alarm_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{alarm.name}"
        for topic in alarm.actions:
            if ":sns:" not in topic:
                continue
            decision = gateway.alarm_publishes(alarm_arn, topic)
            if decision.allowed:
                clients("sns").publish(
                    TopicArn=topic,
                    Subject=f"ALARM: {alarm.name}"[:100],
                    Message=json.dumps(
                        {
                            "AlarmName": alarm.name,
                            "NewStateValue": "ALARM",
                            "NewStateReason": alarm.reason,
                        }
                    ),
                )
            out.append((alarm.name, topic, decision.allowed, decision.reason))
    return out
