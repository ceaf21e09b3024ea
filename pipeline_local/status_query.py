"""Items of one status over time from the write-sharded status index (contract/decisions.md P40).

status_shard-index is keyed (status_shard, timestamp) with status_shard = "<status>#<n>",
n < STATUS_INDEX_SHARDS (the Terraform variable status_index_shards), so that the index's
writes spread over that many partition key values. A read by status queries every shard for
the time range and merges the shards' pages, each already in timestamp order, into one stream
in timestamp order. Each Query reads one partition key value (eventually consistent, as every
GSI read); every shard's first page is read at once, `workers` Queries at a time, and
later pages lazily, so memory holds one page per shard.

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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

INDEX_NAME = "status_shard-index"


def shard_keys(status: str, shards: int) -> list[str]:
    """Every status_shard value of `status` (P40)."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, not {shards}")
    return [f"{status}#{n}" for n in range(shards)]


def _query_params(
    table: str, shard: str, since_ms: int, until_ms: int, descending: bool, page_items: int | None
) -> dict[str, Any]:
    """One shard's Query for since_ms <= timestamp < until_ms, in order."""
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
    if page_items is not None:
        params["Limit"] = page_items
    return params


def _shard_items(
    ddb: Any, params: dict[str, Any], page: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """One shard's items, from its first page (already read) on, page by page."""
    while True:
        yield from page.get("Items", [])
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        page = ddb.query(**params, ExclusiveStartKey=last)


def items_by_status(
    ddb: Any,
    table: str,
    status: str,
    *,
    shards: int,
    since_ms: int,
    until_ms: int,
    descending: bool = False,
    workers: int = 10,
    page_items: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Items (DynamoDB JSON) of `status` with since_ms <= timestamp < until_ms, in timestamp
    order (newest first when `descending`), from every shard of status_shard-index.

    The merge needs every shard's first page before it can yield anything, so those are read
    `workers` at a time (a boto3 client may be shared between threads; botocore keeps 10
    connections per client unless its max_pool_connections says more): with 1,000 shards one
    after another the first item would wait for 1,000 round trips. The first pages are read
    when this is called, so their errors are raised here. A page is up to 1 MB
    (DynamoDB's own limit) unless `page_items` caps it: with many shards, a cap bounds the
    memory the merge holds (one page per shard)."""
    if until_ms <= since_ms:
        return iter(())
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if page_items is not None and page_items < 1:
        raise ValueError(f"page_items must be at least 1, not {page_items}")
    queries = [
        _query_params(table, shard, since_ms, until_ms, descending, page_items)
        for shard in shard_keys(status, shards)
    ]
    with ThreadPoolExecutor(max_workers=min(workers, len(queries))) as pool:
        first_pages = list(pool.map(lambda params: ddb.query(**params), queries))
    streams = [
        _shard_items(ddb, params, page) for params, page in zip(queries, first_pages, strict=True)
    ]

    def timestamp(item: dict[str, Any]) -> int:
        return int(item["timestamp"]["N"])

    return heapq.merge(*streams, key=timestamp, reverse=descending)
