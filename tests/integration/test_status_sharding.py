"""The write-sharded status index (contract/decisions.md P40): the by-status query helper over a
real moto server, and the index's write ceiling on the DynamoDB-faithful endpoint, sharded
against the single `PROCESSED` key it replaces."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline_local.ddb_faithful import start_ddb_faithful
from pipeline_local.emulator import Emulator
from pipeline_local.status_query import INDEX_NAME, items_by_status
from tests.integration.conftest import dynamodb_client as client

TABLE = "sharded-transactions"
SHARDS = 16  # a small count, every shard in the sample; the 1,000 of lib/'s default below


def create_table(ddb: Any, index_key: str) -> None:
    """The transactions table as lib/main.tf defines it, its GSI keyed on `index_key`."""
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "transaction_id", "KeyType": "HASH"},
            {"AttributeName": "timestamp", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "transaction_id", "AttributeType": "S"},
            {"AttributeName": "timestamp", "AttributeType": "N"},
            {"AttributeName": index_key, "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX_NAME if index_key == "status_shard" else "status-index",
                "KeySchema": [
                    {"AttributeName": index_key, "KeyType": "HASH"},
                    {"AttributeName": "timestamp", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def shard(transaction_id: str, shards: int = SHARDS) -> str:
    """P40, computed here independently of both handlers."""
    digest = hashlib.sha256(transaction_id.encode()).digest()
    return f"PROCESSED#{int.from_bytes(digest[:8], 'big') % shards}"


def item(n: int, timestamp: int, shards: int = SHARDS) -> dict[str, Any]:
    tid = f"T-{n:06d}"
    return {
        "transaction_id": {"S": tid},
        "timestamp": {"N": str(timestamp)},
        "status": {"S": "PROCESSED"},
        "status_shard": {"S": shard(tid, shards)},
    }


def test_query_helper_returns_every_item_of_the_range_in_time_order(moto: Emulator) -> None:
    moto.reset()
    ddb = client(moto.endpoint)
    create_table(ddb, "status_shard")
    rng = random.Random(12)
    stamps = {n: 1_700_000_000_000 + rng.randrange(0, 10_000_000) for n in range(600)}
    for n, ts in stamps.items():
        ddb.put_item(TableName=TABLE, Item=item(n, ts))
    used = {shard(f"T-{n:06d}") for n in stamps}
    assert len(used) == SHARDS, "the sample spreads over every shard"
    since, until = 1_700_002_000_000, 1_700_008_000_000
    want = sorted((ts, f"T-{n:06d}") for n, ts in stamps.items() if since <= ts < until)
    got = [
        (int(i["timestamp"]["N"]), i["transaction_id"]["S"])
        for i in items_by_status(
            ddb, TABLE, "PROCESSED", shards=SHARDS, since_ms=since, until_ms=until
        )
    ]
    assert [ts for ts, _ in got] == sorted(ts for ts, _ in got)
    assert sorted(got) == want
    newest_first = list(
        items_by_status(
            ddb, TABLE, "PROCESSED", shards=SHARDS, since_ms=since, until_ms=until, descending=True
        )
    )
    assert [int(i["timestamp"]["N"]) for i in newest_first] == [ts for ts, _ in reversed(want)]
    # Fewer shards than were written hides items: the helper must be given the largest count.
    partial = list(
        items_by_status(ddb, TABLE, "PROCESSED", shards=8, since_ms=since, until_ms=until)
    )
    assert len(partial) < len(want)


def test_query_helper_reads_lib_s_most_shards_side_by_side_in_small_pages(moto: Emulator) -> None:
    """1,000 shards (lib/provider.tf's default and most): the first pages are read 10 at a
    time, later pages follow as the merge needs them, and every item comes once, in time order."""
    moto.reset()
    ddb = client(moto.endpoint)
    create_table(ddb, "status_shard")
    shards = 1_000
    rows = {n: 1_700_000_000_000 + n * 1_000 for n in range(150)}
    for n, ts in rows.items():
        ddb.put_item(TableName=TABLE, Item=item(n, ts, shards))
    want = [f"T-{n:06d}" for n in sorted(rows, key=rows.__getitem__)]
    got = [
        i["transaction_id"]["S"]
        for i in items_by_status(
            ddb,
            TABLE,
            "PROCESSED",
            shards=shards,
            since_ms=1_700_000_000_000,
            until_ms=1_800_000_000_000,
            page_items=1,
        )
    ]
    assert got == want
    per_shard = Counter(shard(tid, shards) for tid in want)
    assert max(per_shard.values()) >= 3, "some shard is read in several pages"


def admitted(endpoint: Any, rows: list[dict[str, Any]], advance: Any, per_tick: int) -> int:
    """Offer `rows` `per_tick` at a time, 100 ms of simulated time apart; count the admitted."""
    ddb = client(endpoint)
    count = 0
    for start in range(0, len(rows), per_tick):
        advance(100)
        for row in rows[start : start + per_tick]:
            try:
                ddb.put_item(TableName=TABLE, Item=row)
                count += 1
            except ClientError as err:
                assert err.response["Error"]["Code"] == "ThrottlingException"
    return count


@pytest.mark.parametrize(
    ("index_key", "floor", "ceiling"), [("status", 0, 0.7), ("status_shard", 0.97, 1)]
)
def test_sharded_index_takes_the_load_one_key_cannot(
    index_key: str, floor: float, ceiling: float
) -> None:
    """2,400 puts/s for 2 simulated seconds on a new on-demand table (4,000 WRU/s; each put
    costs 1 WRU on the table and 1 on the index): one status key caps the index at 1,000/s
    after its first second of stored capacity (about 60 % admitted), the 16 shards take it
    all."""
    ddb = start_ddb_faithful(memory=True, latency="none", clock="manual")
    try:
        create_table(client(ddb.endpoint), index_key)
        offered = [item(n, 1_700_000_000_000 + n) for n in range(4_800)]
        count = admitted(ddb.endpoint, offered, ddb.advance, per_tick=240)
        share = count / len(offered)
        print(f"\n{index_key}: {count} of {len(offered)} admitted ({share:.0%})")
        assert floor <= share <= ceiling
    finally:
        ddb.stop()
