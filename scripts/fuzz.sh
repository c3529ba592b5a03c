#!/usr/bin/env bash
# The fuzz tests, long: DEPOT_FUZZ_RUNS runs each (default 100,000; slow properties run a
# fraction of it) with a random seed, or DEPOT_FUZZ_SEED to replay one. CI runs the same files
# with a fixed seed and small counts as part of the test suite.
#   npm run fuzz                         # all of them
#   npm run fuzz -- registration         # the files whose path contains "registration"
#   DEPOT_FUZZ_RUNS=1000000 DEPOT_FUZZ_SEED=42 npm run fuzz -- block
set -euo pipefail
cd "$(dirname "$0")/.."
export DEPOT_FUZZ_RUNS="${DEPOT_FUZZ_RUNS:-100000}"
npm run --silent build
files=(dist/test/unit/fuzz/*.test.js dist/test/unit/dtls/fuzz.test.js)
if [ "$#" -gt 0 ]; then
  selected=()
  for f in "${files[@]}"; do
    for part in "$@"; do [[ "$f" == *"$part"* ]] && selected+=("$f") && break; done
  done
  files=("${selected[@]}")
fi
[ "${#files[@]}" -gt 0 ] || { echo "no fuzz test file matches: $*" >&2; exit 1; }
echo "fuzzing with DEPOT_FUZZ_RUNS=$DEPOT_FUZZ_RUNS${DEPOT_FUZZ_SEED:+ DEPOT_FUZZ_SEED=$DEPOT_FUZZ_SEED}: ${files[*]}"
# One file at a time (the machine is shared) and no per-test timeout: a long run is long.
exec node --test --test-concurrency=1 --test-timeout=0 --test-reporter=spec "${files[@]}"
