"""Give a local function process the CPU share and memory of its Lambda size (cgroup v1).

Lambda allocates CPU in proportion to the configured memory: 1,769 MB is one full vCPU
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), so a 512 MB function
gets 512/1769 = 0.29 of a core; a function that uses more memory than configured is killed.
A `Sandbox` is one execution environment's pair of cgroups on this machine:

- `/sys/fs/cgroup/cpu/pipeline-local/<group>`: `cpu.cfs_quota_us` = `cpu.cfs_period_us` *
  MemorySize / 1769 (the CFS bandwidth controller lets the group run that many microseconds per
  period, over all its threads together);
- `/sys/fs/cgroup/memory/pipeline-local/<group>`: `memory.limit_in_bytes` = MemorySize MiB,
  and `memory.memsw.limit_in_bytes` the same where swap accounting exists, so that swapping
  cannot hide an overrun. Going over the limit makes the kernel's OOM killer SIGKILL the
  process, as Lambda kills a function that runs out of memory; `oom_kills()` (the group's
  `memory.oom_control` counter) tells that kill from any other.

`wrap(argv)` returns a command line that enters both groups and then execs `argv`, so the
function's own code never runs outside them (a small `/bin/sh` step rather than `preexec_fn`,
which Python documents as unsafe in a process with threads, as the invokers are).
`close()` kills what is left in the groups and removes them.

Where the controllers are missing (a cgroup v2-only host) or not writable (not root),
`Sandbox.available()` says why, and `sandbox_for(...)` returns None after printing one line, so
callers run the process without limits rather than fail.

No library on PyPI manages cgroup v1 bandwidth and memory limits for a child process in a
maintained way (cgroupspy and cgroup-utils are unmaintained and need their own setup), and the
interface is a handful of file writes: hence this module.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT_GROUP = "pipeline-local"
# One full vCPU at 1,769 MB of configured memory:
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
MB_PER_VCPU = 1769
CFS_PERIOD_US = 100_000
# The kernel refuses a CFS quota under 1 ms.
MIN_CFS_QUOTA_US = 1000
# What Lambda reports for an invocation whose process was killed for using more than its
# memory: errorType "Runtime.OutOfMemory" (the `errorType` of the platform.report event,
# https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html), with the
# runtime's exit message.
OUT_OF_MEMORY_ERROR_TYPE = "Runtime.OutOfMemory"
OUT_OF_MEMORY_MESSAGE = "Runtime exited with error: signal: killed"


def cpu_quota_us(memory_mb: int, period_us: int = CFS_PERIOD_US) -> int:
    """The CFS quota per `period_us` that gives `memory_mb` its Lambda share of one core."""
    if memory_mb <= 0:
        raise ValueError(f"memory size must be positive, got {memory_mb} MB")
    return max(MIN_CFS_QUOTA_US, period_us * memory_mb // MB_PER_VCPU)


def memory_limit_bytes(memory_mb: int) -> int:
    """Lambda's MemorySize is in MiB (MB in its documentation): 512 MB is 512 * 2**20 bytes."""
    if memory_mb <= 0:
        raise ValueError(f"memory size must be positive, got {memory_mb} MB")
    return memory_mb * 1024 * 1024


@dataclass(frozen=True)
class Availability:
    """Whether sandboxes can be made here, and if not, why (one line for the output)."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


def _write(path: Path, value: str | int) -> None:
    with open(path, "w") as fh:
        fh.write(f"{value}\n")


def _read(path: Path) -> str:
    return path.read_text().strip()


def _remove_group(path: Path) -> None:
    """Kill what is left in a group and remove it (rmdir fails while a task is exiting)."""
    if not path.is_dir():
        return
    for _ in range(100):
        with contextlib.suppress(FileNotFoundError):
            for pid in _read(path / "cgroup.procs").split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY: a killed task has not left yet
            time.sleep(0.01)


def _remove_groups(paths: Sequence[Path]) -> None:
    for path in paths:
        _remove_group(path)


_GROUP_NAME = re.compile(r"^(\d+)-")


def _remove_stale_groups(parent: Path) -> None:
    """Remove groups left by a run that died without closing them (their creator is gone)."""
    with contextlib.suppress(OSError):
        for child in parent.iterdir():
            match = _GROUP_NAME.match(child.name)
            if not child.is_dir() or not match:
                continue
            creator = int(match.group(1))
            try:
                os.kill(creator, 0)
            except ProcessLookupError:
                _remove_group(child)
            except PermissionError:
                pass


class Sandbox:
    """One execution environment's cpu and memory cgroups (cgroup v1), made on first use."""

    def __init__(
        self,
        memory_mb: int,
        *,
        name: str = "function",
        parent: str = PARENT_GROUP,
        root: Path = CGROUP_ROOT,
    ) -> None:
        self.memory_mb = memory_mb
        self.quota_us = cpu_quota_us(memory_mb)
        self.limit_bytes = memory_limit_bytes(memory_mb)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
        # The creator's pid first: a later run can tell a group whose creator died.
        self.group = f"{os.getpid()}-{safe}-{uuid.uuid4().hex[:8]}"
        self.root = root
        self.parent = parent
        self.cpu_path = root / "cpu" / parent / self.group
        self.memory_path = root / "memory" / parent / self.group
        self._created = False
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _remove_groups, (self.cpu_path, self.memory_path))

    # -- availability --------------------------------------------------------------------------

    @staticmethod
    def available(root: Path = CGROUP_ROOT, parent: str = PARENT_GROUP) -> Availability:
        """Whether the cgroup v1 cpu and memory controllers are here and writable."""
        cpu, memory = root / "cpu", root / "memory"
        if not (cpu / "cpu.cfs_quota_us").exists():
            return Availability(
                False, f"no cgroup v1 cpu controller with CFS quotas at {cpu} (cgroup v2 only?)"
            )
        if not (memory / "memory.limit_in_bytes").exists():
            return Availability(False, f"no cgroup v1 memory controller at {memory}")
        for controller in (cpu, memory):
            try:
                (controller / parent).mkdir(exist_ok=True)
            except OSError as exc:
                return Availability(
                    False, f"cannot create {controller / parent}: {exc.strerror} (not root?)"
                )
            if not os.access(controller / parent / "cgroup.procs", os.W_OK):
                return Availability(False, f"{controller / parent} is not writable (not root?)")
        return Availability(True, f"cgroup v1 cpu and memory controllers under {root}")

    # -- the groups ----------------------------------------------------------------------------

    def create(self) -> Sandbox:
        """Make both groups and set their limits (once; `wrap` calls it)."""
        with self._lock:
            if self._created:
                return self
            for controller in ("cpu", "memory"):
                parent = self.root / controller / self.parent
                parent.mkdir(exist_ok=True)
                _remove_stale_groups(parent)
            self.cpu_path.mkdir()
            self.memory_path.mkdir()
            try:
                _write(self.cpu_path / "cpu.cfs_period_us", CFS_PERIOD_US)
                _write(self.cpu_path / "cpu.cfs_quota_us", self.quota_us)
                # memsw may only be set to at least the memory limit: the memory limit first.
                _write(self.memory_path / "memory.limit_in_bytes", self.limit_bytes)
                memsw = self.memory_path / "memory.memsw.limit_in_bytes"
                if memsw.exists():
                    _write(memsw, self.limit_bytes)
            except OSError:
                _remove_groups((self.cpu_path, self.memory_path))
                raise
            self._created = True
            return self

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside both groups: the shell moves itself in, then execs `argv` (the
        same pid), so nothing of the function runs before its limits apply."""
        self.create()
        script = 'echo $$ > "$1" && echo $$ > "$2" && shift 2 && exec "$@"'
        return [
            "/bin/sh",
            "-c",
            script,
            "sandbox",
            str(self.cpu_path / "cgroup.procs"),
            str(self.memory_path / "cgroup.procs"),
            *argv,
        ]

    def oom_kills(self) -> int:
        """How many processes of this group the OOM killer has killed so far."""
        try:
            text = (self.memory_path / "memory.oom_control").read_text()
        except FileNotFoundError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        # A kernel without the counter (before 4.13): the limit was hit at least.
        return int(_read(self.memory_path / "memory.failcnt") != "0")

    def max_memory_used_mb(self) -> int:
        """The group's peak memory use (what Lambda's REPORT line calls Max Memory Used)."""
        try:
            return int(_read(self.memory_path / "memory.max_usage_in_bytes")) // (1024 * 1024)
        except FileNotFoundError:
            return 0

    def cpu_stat(self) -> dict[str, int]:
        """The CFS bandwidth counters: nr_periods, nr_throttled, throttled_time (ns)."""
        try:
            text = (self.cpu_path / "cpu.stat").read_text()
        except FileNotFoundError:
            return {}
        return {k: int(v) for k, v in (line.split() for line in text.splitlines() if line)}

    def close(self) -> None:
        """Kill whatever still runs in the groups and remove them. Safe to call twice; the
        next `wrap` makes fresh groups."""
        with self._lock:
            _remove_groups((self.cpu_path, self.memory_path))
            self._created = False

    def __enter__(self) -> Sandbox:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        share = self.quota_us / CFS_PERIOD_US
        return f"Sandbox({self.memory_mb} MB, {share:.3f} vCPU, group {self.group})"


_announced = False
_announce_lock = threading.Lock()


def sandbox_for(
    function_name: str,
    memory_mb: int,
    *,
    announce: Callable[[str], None] = print,
) -> Sandbox | None:
    """A Sandbox for one execution environment of a function, or None where this machine
    cannot make one; then `announce` gets one line (once per process) saying that the
    functions run without Lambda's CPU and memory limits, and why."""
    global _announced
    availability = Sandbox.available()
    if availability:
        return Sandbox(memory_mb, name=function_name)
    with _announce_lock:
        if not _announced:
            _announced = True
            announce(
                "Lambda-sized limits OFF: function processes run without a CPU quota or "
                f"memory limit ({availability.reason})"
            )
    return None
