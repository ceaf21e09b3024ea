"""Applies the suites' stacks ahead of pytest (`make test`) and hands each to its fixture.

    python -m tests.preapply start          every stack of PREAPPLIED, each in a process of its
                                            own, in the background; returns at once
    python -m tests.preapply one WORKDIR    one stack (what `start` runs for each)
    python -m tests.preapply stop           stop what no fixture took (after pytest, and
                                            before `start`: a run interrupted earlier)

Why: about 70 of the 100 s that `terraform apply` of lib/ takes against moto are the provider's
own fixed waits (the lifecycle configuration polls for 55 s, each queue for 25 s, whatever the
endpoint answers), and pytest applied five stacks, two at a time, on its two workers. `make test`
starts them here before the host build, so those waits pass while the machine compiles.

Each stack's hand-over file, build/<workdir>/preapply.json: `{"state": "applying", "pid": ...}`
while its process applies, then `"ready"` with the emulator's port and pid and the TF_VAR_
variables it was applied with, or `"failed"` with the error. `apply_stack`
(tests/integration/conftest.py) calls `take`: it waits for a stack being applied, adopts a ready
one applied with the same runtime and TF_VAR_ variables (and removes the file: a stack serves
one fixture), and returns None when there is none, when its process died, when it failed, or
when its emulator no longer answers; the fixture then applies as it always did, so a test run by
hand never depends on this.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipeline_local.constants import BUILD_DIR, TF_VAR_MAX_FILE_BYTES
from pipeline_local.emulator import Emulator, alive, probe_moto, start_emulator
from pipeline_local.sample_model import SAMPLE_MAX_FILE_BYTES
from pipeline_local.terraform import AppliedLib, Workdir, apply_lib
from tests.implementations import IMPLEMENTATIONS, LAMBDA_RUNTIME

HANDOVER_FILE = "preapply.json"
# The stacks the suites apply in `make test`: workdir -> (lambda_runtime, max_file_bytes).
# They must match what the fixtures ask for (tests/applied_stack.py `apply`,
# tests/integration/conftest.py `stack`); a stack that does not match is not taken.
PREAPPLIED: dict[str, tuple[str, int | None]] = {
    **{
        f"tf-{suite}-{impl}": (LAMBDA_RUNTIME[impl], max_file_bytes)
        for suite, max_file_bytes in (("conformance", None), ("e2e", SAMPLE_MAX_FILE_BYTES))
        for impl in IMPLEMENTATIONS
    },
    "tf-test-stack": (LAMBDA_RUNTIME["python"], None),
}
# How long `take` waits for a stack still being applied (an apply takes 100 to 200 s here).
WAIT_S = 900.0


def apply_new(workdir_name: str, runtime: str) -> AppliedLib:
    """lib/ applied with `runtime` to a new emulator, in build/<workdir_name> (the TF_VAR_
    variables of this process's environment apply)."""
    emu = start_emulator(log_path=BUILD_DIR / f"{workdir_name}-emulator.log")
    return apply_lib(emu, BUILD_DIR / workdir_name, runtime)


def _tf_vars() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("TF_VAR_")}


def _handover(workdir_name: str) -> Path:
    return BUILD_DIR / workdir_name / HANDOVER_FILE


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)  # whole or absent: a reader never sees half a file


def _read(path: Path) -> dict[str, Any] | None:
    """A hand-over file's content; None when there is none."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _answers(endpoint: str) -> bool:
    try:
        probe_moto(endpoint, timeout_s=10)
    except OSError:
        return False
    return True


def take(workdir_name: str, runtime: str) -> AppliedLib | None:
    """The stack applied ahead for `workdir_name`, if there is a usable one (module docstring)."""
    path = _handover(workdir_name)
    deadline = time.monotonic() + WAIT_S
    while True:
        data = _read(path)
        if data is None:
            return None
        if data.get("state") != "applying":
            break
        if not alive(int(data["pid"])) or time.monotonic() > deadline:
            path.unlink(missing_ok=True)
            return None
        time.sleep(1)
    path.unlink(missing_ok=True)
    if data.get("state") != "ready":
        print(f"preapply: {workdir_name} was not applied ahead: {data.get('error', data)}")
        return None
    emu = Emulator(port=int(data["port"]), pid=int(data["pid"]))
    if not alive(emu.pid) or not _answers(emu.endpoint):
        print(f"preapply: {workdir_name}: its emulator (pid {emu.pid}) does not answer")
        return None
    if data["runtime"] != runtime or data["tf_vars"] != _tf_vars():
        print(f"preapply: {workdir_name} was applied with other variables; not taken")
        emu.stop()
        return None
    work = Workdir(path=BUILD_DIR / workdir_name, endpoint=emu.endpoint, lambda_runtime=runtime)
    plan = json.loads((work.path / "plan.json").read_text())
    return AppliedLib(emulator=emu, workdir=work, outputs=work.outputs(), plan=plan)


def apply_one(workdir_name: str) -> int:
    """Apply one stack of PREAPPLIED and leave its emulator running for `take`."""
    runtime, max_file_bytes = PREAPPLIED[workdir_name]
    if max_file_bytes is not None:
        os.environ[TF_VAR_MAX_FILE_BYTES] = str(max_file_bytes)
    path = _handover(workdir_name)
    try:
        applied = apply_new(workdir_name, runtime)
    except Exception as err:  # any failure goes to the hand-over file, for `take` to say
        _write(path, {"state": "failed", "error": f"{type(err).__name__}: {str(err)[-2000:]}"})
        return 1
    # The emulator outlives this process: `take` adopts it and stops it by pid.
    applied.emulator.proc = None
    _write(
        path,
        {
            "state": "ready",
            "port": applied.emulator.port,
            "pid": applied.emulator.pid,
            "runtime": runtime,
            "tf_vars": _tf_vars(),
        },
    )
    return 0


def stop() -> int:
    """Stop the stacks applied ahead that no fixture took, and their applying processes."""
    stopped = 0
    for name in PREAPPLIED:
        path = _handover(name)
        data = _read(path)
        if data is None:
            continue
        path.unlink(missing_ok=True)
        if data.get("state") == "ready":
            Emulator(port=int(data["port"]), pid=int(data["pid"])).stop()
            stopped += 1
        elif data.get("state") == "applying" and alive(int(data["pid"])):
            # Its own emulator is a child of that process group (start_new_session).
            os.killpg(int(data["pid"]), signal.SIGTERM)
            stopped += 1
    if stopped:
        print(f"preapply: stopped {stopped} stacks that no test took")
    return 0


def start() -> int:
    """Start one background process per stack; each hand-over file says "applying" before
    this returns, so a fixture that starts later waits for it."""
    stop()
    log_dir = BUILD_DIR / "preapply"
    log_dir.mkdir(parents=True, exist_ok=True)
    for name in PREAPPLIED:
        with open(log_dir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.preapply", "one", name],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not stopped by the terminal's Ctrl-C of a later phase
            )
        _write(_handover(name), {"state": "applying", "pid": proc.pid})
    print(f"preapply: applying {len(PREAPPLIED)} stacks in the background (logs in {log_dir})")
    return 0


def main(argv: list[str]) -> int:
    if argv in (["start"], ["stop"]):
        return start() if argv == ["start"] else stop()
    if argv[:1] == ["one"] and len(argv) == 2 and argv[1] in PREAPPLIED:
        return apply_one(argv[1])
    print("usage:\n" + "\n".join(__doc__.splitlines()[2:7]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
