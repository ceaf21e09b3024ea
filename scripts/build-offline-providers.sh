#!/usr/bin/env bash
# Builds the offline stand-ins for the hashicorp/archive and hashicorp/random
# Terraform providers (crates/tf-offline-providers) and installs them into the
# local provider mirror build/tf-mirror under their usual registry addresses.
#
# Needs only cargo and crates.io: protoc (for tf-provider's build script) comes
# from the protoc-bin-vendored crate through crates/protoc-path, unless PROTOC
# is already set. Quick when nothing changed (cargo decides what to rebuild).
#
# Usage: scripts/build-offline-providers.sh
# Env:   CARGO_TARGET_DIR (default: <repo>/target), PROTOC (optional)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
case "$CARGO_TARGET_DIR" in
  /*) ;;
  *) CARGO_TARGET_DIR="$repo/$CARGO_TARGET_DIR" ;;
esac

if [[ -z "${PROTOC:-}" ]]; then
  cargo build --quiet --release -p protoc-path
  PROTOC="$("$CARGO_TARGET_DIR/release/protoc-path")"
fi
if [[ ! -x "$PROTOC" ]]; then
  echo "build-offline-providers: protoc not executable: $PROTOC" >&2
  exit 1
fi
export PROTOC

# Built as part of the workspace, not with `-p tf-offline-providers`: cargo enables a dependency's
# features by what the selected packages ask of it, and `make test`'s host build (`--workspace
# --all-targets`) asks more (tokio, hyper, serde, syn, ...). Alone, 89 of this build's 233
# compilation units differ from the host build's and are compiled twice (cargo's --unit-graph,
# compared unit by unit with their dependencies). `--workspace` with one example (which brings in
# the dev-dependencies' features, as --all-targets does) makes every unit here one the host build
# reuses; the example, txn-core's smallest, is built for that reason only.
cargo build --quiet --release --workspace --bin tf-offline-providers --example dlq_dump
binary="$CARGO_TARGET_DIR/release/tf-offline-providers"

# Terraform's name for this platform (OS_ARCH); linux_amd64 on the usual machine.
case "$(uname -s)_$(uname -m)" in
  Linux_x86_64) platform=linux_amd64 ;;
  Linux_aarch64 | Linux_arm64) platform=linux_arm64 ;;
  Darwin_x86_64) platform=darwin_amd64 ;;
  Darwin_arm64) platform=darwin_arm64 ;;
  *) platform=linux_amd64 ;;
esac

mirror="$repo/build/tf-mirror/registry.terraform.io/hashicorp"
install_as() { # provider version
  local dir="$mirror/$1/$2/$platform"
  local dest="$dir/terraform-provider-$1_v$2"
  mkdir -p "$dir"
  if ! cmp -s "$binary" "$dest"; then
    # Copy then rename: a running terraform never sees a half-written file.
    cp "$binary" "$dest.tmp.$$"
    chmod 0755 "$dest.tmp.$$"
    mv -f "$dest.tmp.$$" "$dest"
  fi
  echo "build-offline-providers: $dest"
}
install_as archive 2.7.1
install_as random 3.7.2
