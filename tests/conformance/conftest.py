"""The conformance suite's applied stack: lib/ applied once per implementation under test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pipeline_local.constants import CONFORMANCE_IMPL_ENV
from tests.applied_stack import IMPLEMENTATIONS, AppliedStack, apply

IMPLS = [s.strip() for s in os.environ.get(CONFORMANCE_IMPL_ENV, "python").split(",") if s.strip()]


@pytest.fixture(scope="package", params=IMPLS)
def applied(request: pytest.FixtureRequest) -> Iterator[AppliedStack]:
    """The stack for one implementation (test ids say which); its emulator stops afterwards
    without `terraform destroy` (it is private to this package; the integration tests check
    destroy)."""
    impl = str(request.param)
    if impl not in IMPLEMENTATIONS:
        pytest.fail(f"{CONFORMANCE_IMPL_ENV}: unknown implementation {impl!r} (python, rust)")
    stack = apply(impl)
    try:
        yield stack
    finally:
        stack.stop()
