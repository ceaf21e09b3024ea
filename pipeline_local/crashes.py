"""Kill a handler mid-invocation, as a Lambda timeout or out-of-memory kill does.

After N successful calls of an operation (default DynamoDB PutItem): a Python handler runs in
this process, so every further AWS call of that invocation raises `SimulatedCrash` (a
BaseException the handler cannot catch); a Rust `bootstrap` runs in its own process, so its calls
go through a LoopbackProxy that SIGKILLs it at the limit. Either way the invocation fails and
what was written before stays written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pipeline_local.constants import DEFAULT_TIMEOUT_MS
from pipeline_local.invokers import InvocationError, Invoker
from pipeline_local.loopback_proxy import LoopbackProxy
from pipeline_local.proxy_messages import ProxyRequest, ProxyResponse
from pipeline_local.rust_runtime import RustInvoker


class SimulatedCrash(BaseException):
    """The execution environment died (timeout kill, OOM): nothing after it runs."""


_PATCH_LOCK = threading.Lock()


class _ProcessKiller:
    """A LoopbackProxy between one Rust process and its endpoint that SIGKILLs the process
    after `limit` successful calls of `operation` during an armed invocation.

    When the process's endpoint is itself a LoopbackProxy of this process (the authorization
    gateway, pipeline_local.authz.gateway, which serves TLS), the killer joins that proxy's
    interceptor chain instead, for the requests signed with the process's access key.

    The kill happens before the limit-th call's answer is passed back, so the process never
    learns that this write succeeded (it is stored all the same); calls the process had already
    sent are forwarded, later ones are refused."""

    def __init__(self, target: RustInvoker, operation: str) -> None:
        upstream = target.env.get("AWS_ENDPOINT_URL")
        if not upstream:
            raise ValueError(
                f"{target.function_name}: no AWS_ENDPOINT_URL to put the crash proxy in front of"
            )
        self.target = target
        self.operation = operation
        self._lock = threading.Lock()
        self.access_key = target.env.get("AWS_ACCESS_KEY_ID", "")
        self.host = LoopbackProxy.serving(upstream)
        self.proxy: LoopbackProxy | None = None
        if self.host is not None:
            self.host.add_interceptor(self)
        else:
            self.proxy = LoopbackProxy(upstream, [self]).start()
            if target.pid is not None:
                target.close()  # the next invocation starts a process that talks to the proxy
            target.env["AWS_ENDPOINT_URL"] = self.proxy.endpoint
        self.armed = False
        self.limit = 0
        self.calls = 0
        self.killed_after: int | None = None
        self.signalled = False  # a live process was SIGKILLed (not merely refused calls)

    def arm(self, limit: int) -> None:
        with self._lock:
            self.armed, self.limit, self.calls, self.killed_after = True, limit, 0, None
            self.signalled = False

    def disarm(self) -> None:
        with self._lock:
            self.armed = False

    def _mine(self, req: ProxyRequest) -> bool:
        return self.host is None or req.access_key == self.access_key

    def __call__(self, req: ProxyRequest) -> ProxyResponse | None:
        if not self._mine(req):
            return None
        with self._lock:
            if self.armed and self.killed_after is not None:
                return ProxyResponse(502, [("Content-Type", "text/plain")], b"process killed")
        return None

    def after(self, req: ProxyRequest, resp: ProxyResponse) -> None:
        if not self._mine(req) or req.operation != self.operation or not 200 <= resp.status < 300:
            return
        with self._lock:
            if not self.armed or self.killed_after is not None:
                return
            self.calls += 1
            if self.calls < self.limit:
                return
            self.killed_after = self.calls
            # Under the lock: whoever sees the process dead and then asks `killed_after_calls()`
            # learns that it was this kill.
            self.signalled = self.target.kill_process()

    def killed_after_calls(self) -> int | None:
        """The calls counted when this invocation's process was SIGKILLed; None if it was not."""
        with self._lock:
            return self.killed_after if self.signalled else None

    def close(self) -> None:
        if self.host is not None:
            self.host.remove_interceptor(self)
        if self.proxy is not None:
            self.proxy.stop()


class CrashingInvoker:
    """Kills the wrapped function's invocation after `after_calls` successful calls of
    `operation` (the AWS operation name, e.g. "PutItem"), for the first `crashes` invocations
    (those whose event `when(event)` accepts); later invocations run normally.

    A Python handler (in this process) is killed by patching botocore: after the limit every
    further AWS call raises `SimulatedCrash`, which the handler cannot catch. A Rust `bootstrap`
    (its own process, `RustInvoker`) is killed for real: its AWS calls go through a proxy that
    counts them and SIGKILLs the process at the limit. Either way the invocation fails with
    Runtime.ExitError and what was written before stays written."""

    def __init__(
        self,
        inner: Invoker,
        *,
        after_calls: int,
        operation: str = "PutItem",
        crashes: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        if after_calls < 1:
            raise ValueError("after_calls must be at least 1")
        self.inner = inner
        self.function_name = inner.function_name
        self.after_calls = after_calls
        self.operation = operation
        self.crashes_left = crashes
        self.when = when
        self.crashed: list[int] = []  # calls made before each crash
        self._killer = _ProcessKiller(inner, operation) if isinstance(inner, RustInvoker) else None

    def close(self) -> None:
        if self._killer is not None:
            self._killer.close()

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Any:
        if self.crashes_left <= 0 or (self.when is not None and not self.when(event)):
            return self.inner.invoke(event, timeout_ms=timeout_ms)
        self.crashes_left -= 1
        if self._killer is not None:
            return self._invoke_killing_process(self._killer, event, timeout_ms)
        return self._invoke_patching_botocore(event, timeout_ms)

    def _crash(self, calls: int, cause: str) -> InvocationError:
        self.crashed.append(calls)
        return InvocationError(
            f"Runtime.ExitError: killed after {calls} {self.operation} calls ({cause})",
            error_type="Runtime.ExitError",
        )

    def _invoke_killing_process(
        self, killer: _ProcessKiller, event: dict[str, Any], timeout_ms: int
    ) -> Any:
        killer.arm(self.after_calls)
        try:
            result = self.inner.invoke(event, timeout_ms=timeout_ms)
        except InvocationError as exc:
            # Only a process that was signalled and then exited counts as killed; one that
            # failed on its own (before the limit, or on the refused calls after it) is
            # reported as the failure it was.
            killed_after = killer.killed_after_calls()
            if killed_after is None or exc.error_type != "Runtime.ExitError":
                raise
            raise self._crash(killed_after, "SIGKILL") from None
        finally:
            killer.disarm()
        killed_after = killer.killed_after_calls()
        if killed_after is not None:
            # Killed while it was posting its response: Lambda would report the crash.
            raise self._crash(killed_after, "SIGKILL")
        return result

    def _invoke_patching_botocore(self, event: dict[str, Any], timeout_ms: int) -> Any:
        import botocore.client

        original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        state = {"calls": 0, "dead": False}
        lock = threading.Lock()
        operation = self.operation
        limit = self.after_calls

        def patched(client: Any, operation_name: str, api_params: Any) -> Any:
            with lock:
                if state["dead"]:
                    raise SimulatedCrash(f"killed after {state['calls']} {operation} calls")
            result = original(client, operation_name, api_params)
            if operation_name == operation:
                with lock:
                    state["calls"] += 1
                    if state["calls"] >= limit:
                        state["dead"] = True
            return result

        with _PATCH_LOCK:
            botocore.client.BaseClient._make_api_call = patched  # type: ignore[attr-defined]
            try:
                result = self.inner.invoke(event, timeout_ms=timeout_ms)
            except SimulatedCrash:
                raise self._crash(state["calls"], "simulated") from None
            finally:
                botocore.client.BaseClient._make_api_call = original  # type: ignore[attr-defined]
        if state["dead"]:
            # The limit was reached on the very last call: the process died right after it.
            raise self._crash(state["calls"], "simulated")
        return result
