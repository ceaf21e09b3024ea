#!/usr/bin/env bash
# Installs everything the project needs from the package registries, idempotently:
# the Python virtual environments, the offline stand-ins for the archive/random Terraform
# providers (when the Terraform registry cannot be reached) and the Terraform CLI config.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
log() { printf '==> %s\n' "$*"; }

command -v terraform >/dev/null || { echo "terraform (>= 1.5) must be on PATH" >&2; exit 1; }
command -v cargo >/dev/null || { echo "cargo (Rust stable) must be on PATH" >&2; exit 1; }

venv() { # venv DIR REQUIREMENTS
  local dir=$1 req=$2 stamp=$1/.installed
  if [[ ! -x $dir/bin/python ]]; then
    log "creating $dir"
    "$PYTHON" -m venv "$dir"
  fi
  if [[ ! -f $stamp || $req -nt $stamp ]]; then
    log "installing $req into $dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    touch "$stamp"
  fi
}

venv .venv requirements-dev.txt
venv .venv-checkov requirements-checkov.txt

mkdir -p build
log "building the offline Terraform provider stand-ins"
scripts/build-offline-providers.sh
log "writing build/terraformrc"
scripts/write-terraformrc.sh build/terraformrc
log "setup complete"
