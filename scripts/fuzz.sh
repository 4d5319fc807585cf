#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fuzzes what nerpipe reads from outside (tests/fuzz/fuzz_targets.cpp) with libFuzzer under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]   one target
#   scripts/fuzz.sh all SECONDS [libFuzzer options...]      every target, FUZZ_JOBS (default: the cores) at a time, then a table
#   scripts/fuzz.sh build                                   only (re)builds the binary
#
# Targets: jsonl tokenizer_json tokenizers safetensors spacy_model spacy_files. Seeds: tests/fuzz/corpus/<target>/
# (tools/fuzz_seeds.py writes them); inputs found while fuzzing go to build/fuzz/corpus/<target>/, crashes
# to build/fuzz/artifacts/<target>/ ($FUZZ_OUT instead of build/fuzz). Needs clang with libFuzzer
# (scripts/setup-debian.sh installs it).
# The binary is rebuilt when a header or the targets changed. Exit status: 0 when no target found a
# crash, a leak, a timeout or an out-of-memory; 1 otherwise (the failing targets are named).
set -uo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer options...] | scripts/fuzz.sh build}
if [ "$TARGET" != build ]; then
  SECONDS_EACH=${2:?usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer options...]}
  shift 2
fi
ALL=(jsonl tokenizer_json tokenizers safetensors spacy_model spacy_files)
OUT=${FUZZ_OUT:-build/fuzz}
BIN=$OUT/nerpipe_fuzz
CXX=${FUZZ_CXX:-clang++}
mkdir -p "$OUT"

if [ ! -x "$BIN" ] || [ -n "$(find include tests/fuzz/fuzz_targets.cpp -newer "$BIN" -print -quit)" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(ccache)
  echo "fuzz: building $BIN ($CXX, ASan + UBSan + libFuzzer)"
  t0=$(date +%s)
  if ! "${launcher[@]}" "$CXX" -std=c++20 -O1 -g -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -DMSGPACK_NO_BOOST -DNERPIPE_SOURCE_DIR="\"$PWD\"" -Iinclude \
      tests/fuzz/fuzz_targets.cpp -o "$BIN" -lsimdjson -lopenblas -lutf8proc -lpcre2-8 -pthread; then
    echo "fuzz: the build failed"
    exit 1
  fi
  echo "fuzz: built in $(($(date +%s) - t0)) s"
fi

[ "$TARGET" = build ] && exit 0

max_len() {
  case "$1" in
    jsonl) echo 4096 ;; tokenizers) echo 1024 ;; safetensors) echo 8192 ;;
    tokenizer_json) echo 16384 ;; *) echo 32768 ;;
  esac
}

run_one() {  # run_one TARGET [libFuzzer options]: fuzzes it for SECONDS_EACH; writes its row to $OUT/TARGET.row
  local t=$1 log="$OUT/$1.log"
  shift
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
  # One BLAS thread: the spacy_model target runs the pipeline; more threads only add noise.
  OPENBLAS_NUM_THREADS=1 NERPIPE_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$BIN" "$OUT/corpus/$t" "tests/fuzz/corpus/$t" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" \
    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t/" "$@" >"$log" 2>&1
  local rc=$?
  local execs rate
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1)
  rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1)
  if [ "$rc" -eq 0 ]; then
    printf '  %-15s ok      %12s executions  %8s/s\n' "$t" "${execs:-?}" "${rate:-?}" >"$OUT/$t.row"
  else
    {
      printf '  %-15s FAILED  %12s executions  (exit %s; see %s and %s)\n' "$t" "${execs:-?}" "$rc" "$log" "$OUT/artifacts/$t/"
      grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
    } >"$OUT/$t.row"
  fi
}

# Targets run side by side, FUZZ_JOBS at a time (default: the cores), each on one core.
targets=("$TARGET")
[ "$TARGET" = all ] && targets=("${ALL[@]}")
jobs_max=${FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
  rm -f "$OUT/$t.row"
  while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n; done
  run_one "$t" "$@" &
done
wait
echo "fuzz: $SECONDS_EACH s per target, $jobs_max at a time"
failed=()
for t in "${targets[@]}"; do
  if [ -f "$OUT/$t.row" ]; then cat "$OUT/$t.row"; else printf '  %-15s FAILED  (no result)\n' "$t"; fi
  grep -q "^  $t *ok " "$OUT/$t.row" 2>/dev/null || failed+=("$t")
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
