#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Peak memory of one very long document (issue #15): builds a single JSONL record whose text is the EWT corpus
# (tests/data/ewt) repeated to SIZE_MB megabytes, runs `nerpipe run` on it with one single-threaded worker under
# GNU time -v, and prints the peak resident set size against the goal (300 MB for 20 MB on the BERT fixture).
# Exits 1 when a run goes over the goal. Takes a few minutes; not part of the CI test command.
#
#   scripts/check-big-document.sh [NERPIPE_BINARY] [MODEL_DIR] [SIZE_MB...]
#   defaults: build/cpu/examples/nerpipe, tests/fixtures/hf/models/bert, 20
#   GOAL_MB=300 changes the goal; extra `nerpipe run` options go in NERPIPE_OPTS (e.g. "--aggregation first").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/build/cpu/examples/nerpipe}
MODEL=${2:-$ROOT/tests/fixtures/hf/models/bert}
shift $(( $# >= 2 ? 2 : $# ))
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(20)
GOAL_MB=${GOAL_MB:-300}
[ -x "$BIN" ] || { echo "check-big-document: no nerpipe binary at $BIN (cmake --preset cpu && cmake --build build/cpu --target nerpipe_cli)"; exit 2; }
[ -x /usr/bin/time ] || { echo "check-big-document: needs GNU time at /usr/bin/time (Debian package 'time')"; exit 2; }
command -v python3 >/dev/null || { echo "check-big-document: needs python3 to write the document"; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

printf '%-8s %12s %12s %14s %10s  %s\n' size_mb text_bytes entities peak_rss_mb seconds verdict
status=0
for mb in "${SIZES[@]}"; do
  doc=$TMP/big$mb.jsonl
  python3 - "$ROOT/tests/data/ewt" "$mb" "$doc" <<'EOF'
import json, sys
ewt, mb, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
texts = [json.loads(l)["text"] for f in ("train", "dev") for l in open(f"{ewt}/{f}.jsonl", encoding="utf-8") if l.strip()]
parts, size, i = [], 0, 0
while size < mb * 1000 * 1000:
    t = texts[i % len(texts)]
    parts.append(t)
    size += len(t.encode("utf-8")) + 1
    i += 1
with open(out, "w", encoding="utf-8") as f:
    f.write(json.dumps({"id": f"big{mb}", "text": " ".join(parts)}, ensure_ascii=False) + "\n")
EOF
  # shellcheck disable=SC2086
  /usr/bin/time -v "$BIN" run --model "$MODEL" --input "$doc" --output "$TMP/out.jsonl" --workers 1 --threads 1 --quiet \
    ${NERPIPE_OPTS:-} 2>"$TMP/time.log" || { cat "$TMP/time.log"; exit 1; }
  kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time.log")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$TMP/time.log")
  ents=$(grep -o '"start": ' "$TMP/out.jsonl" | wc -l)
  rss_mb=$(( kib * 1024 / 1000000 ))
  verdict="ok (goal <= $GOAL_MB MB for 20 MB)"
  if [ "$mb" -le 20 ] && [ "$rss_mb" -gt "$GOAL_MB" ]; then verdict="OVER the $GOAL_MB MB goal"; status=1; fi
  printf '%-8s %12s %12s %14s %10s  %s\n' "$mb" "$(python3 -c "import json,sys; print(len(json.loads(open(sys.argv[1]).readline())['text'].encode()))" "$doc")" \
    "$ents" "$rss_mb" "$secs" "$verdict"
  rm -f "$doc" "$TMP/out.jsonl"
done
exit $status
