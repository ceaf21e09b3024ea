"""Fixtures shared by every test directory, and how `make test` splits the tests between two
workers (pytest-xdist)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_local.emulator import Emulator, start_emulator
from tests.implementations import IMPLEMENTATIONS

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
# The packages whose tests share one applied stack per implementation (a package-scoped fixture
# parametrized by implementation: `terraform apply` takes a minute or more), by that fixture.
STACK_FIXTURES = {"conformance": "applied", "e2e": "e2e"}


def xdist_group(nodeid: str) -> str:
    """Which tests one pytest-xdist worker runs together (`make test` runs two workers): those
    that share an expensive fixture, so that it is set up once, and never by two workers at the
    same time in the same build/ directory. A package's tests on one implementation's applied
    stack (`e2e-rust`); every other test with the rest of its module (module-scoped emulators
    and stacks, fixed work directories such as build/tf-test-stack).

    From the test id alone: the scheduler (in pytest-xdist's controller) sees nothing else.
    `pytest_collection_modifyitems` below holds it to the fixtures' real parameters.
    """
    path, _, name = nodeid.partition("::")
    parts = path.split("/")
    if len(parts) > 2 and parts[1] in STACK_FIXTURES and name.endswith("]") and "[" in name:
        impls = [p for p in name[name.index("[") + 1 : -1].split("-") if p in IMPLEMENTATIONS]
        if impls:
            return f"{parts[1]}-{impls[0]}"
    return path


def _fixture_group(item: pytest.Item) -> str:
    """xdist_group's answer, from the item's fixture parameters."""
    path = Path(str(item.path)).resolve().relative_to(REPO_ROOT)
    fixture = STACK_FIXTURES.get(path.parts[1]) if len(path.parts) > 2 else None
    params = getattr(item, "callspec", None)
    if fixture and params is not None and fixture in params.params:
        return f"{path.parts[1]}-{params.params[fixture]}"
    return path.as_posix()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = [i.nodeid for i in items if xdist_group(i.nodeid) != _fixture_group(i)]
    if wrong:
        raise pytest.UsageError(
            "tests/conftest.py: xdist_group() puts these tests in the wrong worker group (a test"
            f" id it cannot read the implementation from?): {wrong[:5]}"
        )


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's scope scheduling with xdist_group as the scope. (Its own `--dist
    loadgroup` names the groups by rewriting test ids, which pytest 9 no longer lets a plugin
    do: every test was then its own group.) Groups go out in collection order with
    `--no-loadscope-reorder`: the applied stacks first, the quick unit modules last."""
    from xdist.scheduler import LoadScopeScheduling

    class StackGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return StackGroupScheduling(config, log)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One moto server for the whole test session, reached over HTTP on loopback."""
    BUILD_DIR.mkdir(exist_ok=True)
    # One emulator per pytest-xdist worker (PYTEST_XDIST_WORKER: gw0, gw1), each its own log.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    emu = start_emulator(log_path=BUILD_DIR / f"pytest-emulator{'-' if worker else ''}{worker}.log")
    saved = {key: os.environ.get(key) for key in emu.aws_env()}
    os.environ.update(emu.aws_env())
    try:
        yield emu
    finally:
        emu.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
