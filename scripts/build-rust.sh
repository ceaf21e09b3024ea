#!/usr/bin/env bash
# Builds the Rust Lambda functions (crates/processor, crates/dlq-processor).
#
#   scripts/build-rust.sh            aarch64 bootstrap binaries for provided.al2023 (arm64):
#                                    build/lambda/rust/processor/bootstrap and
#                                    build/lambda/rust/dlq-processor/bootstrap (what Terraform
#                                    zips with -var lambda_runtime=rust), then checks them:
#                                    ELF machine AArch64, highest GLIBC symbol <= 2.34
#                                    (Amazon Linux 2023).
#   scripts/build-rust.sh --host     host binaries for the local runs (conformance suite,
#                                    benchmark): target/release/processor, target/release/dlq-processor,
#                                    and the operator CLI target/release/txnctl (tests/integration).
#   scripts/build-rust.sh --qemu     after the arm64 build, also start each binary under
#                                    qemu-aarch64-static (apt-get installs qemu-user-static and
#                                    libc6-arm64-cross when missing) to prove it loads and runs.
#
# Installs what it needs itself: cargo-lambda and ziglang (pinned in requirements-rust.txt) into
# .venv-rust, and the aarch64-unknown-linux-gnu standard library with rustup.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${RUST_VENV:-.venv-rust}
OUT=${RUST_OUT_DIR:-build/lambda/rust}
TARGET=aarch64-unknown-linux-gnu
MAX_GLIBC=2.34
CRATES=(processor dlq-processor)
log() { printf '==> %s\n' "$*"; }

mode=arm64
qemu=0
for arg in "$@"; do
  case $arg in
    --host) mode=host ;;
    --qemu) qemu=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

command -v cargo >/dev/null || { echo "cargo (Rust stable) must be on PATH" >&2; exit 1; }

if [[ $mode == host ]]; then
  log "host build: cargo build --release -p processor -p dlq-processor -p txnctl"
  start=$SECONDS
  cargo build --release -p processor -p dlq-processor -p txnctl
  log "host build done in $((SECONDS - start)) s"
  ls -l target/release/processor target/release/dlq-processor target/release/txnctl
  exit 0
fi

# --- tools ------------------------------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [[ ! -f $VENV/.installed || requirements-rust.txt -nt $VENV/.installed ]]; then
  log "installing requirements-rust.txt into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements-rust.txt
  touch "$VENV/.installed"
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET"; then
  log "rustup target add $TARGET"
  rustup target add "$TARGET"
fi

# --- build ------------------------------------------------------------------------------------
# cargo-lambda finds zig (from the ziglang wheel) only with the venv on PATH. The profile
# overrides apply to this target's artifacts only (target/aarch64-unknown-linux-gnu): fully
# stripped binaries, as Lambda needs no symbols.
export PATH="$PWD/$VENV/bin:$PATH"
export VIRTUAL_ENV="$PWD/$VENV"
export CARGO_PROFILE_RELEASE_STRIP=symbols
log "cargo lambda build --release --arm64 (${CRATES[*]})"
start=$SECONDS
package_args=()
for crate in "${CRATES[@]}"; do package_args+=(--package "$crate"); done
cargo lambda build --release --arm64 "${package_args[@]}"
log "arm64 build done in $((SECONDS - start)) s"

# --- collect and check ------------------------------------------------------------------------
version_le() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" == "$1" ]]; }
for crate in "${CRATES[@]}"; do
  src=target/lambda/$crate/bootstrap
  dst=$OUT/$crate/bootstrap
  [[ -f $src ]] || { echo "missing $src" >&2; exit 1; }
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst"
  chmod 0755 "$dst"
  machine=$(readelf -h "$dst" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')
  [[ $machine == AArch64 ]] || { echo "$dst: machine is $machine, not AArch64" >&2; exit 1; }
  glibc=$(readelf --dyn-syms --wide "$dst" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
  glibc=${glibc:-none}
  if [[ $glibc != none ]] && ! version_le "$glibc" "$MAX_GLIBC"; then
    echo "$dst needs GLIBC_$glibc, Amazon Linux 2023 has $MAX_GLIBC" >&2
    exit 1
  fi
  size=$(stat -c %s "$dst")
  zipped=$("$PYTHON" - "$dst" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()))
PY
)
  log "$dst: $machine, max GLIBC_$glibc, $size bytes ($zipped zipped)"
done

# --- optional: run under qemu -----------------------------------------------------------------
if [[ $qemu == 1 ]]; then
  if ! command -v qemu-aarch64-static >/dev/null || [[ ! -d /usr/aarch64-linux-gnu/lib ]]; then
    log "apt-get install qemu-user-static libc6-arm64-cross"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross >/dev/null
  fi
  # A wrapper per function runs the aarch64 binary under qemu; the local Lambda Runtime API
  # (pipeline_local/rust_runtime.py) then drives one real invocation of each, with events that
  # need no AWS call: a processor event naming no object to process, an empty DLQ batch.
  # (RUST_HOST_BIN_DIR=$PWD/build/lambda/rust-qemu CONFORMANCE_IMPL=rust runs the whole
  # conformance suite on these arm64 binaries the same way.)
  for crate in "${CRATES[@]}"; do
    wrapper=build/lambda/rust-qemu/$crate/bootstrap
    mkdir -p "$(dirname "$wrapper")"
    printf '#!/bin/sh\nexec qemu-aarch64-static -L /usr/aarch64-linux-gnu "%s" "$@"\n' \
      "$PWD/$OUT/$crate/bootstrap" > "$wrapper"
    chmod 0755 "$wrapper"
  done
  py=.venv/bin/python
  [[ -x $py ]] || py=$PYTHON
  PYTHONPATH=$PWD "$py" - <<'PY'
import json
from pipeline_local.rust_runtime import RustInvoker

env = {"AWS_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
       "DYNAMODB_TABLE_NAME": "t", "SQS_QUEUE_URL": "http://127.0.0.1:9/q",
       "DLQ_URL": "http://127.0.0.1:9/d", "ERRORS_TABLE_NAME": "e"}
removed = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
           "s3": {"bucket": {"name": "b"}, "object": {"key": "k.csv"}}}]}
for crate, event, want in [
    ("processor", removed, {"files": []}),
    ("dlq-processor", {"Records": []}, {"batchItemFailures": []}),
]:
    with RustInvoker(f"build/lambda/rust-qemu/{crate}/bootstrap", env, function_name=crate) as fn:
        got = fn.invoke(event, timeout_ms=60_000)
    assert got == want, (crate, got)
    print(f"==> {crate} (aarch64 under qemu) answered an invocation: {json.dumps(got)}")
PY
fi
