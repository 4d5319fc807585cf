#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 1 vs 2 single-threaded CPU workers through the `nerpipe` program: docs/s of each and the ratio.
#
#   bench/pipeline/worker_scaling.sh NERPIPE_BINARY MODEL_DIR [CORPUS_JSONL] [COPIES]
set -euo pipefail
BIN=${1:?usage: worker_scaling.sh NERPIPE_BINARY MODEL_DIR [CORPUS_JSONL] [COPIES]}
MODEL=${2:?usage: worker_scaling.sh NERPIPE_BINARY MODEL_DIR [CORPUS_JSONL] [COPIES]}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${3:-$ROOT/../shared/data/ewt/train.jsonl}
COPIES=${4:-2}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for i in $(seq "$COPIES"); do cat "$SRC"; done >"$TMP/corpus.jsonl"
docs=$(grep -c . "$TMP/corpus.jsonl")
now() { date +%s.%N; }
for w in 1 2; do
  start=$(now)
  "$BIN" run --model "$MODEL" --input "$TMP/corpus.jsonl" --output /dev/null --quiet --workers "$w" --threads 1
  end=$(now)
  secs[$w]=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
  awk -v w="$w" -v d="$docs" -v s="${secs[$w]}" 'BEGIN { printf "workers %d: %d docs in %.2f s, %.1f docs/s\n", w, d, s, d / s }'
done
awk -v a="${secs[1]}" -v b="${secs[2]}" -v c="$(nproc)" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
  'BEGIN { printf "speed-up 2 vs 1 workers: %.2fx (%d cores available, load average %s)\n", a / b, c, l }'
