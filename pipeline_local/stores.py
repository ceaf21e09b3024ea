"""Read and empty the stack's data stores (tables, bucket) as the operator: demo and tests."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; returns how many.

    Needed before `terraform destroy` against moto when a key contains "+": the provider lists
    with encoding-type=url and decodes the keys, moto returns them unencoded, so "a+b.csv" is
    deleted as "a b.csv" and force_destroy loops forever on a bucket that never empties."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objs = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for i in range(0, len(objs), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objs[i : i + 1000], "Quiet": True})
        deleted += len(objs)
    return deleted


def scan_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table, deserialized (numbers as Decimal, as boto3 gives them)."""
    deserializer = TypeDeserializer()
    return [
        {k: deserializer.deserialize(v) for k, v in raw.items()}
        for page in dynamodb.get_paginator("scan").paginate(TableName=table)
        for raw in page.get("Items", [])
    ]


def scan_all(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table as plain Python values (numbers as int or str)."""
    return [
        {
            k: (int(v) if hasattr(v, "as_integer_ratio") and v == int(v) else v)
            for k, v in item.items()
        }
        for item in scan_items(dynamodb, table)
    ]
