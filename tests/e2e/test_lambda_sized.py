"""Lambda-sized invocations through the dispatcher on the applied stack (issue 11, item 1).

Each function runs as its own process held to its applied MemorySize (GetFunctionConfiguration,
read into the wiring): CPU quota MemorySize/1769 of a core, memory limit MemorySize
(pipeline_local.sandbox, cgroup v1). An invocation that goes over its memory is killed by the
kernel and reported as Lambda reports it (Runtime.OutOfMemory); S3's asynchronous invocation
retries it twice and then takes the function's on-failure path (its dead_letter_config: the
main queue, whose consumer processes the file), and nothing is lost.

Where this machine cannot make the cgroups (not root, cgroup v2 only), these tests are skipped
with the reason; `make test` runs as root on a cgroup v1 host (CI and this machine).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline_local import samples as sample_files
from pipeline_local.constants import LIB_DIR
from pipeline_local.function_invokers import Execution
from pipeline_local.invokers import Invoker, Sandboxed, layers
from pipeline_local.sandbox import OUT_OF_MEMORY_MESSAGE, Sandbox, cpu_quota_us
from tests.e2e.conftest import E2E

PROCESSOR = "lambda-transaction-processor-dev"
DLQ_PROCESSOR = "lambda-dlq-processor-dev"

_available = Sandbox.available()
needs_cgroups = pytest.mark.skipif(not _available, reason=f"no Lambda-sized limits: {_available}")


def _files(samples: sample_files.SampleSet, *prefixes: str) -> list[sample_files.SampleFile]:
    return [f for f in samples.files if f.key.removeprefix(sample_files.PREFIX)[:2] in prefixes]


def _assert_exactly_once(acc: sample_files.Accounting) -> None:
    assert acc.problems() == []
    assert acc.ok
    assert {f.key: f.mismatches for f in acc.files if f.mismatches} == {}


def _sandbox_of(invoker: Invoker) -> Sandbox:
    """The cgroups of the execution environment behind `invoker` (through its wrappers)."""
    for layer in layers(invoker):
        if isinstance(layer, Sandboxed) and layer.sandbox is not None:
            return layer.sandbox
    raise AssertionError(f"{invoker!r} does not run Lambda-sized")


@needs_cgroups
def test_lambda_sized_functions_process_the_files_exactly_once(
    clean_e2e: E2E, samples: sample_files.SampleSet
) -> None:
    e2e = clean_e2e
    dispatcher = e2e.dispatcher(execution=Execution.LAMBDA_SIZED)
    uploads = e2e.upload(_files(samples, "01", "02"), sample_files.Ledger())
    report = dispatcher.run()

    assert all(o.result.error is None for o in report.delivered)
    _assert_exactly_once(e2e.account(uploads))
    processor = e2e.wiring.function(PROCESSOR)
    box = _sandbox_of(dispatcher.invoker(processor.arn))
    # The limits come from the applied configuration's MemorySize.
    assert box.memory_mb == processor.memory_mb
    quota = int((box.cpu_path / "cpu.cfs_quota_us").read_text())
    assert quota == cpu_quota_us(processor.memory_mb)
    limit = int((box.memory_path / "memory.limit_in_bytes").read_text())
    assert limit == processor.memory_mb * 1024 * 1024
    # The function ran in the group: its memory was charged there, and nothing was killed.
    assert 0 < box.max_memory_used_mb() < processor.memory_mb
    assert box.oom_kills() == 0


# A processor that needs more memory than its MemorySize for an S3 event (it allocates
# MemorySize + 64 MiB and touches every page before it handles the event) and is the real
# processor for everything else: the retry consumer on the main queue processes the file.
HOG_PROCESSOR = """
import importlib.util
import os
import sys

_spec = importlib.util.spec_from_file_location("real_processor", {real!r})
_real = importlib.util.module_from_spec(_spec)
sys.modules["real_processor"] = _real  # dataclasses look their module up there
_spec.loader.exec_module(_real)


def lambda_handler(event, context):
    records = event.get("Records") or [{{}}]
    if records[0].get("eventSource") == "aws:s3":
        size = (int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]) + 64) * 1024 * 1024
        hog = bytearray(size)
        for i in range(0, size, 4096):
            hog[i] = 1
    return _real.lambda_handler(event, context)
"""

# For the Rust stack: the same, as a custom runtime would run it. The bootstrap is a Python
# runtime interface client process (awslambdaric) running the hog module above, whose real
# processor for the queue is the Python one: the Rust build has no switch that makes it
# allocate, and the point here is what the harness does with the kill, not who allocates.
RUST_BOOTSTRAP = """#!/bin/sh
exec {python} -u -m awslambdaric processor_function.lambda_handler
"""


@needs_cgroups
def test_out_of_memory_is_killed_retried_twice_then_dead_lettered_and_nothing_lost(
    clean_e2e: E2E, samples: sample_files.SampleSet, tmp_path: Path
) -> None:
    e2e = clean_e2e
    code = tmp_path / "code"
    code.mkdir()
    (code / "processor_function.py").write_text(
        HOG_PROCESSOR.format(real=str(LIB_DIR / "processor_function.py"))
    )
    (code / "dlq_processor_function.py").symlink_to(LIB_DIR / "dlq_processor_function.py")
    bins = tmp_path / "bin"
    if e2e.applied.impl == "rust":
        (bins / "processor").mkdir(parents=True)
        bootstrap = bins / "processor" / "bootstrap"
        bootstrap.write_text(RUST_BOOTSTRAP.format(python=sys.executable))
        bootstrap.chmod(0o755)
        (bins / "processor" / "processor_function.py").symlink_to(code / "processor_function.py")
    dispatcher = e2e.dispatcher(execution=Execution.LAMBDA_SIZED, code_dir=code, rust_bin_dir=bins)
    uploads = e2e.upload(_files(samples, "02"), sample_files.Ledger())
    report = dispatcher.run()

    (outcome,) = report.delivered
    # Killed on every attempt: the first and Lambda's two retries, then the on-failure path.
    assert outcome.result.attempts == 3 and outcome.result.sent_to_dead_letter_queue
    processor = e2e.wiring.function(PROCESSOR)
    assert processor.maximum_retry_attempts == 2
    killed = [r for r in dispatcher.records if r.function_name == PROCESSOR and r.error]
    assert [r.source for r in killed] == ["s3"] * 3, [(r.source, r.error) for r in killed]
    assert all(r.error == OUT_OF_MEMORY_MESSAGE for r in killed)
    box = _sandbox_of(dispatcher.invoker(processor.arn))
    assert box.oom_kills() == 3
    # The retry consumer processed the dead-lettered event from the main queue: every row of
    # the file is stored once, is a duplicate, or has its error row; both queues are empty.
    redelivered = [
        r for r in dispatcher.records if r.function_name == PROCESSOR and r.source == "sqs"
    ]
    assert any(f[0] == uploads[0].sample.key for r in redelivered for f in r.files)
    _assert_exactly_once(e2e.account(uploads))
