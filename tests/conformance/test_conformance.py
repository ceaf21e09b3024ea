"""The shared conformance suite: every case in cases/ against every implementation under test.

The case format: conformance_cases.py. How a case runs: conformance_runner.py. What is
compared: conformance_checks.py.

Implementation under test: `CONFORMANCE_IMPL` (comma-separated: `python`, `rust`). For each,
lib/ is applied once with `lambda_runtime` set accordingly to an emulator of its own
(tests/applied_stack.py, fixture `applied` in conftest.py); every case starts from emptied
tables, queues and bucket of that stack. The functions run with their applied configuration:
runtime and handler (`conformance_runner.make_invoker` is the one place that turns a function
into an Invoker), environment (plus the variables Lambda sets, plus the case's `env`/`dlq_env`),
timeout, asynchronous retries and dead-letter target. Delivery follows the applied wiring
through pipeline_local.delivery: the asynchronous S3 invocation, and one poller per event
source mapping (batch size, ReportBatchItemFailures), the queues' own redrive policies.
"""

from __future__ import annotations

import json
import re

import pytest

from pipeline_local.delivery import (
    DrainError,
)
from pipeline_local.stores import scan_items
from tests.applied_stack import AppliedStack
from tests.conformance import file_status, schemas
from tests.conformance.conformance_cases import CASES, Case
from tests.conformance.conformance_checks import (
    check_accounting,
    check_error_row_invariants,
    check_queues,
    compare_errors,
    compare_transactions,
)
from tests.conformance.conformance_runner import check_refusals, run_case

# --------------------------------------------------------------------------------------------
# The test


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_conformance(applied: AppliedStack, case: Case) -> None:
    impl = applied.impl
    if impl not in case.config.get("impls", [impl]):  # a feature one implementation lacks
        pytest.skip(f"{case.name}: not implemented by {impl} yet (case.json impls)")
    try:
        run = run_case(applied, case)
    except DrainError as exc:
        refusals = "\n  ".join(getattr(exc, "__notes__", []))
        pytest.fail(
            f"{case.name} [{impl}]: the queues never emptied: {exc}\n  {refusals}", pytrace=False
        )
    problems = (
        compare_transactions(case, run, impl)
        + compare_errors(case, run)
        + check_error_row_invariants(run)
        + check_accounting(case, run)
        + check_queues(case, run)
        + check_refusals(case, run)
        # contract/schemas/: every message and item seen (tests/conformance/schemas.py)
        + schemas.run_problems(
            [*run.main_bodies, *run.sent], case.dlq_bodies, run.transactions, run.errors
        )
        # the per-file status (contract P26 to P31; tests/conformance/file_status.py)
        + file_status.check(
            case.expected,
            scan_items(run.stack.ddb, applied.file_status_table),
            run.stack.bucket,
            run.stack.versions,
            impl,
        )
    )
    if problems:
        description = case.config.get("description", "")
        pytest.fail(
            f"{case.name} [{impl}] {description}\n  " + "\n  ".join(problems), pytrace=False
        )


def test_cases_are_well_formed() -> None:
    """Every case has an input and an expectation; tokens are the known ones."""
    assert len(CASES) >= 40
    known = re.compile(r"\$(BUCKET|VERSION_\d+|RECORD_HASH|PROCESSOR|SHA256_BODY|SENT_TIMESTAMP)")
    for case in CASES:
        assert case.input_file or case.dlq_bodies or case.config.get("missing_object"), case.name
        for token in re.findall(r'"(\$[A-Z0-9_]+)"', (case.path / "expected.json").read_text()):
            assert known.fullmatch(token), (case.name, token)


def test_an_unexpected_refusal_fails_a_case(applied: AppliedStack) -> None:
    """The refusal check can fail: without the processor role's permission to use the tables'
    key through DynamoDB (the defect of issue 9, made again in the emulator only), case 01's
    DynamoDB calls are refused (the file status's UpdateItem first, so no PutItem is even
    tried), and the case reports the role, kms:Decrypt, the key and why."""
    iam = applied.clients("iam")
    policy_arn = str(applied.stack.outputs["processor_policy_arn"])
    applied_version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=applied_version)[
        "PolicyVersion"
    ]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    kept = [s for s in document["Statement"] if s.get("Sid") != "UseTableKeyThroughDynamoDB"]
    assert len(kept) == len(document["Statement"]) - 1, "the applied policy changed: adapt"
    broken = iam.create_policy_version(
        PolicyArn=policy_arn,
        PolicyDocument=json.dumps({**document, "Statement": kept}),
        SetAsDefault=True,
    )["PolicyVersion"]["VersionId"]
    applied.gateway.store.refresh()
    try:
        case = next(c for c in CASES if c.name == "01-csv-valid-basic")
        problems = check_refusals(case, run_case(applied, case))
    finally:
        iam.set_default_policy_version(PolicyArn=policy_arn, VersionId=applied_version)
        iam.delete_policy_version(PolicyArn=policy_arn, VersionId=broken)
        applied.gateway.store.refresh()
    report = "\n".join(problems)
    assert "refused by the authorization model, unexpected" in report, report
    assert "assumed-role/" + applied.processor.role.rsplit("/", 1)[-1] in report, report
    assert "kms:Decrypt on arn:aws:kms:" in report, report
    # The processor's first DynamoDB call is the file status's UpdateItem (contract P27).
    assert "dynamodb:UpdateItem" in report and "no identity-based policy allows" in report, report
