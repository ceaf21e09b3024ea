#!/usr/bin/env bash
# `make bench`: build the host Rust processor, benchmark both implementations side by side on
# the same generated files against one local sink endpoint, then write docs/benchmarks.md and
# bench/results/benchmarks.png.
#   BENCH_SIZES=10000,100000,1000000 (default) selects the file sizes (rows).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-bench
[[ -x .venv/bin/python ]] || { echo ".venv is missing: run make setup" >&2; exit 1; }
if [[ ! -x $VENV/bin/python ]]; then
  "$PYTHON" -m venv "$VENV"
fi
if [[ ! -f $VENV/.installed || bench/requirements.txt -nt $VENV/.installed ]]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt
  touch "$VENV/.installed"
fi
scripts/build-rust.sh --host
.venv/bin/python bench/run.py --sizes "${BENCH_SIZES:-10000,100000,1000000}" --out bench/results
"$VENV/bin/python" bench/report.py bench/results/results.json --doc docs/benchmarks.md \
  --chart bench/results/benchmarks.png
