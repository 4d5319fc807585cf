#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds nothing: runs example_02_custom_stage (built with the project) on the CLI tests' good.jsonl with this
# folder's patterns, and checks that the custom stage (EMAIL) and the entity_ruler (COMPANY, GREETING) both left
# entities in the merged text. Exit 77 (skipped) without en_core_web_sm; a failure under CI=true.
set -uo pipefail
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
model="${NERPIPE_MODELS:-$root/models}/en_core_web_sm-3.8.0"
if [ ! -f "$model/config.cfg" ]; then
  echo "SKIPPED: $model not found (scripts/get-model.sh models sm)"
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then exit 1; fi
  exit 77
fi
out="$("$bin" "$model" "$root/tests/cli/inputs/good.jsonl" "$root/examples/02_custom_stage/patterns.jsonl")" || {
  echo "FAIL: the example exited non-zero"; exit 1; }
lines=$(printf '%s\n' "$out" | wc -l)
echo "$out" | cut -c1-160
status=0
[ "$lines" -eq "$(grep -c . "$root/tests/cli/inputs/good.jsonl")" ] || { echo "FAIL: $lines lines"; status=1; }
for label in EMAIL COMPANY GREETING; do
  printf '%s\n' "$out" | grep -qw "$label" || { echo "FAIL: no $label entity in the output"; status=1; }
done
[ $status -eq 0 ] && echo "PASS: the custom stage and the entity_ruler ran in the composed pipeline"
exit $status
