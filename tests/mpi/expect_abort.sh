#!/usr/bin/env bash
# Usage: expect_abort.sh MPIEXEC ARGS... PROGRAM
# Runs the job with a time limit and passes when it failed (not timed out) and printed rank 1's error.
set -uo pipefail
out=$(timeout 120 "$@" 2>&1)
rc=$?
echo "$out"
if [[ $rc -eq 124 ]]; then echo "expect_abort: the job hung (killed after 120 s)"; exit 1; fi
if [[ $rc -eq 0 ]]; then echo "expect_abort: the job succeeded, but rank 1 should have failed"; exit 1; fi
if ! grep -q "rank 1: cross_entropy: label 7 out of range" <<<"$out"; then
  echo "expect_abort: rank 1's error message is missing from the output"; exit 1
fi
echo "expect_abort: the job failed with exit code $rc and rank 1's message, as it should"
