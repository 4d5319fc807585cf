#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# nerpipe_mpi under mpirun: 1, 2, 3 and 4 ranks give the single-process records, in input order, with
# global line numbers in error records.
#
#   tests/cli/run_mpi_tests.sh NERPIPE_MPI_BINARY NERPIPE_BINARY [MODEL_DIR]
set -u
MPI_BIN=${1:?usage: run_mpi_tests.sh NERPIPE_MPI_BINARY NERPIPE_BINARY [MODEL_DIR]}
BIN=${2:?usage: run_mpi_tests.sh NERPIPE_MPI_BINARY NERPIPE_BINARY [MODEL_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODEL=${3:-$ROOT/tests/fixtures/hf/models/bert}
MPIRUN=${MPIEXEC:-mpirun}
IN=$HERE/inputs
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
failures=0
pass() { echo "PASS: $*"; }
failed() { echo "FAIL: $*"; failures=$((failures + 1)); }

# A corpus with bad records spread over every shard.
cat "$IN/good.jsonl" "$IN/bad.jsonl" >"$TMP/mixed.jsonl"
echo >>"$TMP/mixed.jsonl"
cat "$IN/unicode.jsonl" "$IN/good.jsonl" "$IN/bad.jsonl" >>"$TMP/mixed.jsonl"

for input in "$TMP/mixed.jsonl" "$IN/long.jsonl" "$IN/good.jsonl"; do
  name=$(basename "$input")
  "$BIN" run --model "$MODEL" --input "$input" --output "$TMP/single.jsonl" -q --threads 1
  want=$?
  for n in 1 2 3 4; do
    out=$TMP/mpi-$n.jsonl
    "$MPIRUN" -n "$n" --oversubscribe "$MPI_BIN" run --model "$MODEL" --input "$input" --output "$out" -q --threads 1 \
      >"$TMP/log" 2>&1
    rc=$?
    [ "$rc" -eq "$want" ] || { failed "$name, $n ranks: exit $rc, single process $want"; sed 's/^/  /' "$TMP/log" | head -5; }
    ls "$out".part-* >/dev/null 2>&1 && failed "$name, $n ranks: part files left behind"
    # Same records in the same order; entities equal (scores within 0.01: batch shapes differ per shard).
    python3 - "$TMP/single.jsonl" "$out" <<'PY' && pass "$name, $n ranks" || failed "$name, $n ranks: records differ"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(a) == len(b), (len(a), len(b))
for x, y in zip(a, b):
    assert x.get("id") == y.get("id") and x.get("line") == y.get("line") and x.get("error") == y.get("error"), (x, y)
    ex, ey = x.get("entities", []), y.get("entities", [])
    assert [(e["start"], e["end"], e["label"]) for e in ex] == [(e["start"], e["end"], e["label"]) for e in ey], (x["id"],)
    assert all(abs(e["score"] - f["score"]) <= 0.01 for e, f in zip(ex, ey))
PY
  done
done

"$MPIRUN" -n 2 --oversubscribe "$MPI_BIN" run --model "$MODEL" --input "$TMP/none.jsonl" --output "$TMP/x" -q >/dev/null 2>&1
rc=$?; [ "$rc" -eq 6 ] && pass "missing input: exit 6" || failed "missing input: exit $rc, expected 6"
"$MPIRUN" -n 2 --oversubscribe "$MPI_BIN" run --model "$TMP/nomodel" --input "$IN/good.jsonl" --output "$TMP/x" -q >/dev/null 2>&1
rc=$?; [ "$rc" -eq 4 ] && pass "missing model: exit 4" || failed "missing model: exit $rc, expected 4"

echo "=== $failures failure(s)"
[ "$failures" -eq 0 ]
