"""Emulators shared by the tests of one module: one with the stack applied, or an empty one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from pipeline_local.clients import Clients
from pipeline_local.emulator import Emulator, start_emulator
from pipeline_local.terraform import BUILD_DIR, Workdir, workdir_for


@dataclass
class Stack:
    emulator: Emulator
    workdir: Workdir
    outputs: dict[str, Any]
    plan: dict[str, Any]
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
    emu = start_emulator(log_path=BUILD_DIR / f"{workdir_name}-emulator.log")
    path = BUILD_DIR / workdir_name
    for stale in path.glob("terraform.tfstate*"):
        stale.unlink()
    work = workdir_for(emu, path, runtime)
    work.init()
    plan = work.plan(Path(path / "plan.json"))
    work.run("apply", "-no-color", "-auto-approve", "-parallelism=20", "tfplan", capture=True)
    return Stack(emulator=emu, workdir=work, outputs=work.outputs(), plan=plan)


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
