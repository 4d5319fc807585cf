#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `nerpipe run --patterns` against spaCy 3.8.7's entity_ruler added after the NER, on every EWT document
# (tests/fixtures/spacy/entity_ruler_ewt.jsonl, tools/fixtures/entity_ruler_fixtures.py: the NER-only pipeline,
# so --sentences none): ORTH, ORTH with --overwrite-ents, LOWER. Exit 77 (skipped) without the model; a failure
# under CI=true. Usage: run_patterns_test.sh NERPIPE_BINARY
set -uo pipefail
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
model="${NERPIPE_MODELS:-$root/models}/en_core_web_sm-3.8.0"
if [ ! -f "$model/config.cfg" ]; then
  echo "SKIPPED: $model not found (scripts/get-model.sh models sm)"
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then exit 1; fi
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat "$root/tests/data/ewt/dev.jsonl" "$root/tests/data/ewt/train.jsonl" > "$work/ewt.jsonl"
patterns="$root/tests/fixtures/spacy/entity_ruler_patterns.jsonl"
status=0
run() {  # run NAME KEY ARGS...: runs nerpipe, compares with the fixture's KEY
  local name="$1" key="$2"; shift 2
  if ! "$bin" run --model "$model" --input "$work/ewt.jsonl" --output "$work/$name.jsonl" --sentences none \
       --patterns "$patterns" --quiet --workers 2 "$@"; then
    echo "FAIL: $name: nerpipe exited non-zero"; status=1; return
  fi
  python3 - "$work/$name.jsonl" "$root/tests/fixtures/spacy/entity_ruler_ewt.jsonl" "$key" "$name" <<'PY' || status=1
import json, sys
got_path, want_path, key, name = sys.argv[1:5]
got = [json.loads(l) for l in open(got_path, encoding="utf-8") if l.strip()]
want = [json.loads(l) for l in open(want_path, encoding="utf-8") if l.strip()]
if len(got) != len(want):
    sys.exit(f"FAIL: {name}: {len(got)} records, want {len(want)}")
bad = 0
for g, w in zip(got, want):
    ge = [[e["start"], e["end"], e["label"]] for e in g.get("entities", [])]
    if g["id"] != w["id"]:
        sys.exit(f"FAIL: {name}: record for {g['id']} where {w['id']} was expected (input order)")
    if ge != w[key]:
        bad += 1
        if bad <= 3:
            print(f"  {name}: document {w['id']}: got {ge}\n    want {w[key]}")
if bad:
    sys.exit(f"FAIL: {name}: {bad}/{len(want)} documents differ from spaCy's entity_ruler")
print(f"PASS: {name}: {len(want)}/{len(want)} EWT documents with spaCy's entity_ruler entities")
PY
}
run orth orth
run orth_overwrite orth_overwrite --overwrite-ents
run lower lower --phrase-matcher-attr LOWER
exit $status
