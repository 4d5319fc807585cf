#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The one GPU script, sized for ONE call of at most 600 s on a lent H200/H100 machine (16 cores) with nothing but
# the CUDA toolkit, CMake, a C++ compiler and Python (torch, transformers), no network:
#
#   run(command="bash scripts/gpu-check.sh", carry=[".gpu"], timeout_s=600)
#
# (.gpu/ from scripts/gpu-pack.sh, made beforehand on a development machine.) It keeps its own budget
# (GPU_CHECK_BUDGET_S, default 560 s from its start) so that it always ends, archives and summarises before the
# call's limit: a step that would not fit is reported "skipped (budget)". In order:
#   1. unpack .gpu (dependencies, cuDNN frontend + headers, spaCy models); find libcudnn.so.9 (CUDA toolkit, else
#      the Python nvidia-cudnn wheel torch brought);
#   2. configure + build every CUDA target (tests, benchmarks, the nerpipe-cuda program) for sm_90 (niced),
#      printing the build's wall time first; the peers (tools/peers/hf_gpu_peer.py) run beside the build at
#      normal priority (they use the GPU, which the build leaves idle, and one CPU core each);
#   3. the GPU tests (every test of nerpipe_cuda_tests: ops vs the double reference incl. cuDNN SDPA and FP8,
#      parity tables: HF fp32/bf16/fp8 vs the fp32 CPU, spaCy sm/md vs cpu_policy);
#   4. the benchmarks: ops (GEMM fp32/bf16/FP8, attention own vs cuDNN at S = 128..512, LayerNorm, the encoder's
#      GELU pass), BERT-base end to end (bf16, fp8, fp32 in memory; JSONL through round_robin in bf16 and fp8),
#      spaCy sm/md on the GPU; a CLI smoke run with --precision fp32|bf16|fp8;
#   5. compute-sanitizer memcheck on the kernels (every test but [api_errors] and the EWT-scale [trained] /
#      [fidelity] ones) and racecheck on the kernels changed last ([spacy] ops: ner_decode's shared memory), in
#      what the budget leaves (a step cut short reports TIMEOUT, one not started "skipped (budget)");
#   6. one summary table (also $OUT/summary.txt) and every log/JSON in ONE archive ($OUT/gpu-check-logs.tar.gz);
#      logs are written outside $OUT (NERPIPE_GPU_LOGS, default build/gpu-check/logs).
# Without a GPU (a dry run) everything up to the build runs, then the first GPU step fails, saying so.
# Knobs: those of gpu-env.sh, GPU_CHECK_BUDGET_S, BUILD_TIMEOUT_S (400), SKIP_SANITIZERS=1, SKIP_BENCH=1, SKIP_PEERS=1, NERPIPE_BERT_DOCS
# (10000), NERPIPE_BERT_DOCS_FP32 (2000), NERPIPE_SPACY_DOCS (10000), PEER_DOCS (10000).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
t_start=$(date +%s)
budget=${GPU_CHECK_BUDGET_S:-560}
left() { echo $((budget - ($(date +%s) - t_start))); }

# ---- 1. unpack .gpu --------------------------------------------------------------------------------------------
if [ -d .gpu ]; then
  if [ -z "${NERPIPE_DEPS_PREFIX:-}" ]; then
    deps=/tmp/nerpipe-deps
    if [ -f .gpu/deps.tar.xz ] && [ ! -f "$deps/.unpacked" ]; then
      mkdir -p "$deps" && tar -C "$deps" -xJf .gpu/deps.tar.xz && touch "$deps/.unpacked"
    elif ls .gpu/debs/*.deb >/dev/null 2>&1 && [ ! -f "$deps/.unpacked" ]; then  # an older pack
      mkdir -p "$deps" && for d in .gpu/debs/*.deb; do dpkg -x "$d" "$deps" || exit 1; done && touch "$deps/.unpacked"
    fi
    [ -f "$deps/.unpacked" ] && export NERPIPE_DEPS_PREFIX="$deps"
  fi
  if [ -f .gpu/cudnn.tar.xz ] && [ ! -d .gpu/cudnn-frontend ]; then tar -C .gpu -xJf .gpu/cudnn.tar.xz; fi
  if [ -f .gpu/models.tar.xz ] && [ ! -d .gpu/models ]; then mkdir -p .gpu/models && tar -C .gpu/models -xJf .gpu/models.tar.xz; fi
fi
for size in sm md; do
  var=NERPIPE_SPACY_MODEL
  [ "$size" = md ] && var=NERPIPE_SPACY_MD_MODEL
  if [ -z "${!var:-}" ]; then
    for cand in "models/en_core_web_${size}-3.8.0" ".gpu/models/en_core_web_${size}-3.8.0"; do
      if [ -f "$cand/meta.json" ]; then export "$var=$PWD/$cand"; break; fi
    done
  fi
done

# shellcheck source=scripts/gpu-env.sh
source scripts/gpu-env.sh
cmake_args+=(-DNERPIPE_BUILD_EXAMPLES=ON)
targets="${NERPIPE_GPU_TARGETS:-nerpipe_cuda_tests nerpipe_cuda_bench nerpipe_gpu}"
summary="$logs/summary.txt"
: >"$summary"

# libcudnn.so.9 for the fused attention (dlopen'ed): the toolkit's, else the one torch's wheels brought.
cudnn_lib=""
if ! ldconfig -p 2>/dev/null | grep -q 'libcudnn.so.9' && ! ls /usr/local/cuda/lib64/libcudnn.so.9 >/dev/null 2>&1; then
  cudnn_lib="$(python3 -c 'import nvidia.cudnn as c, os; print(os.path.join(list(c.__path__)[0], "lib"))' 2>/dev/null || true)"
  [ -n "$cudnn_lib" ] && [ -f "$cudnn_lib/libcudnn.so.9" ] && export LD_LIBRARY_PATH="$cudnn_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  cudnn_lib="/usr/local/cuda/lib64"
  export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# The BERT benchmarks' text: every EWT document (dev + train).
if [ -z "${NERPIPE_BERT_CORPUS:-}" ]; then
  cat tests/data/ewt/dev.jsonl tests/data/ewt/train.jsonl > "$build/ewt-all.jsonl" 2>/dev/null &&
    export NERPIPE_BERT_CORPUS="$(cd "$build" && pwd)/ewt-all.jsonl"
fi
export NERPIPE_BERT_DOCS="${NERPIPE_BERT_DOCS:-10000}" NERPIPE_BERT_DOCS_FP32="${NERPIPE_BERT_DOCS_FP32:-2000}"
export NERPIPE_SPACY_DOCS="${NERPIPE_SPACY_DOCS:-10000}"
# OpenBLAS picks its slow generic kernel on some virtual machines; the CPU oracle then dominates the tests.
if grep -q avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"; fi

declare -a rows
status_all=0
step() {  # step <name> <timeout> <log> <command...>: runs (within the budget), times, records a table row
  local name="$1" limit="$2" log="$3"; shift 3
  local remaining t0 rc
  remaining=$(left)
  if [ "$remaining" -lt 15 ]; then
    rows+=("$(printf '%-12s %-18s %5s   %s' "$name" "skipped (budget)" "-" "$(basename "$log")")")
    return 125
  fi
  [ "$limit" -gt $((remaining - 5)) ] && limit=$((remaining - 5))
  t0=$(date +%s)
  echo "== $name (limit ${limit}s)" >&2
  timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1
  rc=$?
  local dt=$(($(date +%s) - t0)) state="ok"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then state="TIMEOUT (${limit}s)"; status_all=1
  elif [ "$rc" -eq 77 ]; then state="SKIPPED (rc 77)"; status_all=1  # a test binary that skipped tests
  elif [ "$rc" -ne 0 ]; then state="FAILED (rc $rc)"; status_all=1; fi
  [ "$rc" -ne 0 ] && tail -n 30 "$log" >&2
  rows+=("$(printf '%-12s %-18s %5ss  %s' "$name" "$state" "$dt" "$(basename "$log")")")
  return "$rc"
}

finish() {  # the summary (stdout and $logs/summary.txt) and the archive of every log in $OUT
  {
    echo
    echo "GPU: $(head -n 1 "$logs/gpu.txt" 2>/dev/null); libcudnn: ${cudnn_lib:-not found}; commit $(git rev-parse --short HEAD 2>/dev/null || cat .gpu/COMMIT 2>/dev/null)"
    [ -n "${build_wall:-}" ] && echo "build wall time: ${build_wall}s (-j $jobs, sm_$archs)"
    echo "step         status             time  log"
    printf '%s\n' "${rows[@]}"
    echo
    [ -f "$logs/gpu_tests.log" ] && echo "-- GPU tests: $(grep -E '^(All tests passed|test cases:)' "$logs/gpu_tests.log" | tail -n 1)"
    for s in memcheck racecheck; do
      [ -f "$logs/$s.log" ] && echo "-- $s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$logs/$s.log" | tail -n 1)"
    done
    if [ -f "$logs/gpu_tests.log" ]; then
      echo "-- parity tables (the tests' WARN blocks):"
      awk '$0 == "warning:" && prev ~ /\.cu:[0-9]+:/ {f = 1; prev = $0; next}
           f && /^$/ {f = 0} f {print "  " $0} {prev = $0}' "$logs/gpu_tests.log" || true
    fi
    [ -f "$logs/bert.log" ] && { echo "-- BERT-base (random weights, EWT text):"; grep -E '^BERT-(E2E|JSONL)' "$logs/bert.log" | sed 's/^/   /'; }
    [ -f "$logs/peers.log" ] && { echo "-- peers (same model shapes and text, bf16, this GPU):"; grep -E '^PEER' "$logs/peers.log" | sed 's/^/   /'; }
    if [ -f "$logs/bert.log" ] && [ -f "$logs/peers.json" ] && command -v python3 >/dev/null; then
      python3 - "$logs/bert.log" "$logs/peers.json" <<'PY'
import json, re, sys
log = open(sys.argv[1]).read()
peers = json.load(open(sys.argv[2]))
best = {}
for m in re.finditer(r"^BERT-(E2E|JSONL) (\w+)[^:]*: ([0-9.]+) M tokens/s", log, re.M):
    key = f"{m.group(1)} {m.group(2)}"
    best[key] = max(best.get(key, 0.0), float(m.group(3)) * 1e6)
for name, key in (("hf-pipeline", "hf_pipeline"), ("torch-encoder", "torch_encoder")):
    if key not in peers:
        continue
    peer = peers[key]["tokens_per_s"]
    for k, v in sorted(best.items()):
        print(f"   nerpipe {k} / {name}: {v / peer:.2f}x ({v / 1e6:.2f} vs {peer / 1e6:.2f} M tokens/s)")
PY
    fi
    [ -f "$logs/spacy.log" ] && { echo "-- spaCy on the GPU:"; grep -E '^SPACY-GPU' "$logs/spacy.log" | sed 's/^/   /'; }
    [ -f "$logs/cli.log" ] && { echo "-- nerpipe-cuda run --precision:"; grep -E '^CLI' "$logs/cli.log" | sed 's/^/   /'; }
    if [ -f "$logs/cuda_ops.json" ] && command -v python3 >/dev/null; then
      echo "-- ops:"
      python3 - "$logs/cuda_ops.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"   {'benchmark':<72} {'us/call':>10} {'rate':>14}")
for b in data.get("benchmarks", []):
    if b.get("error_occurred"):
        print(f"   {b['name']:<72} error: {b.get('error_message', '')[:60]}")
        continue
    rate = next(((k, b[k]) for k in ("TFLOP/s", "GB/s") if k in b), None)
    us = b.get("us/call", float("nan"))
    print(f"   {b['name']:<72} {us:>10.1f} {('%.1f %s' % (rate[1], rate[0])) if rate else '':>14}")
PY
    fi
    echo "total $(($(date +%s) - t_start))s"
  } | tee -a "$summary"
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    tar -C "$(dirname "$logs")" -czf "$OUT/gpu-check-logs.tar.gz" "$(basename "$logs")" 2>/dev/null
    cp "$summary" "$OUT/summary.txt"
  fi
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null ||
    echo "none (nvidia-smi fails)"; } >"$logs/gpu.txt"
nvcc --version >>"$logs/gpu.txt" 2>&1 || true
echo "libcudnn: ${cudnn_lib:-not found}" >>"$logs/gpu.txt"

# ---- 2. build (niced), the peers beside it ---------------------------------------------------------------------
peers_pid=""
if [ "${SKIP_PEERS:-0}" != 1 ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  timeout 300 python3 tools/peers/hf_gpu_peer.py --docs "${PEER_DOCS:-10000}" --json "$logs/peers.json" >"$logs/peers.log" 2>&1 &
  peers_pid=$!
fi
step configure 60 "$logs/configure.log" cmake -S . -B "$build" "${cmake_args[@]}" || { finish; exit 1; }
b0=$(date +%s)
# shellcheck disable=SC2086
step build "${BUILD_TIMEOUT_S:-400}" "$logs/build.log" nice -n 19 cmake --build "$build" -j "$jobs" --target $targets
build_rc=$?
build_wall=$(($(date +%s) - b0))
echo "build wall time: ${build_wall}s (-j $jobs, sm_$archs)" >&2
if [ -n "$peers_pid" ]; then
  wait "$peers_pid"
  rc=$?
  rows+=("$(printf '%-12s %-18s %5s   %s' peers "$([ $rc -eq 0 ] && echo ok || echo "FAILED (rc $rc)")" "-" "peers.log (beside the build)")")
  [ "$rc" -ne 0 ] && status_all=1
fi
[ "$build_rc" -ne 0 ] && { finish; exit 1; }

test_bin="$(find "$build" -name nerpipe_cuda_tests -type f -perm -u+x | head -n 1)"
bench_bin="$(find "$build" -name nerpipe_cuda_bench -type f -perm -u+x | head -n 1)"
cli_bin="$(find "$build" -name nerpipe-cuda -type f -perm -u+x | head -n 1)"

# ---- 3. tests (the first GPU step: without a device it fails here) -------------------------------------------
step tests 150 "$logs/gpu_tests.log" "$test_bin" --require-devices 1
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: STOP at the first GPU step: no CUDA device here (nvidia-smi -L fails); every CUDA target built" >&2
  rows+=("$(printf '%-12s %-18s' 'GPU steps' 'not run: no CUDA device')")
  finish
  exit 2
fi

# ---- 4. benchmarks ---------------------------------------------------------------------------------------------
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  step ops_bench 80 "$logs/cuda_ops.log" "$bench_bin" --benchmark_filter='bm_(gemm|fp8_gemm|attention|layer_norm|gelu)' \
    --benchmark_min_time=0.05 --benchmark_out="$logs/cuda_ops.json" --benchmark_out_format=json
  step bert 100 "$logs/bert.log" "$bench_bin" --benchmark_filter='bm_bert_base_' \
    --benchmark_out="$logs/bert.json" --benchmark_out_format=json
  step spacy 50 "$logs/spacy.log" "$bench_bin" --benchmark_filter='bm_spacy_gpu_e2e/md:[01]/replicas:[14]/' \
    --benchmark_out="$logs/spacy.json" --benchmark_out_format=json
  if [ -n "$cli_bin" ]; then  # the trained fixture on EWT dev through nerpipe-cuda at each precision
    step cli 30 "$logs/cli.log" bash -c 'for p in fp32 bf16 fp8; do
        "$1" run --model tests/fixtures/hf/models/trained-tiny --input tests/data/ewt/dev.jsonl --output "$2/cli-$p.jsonl" \
          --device cuda --precision "$p" -q || exit 1
        echo "CLI --precision $p: $(wc -l <"$2/cli-$p.jsonl") records, $(grep -o "\"label\"" "$2/cli-$p.jsonl" | wc -l) entities;" \
          "identical to fp32: $(cmp -s "$2/cli-fp32.jsonl" "$2/cli-$p.jsonl" && echo yes || echo no)"
      done' _ "$cli_bin" "$logs"
  fi
fi

# ---- 5. sanitizers (after the benchmarks, in what the budget leaves) --------------------------------------------
if [ "${SKIP_SANITIZERS:-0}" != 1 ] && command -v compute-sanitizer >/dev/null; then
  step memcheck 120 "$logs/memcheck.log" compute-sanitizer --tool memcheck --leak-check no --error-exitcode 86 \
    "$test_bin" --require-devices 1 "~[api_errors]~[trained]~[fidelity]"
  step racecheck 40 "$logs/racecheck.log" compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 87 \
    "$test_bin" --require-devices 1 "[spacy]~[fidelity]"
else
  rows+=("$(printf '%-12s %-18s' sanitizers 'not run (SKIP_SANITIZERS or no compute-sanitizer)')")
fi

finish
exit "$status_all"
