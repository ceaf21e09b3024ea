"""Both handlers' load_config: what each variable becomes, what it refuses, and the CONFIG each
handler reads once, at init. (test_configuration.py checks the variable lists against lib/.)"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.unit.conftest import HANDLER_ENV

# Every variable lib/main.tf sets for the function: (the Config field it fills, the value read).
# The environment gives each value as its text.
PROCESSOR_VARIABLES = {
    "DYNAMODB_TABLE_NAME": ("table_name", "t"),
    "SQS_QUEUE_URL": ("queue_url", "q"),
    "DLQ_URL": ("dlq_url", "d"),
    "FILE_STATUS_TABLE_NAME": ("file_status_table", "s"),
    "ENVIRONMENT": ("environment", "prod"),
    "METRIC_NAMESPACE": ("metric_namespace", "Ns"),
    "MAX_FILE_BYTES": ("max_file_bytes", 10),
    "TIME_SAFETY_MARGIN_MS": ("time_safety_margin_ms", 0),
    "STATUS_INDEX_SHARDS": ("status_index_shards", 16),
    "RANGE_SPLIT_BYTES": ("range_split_bytes", 0),
}
DLQ_PROCESSOR_VARIABLES = {
    "ERRORS_TABLE_NAME": ("table_name", "t"),
    "ENVIRONMENT": ("environment", "prod"),
    "METRIC_NAMESPACE": ("metric_namespace", "Ns"),
    "ERROR_RETENTION_DAYS": ("retention_days", 30),
}


@pytest.mark.parametrize(
    ("handler", "variables", "refused"),
    [
        pytest.param(
            "proc",
            PROCESSOR_VARIABLES,
            {
                "MAX_FILE_BYTES": ("0", "256 MiB"),
                "TIME_SAFETY_MARGIN_MS": ("-1", "3e4"),
                "RANGE_SPLIT_BYTES": ("-1", "64 MiB"),
            },
            id="processor",
        ),
        pytest.param(
            "dlq",
            DLQ_PROCESSOR_VARIABLES,
            {"ERROR_RETENTION_DAYS": ("0", "-1", "1.5", "30 days", "1_000")},
            id="dlq_processor",
        ),
    ],
)
def test_load_config(
    request: pytest.FixtureRequest,
    handler: str,
    variables: dict[str, tuple[str, Any]],
    refused: dict[str, tuple[str, ...]],
) -> None:
    """Each variable fills its field; none may be missing; a whole number refuses other text."""
    module = request.getfixturevalue(handler)
    env = {name: str(value) for name, (_, value) in variables.items()}
    expected = module.Config(**{field: value for field, value in variables.values()})
    assert module.load_config(env) == expected
    # lib/main.tf sets every variable, so neither handler has a default: each one missing,
    # empty or blank is refused by name.
    for name in env:
        without = {k: v for k, v in env.items() if k != name}
        for broken in (without, {**env, name: ""}, {**env, name: " "}):
            with pytest.raises(module.ConfigError, match=f"{name} is missing or empty"):
                module.load_config(broken)
    for name, values in refused.items():
        for bad in values:
            with pytest.raises(module.ConfigError, match=f"{name} must be a whole number"):
                module.load_config({**env, name: bad})


@pytest.mark.parametrize("handler", ["proc", "dlq"])
def test_config_is_read_once_at_init(request: pytest.FixtureRequest, handler: str) -> None:
    module = request.getfixturevalue(handler)
    assert module.CONFIG == module.load_config(HANDLER_ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        module.CONFIG.environment = "other"
