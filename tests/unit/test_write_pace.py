"""Writes that yield to throttling (P37): the AIMD limit on writes in flight, the backoff of a
throttled write, and what the processor makes of throttles, over in-process fakes."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.unit.conftest import (
    MAIN_URL,
    FakeContext,
    Pipeline,
    client_error,
    csv_bytes,
    row_csv,
    sqs_event,
    valid_row,
)

THROTTLE = "ProvisionedThroughputExceededException"


def throttle_first(limit: int, code: str = THROTTLE) -> Any:
    """Every record's first `limit` PutItem calls are throttled."""
    seen: dict[str, int] = {}

    def fail(item: Any) -> Exception | None:
        key = item["transaction_id"]["S"]
        seen[key] = seen.get(key, 0) + 1
        return client_error(code, 400, "PutItem") if seen[key] <= limit else None

    return fail


def test_backoff_is_full_jitter_under_a_cap(proc: Any) -> None:
    backoff = proc.WriteBackoff(base_ms=50, cap_ms=2_000, retries=64)
    for retry, ceiling in [(0, 50), (1, 100), (3, 400), (5, 1_600), (6, 2_000), (63, 2_000)]:
        waits = [backoff.delay_ms(retry) for _ in range(400)]
        assert all(0 <= w < ceiling for w in waits), retry
        # Full jitter spreads the waits over the whole range, not around the ceiling.
        assert min(waits) < ceiling * 0.1 and max(waits) > ceiling * 0.9, retry


def given_up(limiter: Any, ticket: int) -> None:
    """A write throttled once and handed on as a retry_record: counted, then its slot freed."""
    limiter.throttle(ticket, retried=False)
    limiter.release_counted()


def test_limiter_halves_once_per_window_and_grows_back(proc: Any) -> None:
    limiter = proc.WriteLimiter(16)
    tickets = [limiter.acquire() for _ in range(16)]
    assert limiter.in_flight == 16 and set(tickets) == {0}
    given_up(limiter, tickets[0])
    assert limiter.limit == 8
    # Throttles of writes sent before the halving report load already cut: no second halving.
    for ticket in tickets[1:6]:
        given_up(limiter, ticket)
    assert (limiter.limit, limiter.throttled) == (8, 6)
    for _ in tickets[6:]:
        limiter.release_answered()  # 10 answered: one window of 8 -> 9
    assert limiter.limit == 9 and limiter.in_flight == 0
    # A write sent in the new window halves again, down to the floor of one.
    for _ in range(6):
        given_up(limiter, limiter.acquire())
    assert (limiter.limit, limiter.lowest) == (1, 1)
    # Answers without a throttle raise it by one per window of `limit` answers, up to 16.
    for _ in range(400):
        limiter.acquire()
        limiter.release_answered()
    assert limiter.limit == 16


def test_limiter_blocks_writers_over_the_limit(proc: Any) -> None:
    limiter = proc.WriteLimiter(2)
    limiter.acquire()
    limiter.acquire()
    got_third = threading.Event()

    def third() -> None:
        limiter.acquire()
        limiter.release_answered()
        got_third.set()

    thread = threading.Thread(target=third)
    thread.start()
    assert not got_third.wait(0.05)  # both slots taken
    limiter.release_answered()  # the first
    assert got_third.wait(5)
    limiter.release_answered()  # the second
    thread.join()
    assert limiter.in_flight == 0


def test_a_throttled_write_keeps_its_slot_while_it_waits(proc: Any) -> None:
    limiter = proc.WriteLimiter(4)
    waiting = limiter.acquire()
    other = limiter.acquire()
    waiting = limiter.throttle(waiting, retried=True)
    assert (limiter.limit, limiter.in_flight, limiter.throttled) == (2, 2, 1)
    assert (limiter.retried, limiter.gave_up) == (1, 0)
    # Sent again in the new window: a second throttle halves again.
    assert waiting == 1
    waiting = limiter.throttle(waiting, retried=False)
    assert limiter.limit == 1
    # A throttle of a write sent before the halving does not halve again.
    given_up(limiter, other)
    assert (limiter.limit, limiter.in_flight, limiter.throttled) == (1, 1, 3)
    limiter.release_counted()
    assert (limiter.in_flight, limiter.throttled, limiter.answered) == (0, 3, 0)
    assert (limiter.retried, limiter.gave_up) == (1, 2)


def test_put_yielding_sleeps_holding_its_slot(proc: Any, monkeypatch: Any) -> None:
    """While a throttled write waits its backoff it is still in flight, so a lowered limit
    bounds how many records ask again (released, each sleeper asked again at its own pace)."""
    fail = throttle_first(2)

    class Table:
        def put_item(self, TableName: str, Item: Mapping[str, Any], **_: Any) -> dict[str, Any]:
            error = fail(Item)
            if error is not None:
                raise error
            return {}

    inv = proc.Invocation(margin_ms=0, writes=proc.WriteLimiter(4))
    in_flight_while_sleeping: list[int] = []
    monkeypatch.setattr(
        proc.time, "sleep", lambda _s: in_flight_while_sleeping.append(inv.writes.in_flight)
    )
    item = {"transaction_id": {"S": "t1"}, "timestamp": {"N": "1"}}
    outcome = proc.put_yielding(Table(), "t", item, inv, proc.WriteBackoff())
    assert outcome.status == "stored"
    assert in_flight_while_sleeping == [1, 1]
    limiter = inv.writes
    assert (limiter.in_flight, limiter.throttled, limiter.retried) == (0, 2, 2)
    # Two throttles, the second sent in the window the first opened: 4 -> 2 -> 1; then one
    # answer without a throttle fills a window of 1: back to 2.
    assert (limiter.lowest, limiter.limit) == (1, 2)


class CapacityTable:
    """A table that serves `capacity` writes in flight at once and throttles any beyond."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.lock = threading.Lock()
        self.in_flight = 0
        self.items: dict[str, Mapping[str, Any]] = {}
        self.throttles = 0

    def put_item(self, TableName: str, Item: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        with self.lock:
            if self.in_flight >= self.capacity:
                self.throttles += 1
                raise client_error(THROTTLE, 400, "PutItem")
            self.in_flight += 1
        time.sleep(0.002)  # the request's time in flight
        with self.lock:
            self.in_flight -= 1
            assert Item["transaction_id"]["S"] not in self.items, "stored twice"
            self.items[Item["transaction_id"]["S"]] = Item
        return {}


def test_sixteen_writers_yield_to_a_table_that_serves_two(proc: Any) -> None:
    table = CapacityTable(capacity=2)
    items = [{"transaction_id": {"S": f"t{i}"}, "timestamp": {"N": "1"}} for i in range(300)]
    inv = proc.Invocation(margin_ms=0, writes=proc.WriteLimiter(16))
    backoff = proc.WriteBackoff(base_ms=1, cap_ms=4, retries=64)
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = proc.write_items(table, "t", items, pool, inv, backoff)
    assert {o.status for o in outcomes} == {"stored"} and len(table.items) == 300
    limiter = inv.writes
    assert table.throttles == limiter.throttled == limiter.retried > 0
    assert limiter.gave_up == 0 and limiter.lowest <= 2


def test_throttled_writes_wait_and_are_stored(pipe: Pipeline) -> None:
    pipe.ddb.fail = throttle_first(3)
    rows = [row_csv(valid_row(i)) for i in range(1, 5)]
    result = pipe.run_file("in/a.csv", csv_bytes(*rows))["files"][0]
    assert (result["stored"], result["retried"]) == (4, 0)
    assert pipe.main() == [] and pipe.dlq() == []
    assert pipe.ddb.put_calls == 4 * 4


def test_every_throttling_code_is_retried_and_nothing_else(pipe: Pipeline) -> None:
    for index, code in enumerate((THROTTLE, "ThrottlingException", "RequestLimitExceeded"), 1):
        pipe.ddb.fail = throttle_first(1, code)
        row = csv_bytes(row_csv(valid_row(index)))
        assert pipe.run_file(f"in/{code}.csv", row)["files"][0]["stored"] == 1, code
    assert pipe.main() == [] and pipe.ddb.put_calls == 6
    pipe.ddb.fail = throttle_first(1, "ValidationException")
    result = pipe.run_file("in/v.csv", csv_bytes(row_csv(valid_row(9))))["files"][0]
    assert result["retried"] == 1 and pipe.ddb.put_calls == 7


def test_throttled_past_its_retries_a_record_becomes_a_retry_record(proc: Any) -> None:
    pipe = Pipeline(proc, throttle_retries=2)
    pipe.ddb.fail = throttle_first(3)
    result = pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1)), row_csv(valid_row(2))))
    assert (result["files"][0]["stored"], result["files"][0]["retried"]) == (0, 2)
    assert pipe.ddb.put_calls == 2 * 3  # the first attempt and two retries
    retries = pipe.main()
    assert [m["error"]["code"] for m in retries] == [THROTTLE, THROTTLE]
    pipe.drain()  # the fourth call of each record is not throttled: stored from the queue
    assert sorted(i["transaction_id"] for i in pipe.transactions()) == ["tx-00001", "tx-00002"]


def test_a_throttled_write_never_waits_into_the_safety_margin(pipe: Pipeline) -> None:
    pipe.ddb.fail = throttle_first(1)
    margin = pipe.cfg.time_safety_margin_ms
    # Exactly the margin left: no wait fits, the throttled write goes to the queue at once.
    context = FakeContext(remaining=lambda: margin)
    result = pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1))), context)["files"][0]
    assert (result["stored"], result["retried"], pipe.ddb.put_calls) == (0, 1, 1)
    assert [m["kind"] for m in pipe.sqs.bodies(MAIN_URL)] == ["retry_record"]


def test_throttles_keep_the_first_record_of_a_key_in_file_order(pipe: Pipeline) -> None:
    """P17 holds while writes yield: the later row with the same key waits for the earlier
    one, however often the earlier one is throttled."""
    pipe.ddb.fail = throttle_first(5)
    first, second = valid_row(1, amount="1"), valid_row(1, amount="2")
    result = pipe.run_file("in/a.csv", csv_bytes(row_csv(first), row_csv(second)))["files"][0]
    assert (result["stored"], result["invalid"], result["retried"]) == (1, 1, 0)
    (item,) = pipe.transactions()
    assert (item["amount"], item["source_line"]) == (1, 2)
    assert [m["error_code"] for m in pipe.dlq()] == ["DUPLICATE_CONFLICT"]


def test_a_throttled_retry_record_waits_and_is_stored(pipe: Pipeline, proc: Any) -> None:
    tx = proc.validate_record(valid_row(1))
    source = proc.SourceInfo("b", "in/a.csv", "v1", None)
    message = proc.retry_record_message(tx, source, 2, "InternalServerError", "", 1)
    pipe.ddb.fail = throttle_first(2)
    response = pipe.invoke(sqs_event([proc.encode_message(message)]))
    assert response == {"batchItemFailures": []}  # stored: not redelivered
    assert [i["transaction_id"] for i in pipe.transactions()] == ["tx-00001"]
    assert pipe.ddb.put_calls == 3


def test_botocore_leaves_a_throttled_transaction_write_to_the_processor(proc: Any) -> None:
    """The transaction writes' client: botocore's endpoint does not retry when a needs-retry
    handler answers False, so a throttle goes straight to the limiter (P37); every other answer
    is left to the standard retry handler (None)."""
    handler = proc._throttle_not_retried
    for code in sorted(proc.THROTTLING_CODES):
        assert handler(response=(None, {"Error": {"Code": code}})) is False, code
    for other in ("InternalServerError", "ConditionalCheckFailedException", ""):
        assert handler(response=(None, {"Error": {"Code": other}})) is None, other
    assert handler(response=(None, {})) is None  # a success
    assert handler(response=None, caught_exception=OSError()) is None  # no answer


def test_the_transaction_writes_client_sends_a_throttled_put_once(proc: Any) -> None:
    """Through botocore's own request loop (its before-send event answers in place of the
    network): one request for a throttled PutItem on the records' client, where its standard
    retries would make six (the first and five retries)."""
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}'

    sent: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.url)
        headers = {"x-amzn-ErrorType": "ThrottlingException", "content-type": "application/json"}
        return AWSResponse(request.url, 400, headers, Raw())

    events = proc.transaction_writes_client.meta.events
    events.register("before-send.dynamodb.PutItem", answer)
    try:
        item = {"transaction_id": {"S": "t1"}, "timestamp": {"N": "1"}}
        outcome = proc.put_transaction(proc.transaction_writes_client, "t", item)
    finally:
        events.unregister("before-send.dynamodb.PutItem", answer)
    assert (outcome.status, outcome.error_code, len(sent)) == ("failed", "ThrottlingException", 1)
