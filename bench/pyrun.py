"""Run the Python processor once on one file, in this process, and report its cost as JSON.

Called by bench/run.py in a fresh process per measurement (so that peak RSS is this run's):

    python bench/pyrun.py BUCKET KEY SIZE   (environment: the function's, plus AWS_ENDPOINT_URL)

The handler is loaded by the invoker pipeline_local.function_invokers.make_invoker gives a
Python function (in this process) and invoked twice: once
on a key with an unsupported suffix (a warm-up that creates the clients' connections, as a warm
Lambda has them), then on the file. CPU time (user + system, all threads) and wall time are
taken around the second invocation.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline_local.constants import DEFAULT_MEMORY_MB  # noqa: E402
from pipeline_local.delivery import s3_put_event  # noqa: E402
from pipeline_local.function_config import PROCESSOR  # noqa: E402
from pipeline_local.function_invokers import make_invoker, pipeline_function  # noqa: E402

TIMEOUT_MS = 3_600_000


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    bucket, key, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fn = pipeline_function(PROCESSOR, "python", memory_mb=DEFAULT_MEMORY_MB)
    invoker = make_invoker(fn, dict(os.environ))
    warm = s3_put_event(bucket, "warm-up.txt", size=1, etag="bench", version_id="bench-v1")
    invoker.invoke(warm, timeout_ms=TIMEOUT_MS)
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    event = s3_put_event(bucket, key, size=size, etag="bench", version_id="bench-v1")
    cpu0, wall0 = cpu_seconds(), time.monotonic()
    response = invoker.invoke(event, timeout_ms=TIMEOUT_MS)
    cpu1, wall1 = cpu_seconds(), time.monotonic()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        "BENCH "
        + json.dumps(
            {
                "cpu_s": cpu1 - cpu0,
                "wall_s": wall1 - wall0,
                "peak_rss_mb": peak_kb / 1024,
                "idle_rss_mb": rss_before_kb / 1024,
                "response": response,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
