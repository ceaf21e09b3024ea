"""Checks of pipeline_local.sandbox: Lambda's CPU share and memory limit for a child process.

The arithmetic and the fallback are checked everywhere; the limits themselves on the real
cgroup v1 controllers (this machine and CI run as root with them writable). Where they are not
usable those tests skip and say why, as the invokers then say why they run unlimited.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline_local import sandbox as sandbox_module
from pipeline_local.sandbox import (
    CFS_PERIOD_US,
    Availability,
    Sandbox,
    cpu_quota_us,
    memory_limit_bytes,
    sandbox_for,
)

AVAILABLE = Sandbox.available()
needs_cgroups = pytest.mark.skipif(not AVAILABLE, reason=f"no cgroup v1 limits: {AVAILABLE.reason}")

# A CPU-bound loop that reports the share of one core it got over about a second of wall time.
CPU_SHARE_PROBE = textwrap.dedent(
    """\
    import time
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < 1.0:
        pass
    print((time.process_time() - cpu) / (time.monotonic() - wall))
    """
)


def test_cpu_quota_is_memory_over_1769_of_a_core() -> None:
    assert cpu_quota_us(512) == 28_942  # 100,000 us * 512 / 1769, rounded down
    assert cpu_quota_us(1769) == CFS_PERIOD_US  # one full vCPU
    assert cpu_quota_us(10_240) == 578_858  # 5.79 vCPU: more than one core's period
    assert cpu_quota_us(128) == 7_235
    assert cpu_quota_us(1) == 1000  # the kernel's minimum quota
    assert memory_limit_bytes(512) == 512 * 1024 * 1024
    for bad in (0, -512):
        with pytest.raises(ValueError, match="memory size must be positive"):
            cpu_quota_us(bad)
        with pytest.raises(ValueError, match="memory size must be positive"):
            memory_limit_bytes(bad)


def test_unavailable_controllers_say_why(tmp_path: Path) -> None:
    verdict = Sandbox.available(root=tmp_path)
    assert not verdict and "cgroup v2 only" in verdict.reason
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    verdict = Sandbox.available(root=tmp_path)
    assert not verdict and "no cgroup v1 memory controller" in verdict.reason


def test_fallback_announces_once_and_runs_unlimited(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "no cgroup v1 cpu controller with CFS quotas at /x (cgroup v2 only?)"
    monkeypatch.setattr(Sandbox, "available", staticmethod(lambda: Availability(False, reason)))
    monkeypatch.setattr(sandbox_module, "_announced", False)
    said: list[str] = []
    assert sandbox_for("processor", 512, announce=said.append) is None
    assert sandbox_for("dlq-processor", 512, announce=said.append) is None
    assert len(said) == 1
    assert said[0].startswith("Lambda-sized limits OFF") and reason in said[0]


@needs_cgroups
def test_groups_carry_the_limits_and_are_removed_on_close() -> None:
    box = Sandbox(512, name="limits")
    with box:
        assert (box.cpu_path / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (box.cpu_path / "cpu.cfs_quota_us").read_text().strip() == "28942"
        limit = str(512 * 1024 * 1024)
        assert (box.memory_path / "memory.limit_in_bytes").read_text().strip() == limit
        memsw = box.memory_path / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # swap accounting: swap cannot hide an overrun
            assert memsw.read_text().strip() == limit
        # The wrapped command runs inside both groups (the same pid execs the command).
        out = subprocess.run(
            box.wrap([sys.executable, "-c", "print(open('/proc/self/cgroup').read())"]),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f":cpu:/pipeline-local/{box.group}\n" in out
        assert f":memory:/pipeline-local/{box.group}\n" in out
    assert not box.cpu_path.exists() and not box.memory_path.exists()
    box.close()  # twice is fine


@needs_cgroups
def test_cpu_bound_loop_gets_its_share_of_a_core() -> None:
    with Sandbox(512, name="cpu-share") as box:
        out = subprocess.run(
            box.wrap([sys.executable, "-c", CPU_SHARE_PROBE]),
            capture_output=True,
            text=True,
            check=True,
        )
        share = float(out.stdout)
        stat = box.cpu_stat()
    print(f"CPU share of a 512 MB sandbox over 1 s: {share:.3f} (quota 0.289); {stat}")
    # Timing on a shared 2-core machine: a wide band. Unlimited, the loop gets about 1.0 (less
    # when other work competes for the cores; then the quota may not even be reached).
    assert 0.02 < share < 0.45


@needs_cgroups
def test_a_process_over_its_memory_is_killed_and_counted() -> None:
    with Sandbox(128, name="oom") as box:
        assert box.oom_kills() == 0
        # 300 MiB written (so really resident) in a 128 MB sandbox.
        hog = "data = b'x' * (300 << 20); print('survived')"
        done = subprocess.run(box.wrap([sys.executable, "-c", hog]), capture_output=True)
        assert done.returncode == -9 and b"survived" not in done.stdout
        assert box.oom_kills() == 1
        assert box.max_memory_used_mb() == 128
        # Within the limit, the same group runs a process to the end.
        fits = "data = b'x' * (40 << 20); print('survived')"
        done = subprocess.run(box.wrap([sys.executable, "-c", fits]), capture_output=True)
        assert done.returncode == 0 and b"survived" in done.stdout
        assert box.oom_kills() == 1


@needs_cgroups
def test_close_kills_what_is_left_and_stale_groups_are_removed() -> None:
    box = Sandbox(128, name="leftover").create()
    proc = subprocess.Popen(box.wrap(["sleep", "60"]))
    try:
        procs = box.memory_path / "cgroup.procs"
        deadline = time.monotonic() + 10
        while str(proc.pid) not in procs.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.01)
        box.close()
        assert proc.wait(timeout=10) == -9
        assert not box.cpu_path.exists() and not box.memory_path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
    # A group whose creator died (a crashed run) is removed when the next sandbox is made.
    stale_pid = _a_dead_pid()
    stale = [box.root / c / box.parent / f"{stale_pid}-stale-0000" for c in ("cpu", "memory")]
    for path in stale:
        path.mkdir()
    with Sandbox(128, name="next"):
        assert not any(path.exists() for path in stale)


def _a_dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
