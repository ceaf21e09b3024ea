"""Read what moto drops from a function (DeadLetterConfig, KMSKeyArn) from the Terraform copy."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


def dead_letter_targets_from_terraform(workdir: Path) -> dict[str, str]:
    """function name -> dead-letter target ARN, from the Terraform working copy the emulator was
    applied from: the state's `dead_letter_config` when it has one; otherwise the configuration's
    `dead_letter_config { target_arn = <type>.<name>.arn }` resolved against the state (with
    moto the state holds none either: the provider reads the function back from moto)."""
    return function_arns_from_terraform(workdir, "target_arn", within="dead_letter_config")


def function_arns_from_terraform(
    workdir: Path, attribute: str, *, within: str | None = None
) -> dict[str, str]:
    """function name -> the ARN an `aws_lambda_function` argument names (`attribute`, inside the
    nested block `within` if given), from the Terraform working copy: the state's value when it
    has one, otherwise the configuration's `<type>.<name>.arn` reference resolved against the
    state. For what moto drops from a function (DeadLetterConfig, KMSKeyArn)."""
    state_path = workdir / "terraform.tfstate"
    if not state_path.exists():
        return {}
    state = json.loads(state_path.read_text())
    attrs_by_address: dict[str, dict[str, Any]] = {}
    for res in state.get("resources", []):
        if res.get("mode") != "managed" or res.get("module"):
            continue
        for inst in res.get("instances", []):
            if "index_key" not in inst:
                attrs_by_address[f"{res['type']}.{res['name']}"] = inst.get("attributes", {})
    out: dict[str, str] = {}
    for address, attrs in attrs_by_address.items():
        if address.startswith("aws_lambda_function."):
            holder = (attrs.get(within) or [{}])[0] if within else attrs
            if holder and holder.get(attribute):
                out[attrs["function_name"]] = holder[attribute]
    block_re = re.compile(r'^resource\s+"aws_lambda_function"\s+"([\w-]+)"\s*\{', re.M)
    opening = rf"{within}\s*\{{\s*" if within else r"^\s*"
    target_re = re.compile(
        opening + attribute + r"\s*=\s*(?:([a-z0-9_]+)\.([\w-]+)\.arn|\"([^\"]+)\")", re.M
    )
    for tf in sorted(workdir.glob("*.tf")):
        text = tf.read_text()
        starts = [(m.start(), m.group(1)) for m in block_re.finditer(text)]
        for i, (pos, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            nxt = re.search(r"^(resource|data|output|locals|module)\b", text[pos + 1 : end], re.M)
            body = text[pos : pos + 1 + nxt.start()] if nxt else text[pos:end]
            match = target_re.search(body)
            fn_attrs = attrs_by_address.get(f"aws_lambda_function.{name}")
            if not match or not fn_attrs or fn_attrs.get("function_name") in out:
                continue
            if match.group(3):
                out[fn_attrs["function_name"]] = match.group(3)
                continue
            target = attrs_by_address.get(f"{match.group(1)}.{match.group(2)}", {}).get("arn")
            if target:
                out[fn_attrs["function_name"]] = target
    return out
