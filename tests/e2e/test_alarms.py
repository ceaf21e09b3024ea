"""The two alarms: the metrics that would trip them, evaluated as CloudWatch would.

moto stores the alarms but never evaluates them (and computes no metric math): their state
stays what it was at creation. So the tests put the datapoints that SQS and Lambda would
publish (queue depth read from the queue itself; Invocations/Errors from the dispatcher's
record of every invocation) into two consecutive 5-minute periods, and evaluate the alarms as
they are stored in the emulator (threshold, comparison, periods, datapoints to alarm,
expression) with `dispatcher.evaluate_alarms`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import unquote_plus

from pipeline_local import samples as sample_files
from pipeline_local.alarms import AlarmEvaluation, evaluate_alarms, notify_alarm_actions
from pipeline_local.faults import CrashingInvoker
from pipeline_local.metrics import put_lambda_metrics, put_queue_metrics
from tests.e2e.conftest import E2E

DLQ_ALARM = "cw-alarm-dlq-depth-dev"
ERROR_RATE_ALARM = "cw-alarm-processor-error-rate-dev"
PROCESSOR = "lambda-transaction-processor-dev"


def _periods(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """A moment in the current 5-minute period and one in the period before."""
    start = dt.datetime.fromtimestamp(int(now.timestamp()) // 300 * 300, dt.UTC)
    return now, start - dt.timedelta(seconds=150)


def _alarms(e2e: E2E, now: dt.datetime) -> dict[str, AlarmEvaluation]:
    return {a.name: a for a in evaluate_alarms(e2e.clients("cloudwatch"), now=now)}


def _invalid_rows_csv(key: str, count: int) -> sample_files.SampleFile:
    """A CSV whose every row is invalid (amount 0): one DLQ message per row."""
    base = sample_files.bulk_file(key, count, tag="TA")
    table = list(csv.reader(io.StringIO(base.body.decode())))
    col = table[0].index("amount")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table[0])
    for cells in table[1:]:
        writer.writerow([*cells[:col], "0", *cells[col + 1 :]])
    rows = [sample_files.Row(r.line, r.transaction_id, error="INVALID_VALUE") for r in base.rows]
    return sample_files.SampleFile(key, out.getvalue().encode(), rows, "every amount is 0")


def test_dlq_depth_alarm_trips_above_100_messages(clean_e2e: E2E) -> None:
    e2e = clean_e2e
    dispatcher = e2e.dispatcher()
    bad = _invalid_rows_csv(sample_files.PREFIX + "40-all-invalid.csv", 130)
    uploads = e2e.upload([bad], sample_files.Ledger())
    # The processor runs; the DLQ's consumer does not (yet): 130 messages wait on the DLQ.
    dispatcher.deliver(dispatcher.pending_events())
    assert e2e.depths()["dlq"] == 130

    now, before = _periods(dt.datetime.now(dt.UTC))
    cw, sqs = e2e.clients("cloudwatch"), e2e.clients("sqs")
    for moment in (before, now):  # SQS publishes the depth every minute; two periods of it
        put_queue_metrics(sqs, cw, e2e.wiring, when=moment)
    alarm = _alarms(e2e, now)[DLQ_ALARM]
    assert alarm.state == "ALARM", alarm
    assert [v for _, v in alarm.datapoints[-2:]] == [130.0, 130.0]
    assert alarm.threshold == 100 and alarm.evaluation_periods == alarm.datapoints_to_alarm == 2
    assert any(a.endswith(":sns-pipeline-alerts-dev") for a in alarm.actions)
    # What moto does with it: nothing. The stored state is the one it was created with.
    stored = cw.describe_alarms(AlarmNames=[DLQ_ALARM])["MetricAlarms"][0]
    assert stored["StateValue"] == alarm.emulator_state == "OK"
    # CloudWatch publishes to the encrypted topic as cloudwatch.amazonaws.com: the topic policy
    # and the topic key's policy allow it (decided by the model, with what SNS does with KMS).
    (notified,) = notify_alarm_actions([alarm], e2e.gateway, e2e.clients)
    assert notified[2], notified
    by_cloudwatch = e2e.gateway.allowed_by("cloudwatch.amazonaws.com")
    assert any(a == "sns:Publish" and r == notified[1] for a, r, _ in by_cloudwatch)
    topic_key = str(e2e.stack.outputs["kms_lambda_key_arn"])
    assert any(a.startswith("kms:") and r == topic_key for a, r, _ in by_cloudwatch)

    # The consumer catches up: every message becomes one error row; the next period is fine.
    dispatcher.drain()
    assert e2e.depths() == {"main": 0, "dlq": 0}
    acc = e2e.account(uploads)
    assert acc.ok and acc.files[0].errors == {"INVALID_VALUE": 130}
    later = now + dt.timedelta(minutes=5)
    put_queue_metrics(sqs, cw, e2e.wiring, when=later)
    assert _alarms(e2e, later)[DLQ_ALARM].state == "OK"


def test_error_rate_alarm_trips_above_one_percent(clean_e2e: E2E) -> None:
    e2e = clean_e2e
    # Two rounds of 20 small files; the first attempt of each round's first file is killed
    # (Lambda retries it): 1 error in 21 invocations per round, 4.8 %.
    not_killed_yet = {f"{sample_files.PREFIX}41-r{n}-00.json" for n in range(2)}

    def first_file(event: dict) -> bool:
        """True once per round: for the first attempt of the round's first file."""
        key = unquote_plus(event["Records"][0]["s3"]["object"]["key"])
        if key in not_killed_yet:
            not_killed_yet.discard(key)
            return True
        return False

    dispatcher = e2e.dispatcher()
    dispatcher.wrap(
        PROCESSOR, lambda inner: CrashingInvoker(inner, after_calls=1, crashes=2, when=first_file)
    )
    ledger = sample_files.Ledger()
    uploads: list[sample_files.Upload] = []
    rounds = []
    for round_no in range(2):
        files = [
            sample_files.bulk_file(
                f"{sample_files.PREFIX}41-r{round_no}-{i:02d}.json", 3, tag=f"TE{round_no}{i:02d}"
            )
            for i in range(20)
        ]
        uploads += e2e.upload(files, ledger)
        seen = len(dispatcher.records)
        dispatcher.run()
        records = [r for r in dispatcher.records[seen:] if r.function_name == PROCESSOR]
        summary = [(r.source, r.error is None, r.files[0][0][-12:]) for r in records]
        assert len(records) == 21 and sum(1 for r in records if r.error) == 1, summary
        rounds.append(records)
    assert e2e.account(uploads).ok

    now, before = _periods(dt.datetime.now(dt.UTC))
    cw = e2e.clients("cloudwatch")
    put_lambda_metrics(cw, rounds[0], at=before)
    first = _alarms(e2e, now)[ERROR_RATE_ALARM]
    assert first.state == "OK"  # one breaching period of the two required
    put_lambda_metrics(cw, rounds[1], at=now)
    alarm = _alarms(e2e, now)[ERROR_RATE_ALARM]
    rate = 100 * 1 / 21
    assert [round(v, 3) for _, v in alarm.datapoints[-2:]] == [round(rate, 3)] * 2
    assert alarm.state == "ALARM", alarm
    assert alarm.metric == "IF(invocations > 0, 100 * errors / invocations, 0)"
    stored = cw.describe_alarms(AlarmNames=[ERROR_RATE_ALARM])["MetricAlarms"][0]
    assert stored["StateValue"] == "OK"  # moto never evaluates it
