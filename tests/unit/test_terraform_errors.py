"""A failed terraform command's error says Terraform's own `Error:` line first."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_local.terraform import TerraformError, Workdir


@pytest.mark.parametrize("capture", [False, True])
def test_the_error_carries_terraforms_error_line_first(tmp_path: Path, capture: bool) -> None:
    # An unreadable configuration fails before any provider is needed.
    (tmp_path / "main.tf").write_text('resource "x" {\n')
    work = Workdir(path=tmp_path, endpoint="")
    with pytest.raises(TerraformError) as raised:
        work.run("validate", "-no-color", capture=capture)
    first_line = str(raised.value).splitlines()[0]
    assert first_line.startswith(f"-chdir={tmp_path} validate -no-color failed (1): Error: ")


def test_a_failed_plan_for_changes_says_terraforms_error_line_first(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('resource "x" {\n')
    work = Workdir(path=tmp_path, endpoint="")
    with pytest.raises(TerraformError) as raised:
        work.plan_has_changes()
    first_line = str(raised.value).splitlines()[0]
    assert first_line.startswith(
        f"-chdir={tmp_path} plan -no-color -detailed-exitcode failed (1): Error: "
    )
