#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue #15: `nerpipe run` as a hostile or careless user meets it. The output never destroys the input or
# an existing output; usage errors exit 2 before any work; record and model errors say what and why;
# SIGINT/SIGTERM write what was finished and --resume continues to a byte-identical file (also after
# SIGKILL, with blank lines and bad records, text input, several workers, and under mpirun); SIGPIPE ends
# quietly; --workers is sized to memory.
#
#   tests/cli/run_robust_tests.sh NERPIPE_BINARY [NERPIPE_MPI_BINARY]
#
# Uses the tiny Hugging Face fixture (tests/fixtures/hf/models/bert) and, when present, models/en_core_web_sm-3.8.0.
set -u
BIN=${1:?usage: run_robust_tests.sh NERPIPE_BINARY [NERPIPE_MPI_BINARY]}
MPI_BIN=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IN=$HERE/inputs
M=$ROOT/tests/fixtures/hf/models/bert
SM=$ROOT/models/en_core_web_sm-3.8.0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
failures=0
pass() { echo "PASS: $*"; }
failed() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_rc WANT DESCRIPTION -- COMMAND...: runs COMMAND (stdout, stderr kept in $TMP), checks its exit status.
expect_rc() {
  local want=$1 what=$2
  shift 3
  "$@" >"$TMP/stdout" 2>"$TMP/stderr"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then pass "$what (exit $rc)"; else
    failed "$what: exit $rc, expected $want"; sed 's/^/  stderr: /' "$TMP/stderr" | head -5
  fi
}
stderr_has() {  # stderr_has DESCRIPTION TEXT: the last command's stderr contains TEXT
  if grep -qF -- "$2" "$TMP/stderr"; then pass "$1"; else failed "$1: stderr lacks '$2'"; sed 's/^/  stderr: /' "$TMP/stderr" | head -5; fi
}
same_file() {  # same_file DESCRIPTION A B
  if cmp -s "$2" "$3"; then pass "$1"; else failed "$1: $2 and $3 differ"; cmp "$2" "$3" | head -2; fi
}
wait_for_output() {  # wait_for_output FILE PID: until FILE has bytes (or the process ended)
  for _ in $(seq 1 600); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 0
    sleep 0.1
  done
}

# A corpus with blank lines and bad records between EWT documents (3x dev + train: 2,574 documents), and the
# same as plain text.
CORPUS=$TMP/corpus.jsonl
for k in 1 2 3; do
  cat "$ROOT/tests/data/ewt/dev.jsonl"
  printf '\n{"id": "bad-%s", "text": unterminated\n   \n{"id": "nofield-%s"}\n' "$k" "$k"
  cat "$ROOT/tests/data/ewt/train.jsonl"
done >"$CORPUS"
python3 -c 'import json,sys
for l in open(sys.argv[1], encoding="utf-8"):
    try: print(json.loads(l)["text"].replace("\n", " "))
    except Exception: print()' "$CORPUS" >"$TMP/corpus.txt"
RUN=(run --workers 2 --threads 1 -q)
MM=(--model "$M")

echo "=== the output never destroys the input"
cp "$IN/good.jsonl" "$TMP/in.jsonl"
ln -s in.jsonl "$TMP/link.jsonl"
ln "$TMP/in.jsonl" "$TMP/hard.jsonl"
mkdir -p "$TMP/d"
sum=$(md5sum <"$TMP/in.jsonl")
for out in "$TMP/in.jsonl" "$TMP/link.jsonl" "$TMP/hard.jsonl" "$TMP/d/../in.jsonl"; do
  expect_rc 2 "--output $(basename "$out") (the input)" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$TMP/in.jsonl" --output "$out"
done
stderr_has "the message says why" "same device and inode"
"$BIN" "${RUN[@]}" "${MM[@]}" --input "$TMP/in.jsonl" --output - >>"$TMP/in.jsonl" 2>"$TMP/stderr"
rc=$?
[ "$rc" -eq 2 ] && pass "standard output appended to the input (exit 2)" || failed "standard output appended to the input: exit $rc"
[ "$(md5sum <"$TMP/in.jsonl")" = "$sum" ] && pass "the input is unchanged" || failed "the input was changed"

echo "=== an existing output is untouched until the run is complete"
echo yesterday >"$TMP/out.jsonl"
expect_rc 2 "--device cuda on a CPU build" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$IN/good.jsonl" --output "$TMP/out.jsonl" --device cuda
expect_rc 2 "--stride 600 (>= the window)" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$IN/good.jsonl" --output "$TMP/out.jsonl" --stride 600
stderr_has "--stride: the window is named" "smaller than the model's window of 510 tokens"
expect_rc 6 "a directory as --input" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$TMP/d" --output "$TMP/out.jsonl"
stderr_has "the directory is named" "is a directory"
expect_rc 2 "--text-field id --id-field id" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$IN/good.jsonl" --output "$TMP/out.jsonl" --text-field id --id-field id
expect_rc 4 "a model that does not exist" -- "$BIN" "${RUN[@]}" --model "$TMP/none" --input "$IN/good.jsonl" --output "$TMP/out.jsonl"
stderr_has "a missing model says so" "does not exist"
expect_rc 2 "--workers 0" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$IN/good.jsonl" --output "$TMP/out.jsonl" --workers 0
[ "$(cat "$TMP/out.jsonl")" = yesterday ] && pass "yesterday's output is intact" || failed "yesterday's output was changed"
ls "$TMP"/out.jsonl.* >/dev/null 2>&1 && failed "a partial output was left" || pass "no partial output left"
expect_rc 0 "a complete run replaces it" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$IN/good.jsonl" --output "$TMP/out.jsonl"
[ "$(wc -l <"$TMP/out.jsonl")" -eq 12 ] && pass "12 records" || failed "the output has $(wc -l <"$TMP/out.jsonl") lines"
ls "$TMP"/out.jsonl.* >/dev/null 2>&1 && failed "out.jsonl.partial or its manifest left after success" || pass "nothing left beside the output"
expect_rc 0 "a device as output is written in place" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$IN/good.jsonl" --output /dev/null

echo "=== model files: clear errors, naming the file and both sides of a disagreement"
mkdir -p "$TMP/m1" && cp "$M"/* "$TMP/m1/"
sed -i 's/"num_hidden_layers": 2/"num_hidden_layers": 1/' "$TMP/m1/config.json"
expect_rc 4 "config.json with 1 layer over 2-layer weights" -- "$BIN" "${RUN[@]}" --model "$TMP/m1" --input "$IN/good.jsonl" --output "$TMP/x.jsonl"
stderr_has "both layer counts are named" "the weights have 2 layers"
stderr_has "the hint names the family" "is a Hugging Face model, but the file named above cannot be used"
mkdir -p "$TMP/m2" && cp "$M"/* "$TMP/m2/" && rm "$TMP/m2/tokenizer.json" && mkdir "$TMP/m2/tokenizer.json"
expect_rc 4 "tokenizer.json that cannot be read" -- "$BIN" "${RUN[@]}" --model "$TMP/m2" --input "$IN/good.jsonl" --output "$TMP/x.jsonl"
stderr_has "the reason is given" "is a directory"
if [ -d "$SM" ]; then
  mkdir -p "$TMP/sm"
  cp -r "$SM"/. "$TMP/sm/"
  head -c 1000 "$SM/ner/moves" >"$TMP/sm/ner/moves"
  expect_rc 4 "a spaCy pipeline with one damaged file" -- "$BIN" "${RUN[@]}" --model "$TMP/sm" --input "$IN/good.jsonl" --output "$TMP/x.jsonl"
  stderr_has "the file is named" "ner/moves"
  stderr_has "the hint is not the generic one" "is a spaCy pipeline, but the file named above cannot be used"
  expect_rc 2 "--stride with a spaCy pipeline" -- "$BIN" run --model "$SM" --input "$IN/good.jsonl" --output "$TMP/x.jsonl" --stride 10
  python3 -c 'print("{\"id\": \"long\", \"text\": \"%s\"}" % ("word " * 200001))' >"$TMP/long.jsonl"
  expect_rc 3 "spaCy: a text over max_length is an error record" -- "$BIN" run --model "$SM" --input "$TMP/long.jsonl" --output "$TMP/long.out" -q
  grep -q '"error": "too_large: text has 1000005 characters' "$TMP/long.out" && pass "max_length error record has its category" ||
    failed "max_length error record: $(cut -c1-200 "$TMP/long.out")"
else
  echo "SKIP: spaCy cases (no $SM; scripts/get-model.sh models sm)"
fi

echo "=== record errors say what and where"
printf '{"id":"a","text":"x"} xyz\n{"id": "b", "text": "Paris"}\n\xef\xbb\xbf{"id": "c", "text": "x"}\n' >"$TMP/msg.jsonl"
expect_rc 3 "trailing content and a late byte-order mark" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$TMP/msg.jsonl" --output "$TMP/msg.out"
grep -q '^{"id": "a", "line": 1, "error": "invalid_json: trailing characters after the object at byte 22' "$TMP/msg.out" &&
  pass "trailing content: the id and the position" || failed "trailing content record: $(head -1 "$TMP/msg.out")"
grep -q '^{"id": "c", "line": 3, "error": "invalid_json: the line starts with a byte-order mark' "$TMP/msg.out" &&
  pass "a byte-order mark on line 3 is named" || failed "BOM record: $(sed -n 3p "$TMP/msg.out")"

echo "=== stopping and resuming"
REF=$TMP/ref.jsonl
"$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output "$REF"
"$BIN" "${RUN[@]}" "${MM[@]}" --input "$TMP/corpus.txt" --output "$TMP/ref-text.jsonl"
# interrupt SIGNAL... OUTPUT INPUT: starts a run, sends the signals once output appears, waits; sets rc.
interrupt() {
  local out=$1 input=$2
  shift 2
  "$BIN" "${RUN[@]}" "${MM[@]}" --input "$input" --output "$out" >"$TMP/stdout" 2>"$TMP/stderr" &
  local pid=$!
  wait_for_output "$out.partial" "$pid"
  for sig in "$@"; do
    kill -"$sig" "$pid" 2>/dev/null
    sleep 0.2
  done
  wait "$pid"
  rc=$?
}
for case in "TERM 143" "INT 130" "INT,INT 130" "KILL 137"; do
  set -- $case
  sigs=${1//,/ }
  out=$TMP/sig-$1.jsonl
  interrupt "$out" "$CORPUS" $sigs
  if [ "$rc" -ne "$2" ]; then failed "SIG$1: exit $rc, expected $2 (did the run finish first?)"; continue; fi
  pass "SIG$1: exit $rc"
  [ -s "$out.partial" ] && [ -f "$out.partial.manifest" ] && [ ! -e "$out" ] && pass "SIG$1: partial output and manifest, no output yet" ||
    failed "SIG$1: files after the signal: $(ls "$TMP" | grep sig- | tr '\n' ' ')"
  if [ "$1" = TERM ] || [ "$1" = INT ]; then
    stderr_has "SIG$1: the command that continues is printed" "--output $out --resume"
  fi
  expect_rc 2 "SIG$1: a plain rerun does not clobber the partial output" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output "$out"
  expect_rc 3 "SIG$1: --resume completes (some records are error records)" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output "$out" --resume
  same_file "SIG$1: the resumed output is byte-identical to an uninterrupted run" "$REF" "$out"
  [ ! -e "$out.partial" ] && [ ! -e "$out.partial.manifest" ] && pass "SIG$1: nothing left" || failed "SIG$1: partial files left"
done
interrupt "$TMP/text.jsonl" "$TMP/corpus.txt" TERM
[ "$rc" -eq 143 ] && pass "text input: SIGTERM" || failed "text input: exit $rc"
expect_rc 0 "text input: --resume" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$TMP/corpus.txt" --output "$TMP/text.jsonl" --resume
same_file "text input: byte-identical" "$TMP/ref-text.jsonl" "$TMP/text.jsonl"

echo "=== a resume that does not fit is refused"
interrupt "$TMP/r.jsonl" "$CORPUS" TERM
expect_rc 2 "another model" -- "$BIN" "${RUN[@]}" --model "$ROOT/tests/fixtures/hf/models/distilbert" --input "$CORPUS" --output "$TMP/r.jsonl" --resume
stderr_has "another model: said" "made with another model"
expect_rc 2 "another output format" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output "$TMP/r.jsonl" --resume --format iob
stderr_has "another format: named" "--format was 'entities', now 'iob'"
expect_rc 2 "other batches (they change the scores' last bits)" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output "$TMP/r.jsonl" --resume --batch-tokens 1000
cp "$CORPUS" "$TMP/other.jsonl" && echo '{"id": "more", "text": "One more."}' >>"$TMP/other.jsonl"
expect_rc 2 "another input" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$TMP/other.jsonl" --output "$TMP/r.jsonl" --resume
stderr_has "another input: said" "the input is not the one the partial output was made from"
sed -E '5s/"id": "./"id": "X/' "$CORPUS" >"$TMP/same-size.jsonl"  # one byte of an id: the same size
expect_rc 2 "an input changed in place (same size)" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$TMP/same-size.jsonl" --output "$TMP/r.jsonl" --resume
stderr_has "the changed record is found" "does not belong to input line 5"
expect_rc 2 "--resume to standard output" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output - --resume
expect_rc 2 "--resume --unordered" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output "$TMP/r.jsonl" --resume --unordered
expect_rc 3 "the right command still resumes" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output "$TMP/r.jsonl" --resume
same_file "and gives the same file" "$REF" "$TMP/r.jsonl"
expect_rc 3 "--resume with nothing to resume starts from the beginning" -- "$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output "$TMP/fresh.jsonl" --resume
same_file "and gives the same file" "$REF" "$TMP/fresh.jsonl"

echo "=== a closed pipe"
"$BIN" "${RUN[@]}" "${MM[@]}" --input "$CORPUS" --output - 2>"$TMP/stderr" | head -n 1 >/dev/null
rc=${PIPESTATUS[0]}
[ "$rc" -eq 141 ] && pass "| head -n 1: exit 141" || failed "| head -n 1: exit $rc, expected 141"
[ ! -s "$TMP/stderr" ] && pass "| head -n 1: nothing on stderr" || failed "| head -n 1: stderr: $(head -2 "$TMP/stderr")"

echo "=== replicas sized to memory"
expect_rc 0 "--workers 1000 --max-memory 200M" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --output "$TMP/mem.jsonl" --workers 1000 --max-memory 200M --threads 1
stderr_has "the count is lowered with a warning" "--workers 1000 would need about"
"$BIN" run --model "$M" --input "$IN/good.jsonl" --output "$TMP/mem-ref.jsonl" --threads 1 -q
same_file "the output does not depend on the workers" "$TMP/mem-ref.jsonl" "$TMP/mem.jsonl"
expect_rc 2 "--max-memory that is not a size" -- "$BIN" run --model "$M" --input "$IN/good.jsonl" --output "$TMP/mem.jsonl" --max-memory lots

if [ -n "$MPI_BIN" ]; then
  echo "=== under mpirun (2 ranks): each rank's part is continued"
  MPIRUN=${MPIEXEC:-mpirun}
  MRUN=(run --model "$M" --workers 1 --threads 1 -q --input "$CORPUS")
  "$MPIRUN" -n 2 --oversubscribe "$MPI_BIN" "${MRUN[@]}" --output "$TMP/mref.jsonl" >/dev/null 2>&1
  "$MPIRUN" -n 2 --oversubscribe "$MPI_BIN" "${MRUN[@]}" --output "$TMP/m.jsonl" >"$TMP/stdout" 2>"$TMP/stderr" &
  pid=$!
  wait_for_output "$TMP/m.jsonl.part-00001" "$pid"
  sleep 0.5
  kill -TERM $(pgrep -P "$pid") 2>/dev/null  # the ranks (mpirun itself would kill them 1 s later)
  wait "$pid"
  rc=$?
  [ "$rc" -eq 143 ] && pass "mpirun: SIGTERM to the ranks: exit 143" || failed "mpirun: exit $rc, expected 143"
  ls "$TMP"/m.jsonl.part-0000?.manifest >/dev/null 2>&1 && pass "mpirun: the parts and their manifests are kept" || failed "mpirun: no parts"
  expect_rc 2 "mpirun: resuming with another number of ranks is refused" -- "$MPIRUN" -n 3 --oversubscribe "$MPI_BIN" "${MRUN[@]}" --output "$TMP/m.jsonl" --resume
  expect_rc 3 "mpirun: --resume" -- "$MPIRUN" -n 2 --oversubscribe "$MPI_BIN" "${MRUN[@]}" --output "$TMP/m.jsonl" --resume
  same_file "mpirun: byte-identical to an uninterrupted run" "$TMP/mref.jsonl" "$TMP/m.jsonl"
  ls "$TMP"/m.jsonl.part-* >/dev/null 2>&1 && failed "mpirun: parts left behind" || pass "mpirun: no parts left"
fi

echo "=== $failures failure(s)"
[ "$failures" -eq 0 ]
