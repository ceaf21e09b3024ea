"""Each module of pipeline_local says in its first line what its one job is (issue 10)."""

from __future__ import annotations

import ast

from pipeline_local.constants import REPO_ROOT

PACKAGE = REPO_ROOT / "pipeline_local"


def first_lines() -> dict[str, str]:
    """Every module's docstring's first line, "" where it has none."""
    lines = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        lines[str(path.relative_to(REPO_ROOT))] = doc.splitlines()[0] if doc else ""
    return lines


def test_every_module_says_its_job_in_one_sentence() -> None:
    """A whole sentence on the first line: not missing, not cut off mid-sentence."""
    lines = first_lines()
    assert len(lines) > 40
    assert [module for module, line in lines.items() if not line] == []
    assert [module for module, line in lines.items() if not line.endswith(".")] == []
