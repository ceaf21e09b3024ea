"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_local.emulator import Emulator, start_emulator

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One moto server for the whole test session, reached over HTTP on loopback."""
    BUILD_DIR.mkdir(exist_ok=True)
    emu = start_emulator(log_path=BUILD_DIR / "pytest-emulator.log")
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
