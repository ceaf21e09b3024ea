"""One source of configuration: each function's environment block in lib/main.tf sets exactly
the variables its Python handler reads, and every tunable among them is a documented, validated
Terraform variable with a default. (The Rust functions check their own lists against the same
block: crates/txn-core/src/config.rs.) The harness's fixed values agree with lib/ too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import pytest

from pipeline_local.constants import LIB_DIR as LIB
from pipeline_local.constants import REGION
from pipeline_local.function_config import (
    DLQ_PROCESSOR,
    PROCESSOR,
    deployed_code,
    environment_expressions,
    environment_names,
    resource_body,
    table_keys,
    variable_blocks,
    variable_defaults,
)
from tests.unit.conftest import HANDLER_ENV

FUNCTIONS = [(PROCESSOR, "proc"), (DLQ_PROCESSOR, "dlq")]


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.read.add(name)
        return name in self.values

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("load_config must look its variables up by name, not list them")

    def __len__(self) -> int:
        return len(self.values)


def _differences(terraform: set[str], handler: set[str]) -> str:
    return (
        f"set by lib/main.tf but not read: {sorted(terraform - handler)}; "
        f"read but not set by lib/main.tf: {sorted(handler - terraform)}"
    )


@pytest.mark.parametrize(("function", "module"), FUNCTIONS)
def test_handler_lists_what_terraform_sets(
    function: str, module: str, request: pytest.FixtureRequest
) -> None:
    handler: ModuleType = request.getfixturevalue(module)
    listed = list(handler.ENV_VARIABLES)
    assert len(listed) == len(set(listed)), f"{module}: ENV_VARIABLES repeats a name"
    terraform = set(environment_names(function))
    assert set(listed) == terraform, _differences(terraform, set(listed))


@pytest.mark.parametrize(("function", "module"), FUNCTIONS)
def test_handler_reads_exactly_its_list(
    function: str, module: str, request: pytest.FixtureRequest
) -> None:
    """What load_config really looks up, not only what the constants say."""
    handler: ModuleType = request.getfixturevalue(module)
    env = RecordingEnv(HANDLER_ENV)
    handler.load_config(env)
    assert env.read == set(handler.ENV_VARIABLES), _differences(
        set(handler.ENV_VARIABLES), env.read
    )


@pytest.mark.parametrize("function", [PROCESSOR, DLQ_PROCESSOR])
def test_every_tunable_is_a_documented_validated_variable(function: str) -> None:
    """A value that is not wiring (a resource's name or URL, the environment's name) comes from
    a Terraform variable with a description, a default and a validation block."""
    defaults = variable_defaults()
    variables = variable_blocks()
    for env_name, expression in environment_expressions(function).items():
        if expression.startswith(("${aws_", "${local.env}")):
            continue  # wiring: the resource this stack made, or var.environment via local.env
        assert "var." in expression, f"{function}.{env_name}: {expression} is not a variable"
        variable = expression.split("var.", 1)[1].rstrip(")}")
        body = variables.get(variable)
        assert body is not None, f"{function}.{env_name}: no variable {variable!r} in lib/"
        assert variable in defaults, f"variable {variable}: no default"
        assert body.get("description"), f"variable {variable}: no description"
        assert body.get("validation"), f"variable {variable}: no validation"


def test_metric_namespace_is_passed_to_both_functions() -> None:
    for function in (PROCESSOR, DLQ_PROCESSOR):
        assert environment_expressions(function)["METRIC_NAMESPACE"] == "${var.metric_namespace}"


def test_the_harness_region_is_lib_s() -> None:
    """pipeline_local.constants.REGION (the emulated account's, preflight's default) is the
    region lib/provider.tf's provider block names."""
    provider = (LIB / "provider.tf").read_text(encoding="utf-8")
    block = provider[provider.index('provider "aws" {') :]
    found = re.search(r'^\s*region\s*=\s*"([^"]+)"', block, flags=re.MULTILINE)
    assert found, "lib/provider.tf's aws provider names no region"
    assert found.group(1) == REGION


def test_an_override_file_adds_to_a_resource_without_hiding_its_arguments(tmp_path: Path) -> None:
    """A working copy's emulator_override.tf declares aws_lambda_function.function again with
    other arguments; lib/'s own arguments (kms_key_arn) must still be found."""
    (tmp_path / "main.tf").write_text(
        'resource "aws_lambda_function" "function" {\n'
        "  kms_key_arn = aws_kms_key.lambda.arn\n  timeout = 60\n}\n"
    )
    (tmp_path / "emulator_override.tf").write_text(
        'resource "aws_lambda_function" "function" {\n  timeout = 900\n}\n'
    )
    body = resource_body("aws_lambda_function.function", tmp_path)
    assert body["kms_key_arn"] == "${aws_kms_key.lambda.arn}"
    assert body["timeout"] == 900  # the first file in name order that sets it
    with pytest.raises(LookupError, match=r"no resource aws_sqs_queue\.main"):
        resource_body("aws_sqs_queue.main", tmp_path)


def test_the_deployed_runtime_and_handler_are_read_from_lib(tmp_path: Path) -> None:
    """pipeline_function's runtime and handler are lib/main.tf's locals, not a copy: another
    lib/ gives other values, and a local of another form is refused with its name."""
    assert deployed_code(PROCESSOR, "python") == (
        "python3.11",
        "processor_function.lambda_handler",
    )
    assert deployed_code(DLQ_PROCESSOR, "rust") == ("provided.al2023", "bootstrap")
    (tmp_path / "main.tf").write_text(
        "locals {\n"
        '  lambda_runtime_id = local.is_rust ? "provided.al2" : "python3.12"\n'
        '  lambda_handlers = { processor = local.is_rust ? "bootstrap" : "p.handle" }\n'
        "}\n"
    )
    assert deployed_code(PROCESSOR, "python", tmp_path) == ("python3.12", "p.handle")
    assert deployed_code(PROCESSOR, "rust", tmp_path) == ("provided.al2", "bootstrap")
    with pytest.raises(LookupError, match=r"no local\.lambda_handlers\.dlq_processor"):
        deployed_code(DLQ_PROCESSOR, "python", tmp_path)
    plain = tmp_path / "plain"  # another directory: lib/'s files are read once per directory
    plain.mkdir()
    (plain / "main.tf").write_text('locals {\n  lambda_runtime_id = "python3.11"\n}\n')
    with pytest.raises(LookupError, match=r"lambda_runtime_id: .*python3\.11.* is not"):
        deployed_code(PROCESSOR, "python", plain)


def test_table_keys_are_read_from_lib(tmp_path: Path) -> None:
    """The scratch stack's tables take their keys and indexes from lib/main.tf's local.tables,
    not a copy: another lib/ gives other ones, and an unknown table is refused by name."""
    assert table_keys("transactions") == (
        ("transaction_id", "timestamp"),
        {"status_shard-index": ("status_shard", "timestamp")},
    )
    (tmp_path / "main.tf").write_text(
        'locals {\n  tables = { t = { key = ["a", "b"], indexes = { "i" = ["c", "b"] } } }\n}\n'
    )
    assert table_keys("t", tmp_path) == (("a", "b"), {"i": ("c", "b")})
    with pytest.raises(LookupError, match=r"no local\.tables\.errors"):
        table_keys("errors", tmp_path)
