#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kills a long `nerpipe run` with SIGTERM at random points and resumes it each time; the final output must be
# byte-identical to an uninterrupted run. Once with one process and 2 CPU workers, once under mpirun with
# 2 ranks (the signal goes to the ranks, as a batch system's does).
#
#   scripts/kill-resume-check.sh [--docs 60000] [--kills 5] [--model DIR] [--seed 15] [--no-mpi]
#
# The corpus is the EWT dev documents (tests/data/ewt/dev.jsonl, 440 bytes on average) repeated to --docs
# records, with a blank line every 1,000 and a bad record every 5,000. Binaries: $NERPIPE and $NERPIPE_MPI, else build/cpu/examples/{nerpipe,nerpipe_mpi} (cmake --preset
# cpu). The model defaults to the committed tiny BERT (tests/fixtures/hf/models/bert): a few minutes in all.
# Prints one line per kill (delay, exit status, records kept) and exits 0 only when both outputs are identical.
set -uo pipefail
cd "$(dirname "$0")/.."
DOCS=60000 KILLS=5 SEED=15 MPI=1
MODEL=tests/fixtures/hf/models/bert
while [ $# -gt 0 ]; do
  case "$1" in
    --docs) DOCS=$2; shift 2 ;;
    --kills) KILLS=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --no-mpi) MPI=0; shift ;;
    *) echo "usage: $0 [--docs N] [--kills K] [--model DIR] [--seed S] [--no-mpi]"; exit 2 ;;
  esac
done
BIN=${NERPIPE:-build/cpu/examples/nerpipe}
MPI_BIN=${NERPIPE_MPI:-build/cpu/examples/nerpipe_mpi}
MPIRUN=${MPIEXEC:-mpirun}
[ -x "$BIN" ] || { echo "kill-resume-check: no $BIN (build it, or set NERPIPE)"; exit 2; }
if [ "$MPI" = 1 ] && { [ ! -x "$MPI_BIN" ] || ! command -v "$MPIRUN" >/dev/null; }; then
  echo "kill-resume-check: no $MPI_BIN or $MPIRUN: the MPI part is skipped"
  MPI=0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
RANDOM=$SEED
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

CORPUS=$TMP/corpus.jsonl
python3 - "$DOCS" "$CORPUS" tests/data/ewt/dev.jsonl <<'PY'
import sys
n, out = int(sys.argv[1]), open(sys.argv[2], "w", encoding="utf-8")
docs = [l.rstrip("\n") for f in sys.argv[3:] for l in open(f, encoding="utf-8") if l.strip()]
for i in range(n):
    if i % 1000 == 999:
        out.write("\n")
    if i % 5000 == 4999:
        out.write('{"id": "bad-%d", "text": unterminated\n' % i)
    else:
        out.write(docs[i % len(docs)] + "\n")
PY
echo "kill-resume-check: $DOCS records ($(du -h "$CORPUS" | cut -f1)), model $MODEL, $KILLS kills, seed $SEED"

failures=0
# check NAME REF COMMAND...: the run of COMMAND (with --output OUT appended) killed KILLS times, resumed, compared.
# SIGNAL_TO: "self" signals the process started, "children" its children (mpirun's ranks).
check() {
  local name=$1 signal_to=$2
  shift 2
  local ref=$TMP/$name.ref.jsonl out=$TMP/$name.jsonl
  local t0 t1
  t0=$(date +%s.%N)
  "$@" --output "$ref" -q >/dev/null 2>"$TMP/$name.ref.log"
  local rc=$?
  t1=$(date +%s.%N)
  local total
  total=$(python3 -c "print(max(2.0, $t1 - $t0))")
  echo "  $name: uninterrupted run: exit $rc, $(wc -l <"$ref") records in $(printf '%.1f' "$total") s"
  local k resume=() done=0
  for ((k = 1; k <= KILLS; ++k)); do
    # A random point in the run: between 1 s and the time an uninterrupted run would take from here.
    local delay
    delay=$(python3 -c "import random; random.seed($SEED * 100 + $k + ${#name}); print(round(random.uniform(1.0, max(1.5, $total / ($KILLS + 1) * 1.6)), 1))")
    "$@" --output "$out" -q "${resume[@]}" >/dev/null 2>"$TMP/$name.$k.log" &
    local pid=$!
    sleep "$delay"
    if [ "$signal_to" = children ]; then
      kill -TERM $(pgrep -P "$pid") 2>/dev/null
    else
      kill -TERM "$pid" 2>/dev/null
    fi
    wait "$pid"
    rc=$?
    local kept=0 f
    for f in "$out".partial "$out".part-*; do
      case "$f" in *.manifest | *'*'*) continue ;; esac
      [ -f "$f" ] && kept=$((kept + $(wc -l <"$f")))
    done
    echo "  $name: kill $k after ${delay} s: exit $rc, $kept records in the partial output"
    resume=(--resume)
    if [ "$rc" -ne 143 ]; then
      echo "  $name: the run ended before the signal (exit $rc)"
      done=1
      break
    fi
  done
  if [ "$done" = 0 ]; then
    "$@" --output "$out" -q --resume >/dev/null 2>"$TMP/$name.final.log"
    rc=$?
    echo "  $name: final --resume: exit $rc"
  fi
  if cmp -s "$ref" "$out"; then
    echo "  $name: OK: byte-identical to the uninterrupted run ($(wc -l <"$out") records, $(du -h "$out" | cut -f1))"
  else
    echo "  $name: FAILED: the output differs from the uninterrupted run: $(cmp "$ref" "$out" 2>&1 | head -1)"
    failures=$((failures + 1))
  fi
  if ls "$out".partial* "$out".part-* >/dev/null 2>&1; then
    echo "  $name: FAILED: partial files left: $(ls "$out".* | tr '\n' ' ')"
    failures=$((failures + 1))
  fi
}

t_start=$(date +%s)
check single self "$BIN" run --model "$MODEL" --input "$CORPUS" --workers 2
if [ "$MPI" = 1 ]; then
  check mpi children "$MPIRUN" -n 2 --oversubscribe "$MPI_BIN" run --model "$MODEL" --input "$CORPUS" --workers 1
fi
echo "kill-resume-check: $failures failure(s) in $(($(date +%s) - t_start)) s"
[ "$failures" -eq 0 ]
