"""The DynamoDB-faithful endpoint (crates/ddb-faithful) over HTTP with boto3, in front of a real
moto server and on its in-memory backend: semantics intact, throttling at the modelled rates,
throttle answers exactly as AWS sends them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline_local.ddb_faithful import FaithfulDynamoDB, start_ddb_faithful
from pipeline_local.emulator import Emulator
from pipeline_local.scratch_stack import lib_table
from tests.integration.conftest import dynamodb_client as client

REGION = "eu-central-1"
TABLE = "faithful-transactions"
INDEX = "status_shard-index"  # lib/main.tf's (P40)
THROTTLING_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
    "scaling your table or index so please try again shortly. If exceptions persist, check if you "
    "have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
    "bp-partition-key-design.html"
)
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}"
# Offered load is sent in ticks of simulated time; the buckets refill between ticks.
TICK_MS = 100
TICKS_PER_SECOND = 1000 // TICK_MS


def item(txn: str, ts: int, status: str | None = None) -> dict[str, Any]:
    """A transactions item; with a status, it is on status_shard-index, every such item in
    shard 0 of its status (one index key value per status)."""
    out: dict[str, Any] = {
        "transaction_id": {"S": txn},
        "timestamp": {"N": str(ts)},
        "amount": {"N": "12.50"},
        "currency": {"S": "EUR"},
    }
    if status:
        out["status"] = {"S": status}
        out["status_shard"] = {"S": f"{status}#0"}
    return out


def conditional_put(ddb: Any, row: dict[str, Any]) -> Any:
    return ddb.put_item(
        TableName=TABLE,
        Item=row,
        ConditionExpression="attribute_not_exists(transaction_id)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )


@pytest.fixture
def proxied(moto: Emulator) -> Iterator[FaithfulDynamoDB]:
    """The endpoint in front of moto with a manual clock, and a fresh table."""
    moto.reset()
    ddb = start_ddb_faithful(upstream=moto.endpoint, latency="none", clock="manual")
    try:
        lib_table("transactions").create(client(ddb.endpoint), TABLE)
        yield ddb
    finally:
        ddb.stop()


@pytest.fixture
def memory() -> Iterator[FaithfulDynamoDB]:
    ddb = start_ddb_faithful(memory=True, latency="none", clock="manual")
    try:
        lib_table("transactions").create(client(ddb.endpoint), TABLE)
        yield ddb
    finally:
        ddb.stop()


def admitted_per_second(
    ddb: FaithfulDynamoDB,
    offered_per_second: int,
    seconds: int,
    row_for: Callable[[int], dict[str, Any]],
) -> list[int]:
    """Empty the buckets with one second's offered load at a single instant (they start full
    with one second of capacity), then offer the load tick by tick for `seconds` simulated
    seconds; return how many puts were admitted in each of them."""
    dynamodb = client(ddb.endpoint)
    n = 0

    def offer(count: int) -> int:
        nonlocal n
        admitted = 0
        for _ in range(count):
            try:
                dynamodb.put_item(TableName=TABLE, Item=row_for(n))
                admitted += 1
            except ClientError as err:
                assert err.response["Error"]["Code"] == "ThrottlingException"
            n += 1
        return admitted

    offer(offered_per_second)
    counts: list[int] = []
    for _ in range(seconds):
        admitted = 0
        for _ in range(TICKS_PER_SECOND):
            ddb.advance(TICK_MS)
            admitted += offer(offered_per_second // TICKS_PER_SECOND)
        counts.append(admitted)
    return counts


def raw_put(endpoint: str, row: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """A PutItem over plain HTTP, to see the exact status, content type and body."""
    req = urllib.request.Request(
        endpoint,
        data=json.dumps({"TableName": TABLE, "Item": row}).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.PutItem",
            "X-Amz-Date": "20260101T000000Z",
            "Authorization": (
                "AWS4-HMAC-SHA256 Credential=test/20260101/eu-central-1/dynamodb/aws4_request, "
                "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64
            ),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], json.loads(err.read())


def expected_throttle(reason: str, resource: str) -> dict[str, Any]:
    return {
        "__type": "com.amazon.coral.availability#ThrottlingException",
        "message": THROTTLING_MESSAGE,
        "ThrottlingReasons": [{"reason": reason, "resource": resource}],
    }


def test_conditional_put_semantics_pass_through_to_moto(proxied: FaithfulDynamoDB) -> None:
    ddb = client(proxied.endpoint)
    first = item("t-1", 1, "PROCESSED")
    conditional_put(ddb, first)
    with pytest.raises(ClientError) as failed:
        conditional_put(ddb, item("t-1", 1, "OTHER"))
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert failed.value.response["Item"] == first
    stored = ddb.get_item(
        TableName=TABLE, Key={"transaction_id": {"S": "t-1"}, "timestamp": {"N": "1"}}
    )
    assert stored["Item"] == first
    stats = proxied.stats()
    assert stats["admitted"]["PutItem"] == 2
    # The failed put consumed its base write but its index write was refunded.
    assert stats["resources"][TABLE]["consumed_write_units"] == 2
    assert stats["resources"][f"{TABLE}/index/{INDEX}"]["consumed_write_units"] == 1


def test_hot_key_throttles_through_moto_with_the_exact_aws_answer(
    proxied: FaithfulDynamoDB,
) -> None:
    """One instant of simulated time: a partition holds one second of 1,000 WRU."""
    ddb = client(proxied.endpoint)
    admitted = throttled = 0
    for ts in range(1_100):
        try:
            ddb.put_item(TableName=TABLE, Item=item("hot", ts))
            admitted += 1
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ThrottlingException"
            assert err.response["Error"]["Message"] == THROTTLING_MESSAGE
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            throttled += 1
    assert (admitted, throttled) == (1_000, 100)
    status, content_type, body = raw_put(proxied.endpoint, item("hot", 5_000))
    assert (status, content_type) == (400, "application/x-amz-json-1.0")
    assert body == expected_throttle("TableWriteKeyRangeThroughputExceeded", TABLE_ARN)
    # Throttled puts never reached moto.
    count = client(proxied.endpoint).scan(TableName=TABLE, Select="COUNT")["Count"]
    assert count == 1_000


def test_boto3_retries_the_throttle(proxied: FaithfulDynamoDB) -> None:
    ddb = client(proxied.endpoint)
    for ts in range(1_000):
        ddb.put_item(TableName=TABLE, Item=item("hot", ts))
    before = proxied.stats()["throttled_total"]
    with pytest.raises(ClientError) as failed:
        client(proxied.endpoint, retries=2).put_item(TableName=TABLE, Item=item("hot", 9_999))
    assert failed.value.response["Error"]["Code"] == "ThrottlingException"
    # legacy mode, max_attempts=2 retries: three attempts, all throttled.
    assert proxied.stats()["throttled_total"] - before == 3


def test_a_hot_key_is_held_to_one_partition(memory: FaithfulDynamoDB) -> None:
    counts = admitted_per_second(memory, 1_500, 2, lambda n: item("hot", n))
    assert all(990 <= c <= 1_010 for c in counts), counts
    assert list(memory.stats()["throttled"]) == ["TableWriteKeyRangeThroughputExceeded"]


def test_spread_keys_reach_the_table_ceiling(memory: FaithfulDynamoDB) -> None:
    counts = admitted_per_second(memory, 4_500, 1, lambda n: item(f"k{n}", n))
    assert all(3_800 <= c <= 4_010 for c in counts), counts


def test_a_single_valued_gsi_holds_spread_keys_to_one_partition(memory: FaithfulDynamoDB) -> None:
    counts = admitted_per_second(memory, 1_500, 1, lambda n: item(f"k{n}", n, "PROCESSED"))
    assert all(990 <= c <= 1_010 for c in counts), counts
    status, _, body = raw_put(memory.endpoint, item("fresh-key", 1, "PROCESSED"))
    for _ in range(200):  # exhaust whatever refilled
        status, _, body = raw_put(memory.endpoint, item("fresh-key", 1, "PROCESSED"))
    assert status == 400
    assert body == expected_throttle(
        "IndexWriteKeyRangeThroughputExceeded", f"{TABLE_ARN}/index/{INDEX}"
    )


def canonical_numbers(value: Any) -> Any:
    """Numbers as values: DynamoDB answers "12.5" for a stored "12.50" (as the in-memory store
    does); moto echoes the text it was given. The difference is moto's, not the endpoint's."""
    if isinstance(value, dict):
        return {
            k: (Decimal(v) if k == "N" and isinstance(v, str) else canonical_numbers(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [canonical_numbers(v) for v in value]
    return value


def normalised(call: Callable[[], Any]) -> Any:
    try:
        out = call()
    except ClientError as err:
        keep = {k: v for k, v in err.response.items() if k not in ("ResponseMetadata", "Error")}
        error = err.response["Error"]
        return canonical_numbers({"error": error["Code"], "message": error.get("Message"), **keep})
    out.pop("ResponseMetadata", None)
    return canonical_numbers(out)


def pipeline_calls(endpoint: str) -> list[Any]:
    """The calls the pipeline and its tests make, with their answers normalised."""
    ddb = client(endpoint)
    key = {"transaction_id": {"S": "t-1"}, "timestamp": {"N": "1"}}
    results = [
        normalised(lambda: conditional_put(ddb, item("t-1", 1, "PROCESSED"))),
        normalised(lambda: conditional_put(ddb, item("t-2", 2, "PROCESSED"))),
        normalised(lambda: conditional_put(ddb, item("t-1", 1, "CHANGED"))),
        normalised(lambda: ddb.get_item(TableName=TABLE, Key=key)),
        normalised(lambda: ddb.get_item(TableName=TABLE, Key={**key, "timestamp": {"N": "9"}})),
        normalised(
            lambda: ddb.query(
                TableName=TABLE,
                KeyConditionExpression="transaction_id = :t",
                ExpressionAttributeValues={":t": {"S": "t-1"}},
            )
        ),
        normalised(
            lambda: ddb.query(
                TableName=TABLE,
                IndexName=INDEX,
                KeyConditionExpression="status_shard = :s",
                ExpressionAttributeValues={":s": {"S": "PROCESSED#0"}},
            )
        ),
        # moto also lists the Items of a Select=COUNT scan; AWS (and the memory store) do not.
        normalised(lambda: {"Count": ddb.scan(TableName=TABLE, Select="COUNT")["Count"]}),
        normalised(
            lambda: ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": item("t-3", 3)}},
                    {
                        "Put": {
                            "TableName": TABLE,
                            "Item": item("t-1", 1),
                            "ConditionExpression": "attribute_not_exists(transaction_id)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ]
            )
        ),
    ]
    table = ddb.describe_table(TableName=TABLE)["Table"]
    results.append(
        {
            "KeySchema": table["KeySchema"],
            "BillingMode": table.get("BillingModeSummary", {}).get("BillingMode"),
            "Indexes": [(i["IndexName"], i["KeySchema"]) for i in table["GlobalSecondaryIndexes"]],
        }
    )
    return results


def test_memory_backend_answers_the_pipeline_calls_as_moto_does(
    proxied: FaithfulDynamoDB, memory: FaithfulDynamoDB
) -> None:
    on_moto = pipeline_calls(proxied.endpoint)
    in_memory = pipeline_calls(memory.endpoint)
    for i, (a, b) in enumerate(zip(on_moto, in_memory, strict=True)):
        assert a == b, f"call {i}: moto {a} != memory {b}"
