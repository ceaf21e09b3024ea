"""Every environment-variable name and fixed value the local harness uses, in one place.

Values that describe the deployed stack (a function's memory, timeout, retries, the metric
namespace) come from the applied configuration through `pipeline_local.wiring`; what is here is
either a fallback for a value the configuration does not state yet, a fact of AWS that the
emulator does not model, or a name of this repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

# -- this repository ---------------------------------------------------------------------------

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
LIB_DIR: Final = REPO_ROOT / "lib"
BUILD_DIR: Final = REPO_ROOT / "build"
CONTRACT_DIR: Final = REPO_ROOT / "contract"

# -- the emulated account ----------------------------------------------------------------------

# lib/provider.tf's region (tests/unit/test_configuration.py holds them equal); the real-account
# tools (preflight) take it as their default too.

REGION: Final = "eu-central-1"
ACCOUNT_ID: Final = "123456789012"

# -- Lambda's defaults ---------------------------------------------------------------------------

# Asynchronous invocation retries a failed event twice when no event invoke config says
# otherwise: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
DEFAULT_MAXIMUM_RETRY_ATTEMPTS: Final = 2
# What an invoker uses when the caller gives no timeout / memory size (Lambda's console
# defaults are 3 s and 128 MB; the pipeline's functions set their own, read from the wiring).
DEFAULT_TIMEOUT_MS: Final = 300_000
DEFAULT_MEMORY_MB: Final = 512
# GetFunctionConfiguration without Timeout / MemorySize: Lambda's defaults.
LAMBDA_DEFAULT_TIMEOUT_S: Final = 3
LAMBDA_DEFAULT_MEMORY_MB: Final = 128

# -- the functions' environment -------------------------------------------------------------------

# The CloudWatch namespace of the handlers' Embedded Metric Format lines. Terraform passes it to
# both functions (variable `metric_namespace`, also output `metric_namespace`).
METRIC_NAMESPACE_ENV: Final = "METRIC_NAMESPACE"

# -- the harness's own switches (environment variables) -------------------------------------------

# Where the host builds of the Rust functions are (a directory with <crate>/bootstrap or <crate>).
RUST_HOST_BIN_DIR_ENV: Final = "RUST_HOST_BIN_DIR"
# "1"/"0": run each function process with its Lambda size's CPU share and memory (cgroup v1).
LAMBDA_SIZED_ENV: Final = "PIPELINE_LAMBDA_SIZED"
# Which implementations the conformance and e2e suites apply (comma-separated python, rust).
CONFORMANCE_IMPL_ENV: Final = "CONFORMANCE_IMPL"
E2E_IMPL_ENV: Final = "E2E_IMPL"
# Terraform variables the suites set for one apply (names are case-sensitive).
TF_VAR_MAX_FILE_BYTES: Final = "TF_VAR_max_file_bytes"
# The runtime `make demo` / `make apply` deploy (python3.11 or rust; the Makefile exports it).
LAMBDA_RUNTIME_ENV: Final = "LAMBDA_RUNTIME"
# Cargo's own: where the host builds are (default: the repository's target/).
CARGO_TARGET_DIR_ENV: Final = "CARGO_TARGET_DIR"
# A ddb-faithful binary to use instead of target/{release,debug}/ddb-faithful.
DDB_FAITHFUL_BIN_ENV: Final = "DDB_FAITHFUL_BIN"
