"""Find the host (x86_64) builds of the workspace's Rust binaries that the harness and tests run."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pipeline_local.constants import CARGO_TARGET_DIR_ENV, REPO_ROOT


def cargo_builds(crate: str) -> list[Path]:
    """Where `cargo build [--release] -p <crate>` leaves the binary: release first, then debug,
    under $CARGO_TARGET_DIR (default: the repository's target/)."""
    target = Path(os.environ.get(CARGO_TARGET_DIR_ENV, REPO_ROOT / "target"))
    return [target / "release" / crate, target / "debug" / crate]


def first_executable(candidates: Iterable[Path]) -> Path | None:
    """The first of `candidates` that is an executable file, or None."""
    return next((p for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)
