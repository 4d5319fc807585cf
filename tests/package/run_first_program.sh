#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs api.md's first program (tests/package/first_program.cpp, built against the installed package) unchanged:
# in a fresh folder with models/en_core_web_sm -> the downloaded en_core_web_sm 3.8.0 and corpus.jsonl = EWT dev;
# it must print one tab-separated entity per line, for many documents. Exit 77 (skipped) without the model; a
# failure under CI=true. Usage: run_first_program.sh FIRST_PROGRAM_BINARY REPOSITORY_ROOT
set -uo pipefail
bin="$1"
root="$2"
model="${NERPIPE_MODELS:-$root/models}/en_core_web_sm-3.8.0"
if [ ! -f "$model/config.cfg" ]; then
  echo "SKIPPED: $model not found (scripts/get-model.sh models sm)"
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then exit 1; fi
  exit 77
fi
[ -x "$bin" ] || { echo "FAIL: $bin was not built"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/models"
ln -s "$model" "$work/models/en_core_web_sm"
cp "$root/tests/data/ewt/dev.jsonl" "$work/corpus.jsonl"
(cd "$work" && "$bin" > out.tsv) || { echo "FAIL: the program exited non-zero"; exit 1; }
lines=$(wc -l < "$work/out.tsv")
docs=$(cut -f1 "$work/out.tsv" | sort -u | wc -l)
bad=$(awk -F'\t' 'NF != 4 || $2 !~ /^[0-9]+$/ || $3 !~ /^[0-9]+$/ || $2 + 0 >= $3 + 0' "$work/out.tsv" | wc -l)
echo "first program: $lines entities in $docs documents, $bad malformed lines"
[ "$lines" -gt 1000 ] && [ "$docs" -gt 200 ] && [ "$bad" -eq 0 ]
