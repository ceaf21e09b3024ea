"""Read what moto drops from a function (DeadLetterConfig, KMSKeyArn) from the Terraform copy."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pipeline_local.function_config import FUNCTION_RESOURCE, function_argument

# An ARN reference as python-hcl2 renders it: "${aws_sqs_queue.main.arn}",
# "${aws_kms_key.pipeline[\"lambda\"].arn}".
_ARN_REFERENCE = re.compile(r'^\$\{([a-z0-9_]+\.[\w-]+(?:\["[^"]+"\]|\[\d+\])?)\.arn\}$')


def dead_letter_targets_from_terraform(workdir: Path) -> dict[str, str]:
    """function name -> dead-letter target ARN, from the Terraform working copy the emulator was
    applied from: the state's `dead_letter_config` when it has one; otherwise the configuration's
    (local.functions' `dead_letter_config = { target_arn = <type>.<name>.arn }`) resolved against
    the state (with moto the state holds none either: the provider reads the function back from
    moto)."""
    return function_arns_from_terraform(workdir, "target_arn", within="dead_letter_config")


def _state_attributes(workdir: Path) -> dict[str, dict[str, Any]]:
    """Every managed resource instance of the working copy's state: {address: attributes}."""
    state_path = workdir / "terraform.tfstate"
    if not state_path.exists():
        return {}
    state = json.loads(state_path.read_text())
    attrs_by_address: dict[str, dict[str, Any]] = {}
    for res in state.get("resources", []):
        if res.get("mode") != "managed" or res.get("module"):
            continue
        for inst in res.get("instances", []):
            index = f"[{json.dumps(inst['index_key'])}]" if "index_key" in inst else ""
            attrs_by_address[f"{res['type']}.{res['name']}{index}"] = inst.get("attributes", {})
    return attrs_by_address


def function_arns_from_terraform(
    workdir: Path, attribute: str, *, within: str | None = None
) -> dict[str, str]:
    """function name -> the ARN an `aws_lambda_function` argument names (`attribute`, inside the
    nested block `within` if given), from the Terraform working copy: the state's value when it
    has one, otherwise the configuration's `<type>.<name>.arn` reference (or literal ARN)
    resolved against the state. For what moto drops from a function (DeadLetterConfig,
    KMSKeyArn)."""
    attrs_by_address = _state_attributes(workdir)
    out: dict[str, str] = {}
    prefix = FUNCTION_RESOURCE + '["'
    for address, attrs in attrs_by_address.items():
        if not address.startswith(prefix):
            continue
        name = str(attrs.get("function_name", ""))
        holder = (attrs.get(within) or [{}])[0] if within else attrs
        if holder and holder.get(attribute):
            out[name] = holder[attribute]
            continue
        key = json.loads(address[len(FUNCTION_RESOURCE) + 1 : -1])
        expression = function_argument(key, attribute, within=within, lib=workdir)
        if not expression:
            continue
        match = _ARN_REFERENCE.match(expression)
        if match is None:
            if expression.startswith("arn:"):
                out[name] = expression
            continue
        target = attrs_by_address.get(match.group(1), {}).get("arn")
        if target:
            out[name] = target
    return out
