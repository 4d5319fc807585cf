#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `nerpipe run` on a spaCy transformer pipeline (the committed tests/fixtures/spacy/trf-tiny) against
# spacy.load(dir)'s entities on every EWT document (tests/fixtures/spacy/ewt_trf_tiny.jsonl,
# tools/fixtures/spacy_trf_fixtures.py), and `nerpipe info` naming the family.
# Usage: run_trf_test.sh NERPIPE_BINARY
set -uo pipefail
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
model="$root/tests/fixtures/spacy/trf-tiny"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
if "$bin" info --model "$model" > "$work/info.txt" && grep -q 'spaCy transformer pipeline' "$work/info.txt"; then
  echo "PASS: info names the spaCy transformer pipeline"
else
  echo "FAIL: info"; sed 's/^/  /' "$work/info.txt"; status=1
fi
cat "$root/tests/data/ewt/dev.jsonl" "$root/tests/data/ewt/train.jsonl" > "$work/ewt.jsonl"
if ! "$bin" run --model "$model" --input "$work/ewt.jsonl" --output "$work/out.jsonl" --quiet --workers 2; then
  echo "FAIL: nerpipe run exited non-zero"; exit 1
fi
python3 - "$work/out.jsonl" "$root/tests/fixtures/spacy/ewt_trf_tiny.jsonl" <<'PY' || status=1
import json, sys
got = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
want = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
if len(got) != len(want):
    sys.exit(f"FAIL: {len(got)} records, want {len(want)}")
bad = 0
for g, w in zip(got, want):
    if g["id"] != w["id"]:
        sys.exit(f"FAIL: record for {g['id']} where {w['id']} was expected (input order)")
    ge = [[e["start"], e["end"], e["label"]] for e in g.get("entities", [])]
    if ge != w["ents"]:
        bad += 1
        if bad <= 3:
            print(f"  document {w['id']}: got {ge}\n    want {w['ents']}")
if bad:
    sys.exit(f"FAIL: {bad}/{len(want)} documents differ from spacy.load's entities")
print(f"PASS: run: {len(want)}/{len(want)} EWT documents with spacy.load(trf-tiny)'s entities")
PY
exit $status
