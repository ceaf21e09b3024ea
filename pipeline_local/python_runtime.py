"""Run a Python Lambda handler as its own process, as the python3.11 runtime runs it.

`PythonProcessInvoker(PythonHandler(module_path, handler=...), env)` implements the `Invoker`
protocol of `pipeline_local.invokers` with the process model of `RustInvoker`
(pipeline_local/rust_runtime.py), whose local Lambda Runtime API server it reuses: one
long-lived process per execution environment, started on the first invocation (a cold start),
serving the following ones warm, killed on a timeout (the next invocation is a fresh cold
start), and, with `sandbox=`, held to its Lambda size's CPU share and memory (an out-of-memory
kill is reported as `Runtime.OutOfMemory`).

The process is AWS's own runtime interface client, `awslambdaric` (PyPI; the client the
python3.11 managed runtime and AWS's Python base images run), started as
`python -m awslambdaric <module>.<function>` in the handler's directory with the environment
Lambda sets (`_HANDLER`, `LAMBDA_TASK_ROOT`, `AWS_LAMBDA_RUNTIME_API`, ...). So the handler
meets what it meets on AWS: imported once per process, events decoded by the runtime client,
`context` from the Runtime API headers (deadline, request id, ARN), function errors posted to
`/invocation/{id}/error` with the exception's type, stdout shipped as the log stream.

Unlike `pipeline_local.invokers.PythonInvoker` (the handler imported into the test process),
an invocation here can be killed: on its deadline or for its memory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from pipeline_local.invokers import PythonHandler
from pipeline_local.rust_runtime import RustInvoker
from pipeline_local.sandbox import Sandbox

RUNTIME_CLIENT_MODULE = "awslambdaric"


class PythonProcessInvoker(RustInvoker):
    """A Python handler module run by awslambdaric as a Lambda execution environment."""

    def __init__(
        self,
        code: PythonHandler,
        env: Mapping[str, str],
        *,
        log_path: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        python: str = sys.executable,
    ) -> None:
        self.code = code
        super().__init__(
            python,
            env,
            function_name=code.function_name,
            memory_limit_in_mb=code.memory_limit_in_mb,
            log_path=log_path,
            sandbox=sandbox,
        )
        # Not resolved: a virtual environment's python is a symlink, and only under its own
        # path does it find the environment's packages (boto3, awslambdaric).
        self.python = python
        self.handler = f"{code.module_path.stem}.{code.handler}"
        self.task_root = code.module_path.parent

    def command(self) -> list[str]:
        # -u: nothing the handler prints waits in a buffer when the process is killed.
        return [self.python, "-u", "-m", RUNTIME_CLIENT_MODULE, self.handler]
