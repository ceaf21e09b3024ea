"""Items of one status over time from the write-sharded status index (contract/decisions.md P40).

status_shard-index is keyed (status_shard, timestamp) with status_shard = "<status>#<n>",
n < STATUS_INDEX_SHARDS (the Terraform variable status_index_shards), so that the index's
writes spread over that many partition key values. A read by status queries every shard for
the time range and merges the shards' pages, each already in timestamp order, into one stream
in timestamp order. Each Query reads one partition key value (eventually consistent, as every
GSI read); pages are fetched lazily, so memory holds one page per shard.

    from pipeline_local.status_query import items_by_status
    for item in items_by_status(ddb, "dynamodb-transactions-dev", "PROCESSED", shards=16,
                                since_ms=1_711_929_600_000, until_ms=1_712_016_000_000):
        ...

Use the largest shard count the table has ever been deployed with (raising it is safe; items
written under a smaller count sit in shards below it).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

INDEX_NAME = "status_shard-index"


def shard_keys(status: str, shards: int) -> list[str]:
    """Every status_shard value of `status` (P40)."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, not {shards}")
    return [f"{status}#{n}" for n in range(shards)]


def _shard_items(
    ddb: Any, table: str, shard: str, since_ms: int, until_ms: int, descending: bool
) -> Iterator[dict[str, Any]]:
    """One shard's items with since_ms <= timestamp < until_ms, page by page, in order."""
    params: dict[str, Any] = {
        "TableName": table,
        "IndexName": INDEX_NAME,
        "KeyConditionExpression": "status_shard = :shard AND #ts BETWEEN :since AND :until",
        # timestamp is a reserved word in DynamoDB expressions.
        "ExpressionAttributeNames": {"#ts": "timestamp"},
        "ExpressionAttributeValues": {
            ":shard": {"S": shard},
            ":since": {"N": str(since_ms)},
            ":until": {"N": str(until_ms - 1)},
        },
        "ScanIndexForward": not descending,
    }
    while True:
        page = ddb.query(**params)
        yield from page.get("Items", [])
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        params["ExclusiveStartKey"] = last


def items_by_status(
    ddb: Any,
    table: str,
    status: str,
    *,
    shards: int,
    since_ms: int,
    until_ms: int,
    descending: bool = False,
) -> Iterator[dict[str, Any]]:
    """Items (DynamoDB JSON) of `status` with since_ms <= timestamp < until_ms, in timestamp
    order (newest first when `descending`), from every shard of status_shard-index."""
    if until_ms <= since_ms:
        return iter(())
    streams = [
        _shard_items(ddb, table, shard, since_ms, until_ms, descending)
        for shard in shard_keys(status, shards)
    ]

    def timestamp(item: dict[str, Any]) -> int:
        return int(item["timestamp"]["N"])

    return heapq.merge(*streams, key=timestamp, reverse=descending)
