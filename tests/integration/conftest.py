"""Emulators shared by the tests of one module: one with the stack applied, or an empty one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config

from pipeline_local.clients import Clients
from pipeline_local.emulator import Emulator, start_emulator
from pipeline_local.terraform import AppliedLib
from tests import preapply


@dataclass
class Stack(AppliedLib):
    """An applied stack (emulator, working copy, outputs, plan) with the tests' client."""

    destroyed: bool = False
    client: Clients = field(init=False)

    def __post_init__(self) -> None:
        self.client = Clients(self.emulator.endpoint)

    def state(self) -> dict[str, Any]:
        """Resources as Terraform recorded them (attributes moto does not echo back)."""
        shown = json.loads(self.workdir.run("show", "-json", capture=True))
        resources = shown["values"]["root_module"]["resources"]
        return {r["address"]: r["values"] for r in resources}


def dynamodb_client(endpoint: str, retries: int = 0) -> Any:
    """A DynamoDB client on `endpoint` that retries `retries` times (legacy mode: that many
    after the first attempt), so a test sees each throttle itself."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-central-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "legacy", "max_attempts": retries}),
    )


def apply_stack(workdir_name: str, runtime: str = "python3.11") -> Stack:
    """lib/ applied to an emulator of its own in build/<workdir_name>: the one `make test`
    applied ahead for this name when there is a usable one (tests/preapply.py), else a new
    one."""
    applied = preapply.take(workdir_name, runtime) or preapply.apply_new(workdir_name, runtime)
    return Stack(applied.emulator, applied.workdir, applied.outputs, applied.plan)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    deployed = apply_stack("tf-test-stack")
    try:
        yield deployed
    finally:
        if not deployed.destroyed:
            deployed.workdir.destroy()
        deployed.emulator.stop()


@pytest.fixture(scope="module")
def moto() -> Iterator[Emulator]:
    """An empty emulator of the module's own, for tests that create their own tables."""
    emu = start_emulator()
    try:
        yield emu
    finally:
        emu.stop()
