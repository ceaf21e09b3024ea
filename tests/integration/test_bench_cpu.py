"""bench/run.py (CPU per record, one invocation per file) processes a file above lib/'s range
split threshold whole: a file it splits would measure the split, not the records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline_local.constants import REPO_ROOT
from pipeline_local.function_config import PROCESSOR, tunable_defaults

# About 1.2 MB: above RANGE_SPLIT_BYTES' default (1 MiB), where the processor would split.
ROWS = 12_000


def test_a_file_above_the_split_threshold_is_processed_whole(tmp_path: Path) -> None:
    split_at = int(tunable_defaults(PROCESSOR)["RANGE_SPLIT_BYTES"])
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "run.py"),
            "--impls",
            "rust",
            "--sizes",
            str(ROWS),
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        check=True,
        timeout=300,
    )
    (run,) = json.loads((tmp_path / "results.json").read_text())["results"]
    assert run["file_bytes"] > split_at
    assert run["stored"] + run["invalid"] == ROWS
    assert run["invalid"] > 0  # bench files have 1 row in 200 invalid
