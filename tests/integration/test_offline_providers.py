"""The offline stand-ins for hashicorp/archive and hashicorp/random, driven by the real Terraform.

Builds (or refreshes) the stand-ins with scripts/build-offline-providers.sh, writes a CLI
configuration with scripts/write-terraformrc.sh that forces the stand-ins, and runs
init / validate / plan / apply / plan (must show no change) / destroy on a small configuration
using every source kind of `archive_file` and a `random_id`. The attributes Terraform reports
are then checked against what Python computes from the zip bytes themselves.
"""

from __future__ import annotations

import base64
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-offline-providers.sh"
RC_SCRIPT = REPO / "scripts" / "write-terraformrc.sh"
MIRROR = REPO / "build" / "tf-mirror" / "registry.terraform.io" / "hashicorp"
STANDINS = {
    "archive": MIRROR / "archive" / "2.7.1" / "linux_amd64" / "terraform-provider-archive_v2.7.1",
    "random": MIRROR / "random" / "3.7.2" / "linux_amd64" / "terraform-provider-random_v3.7.2",
}
TIMEOUT = 600

CONFIG = r"""
terraform {
  required_providers {
    archive = { source = "hashicorp/archive", version = "~> 2.7" }
    random  = { source = "hashicorp/random", version = "~> 3.7" }
  }
}

data "archive_file" "dir" {
  type        = "zip"
  source_dir  = "${path.module}/src"
  excludes    = ["**/*.pyc", "__pycache__", "notes/*.md"]
  output_path = "${path.module}/out/nested/dir.zip"
}

data "archive_file" "file" {
  type             = "zip"
  source_file      = "${path.module}/single.txt"
  output_file_mode = "0644"
  output_path      = "${path.module}/out/file.zip"
}

data "archive_file" "content" {
  type                    = "zip"
  source_content          = jsonencode({ table = "transactions", retries = 3 })
  source_content_filename = "config.json"
  output_path             = "${path.module}/out/content.zip"
}

data "archive_file" "blocks" {
  type        = "zip"
  output_path = "${path.module}/out/blocks.zip"
  source {
    content  = "zeta block"
    filename = "z/last.txt"
  }
  source {
    content  = "alpha block"
    filename = "a_first.txt"
  }
}

resource "random_id" "suffix" {
  byte_length = 12
  prefix      = "tx-"
  keepers = {
    code = data.archive_file.dir.output_base64sha256
  }
}

resource "random_id" "plain" {
  byte_length = 5
}

output "archives" {
  value = {
    dir     = data.archive_file.dir
    file    = data.archive_file.file
    content = data.archive_file.content
    blocks  = data.archive_file.blocks
  }
}

output "suffix" {
  value = random_id.suffix
}

output "plain" {
  value = random_id.plain
}
"""

SOURCE_TREE = {
    "handler.py": "def lambda_handler(event, context):\n    return {}\n",
    "lib/util.py": "X = 1\n",
    "lib/util.cpython-312.pyc": "bytecode",
    "__pycache__/handler.cpython-312.pyc": "bytecode",
    "notes/readme.md": "excluded by notes/*.md",
    "notes/keep.txt": "kept",
    "a-b.txt": "sorts before a/ by bytes",
    "a/z.txt": "nested",
}
EXPECTED_DIR_ENTRIES = {
    "a-b.txt": "sorts before a/ by bytes",
    "a/z.txt": "nested",
    "handler.py": "def lambda_handler(event, context):\n    return {}\n",
    "lib/util.py": "X = 1\n",
    "notes/keep.txt": "kept",
}


@pytest.fixture(scope="session")
def offline_providers() -> dict[str, Path]:
    """The stand-ins in the local mirror, rebuilt when cargo is here (quick when unchanged)."""
    missing = [p for p in STANDINS.values() if not os.access(p, os.X_OK)]
    if missing or shutil.which("cargo"):
        subprocess.run(["bash", str(BUILD_SCRIPT)], cwd=REPO, check=True, timeout=1800)
    for path in STANDINS.values():
        assert os.access(path, os.X_OK), f"{path} was not installed by {BUILD_SCRIPT}"
    return STANDINS


@pytest.fixture(scope="session")
def terraformrc(
    offline_providers: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    rc = tmp_path_factory.mktemp("tfrc") / "terraformrc"
    env = dict(os.environ, TF_OFFLINE_PROVIDERS="always")
    done = subprocess.run(
        ["bash", str(RC_SCRIPT), str(rc)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "offline stand-ins" in done.stdout
    text = rc.read_text()
    assert str(REPO / "build" / "tf-mirror") in text
    assert (
        '"registry.terraform.io/hashicorp/archive", "registry.terraform.io/hashicorp/random"'
        in text
    )
    return rc


class Terraform:
    def __init__(self, workdir: Path, rc: Path) -> None:
        self.workdir = workdir
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TF_CLI_ARGS") and k not in {"TF_DATA_DIR", "TF_WORKSPACE"}
        }
        self.env.update(
            TF_CLI_CONFIG_FILE=str(rc),
            CHECKPOINT_DISABLE="1",
            TF_IN_AUTOMATION="1",
            # The stand-ins must not put backtraces into diagnostics even so.
            RUST_BACKTRACE="1",
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        terraform = shutil.which("terraform")
        assert terraform, "terraform is not on PATH"
        return subprocess.run(
            [terraform, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (
            f"terraform {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def check_archive(workdir: Path, attrs: dict[str, Any]) -> dict[str, str]:
    """Checks every computed attribute against the zip bytes; returns {entry name: content}."""
    data = (workdir / attrs["output_path"]).read_bytes()
    sha1 = hashlib.sha1(data).hexdigest()
    sha256 = hashlib.sha256(data).digest()
    sha512 = hashlib.sha512(data).digest()
    assert attrs["output_size"] == len(data)
    assert attrs["output_sha"] == sha1
    assert attrs["id"] == sha1
    assert attrs["output_md5"] == hashlib.md5(data).hexdigest()
    assert attrs["output_sha256"] == sha256.hex()
    assert attrs["output_base64sha256"] == base64.b64encode(sha256).decode()
    assert attrs["output_sha512"] == sha512.hex()
    assert attrs["output_base64sha512"] == base64.b64encode(sha512).decode()

    with zipfile.ZipFile(workdir / attrs["output_path"]) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names), "entries must be sorted"
        assert len(set(names)) == len(names)
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0), info
            assert info.compress_type == zipfile.ZIP_DEFLATED, info
            assert not info.is_dir()
        return {name: archive.read(name).decode() for name in names}


def check_random_id(attrs: dict[str, Any], byte_length: int, prefix: str) -> None:
    raw = base64.urlsafe_b64decode(attrs["id"] + "=" * (-len(attrs["id"]) % 4))
    assert len(raw) == byte_length
    assert "=" not in attrs["id"]
    assert base64.urlsafe_b64encode(raw).decode().rstrip("=") == attrs["id"]
    assert attrs["b64_url"] == prefix + attrs["id"]
    assert attrs["b64_std"] == prefix + base64.b64encode(raw).decode()
    assert attrs["hex"] == prefix + raw.hex()
    assert len(attrs["hex"]) == len(prefix) + 2 * byte_length
    assert attrs["dec"] == prefix + str(int.from_bytes(raw, "big"))
    assert attrs["byte_length"] == byte_length


def test_stand_ins_through_the_whole_terraform_lifecycle(
    tmp_path: Path, terraformrc: Path, offline_providers: dict[str, Path]
) -> None:
    write_tree(tmp_path / "src", SOURCE_TREE)
    (tmp_path / "single.txt").write_text("one file\n")
    (tmp_path / "main.tf").write_text(CONFIG)
    tf = Terraform(tmp_path, terraformrc)

    tf.ok("init", "-input=false", "-no-color")
    # init installed the stand-ins from the local mirror, not something else.
    for name, built in offline_providers.items():
        installed = next(
            (
                tmp_path / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp" / name
            ).glob(f"*/linux_amd64/terraform-provider-{name}_v*")
        )
        assert filecmp.cmp(installed, built, shallow=False), f"{installed} is not the stand-in"

    tf.ok("validate", "-no-color")
    plan = tf.ok("plan", "-input=false", "-no-color")
    assert "2 to add, 0 to change, 0 to destroy" in plan
    tf.ok("apply", "-auto-approve", "-input=false", "-no-color")

    second = tf.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
    assert second.returncode == 0, f"second plan is not clean:\n{second.stdout}\n{second.stderr}"
    assert "No changes" in second.stdout

    outputs = {k: v["value"] for k, v in json.loads(tf.ok("output", "-json")).items()}
    archives = outputs["archives"]

    assert check_archive(tmp_path, archives["dir"]) == EXPECTED_DIR_ENTRIES
    assert check_archive(tmp_path, archives["file"]) == {"single.txt": "one file\n"}
    with zipfile.ZipFile(tmp_path / archives["file"]["output_path"]) as archive:
        assert archive.getinfo("single.txt").external_attr >> 16 == 0o100644
    content = check_archive(tmp_path, archives["content"])
    assert list(content) == ["config.json"]
    assert json.loads(content["config.json"]) == {"table": "transactions", "retries": 3}
    assert check_archive(tmp_path, archives["blocks"]) == {
        "a_first.txt": "alpha block",
        "z/last.txt": "zeta block",
    }
    # The output directory was created, nested.
    assert (tmp_path / "out" / "nested" / "dir.zip").is_file()

    check_random_id(outputs["suffix"], 12, "tx-")
    check_random_id(outputs["plain"], 5, "")
    assert outputs["suffix"]["keepers"] == {"code": archives["dir"]["output_base64sha256"]}
    assert outputs["plain"]["prefix"] is None
    assert outputs["suffix"]["id"] != outputs["plain"]["id"]

    # A changed source changes the hash, and the keeper forces a new id.
    (tmp_path / "src" / "handler.py").write_text(
        "def lambda_handler(event, context):\n    return 1\n"
    )
    changed = tf.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "random_id.suffix must be replaced" in changed.stdout
    assert "random_id.plain will be" not in changed.stdout
    assert "random_id.plain must be" not in changed.stdout
    assert "Plan: 1 to add, 0 to change, 1 to destroy." in changed.stdout

    tf.ok("destroy", "-auto-approve", "-input=false", "-no-color")
    assert tf.ok("state", "list").strip() == ""


def test_invalid_configurations_fail_with_clear_diagnostics(
    tmp_path: Path, terraformrc: Path
) -> None:
    (tmp_path / "main.tf").write_text(
        """
data "archive_file" "two_sources" {
  type        = "zip"
  source_file = "a.txt"
  source_dir  = "src"
  output_path = "out.zip"
}

data "archive_file" "tarball" {
  type           = "tar.gz"
  source_content = "x"
  source_content_filename = "x.txt"
  output_path    = "out.tgz"
}

data "archive_file" "no_source" {
  type        = "zip"
  output_path = "none.zip"
}

resource "random_id" "empty" {
  byte_length = 0
}
"""
    )
    tf = Terraform(tmp_path, terraformrc)
    tf.ok("init", "-input=false", "-no-color")
    done = tf.run("validate", "-no-color")
    assert done.returncode == 1
    err = done.stdout + done.stderr
    assert 'Attribute "source_dir" cannot be specified when "source_file" is specified' in err
    assert 'archive type "tar.gz"' in err
    assert "At least one attribute out of [source, source_content_filename, source_file" in err
    assert "byte_length must be between 1 and" in err
    # RUST_BACKTRACE=1 is set for terraform; the diagnostics must still be free of backtraces.
    assert "stack backtrace" not in err
    assert "rust_begin_unwind" not in err and "tf_provider::" not in err

    # A missing source directory is reported when the data source is read.
    (tmp_path / "main.tf").write_text(
        """
data "archive_file" "missing" {
  type        = "zip"
  source_dir  = "does-not-exist"
  output_path = "out.zip"
}
"""
    )
    done = tf.run("plan", "-input=false", "-no-color")
    assert done.returncode == 1
    assert "could not archive missing directory: does-not-exist" in done.stdout + done.stderr
