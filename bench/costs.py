"""Cost per 1M records from the counts one pipeline run measured and AWS's public prices.

Prices are eu-central-1 (Frankfurt: lib/main.tf's region), on-demand, without free tiers. The
pricing pages render their regional tables in the browser, so the figures below could not be
read from the stored copies of those pages; each entry says which were checked and which not,
and docs/benchmarks.md repeats it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MEMORY_GB = 512 / 1024  # lib/main.tf memory_size = 512 (Lambda bills GB as 1,024 MB)
KMS_DATA_KEY_REUSE_S = 300  # lib/main.tf kms_data_key_reuse_period_seconds on both queues
SQS_BATCH = 10  # SendMessageBatch / DeleteMessageBatch entries per request


@dataclass(frozen=True)
class Price:
    usd: float
    per: float
    unit: str
    url: str
    checked: str


PRICES = {
    # https://aws.amazon.com/lambda/pricing/ : Arm, first 7.5 billion GB-s per month
    # ($0.0000133334 per GB-s, the same in US East and Europe (Frankfurt)); requests
    # $0.20 per 1M. Lambda bills duration rounded up to 1 ms (same page).
    "lambda_gb_s": Price(
        0.0000133334,
        1,
        "GB-s (arm64)",
        "https://aws.amazon.com/lambda/pricing/",
        "tier price for Arm seen in a third-party copy of the page (cloudchipr.com, US East);"
        " the Frankfurt figure is NOT verified against the AWS page",
    ),
    "lambda_request": Price(
        0.20,
        1_000_000,
        "requests",
        "https://aws.amazon.com/lambda/pricing/",
        "NOT verified against the AWS page (regional table not in the stored copy)",
    ),
    # https://aws.amazon.com/dynamodb/pricing/on-demand/ : write request units, Europe
    # (Frankfurt), Standard table class, after the 2024-11-01 on-demand price reduction.
    # A GSI write is billed as write request units of the index (dg/GSI.html).
    "ddb_wru": Price(
        0.7625,
        1_000_000,
        "write request units",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "unit definitions verified (1 WRU = a write up to 1 KB); the Frankfurt price is NOT"
        " verified against the AWS page",
    ),
    # https://aws.amazon.com/sqs/pricing/ : standard queue, per 1M requests after the free
    # tier; each 64 KB chunk of a request is one request.
    "sqs_request": Price(
        0.40,
        1_000_000,
        "requests",
        "https://aws.amazon.com/sqs/pricing/",
        "64 KB billing chunk verified in secondary sources; $0.40 NOT verified against the"
        " AWS page",
    ),
    # https://aws.amazon.com/kms/pricing/ : $0.03 per 10,000 requests (symmetric keys).
    "kms_request": Price(
        0.03,
        10_000,
        "requests",
        "https://aws.amazon.com/kms/pricing/",
        "$0.03 per 10,000 seen in secondary sources only; NOT verified against the AWS page",
    ),
}


def measured_counts(r: dict[str, Any]) -> dict[str, float]:
    """What one run would be billed for, from its measured counts.

    - Lambda: every invocation, its duration rounded up to 1 ms, at 512 MB.
    - DynamoDB: write units the faithful endpoint charged to the table and to status-index
      (throttled requests are not billed: https://aws.amazon.com/dynamodb/pricing/on-demand/).
    - SQS: the processor's sends (retry_record and resume_file messages, one request each as
      upper bound; invalid rows to the DLQ in batches of 10), the event source mapping's
      receives, deletes and visibility changes as the driver made them, and the DLQ processor's
      receive + delete per batch of 10 DLQ messages (it does not run in this benchmark).
      An idle event source mapping's long polls are a fixed cost per hour, not per record:
      left out.
    - KMS (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html,
      https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html,
      https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html):
      one Decrypt per file invocation for the S3 object (an upper bound: the Bucket Key is
      cached per session), per started 300 s data-key reuse period a GenerateDataKey + Decrypt
      for each queue the processor sends to and a Decrypt for the polled queue, and one
      DynamoDB table-key Decrypt per 300 s.
    """
    periods = max(1, math.ceil(r["wall_s"] / KMS_DATA_KEY_REUSE_S))
    driver = r.get("sqs_driver_calls", {})
    esm_calls = sum(
        driver.get(op, 0)
        for op in ("ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch")
    )
    dlq_batches = math.ceil(r["dlq_messages"] / SQS_BATCH)
    sqs = r["retry_record_messages"] + r["resume_file_messages"] + dlq_batches
    sqs += esm_calls + 2 * dlq_batches
    # Each execution environment running side by side (bench/pipeline.py --concurrency) asks
    # for its own data keys: an upper bound.
    environments = int(r.get("concurrency", 1))
    kms = r["file_invocations"] + periods * environments * (2 * 2 + 1) + periods
    return {
        "lambda_gb_s": r["billed_ms"] / 1000 * MEMORY_GB,
        "lambda_request": r["invocations"],
        "ddb_wru": r["table_write_units"] + r["index_write_units"],
        "sqs_request": sqs,
        "kms_request": kms,
    }


def cost_per_million(r: dict[str, Any]) -> dict[str, float]:
    """USD per 1M records stored, by price line, from one run."""
    scale = 1_000_000 / max(1, r["stored"])
    counts = measured_counts(r)
    return {k: counts[k] * scale * PRICES[k].usd / PRICES[k].per for k in PRICES}
