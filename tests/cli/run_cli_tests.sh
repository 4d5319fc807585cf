#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of the `nerpipe` program.
#
#   tests/cli/run_cli_tests.sh NERPIPE_BINARY [MODEL_DIR...]
#
# Without model directories it uses the tiny Hugging Face fixtures (tests/fixtures/hf/models/bert,
# distilbert), the tiny spaCy transformer pipeline (tests/fixtures/spacy/trf-tiny) and, when present,
# models/en_core_web_sm-3.8.0. For each model: every committed input
# must give valid JSONL with exactly one record per non-blank line, in order, with the right ids and
# error kinds; entities must match the reference outputs in tests/cli/expected/<model name>/ where
# they exist (made by make_expected.py with spaCy / transformers); formats, stdin/stdout, workers,
# --unordered and every exit status are checked. Needs python3 (standard library) for the checker.
set -u
BIN=${1:?usage: run_cli_tests.sh NERPIPE_BINARY [MODEL_DIR...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IN=$HERE/inputs
CHECK="python3 $HERE/check_output.py"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  for m in "$ROOT/tests/fixtures/hf/models/bert" "$ROOT/tests/fixtures/hf/models/distilbert" \
           "$ROOT/tests/fixtures/spacy/trf-tiny" "$ROOT/models/en_core_web_sm-3.8.0"; do
    [ -d "$m" ] && MODELS+=("$m")
  done
fi
[ ${#MODELS[@]} -gt 0 ] || { echo "run_cli_tests: no model directory found"; exit 1; }

failures=0
pass() { echo "PASS: $*"; }
failed() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_rc WANT DESCRIPTION -- COMMAND...: runs COMMAND, checks its exit status.
expect_rc() {
  local want=$1 what=$2
  shift 3
  "$@" >"$TMP/stdout" 2>"$TMP/stderr"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then pass "$what (exit $rc)"; else
    failed "$what: exit $rc, expected $want"; sed 's/^/  stderr: /' "$TMP/stderr" | head -5
  fi
}

check() {  # check DESCRIPTION CHECKER-ARGS...
  local what=$1
  shift
  if $CHECK "$@" >"$TMP/check.log" 2>&1; then pass "$what"; else failed "$what"; sed 's/^/  /' "$TMP/check.log" | head -8; fi
}

for MODEL in "${MODELS[@]}"; do
  NAME=$(basename "$MODEL")
  EXP=$HERE/expected/$NAME
  echo "=== model $NAME ($MODEL)"
  expect_rc 0 "$NAME: info" -- "$BIN" info --model "$MODEL"
  grep -q '^family:' "$TMP/stdout" && grep -q '^labels:' "$TMP/stdout" || failed "$NAME: info prints family and labels"

  for f in good unicode long; do
    out=$TMP/$NAME.$f.jsonl
    expect_rc 0 "$NAME: run $f.jsonl" -- "$BIN" run --model "$MODEL" --input "$IN/$f.jsonl" --output "$out" --quiet
    args=(--input "$IN/$f.jsonl" --output "$out" --long-coverage)
    [ -f "$EXP/$f.entities.jsonl" ] && args+=(--expected "$EXP/$f.entities.jsonl")
    check "$NAME: $f.jsonl output" "${args[@]}"
  done

  out=$TMP/$NAME.plain.jsonl
  expect_rc 0 "$NAME: run plain.txt (text input by extension)" -- "$BIN" run --model "$MODEL" --input "$IN/plain.txt" --output "$out" -q
  args=(--input "$IN/plain.txt" --input-format text --output "$out")
  [ -f "$EXP/plain.entities.jsonl" ] && args+=(--expected "$EXP/plain.entities.jsonl")
  check "$NAME: plain.txt output" "${args[@]}"

  out=$TMP/$NAME.bad.jsonl
  expect_rc 3 "$NAME: run bad.jsonl (some records fail)" -- "$BIN" run --model "$MODEL" --input "$IN/bad.jsonl" --output "$out"
  grep -q 'errors' "$TMP/stderr" || failed "$NAME: summary on stderr"
  check "$NAME: bad.jsonl error records" --input "$IN/bad.jsonl" --output "$out" --kinds "$IN/bad.kinds"

  out=$TMP/$NAME.bad-replace.jsonl
  "$BIN" run --model "$MODEL" --input "$IN/bad.jsonl" --output "$out" -q --invalid-utf8 replace
  sed 's/^invalid_utf8$/ok/' "$IN/bad.kinds" >"$TMP/bad-replace.kinds"
  check "$NAME: --invalid-utf8 replace" --input "$IN/bad.jsonl" --output "$out" --kinds "$TMP/bad-replace.kinds" \
    --invalid-utf8 replace

  out=$TMP/$NAME.big.jsonl
  expect_rc 3 "$NAME: --max-record-bytes" -- "$BIN" run --model "$MODEL" --input "$IN/big_line.jsonl" --output "$out" -q --max-record-bytes 4096
  check "$NAME: too_large record" --input "$IN/big_line.jsonl" --output "$out" --kinds "$IN/big_line.kinds"

  for fmt in merged iob; do
    out=$TMP/$NAME.good.$fmt.jsonl
    expect_rc 0 "$NAME: --format $fmt" -- "$BIN" run --model "$MODEL" --input "$IN/good.jsonl" --output "$out" -q --format "$fmt"
    args=(--input "$IN/good.jsonl" --output "$out" --format "$fmt")
    [ "$fmt" = merged ] && [ -f "$EXP/good.merged.jsonl" ] && args+=(--expected "$EXP/good.merged.jsonl")
    check "$NAME: --format $fmt output" "${args[@]}"
  done
  if [ -f "$EXP/unicode.merged.jsonl" ]; then
    "$BIN" run --model "$MODEL" --input "$IN/unicode.jsonl" --output "$TMP/u.merged" -q --format merged
    check "$NAME: unicode merged vs reference" --input "$IN/unicode.jsonl" --output "$TMP/u.merged" --format merged \
      --expected "$EXP/unicode.merged.jsonl"
  fi

  # Same bytes through pipes, with more workers, and the same records unordered.
  ref=$TMP/$NAME.good.jsonl
  cat "$IN/good.jsonl" | "$BIN" run --model "$MODEL" --input - --output - -q >"$TMP/pipe.jsonl"
  cmp -s "$ref" "$TMP/pipe.jsonl" && pass "$NAME: stdin -> stdout" || failed "$NAME: stdin -> stdout differs from files"
  # Workers change nothing when batches and threads per worker are the same (float sums may differ
  # between batch shapes and thread counts).
  small=(--batch-tokens 64 --window-docs 4 --threads 1)
  "$BIN" run --model "$MODEL" --input "$IN/good.jsonl" --output "$TMP/w1.jsonl" -q --workers 1 "${small[@]}"
  "$BIN" run --model "$MODEL" --input "$IN/good.jsonl" --output "$TMP/w3.jsonl" -q --workers 3 "${small[@]}"
  cmp -s "$TMP/w1.jsonl" "$TMP/w3.jsonl" && pass "$NAME: --workers 3 output identical to --workers 1" ||
    failed "$NAME: --workers 3 output differs from --workers 1"
  "$BIN" run --model "$MODEL" --input "$IN/good.jsonl" --output "$TMP/un.jsonl" -q --workers 2 --unordered "${small[@]}"
  if [ "$(sort "$TMP/w1.jsonl")" = "$(sort "$TMP/un.jsonl")" ]; then pass "$NAME: --unordered holds the same records"; else
    failed "$NAME: --unordered records differ"; fi
  # Custom field names.
  sed 's/"id"/"key"/; s/"text"/"body"/' "$IN/good.jsonl" >"$TMP/fields.jsonl"
  "$BIN" run --model "$MODEL" --input "$TMP/fields.jsonl" --output "$TMP/fields.out" -q --text-field body --id-field key
  cmp -s "$ref" "$TMP/fields.out" && pass "$NAME: --text-field/--id-field" || failed "$NAME: --text-field/--id-field"
done

echo "=== exit statuses"
M=${MODELS[0]}
expect_rc 2 "no subcommand" -- "$BIN"
expect_rc 2 "missing --model" -- "$BIN" run --input "$IN/good.jsonl"
expect_rc 2 "bad --format value" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --format xml
expect_rc 2 "bad --device value" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --output "$TMP/x" --device tpu
expect_rc 2 "--workers 0" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --output "$TMP/x" --workers 0
expect_rc 4 "model directory missing" -- "$BIN" run --model "$TMP/no-such-model" --input "$IN/good.jsonl" --output "$TMP/x"
mkdir -p "$TMP/empty-model"
expect_rc 4 "model directory without model files" -- "$BIN" run --model "$TMP/empty-model" --input "$IN/good.jsonl" --output "$TMP/x"
grep -q "nerpipe: " "$TMP/stderr" || failed "model error message on stderr"
mkdir -p "$TMP/broken-model" && echo '{"model_type": "bert"' >"$TMP/broken-model/config.json"
expect_rc 4 "malformed config.json" -- "$BIN" run --model "$TMP/broken-model" --input "$IN/good.jsonl" --output "$TMP/x"
expect_rc 4 "info on a non-model" -- "$BIN" info --model "$TMP/empty-model"
expect_rc 5 "output directory missing" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --output "$TMP/no/such/dir/out.jsonl"
if [ -w /dev/full ]; then
  expect_rc 5 "output device full" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --output /dev/full -q
fi
expect_rc 6 "input missing" -- "$BIN" run --model "$M" --input "$TMP/no-such-input.jsonl" --output "$TMP/x"
expect_rc 2 "--precision bf16 on the CPU" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --output "$TMP/x" --precision bf16
expect_rc 2 "--precision unknown" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --output "$TMP/x" --precision fp16
expect_rc 0 "--version" -- "$BIN" --version
expect_rc 0 "--help" -- "$BIN" run --help

echo "=== $failures failure(s)"
[ "$failures" -eq 0 ]
