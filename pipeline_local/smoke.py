"""Run the sample files through a deployed pipeline on AWS and account for every record.

    python -m pipeline_local.smoke [--outputs FILE] [--producer-profile P] [--profile P]
                                   [--timeout 900] [--seed N] [--scale 1.0]

1. reads the stack's outputs (`terraform -chdir=lib output -json`, as `make deploy` left them,
   or --outputs FILE);
2. uploads the demo's sample files (pipeline_local.samples) to the bucket with the producer's
   identity (--producer-profile; it needs only the stack's producer_policy_json);
3. waits for the real pipeline, polling both tables and both queues until every row of every
   uploaded file is accounted for (or --timeout seconds pass);
4. prints the same per-file accounting as `make demo` (pipeline_local.accounting), reading with
   the operator's identity (--profile).

Exit status 1 when any record is unaccounted for at the timeout. Two samples stay out: the one
deleted between notification and processing (on AWS the race cannot be arranged from outside)
and the one over MAX_FILE_BYTES (the demo deploys a 1 MiB limit; a deployed stack keeps 256 MiB).
Files are processed concurrently on AWS, so which of two files carrying the same transaction
stores it and which records the duplicate may differ from the demo's order: such differences
from the model are printed, and only unaccounted records fail the run. Only this run's object
versions are counted, so earlier runs' rows in the tables do not matter.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import boto3

from pipeline_local import accounting
from pipeline_local import samples as sample_files
from pipeline_local.accounting import say
from pipeline_local.constants import REPO_ROOT
from pipeline_local.delivery import queue_depth

if TYPE_CHECKING:  # the stub packages are development tools (requirements-dev.txt)
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


class ClientFactory(Protocol):
    """Makes a client for one of the services smoke uses: a boto3 Session's `client` method.

    The overloads keep boto3-stubs' (alphabetical) order: mypy matches overloads in order."""

    @overload
    def __call__(self, service_name: Literal["dynamodb"], /) -> DynamoDBClient: ...
    @overload
    def __call__(self, service_name: Literal["s3"], /) -> S3Client: ...
    @overload
    def __call__(self, service_name: Literal["sqs"], /) -> SQSClient: ...


def smoke_samples(samples: sample_files.SampleSet) -> list[sample_files.SampleFile]:
    """The samples whose outcome a deployed stack decides without help from outside."""
    return [
        f
        for f in samples.files
        if not f.delete_before_processing and f.file_error != "FILE_TOO_LARGE"
    ]


def terraform_outputs() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"}
    proc = subprocess.run(
        ["terraform", f"-chdir={REPO_ROOT / 'lib'}", "output", "-json"],
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip().startswith("{"):
        raise SystemExit(
            f"cannot read the stack's outputs (run `make deploy` first): {proc.stderr}"
        )
    raw = json.loads(proc.stdout)
    if not raw:
        raise SystemExit("lib/ has no outputs: nothing is deployed (run `make deploy` first)")
    return {name: entry["value"] for name, entry in raw.items()}


def queue_depths(sqs: SQSClient, outputs: Mapping[str, Any]) -> dict[str, int]:
    urls = [str(outputs[name]) for name in ("main_queue_url", "dlq_url")]
    return {url.rsplit("/", 1)[-1]: queue_depth(sqs, url) for url in urls}


def run(
    producer: ClientFactory,
    operator: ClientFactory,
    outputs: Mapping[str, Any],
    samples: sample_files.SampleSet,
    *,
    timeout_s: float = 900.0,
    poll_s: float = 15.0,
    between_polls: Callable[[], None] | None = None,
) -> bool:
    """Upload, wait, account; True when every record is accounted for. `between_polls` runs
    before each poll (the local test lets the dispatcher do Lambda's work there)."""
    bucket = str(outputs["s3_bucket_name"])
    files = smoke_samples(samples)
    s3 = producer("s3")
    versions: dict[str, str] = {}
    for f in files:
        versions[f.key] = str(s3.put_object(Bucket=bucket, Key=f.key, Body=f.body)["VersionId"])
    dispatched = [f for f in files if f.dispatched]
    say(
        f"uploaded {len(files)} sample files ({sum(len(f.body) for f in files) / 1e6:.1f} MB, "
        f"{sum(len(f.rows) for f in dispatched)} rows in {len(dispatched)} files the "
        f"notifications match) to s3://{bucket}/{sample_files.PREFIX}"
    )
    ledger = sample_files.Ledger()
    uploads = [sample_files.Upload(f, versions[f.key], ledger.process(f)) for f in dispatched]
    dynamodb, sqs = operator("dynamodb"), operator("sqs")
    started = time.monotonic()
    while True:
        if between_polls is not None:
            between_polls()
        acc, _, error_rows = accounting.collect(
            dynamodb,
            str(outputs["transactions_table_name"]),
            str(outputs["errors_table_name"]),
            uploads,
            queue_depths(sqs, outputs),
            only_versions=set(versions.values()),
        )
        waited = time.monotonic() - started
        balanced = sum(1 for f in acc.files if f.balanced)
        say(
            f"    {waited:5.0f} s: {balanced}/{len(acc.files)} files accounted for, queues "
            f"{acc.queue_depths}"
        )
        if acc.ok or waited >= timeout_s:
            break
        time.sleep(poll_s)
    say("\nper file: what became of every row")
    accounting.print_files(acc, {})
    say(f"\nerrors table: {len(error_rows)} rows of this run, grouped by code")
    accounting.print_errors_table(error_rows)
    accounting.report(acc, f"AWS, {outputs.get('lambda_runtime', '?')}")
    if not acc.ok:
        say(f"\nsmoke: FAILED after {time.monotonic() - started:.0f} s (timeout {timeout_s:.0f} s)")
    return acc.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=Path, help="outputs JSON (default: terraform output)")
    parser.add_argument("--producer-profile", help="AWS profile that uploads (default: --profile)")
    parser.add_argument("--profile", help="AWS profile that reads tables and queues")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=sample_files.DEFAULT_SEED)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.outputs:
        raw = json.loads(args.outputs.read_text())
        outputs = {
            k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in raw.items()
        }
    else:
        outputs = terraform_outputs()
    region = str(outputs.get("aws_region", "eu-central-1"))
    operator = boto3.Session(profile_name=args.profile, region_name=region)
    producer = boto3.Session(profile_name=args.producer_profile or args.profile, region_name=region)
    samples = sample_files.generate(args.seed, scale=args.scale)
    ok = run(producer.client, operator.client, outputs, samples, timeout_s=args.timeout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
