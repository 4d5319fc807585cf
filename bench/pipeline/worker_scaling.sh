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
declare -A rate
for w in 1 2; do
  start=$(date +%s.%N)
  "$BIN" run --model "$MODEL" --input "$TMP/corpus.jsonl" --output /dev/null --quiet --workers "$w" --threads 1
  end=$(date +%s.%N)
  rate[$w]=$(echo "$docs / ($end - $start)" | bc -l)
  printf 'workers %d: %d docs in %.2f s, %.1f docs/s\n' "$w" "$docs" "$(echo "$end - $start" | bc -l)" "${rate[$w]}"
done
printf 'speed-up 2 vs 1 workers: %.2fx (on %s cores, load average %s)\n' "$(echo "${rate[2]} / ${rate[1]}" | bc -l)" \
  "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)"
