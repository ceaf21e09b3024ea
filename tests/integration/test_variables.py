"""Variable validation and the lambda_runtime switch, through real `terraform plan` runs."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_local.constants import BUILD_DIR
from pipeline_local.emulator import start_emulator
from pipeline_local.function_config import variable_blocks
from pipeline_local.terraform import Workdir, workdir_for


@pytest.fixture(scope="module")
def workdir() -> Iterator[Workdir]:
    emu = start_emulator(log_path=BUILD_DIR / "tf-test-variables-emulator.log")
    try:
        # Plans only: lib/'s own values, none of the emulator's (terraform.EMULATOR_VALUES).
        work = workdir_for(emu, BUILD_DIR / "tf-test-variables", emulator_values=False)
        work.init()
        yield work
    finally:
        emu.stop()


def plan(work: Workdir, *variables: str) -> subprocess.CompletedProcess[str]:
    args = [arg for var in variables for arg in ("-var", var)]
    return subprocess.run(
        ["terraform", f"-chdir={work.path}", "plan", "-no-color", "-out=tfplan", *args],
        env=work.env(),
        text=True,
        capture_output=True,
    )


def planned(work: Workdir, *variables: str) -> dict[str, dict[str, Any]]:
    """Plan with `variables` (the plan must succeed); the planned values by address."""
    result = plan(work, *variables)
    assert result.returncode == 0, result.stderr
    shown = json.loads(work.run("show", "-json", "tfplan", capture=True))
    return {
        r["address"]: r.get("values", {})
        for r in shown["planned_values"]["root_module"]["resources"]
    }


def functions_of(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Planned values of aws_lambda_function.function by its key (processor, dlq_processor)."""
    prefix = "aws_lambda_function.function["
    return {
        json.loads(address[len(prefix) : -1]): resource
        for address, resource in values.items()
        if address.startswith(prefix)
    }


# Each invalid value and the refusal it must get, by the variable's own validation (or type).
INVALID_VALUES = [
    ("lambda_runtime=java21", 'lambda_runtime must be "python3.11" or "rust"'),
    ("environment=Prod_1", "environment must be 2 to 10 lower-case letters"),
    ("alert_email=not-an-address", "alert_email must be an e-mail address"),
    ("data_classification=secret", "data_classification must be one of"),
    ("vpc_cidr=10.0.0.0/28", "vpc_cidr must be an IPv4 CIDR block"),
    ("max_file_bytes=10", "max_file_bytes must be a whole number of bytes between"),
    ("max_file_bytes=2048.5", "max_file_bytes must be a whole number of bytes between"),
    ("time_safety_margin_ms=300000", "time_safety_margin_ms must be a whole number, at least"),
    ("error_retention_days=0", "error_retention_days must be a whole number between 1 and"),
    ("error_retention_days=1.5", "error_retention_days must be a whole number between 1 and"),
    ("metric_namespace=AWS/Lambda", "metric_namespace must be 1 to 255 characters"),
    ("metric_namespace=:Pipeline", "metric_namespace must be 1 to 255 characters"),
    ("metric_namespace=Pipeline\u00e9", "metric_namespace must be 1 to 255 characters"),
    ("metric_namespace=", "metric_namespace must be 1 to 255 characters"),
    ("processor_reserved_concurrency=0", "processor_reserved_concurrency must be a whole"),
    ("processor_reserved_concurrency=2.5", "processor_reserved_concurrency must be a whole"),
    ("dlq_processor_reserved_concurrency=10001", "dlq_processor_reserved_concurrency must"),
    ("range_split_bytes=1000", "range_split_bytes must be 0 (never split) or a whole"),
    ("range_max_concurrency=1", "range_max_concurrency must be a whole number between 2"),
    ("range_max_concurrency=100", "range_max_concurrency must be a whole number between 2"),
    ("processor_queue_batch_size=0", "processor_queue_batch_size must be a whole number"),
    ("processor_queue_batch_size=11", "processor_queue_batch_size must be a whole number"),
    ("status_index_shards=0", "status_index_shards must be a whole number between 1 and"),
    ("status_index_shards=2.5", "status_index_shards must be a whole number between 1 and"),
    ("status_index_shards=1001", "status_index_shards must be a whole number between 1 and"),
    ("attach_functions_to_vpc=maybe", "a bool is required"),
    ("attach_functions_to_vpc=null", "attach_functions_to_vpc"),
]


def name_of(assignment: str) -> str:
    return assignment.split("=", 1)[0]


def validation_references() -> dict[str, set[str]]:
    """The other variables each variable's validation reads (range_max_concurrency's reads
    processor_reserved_concurrency): Terraform does not run it while one of them is invalid."""
    return {
        name: set(re.findall(r"var\.([a-z_]+)", str(body.get("validation", [])))) - {name}
        for name, body in variable_blocks().items()
    }


def in_plans(cases: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The cases in as few plans as can hold them. Terraform checks every variable before it
    stops and reports each refusal on its own, so one plan tests several values (26 plans of
    about 10 s each are 4), but a plan holds at most one value of a variable (a second -var of
    a name replaces the first) and no two variables of which one's validation reads the other."""
    reads = validation_references()

    def apart(name: str, other: str) -> bool:
        return name != other and other not in reads[name] and name not in reads[other]

    plans: list[list[tuple[str, str]]] = []
    for case in cases:
        fits = [p for p in plans if all(apart(name_of(case[0]), name_of(v)) for v, _ in p)]
        if fits:
            fits[0].append(case)
        else:
            plans.append([case])
    return plans


def refusals(stderr: str) -> dict[str, str]:
    """Terraform's error diagnostics (-no-color: each begins a line with "Error: ") by the
    variable each quotes (`variable "<name>"`), as one line of text each."""
    found: dict[str, str] = {}
    for block in re.split(r"^(?=Error: |Warning: )", stderr, flags=re.MULTILINE):
        if not block.startswith("Error: "):
            continue
        text = " ".join(block.split())
        named = re.search(r'variable "([a-z_]+)"', text)
        assert named, f"a diagnostic that names no variable: {text}"
        found[named.group(1)] = found.get(named.group(1), "") + text
    return found


def test_the_invalid_values_fill_few_plans() -> None:
    plans = in_plans(INVALID_VALUES)
    assert sorted(c for p in plans for c in p) == sorted(INVALID_VALUES)
    assert all(len({name_of(v) for v, _ in p}) == len(p) for p in plans)
    assert len(plans) < len(INVALID_VALUES) / 4
    # range_max_concurrency's validation reads processor_reserved_concurrency: never together.
    assert "processor_reserved_concurrency" in validation_references()["range_max_concurrency"]
    for p in plans:
        names = {name_of(v) for v, _ in p}
        assert not {"range_max_concurrency", "processor_reserved_concurrency"} <= names


@pytest.mark.parametrize(
    "cases",
    in_plans(INVALID_VALUES),
    ids=lambda cases: ",".join(name_of(v) for v, _ in cases),
)
def test_invalid_variables_are_refused(workdir: Workdir, cases: list[tuple[str, str]]) -> None:
    """Every invalid value is refused with its own variable's message, and nothing else is."""
    result = plan(workdir, *(variable for variable, _ in cases))
    assert result.returncode != 0
    found = refusals(result.stderr)
    assert set(found) == {name_of(v) for v, _ in cases}, result.stderr
    missing = [(v, m) for v, m in cases if m not in found[name_of(v)]]
    assert not missing, f"not refused as expected: {missing}\n{result.stderr}"


def test_rust_without_binaries_names_the_missing_file_and_the_build_command(
    workdir: Workdir, tmp_path: Path
) -> None:
    result = plan(workdir, "lambda_runtime=rust", f"rust_bootstrap_dir={tmp_path}")
    assert result.returncode != 0
    text = " ".join(result.stderr.split())
    assert f"{tmp_path}/processor/bootstrap does not exist" in text
    assert "make build-rust" in text


def test_rust_runtime_switches_both_functions_to_bootstrap(
    workdir: Workdir, tmp_path: Path
) -> None:
    for crate in ("processor", "dlq-processor"):
        binary = tmp_path / crate / "bootstrap"
        binary.parent.mkdir()
        binary.write_bytes(b"\x7fELF stand-in for the aarch64 binary")
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    functions = functions_of(
        planned(workdir, "lambda_runtime=rust", f"rust_bootstrap_dir={tmp_path}")
    )
    for name in ("processor", "dlq_processor"):
        assert functions[name]["runtime"] == "provided.al2023"
        assert functions[name]["handler"] == "bootstrap"
        assert functions[name]["architectures"] == ["arm64"]
    for key in ("processor", "dlq_processor"):
        with zipfile.ZipFile(workdir.path / ".build" / f"{key}-rust.zip") as archive:
            (entry,) = archive.infolist()
        # Lambda runs the entry named bootstrap at the zip's root, and only if it is executable.
        assert entry.filename == "bootstrap"
        assert (entry.external_attr >> 16) & 0o777 == 0o755


def test_python_runtime_is_the_default(workdir: Workdir) -> None:
    functions = functions_of(planned(workdir))
    assert functions["processor"]["runtime"] == "python3.11"
    assert functions["processor"]["handler"] == "processor_function.lambda_handler"
    assert functions["dlq_processor"]["handler"] == "dlq_processor_function.lambda_handler"


def test_defaults_attach_the_functions_reserve_100_and_50_and_move_small_files(
    workdir: Workdir,
) -> None:
    values = planned(workdir)
    functions = functions_of(values)
    assert functions["processor"]["reserved_concurrent_executions"] == 100
    assert functions["dlq_processor"]["reserved_concurrent_executions"] == 50
    for name in ("processor", "dlq_processor"):
        assert len(functions[name]["vpc_config"]) == 1
    assert "aws_vpc_endpoint.sqs[0]" in values
    assert "aws_security_group.functions[0]" in values
    # Since September 2024 S3 skips objects under 128 KB unless told otherwise; moto answers
    # only all_storage_classes_128K, so this is checked in the plan, not the applied stack.
    lifecycle = values["aws_s3_bucket_lifecycle_configuration.transactions"]
    assert lifecycle["transition_default_minimum_object_size"] == "varies_by_storage_class"


def test_variables_set_the_reservations_and_can_detach_the_functions(workdir: Workdir) -> None:
    values = planned(
        workdir,
        "processor_reserved_concurrency=7",
        "dlq_processor_reserved_concurrency=3",
        "range_max_concurrency=5",  # must stay below the processor's reservation (P36)
        "processor_queue_batch_size=4",
        "attach_functions_to_vpc=false",
    )
    functions = functions_of(values)
    assert functions["processor"]["reserved_concurrent_executions"] == 7
    assert functions["dlq_processor"]["reserved_concurrent_executions"] == 3
    # The main queue's mapping is capped below the reservation; the DLQ's is not capped.
    mappings = "aws_lambda_event_source_mapping.function"
    assert values[f'{mappings}["processor"]']["scaling_config"] == [{"maximum_concurrency": 5}]
    assert values[f'{mappings}["dlq_processor"]']["scaling_config"] == []
    assert values[f'{mappings}["processor"]']["batch_size"] == 4
    assert values[f'{mappings}["dlq_processor"]']["batch_size"] == 10
    for name in ("processor", "dlq_processor"):
        assert functions[name]["vpc_config"] == []
    detached = [a for a in values if "security_group" in a and "default" not in a]
    assert detached == []
    assert "aws_vpc_endpoint.sqs[0]" not in values
    # The gateway endpoints stay (free, and the client asked for them).
    assert {'aws_vpc_endpoint.gateway["s3"]', 'aws_vpc_endpoint.gateway["dynamodb"]'} <= set(values)


def test_tunables_reach_the_functions_and_the_output(workdir: Workdir) -> None:
    """A non-default metric namespace and retention travel to the DLQ processor's environment
    and the metric_namespace output. (The processor's whole map is unknown at plan time: it
    holds queue URLs; tests/unit/test_configuration.py checks its METRIC_NAMESPACE expression.)"""
    values = planned(workdir, "metric_namespace=Payments/Pipeline", "error_retention_days=30")
    (env,) = functions_of(values)["dlq_processor"]["environment"]
    assert env["variables"]["METRIC_NAMESPACE"] == "Payments/Pipeline"
    assert env["variables"]["ERROR_RETENTION_DAYS"] == "30"
    shown = json.loads(workdir.run("show", "-json", "tfplan", capture=True))
    assert shown["planned_values"]["outputs"]["metric_namespace"]["value"] == "Payments/Pipeline"
