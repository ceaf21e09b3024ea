"""pipeline_local/status_query.py's fan-out against a fake client: how many Queries are in the
air at once, and what it refuses (its answers from moto: tests/integration/test_status_sharding)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pipeline_local.status_query import items_by_status


class SlowIndex:
    """Every shard holds one item. The first Queries wait (up to 2 s) until `expected` are in the
    air together, so that a loaded machine cannot hide a helper that sends fewer at once; the
    most ever in the air is kept."""

    def __init__(self, expected: int = 1) -> None:
        self._expected = expected
        self._changed = threading.Condition()
        self._in_air = 0
        self.most_in_air = 0
        self.calls = 0

    def query(self, **params: Any) -> dict[str, Any]:
        with self._changed:
            self._in_air += 1
            self.calls += 1
            self.most_in_air = max(self.most_in_air, self._in_air)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self.most_in_air >= self._expected, timeout=2)
        time.sleep(0.005)
        with self._changed:
            self._in_air -= 1
        shard = params["ExpressionAttributeValues"][":shard"]["S"]
        n = int(shard.rsplit("#", 1)[1])
        return {"Items": [{"timestamp": {"N": str(1_000 + n)}, "shard": {"S": shard}}]}


@pytest.mark.parametrize("workers", [1, 10])
def test_first_pages_go_out_workers_at_a_time(workers: int) -> None:
    index = SlowIndex(expected=workers)
    items = list(
        items_by_status(
            index, "t", "PROCESSED", shards=40, since_ms=0, until_ms=10_000, workers=workers
        )
    )
    assert [int(i["timestamp"]["N"]) for i in items] == list(range(1_000, 1_040))
    assert index.calls == 40
    assert index.most_in_air == workers


@pytest.mark.parametrize(("name", "value"), [("workers", 0), ("page_items", 0)])
def test_it_refuses_a_count_below_one(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least 1"):
        kwargs: dict[str, Any] = {name: value}
        items_by_status(SlowIndex(), "t", "PROCESSED", shards=4, since_ms=0, until_ms=1, **kwargs)
