"""Fixtures shared by every test directory, and how `make test` splits the tests between two
workers (pytest-xdist)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_local.emulator import Emulator, start_emulator

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
TESTS_DIR = REPO_ROOT / "tests"
# The packages whose tests share one applied stack per implementation (a package-scoped fixture
# parametrized by implementation: `terraform apply` takes a minute or more), by that fixture.
STACK_FIXTURES = {"conformance": "applied", "e2e": "e2e"}


def xdist_group(item: pytest.Item) -> str:
    """Which tests one pytest-xdist worker runs together (`--dist loadgroup`): those that share
    an expensive fixture, so that it is set up once, and never by two workers at the same time
    in the same build/ directory. A package's tests on one implementation's applied stack
    (`e2e-rust`); every other test with the rest of its module (module-scoped emulators and
    stacks, fixed work directories such as build/tf-test-stack)."""
    path = Path(str(item.path)).resolve().relative_to(TESTS_DIR)
    fixture = STACK_FIXTURES.get(path.parts[0]) if len(path.parts) > 1 else None
    params = getattr(item, "callspec", None)
    if fixture and params is not None and fixture in params.params:
        return f"{path.parts[0]}-{params.params[fixture]}"
    return path.as_posix()


# First: pytest-xdist's own hook (on each worker) reads the marks to name the groups.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item)))


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
