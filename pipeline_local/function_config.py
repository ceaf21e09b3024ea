"""Read what lib/ declares about each function's configuration, without applying it.

What it reads: the variables each function's environment sets, the Terraform defaults of the
tunables among them, the other arguments its aws_lambda_function instance gets, and the few
other resource arguments a stack made without Terraform must copy (the main queue's).

Terraform is the one source of every tunable's default (lib/provider.tf); the handlers and the
Rust functions only read their environment. Tests and local runs that start a function without
an applied stack take the defaults from here instead of repeating them. The files are read with
python-hcl2 (HCL2 is not a format worth parsing by hand).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import hcl2

from pipeline_local.constants import LIB_DIR

LIB = LIB_DIR

# The two functions: the keys of lib/main.tf's local.functions, which every per-function
# resource (aws_lambda_function.function, its role, policy and log group) is for_each over.
PROCESSOR = "processor"
DLQ_PROCESSOR = "dlq_processor"
FUNCTION_RESOURCE = "aws_lambda_function.function"

# An environment value that is one Terraform variable, as lib/main.tf writes it:
# `var.x` or `tostring(var.x)` (python-hcl2 renders expressions as "${...}").
_VARIABLE_VALUE = re.compile(r"\$\{(?:tostring\()?var\.([A-Za-z_][A-Za-z0-9_-]*)\)?\}")


def _unquoted(text: str) -> str:
    """python-hcl2 keeps the quotes of labels and string literals: '"processor"'."""
    return json.loads(text) if text.startswith('"') else text


@functools.cache
def _documents(lib: Path = LIB) -> tuple[dict[str, Any], ...]:
    docs = []
    for path in sorted(lib.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            docs.append(hcl2.load(handle))
    return tuple(docs)


def variable_blocks(lib: Path = LIB) -> dict[str, dict[str, Any]]:
    """Every variable block of lib/: {name: body} (description, type, default, validation)."""
    blocks: dict[str, dict[str, Any]] = {}
    for doc in _documents(lib):
        for block in doc.get("variable", []):
            for name, body in block.items():
                blocks[_unquoted(name)] = body
    return blocks


def variable_defaults(lib: Path = LIB) -> dict[str, Any]:
    """Every variable of lib/ with a default: {name: default} (strings unquoted)."""
    return {
        name: _unquoted(body["default"]) if isinstance(body["default"], str) else body["default"]
        for name, body in variable_blocks(lib).items()
        if body.get("default") is not None
    }


# A local that lib/main.tf chooses by implementation, as python-hcl2 renders it:
# local.is_rust ? "<rust value>" : "<python value>".
_BY_IMPLEMENTATION = re.compile(r'\$\{local\.is_rust \? "([^"]*)" : "([^"]*)"\}')


def _local(name: str, lib: Path = LIB) -> Any:
    for doc in _documents(lib):
        for block in doc.get("locals", []):
            if name in block:
                return block[name]
    raise LookupError(f"lib/ has no local.{name}")


def _by_implementation(expression: Any, impl: str, what: str) -> str:
    match = _BY_IMPLEMENTATION.fullmatch(str(expression))
    if match is None:
        raise LookupError(f'{what}: {expression!r} is not `local.is_rust ? ".." : ".."`')
    if impl not in ("python", "rust"):
        raise LookupError(f"{what}: no implementation {impl!r} (python or rust)")
    return match.group(1) if impl == "rust" else match.group(2)


def deployed_code(function: str, impl: str, lib: Path = LIB) -> tuple[str, str]:
    """(runtime, handler) lib/main.tf deploys `function` with when var.lambda_runtime picks
    `impl` ("python" or "rust"): its locals lambda_runtime_id and lambda_handlers."""
    runtime = _by_implementation(_local("lambda_runtime_id", lib), impl, "lambda_runtime_id")
    handlers = _local("lambda_handlers", lib)
    if function not in handlers:
        raise LookupError(f"lib/ has no local.lambda_handlers.{function}")
    handler = _by_implementation(handlers[function], impl, f"lambda_handlers.{function}")
    return runtime, handler


def table_keys(table: str, lib: Path = LIB) -> tuple[tuple[str, str], dict[str, tuple[str, str]]]:
    """lib/main.tf's local.tables entry `table` ("transactions", "errors", "file_status"): its
    key (hash, range) and its global secondary indexes {name: (hash, range)}."""
    tables = _local("tables", lib)
    if table not in tables:
        raise LookupError(f"lib/ has no local.tables.{table}")

    def pair(names: list[str]) -> tuple[str, str]:
        hash_key, range_key = (_unquoted(n) for n in names)
        return hash_key, range_key

    entry = tables[table]
    return pair(entry["key"]), {_unquoted(n): pair(k) for n, k in entry["indexes"].items()}


def function_settings(function: str, lib: Path = LIB) -> dict[str, Any]:
    """What lib/ sets for one function only: its entry of local.functions (name, environment,
    dead_letter_config, ...), expressions as python-hcl2 renders them ("${...}")."""
    functions = _local("functions", lib)
    if function not in functions:
        raise LookupError(f"lib/ has no local.functions.{function}")
    return dict(functions[function])


def function_argument(
    function: str, argument: str, *, within: str | None = None, lib: Path = LIB
) -> str | None:
    """The expression lib/ gives `argument` (inside the nested block `within`, if given) of the
    function's aws_lambda_function instance: from its local.functions entry, else from the
    resource block both instances share. None where lib/ sets none."""
    settings = function_settings(function, lib)
    if within is not None:
        block = settings.get(within)
        return block.get(argument) if isinstance(block, dict) else None
    if argument in settings:
        return str(settings[argument])
    shared = resource_body(FUNCTION_RESOURCE, lib)
    return str(shared[argument]) if argument in shared else None


def resource_body(address: str, lib: Path = LIB) -> dict[str, Any]:
    """The arguments of lib/'s resource `address` ("aws_sqs_queue.main"), expressions as
    python-hcl2 renders them ("${...}"). A working copy may declare the resource again in an
    override file with other arguments only: each argument is taken from the first file (in
    name order) that sets it."""
    rtype, name = address.split(".")
    arguments: dict[str, Any] = {}
    found = False
    for doc in _documents(lib):
        for block in doc.get("resource", []):
            for kind, resources in block.items():
                for label, body in resources.items() if _unquoted(kind) == rtype else ():
                    if _unquoted(label) == name:
                        found = True
                        for argument, value in body.items():
                            arguments.setdefault(argument, value)
    if not found:
        raise LookupError(f"lib/ has no resource {address}")
    return arguments


def environment_expressions(function: str, lib: Path = LIB) -> dict[str, str]:
    """The environment lib/ sets on the function: {variable: expression}."""
    environment = function_settings(function, lib)["environment"]
    return {_unquoted(k): v for k, v in environment.items()}


def environment_names(function: str, lib: Path = LIB) -> frozenset[str]:
    """The names of the variables lib/ sets on the function."""
    return frozenset(environment_expressions(function, lib))


def tunable_defaults(function: str, lib: Path = LIB) -> dict[str, str]:
    """The function's variables whose value is one Terraform variable, at that variable's
    default, as the function sees them (strings): e.g. {"MAX_FILE_BYTES": "268435456"}.
    The others (table names, queue URLs, ENVIRONMENT) come from the stack the caller made."""
    defaults = variable_defaults(lib)
    values: dict[str, str] = {}
    for name, expression in environment_expressions(function, lib).items():
        match = _VARIABLE_VALUE.fullmatch(expression)
        if match and match.group(1) in defaults:
            default = defaults[match.group(1)]
            values[name] = str(default) if not isinstance(default, bool) else str(default).lower()
    return values
