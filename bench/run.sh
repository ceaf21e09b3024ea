#!/usr/bin/env bash
# `make bench`: one run that rewrites docs/benchmarks.md and its charts in bench/results/.
#   1. host builds of the Rust processor and the DynamoDB-faithful endpoint;
#   2. bench/pipeline.py: upload -> last record stored, 512 MB sandboxed invocations, S3/SQS on
#      the emulator, DynamoDB on the faithful endpoint (pipeline.json); then large files in
#      ranges on several environments side by side (ranges-rust.json, ranges-python.json),
#      Rust on a table scaled to a quarter (ranges-rust-scaled.json) and the split of a 1M-row
#      file alone (split-1m.json);
#   3. bench/run.py: CPU per record of both processors against bench/sink.py (results.json);
#   4. bench/report.py: the page, the charts, the cost per 1M records.
#   BENCH_SIZES=10000,100000,1000000 (default) selects the file sizes (rows);
#   BENCH_PYTHON_MAX=100000 (default) the largest file Python is run on (both parts).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-bench
SIZES=${BENCH_SIZES:-10000,100000,1000000}
PYTHON_MAX=${BENCH_PYTHON_MAX:-100000}
[[ -x .venv/bin/python ]] || { echo ".venv is missing: run make setup" >&2; exit 1; }
if [[ ! -x $VENV/bin/python ]]; then
  "$PYTHON" -m venv "$VENV"
fi
if [[ ! -f $VENV/.installed || bench/requirements.txt -nt $VENV/.installed ]]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt
  touch "$VENV/.installed"
fi
started=$(date +%s)
scripts/build-rust.sh --host
cargo build --release --quiet -p ddb-faithful
export DDB_FAITHFUL_BIN=${CARGO_TARGET_DIR:-target}/release/ddb-faithful
mkdir -p bench/results
echo "$(git rev-parse --short HEAD) $(git rev-parse --abbrev-ref HEAD)" > bench/results/commit.txt
uptime | tee bench/results/load-start.txt
.venv/bin/python bench/pipeline.py --sizes "$SIZES" --python-max "$PYTHON_MAX" \
  --out bench/results/pipeline.json
# Issue 12: a file's ranges side by side, one range per invocation (ranges-*.json): Rust on
# 100,000 rows (the modelled table the bottleneck) and the largest size on 4 environments;
# Python's scaling on one 60,000-row file in 12 ranges.
RANGE_SIZES=100000
[[ ${SIZES##*,} == 100000 ]] || RANGE_SIZES+=",${SIZES##*,}"
.venv/bin/python bench/pipeline.py --sizes "$RANGE_SIZES" --impls rust --concurrency 4 \
  --range-split-bytes 1048576 --batch-size 1 --faithful-threads 2 \
  --out bench/results/ranges-rust.json
# The writes' share of the ceiling when the table, not this machine, is the bottleneck, and a
# 1M-row file from upload to the last record stored: the table scaled to a quarter (same
# partitions and key spread), 250,000 rows in lib/'s 1 MiB ranges, with lib/'s default (and
# most) of 1,000 status-index shards and with 16, its default until 2026-12-02. At AWS's rates
# the writes of 1,000,000 rows take as long.
.venv/bin/python bench/pipeline.py --sizes 250000 --impls rust --concurrency 4 \
  --range-split-bytes 1048576 --batch-size 1 --faithful-threads 2 --status-index-shards 1000,16 \
  --partition-wcu 250 --table-initial-wcu 1000 --out bench/results/ranges-rust-scaled.json
# The split of a 1M-row file alone, both implementations: the S3 event's invocation only.
.venv/bin/python bench/pipeline.py --sizes 1000000 --impls python,rust --python-max 1000000 \
  --range-split-bytes 1048576 --split-only --out bench/results/split-1m.json
.venv/bin/python bench/pipeline.py --sizes 60000 --impls python --python-max 60000 \
  --concurrency 1,2,4 --range-split-bytes 483000 --batch-size 1 --faithful-threads 2 \
  --out bench/results/ranges-python.json
.venv/bin/python bench/run.py --sizes "$SIZES" --python-max "$PYTHON_MAX" --out bench/results
uptime | tee bench/results/load-end.txt
echo $(( $(date +%s) - started )) > bench/results/bench-seconds.txt
"$VENV/bin/python" bench/report.py bench/results --doc docs/benchmarks.md
