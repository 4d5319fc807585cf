#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bounded memory check: runs `nerpipe run` over 1x, 10x and 100x copies of the EWT corpus and prints
# the peak resident set size of each run (GNU time -v). Peak RSS must not grow with corpus size.
#
#   scripts/rss-check.sh NERPIPE_BINARY MODEL_DIR [EWT_JSONL] [extra nerpipe run options...]
set -euo pipefail
BIN=${1:?usage: rss-check.sh NERPIPE_BINARY MODEL_DIR [EWT_JSONL] [options...]}
MODEL=${2:?usage: rss-check.sh NERPIPE_BINARY MODEL_DIR [EWT_JSONL] [options...]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${3:-$ROOT/tests/data/ewt/dev.jsonl}
shift $(( $# >= 3 ? 3 : $# ))
[ -x /usr/bin/time ] || { echo "rss-check: needs GNU time at /usr/bin/time (Debian package 'time')"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cp "$SRC" "$TMP/x1.jsonl"
for i in $(seq 10); do cat "$SRC"; done >"$TMP/x10.jsonl"
for i in $(seq 10); do cat "$TMP/x10.jsonl"; done >"$TMP/x100.jsonl"

printf '%-6s %10s %10s %12s %10s\n' corpus docs bytes peak_rss_kib seconds
for n in 1 10 100; do
  f=$TMP/x$n.jsonl
  /usr/bin/time -v "$BIN" run --model "$MODEL" --input "$f" --output /dev/null --quiet "$@" 2>"$TMP/time.log" || {
    rc=$?; [ "$rc" -eq 3 ] || { cat "$TMP/time.log"; exit "$rc"; }; }
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time.log")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$TMP/time.log")
  printf '%-6s %10s %10s %12s %10s\n' "${n}x" "$(wc -l <"$f")" "$(stat -c %s "$f")" "$rss" "$secs"
done
