#!/usr/bin/env bash
# Runs one phase of `make test` and says how long it took, so that a CI log shows where the
# time goes: prints "==> phase NAME: N s" (and the exit status when it failed) and appends
# "NAME N STATUS" to $PHASE_TIMES (default build/test-phases.txt) for the summary that
# `scripts/timed.sh --summary` prints at the end. Exits with the command's own status.
#
#   scripts/timed.sh NAME COMMAND [ARG...]
#   scripts/timed.sh --summary
set -uo pipefail
times=${PHASE_TIMES:-build/test-phases.txt}

if [[ ${1:-} == --summary ]]; then
  [[ -f $times ]] || exit 0
  awk '{ total += $2; printf "  %-28s %6d s%s\n", $1, $2, ($3 == 0 ? "" : "  (exit " $3 ")") }
       END { printf "  %-28s %6d s (sum of the phases)\n", "total", total }' "$times"
  exit 0
fi
if [[ $# -lt 2 ]]; then
  echo "usage: $0 NAME COMMAND [ARG...] | $0 --summary" >&2
  exit 2
fi
name=$1
shift
start=$SECONDS
"$@"
status=$?
elapsed=$((SECONDS - start))
mkdir -p "$(dirname "$times")"
echo "$name $elapsed $status" >> "$times"
if [[ $status -eq 0 ]]; then
  echo "==> phase $name: $elapsed s"
else
  echo "==> phase $name: $elapsed s, FAILED (exit $status)"
fi
exit $status
