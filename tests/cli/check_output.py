#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks one `nerpipe run` output against its input (standard library only; a test tool).

  check_output.py --input IN --output OUT [--format entities|merged|iob] [--input-format jsonl|text]
                  [--text-field text] [--id-field id] [--kinds KINDS] [--expected EXPECTED] [--long-coverage]
                  [--invalid-utf8 reject|replace]

Always: every output line is strict JSON; exactly one record per non-blank input line, in input order;
each record's id is the input's id (error records: also its line number); entity offsets are code
points and `text` is input[start:end]. --kinds: a file with one word per non-blank input line, "ok" or
the error kind the record must have. --expected: reference entities (start, end, label; score within
0.01 when both have one). --long-coverage: in every document over 20,000 characters some entity starts
in the last tenth (the document was windowed, not truncated).
"""
import argparse
import json
import sys

BLANK = " \t\r\f\v"


def fail(msg):
    print("check_output: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def strict_json(line, where):
    def bad_constant(name):
        raise ValueError("non-JSON constant " + name)
    try:
        return json.loads(line, parse_constant=bad_constant)
    except ValueError as e:
        fail("%s: not valid JSON (%s): %r" % (where, e, line[:200]))


def fix_text(text, replace):
    """What nerpipe reads with --invalid-utf8 replace: lone surrogates (from escapes) become U+FFFD."""
    if not replace or text is None:
        return text
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def input_records(path, input_format, text_field, id_field, replace):
    """(line number, id as JSON value or None, text or None) per non-blank line."""
    errors = "replace" if replace else "strict"
    data = open(path, "rb").read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for n, raw in enumerate(lines, 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.strip(BLANK.encode()) == b"":
            continue
        if input_format == "text":
            try:
                out.append((n, n, raw.decode("utf-8", errors)))
            except UnicodeDecodeError:
                out.append((n, n, None))
            continue
        try:
            obj = json.loads(raw.decode("utf-8", errors))
        except (ValueError, UnicodeDecodeError):
            obj = None
        if isinstance(obj, dict):
            text = obj.get(text_field)
            out.append((n, obj.get(id_field), fix_text(text, replace) if isinstance(text, str) else None))
        else:
            out.append((n, "<unparsed>", None))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--format", default="entities", choices=["entities", "merged", "iob"])
    ap.add_argument("--input-format", default="jsonl", choices=["jsonl", "text"])
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--id-field", default="id")
    ap.add_argument("--kinds")
    ap.add_argument("--expected")
    ap.add_argument("--long-coverage", action="store_true")
    ap.add_argument("--invalid-utf8", default="reject", choices=["reject", "replace"])
    a = ap.parse_args()

    inputs = input_records(a.input, a.input_format, a.text_field, a.id_field, a.invalid_utf8 == "replace")
    out_bytes = open(a.output, "rb").read()
    if out_bytes and not out_bytes.endswith(b"\n"):
        fail("output does not end with a newline")
    try:
        out_lines = out_bytes.decode("utf-8").split("\n")[:-1] if out_bytes else []
    except UnicodeDecodeError as e:
        fail("output is not UTF-8: %s" % e)
    if len(out_lines) != len(inputs):
        fail("%d output records for %d non-blank input lines" % (len(out_lines), len(inputs)))
    kinds = open(a.kinds).read().split() if a.kinds else None
    if kinds is not None and len(kinds) != len(inputs):
        fail("kinds file has %d entries for %d records" % (len(kinds), len(inputs)))
    expected = None
    if a.expected:
        expected = [json.loads(l) for l in open(a.expected, encoding="utf-8") if l.strip()]
        if len(expected) != len(inputs):
            fail("expected file has %d records for %d inputs" % (len(expected), len(inputs)))

    errors = 0
    for i, (line, (n, want_id, text)) in enumerate(zip(out_lines, inputs)):
        where = "output record %d (input line %d)" % (i + 1, n)
        rec = strict_json(line, where)
        if not isinstance(rec, dict) or "id" not in rec:
            fail(where + ": not an object with an id")
        # An error record may lack the id when the line could not be read that far (too large, broken JSON).
        if want_id != "<unparsed>" and rec["id"] != want_id and not ("error" in rec and rec["id"] is None):
            fail(where + ": id %r, expected %r" % (rec["id"], want_id))
        if "error" in rec:
            errors += 1
            if set(rec) != {"id", "line", "error"}:
                fail(where + ": error record keys %s" % sorted(rec))
            if rec["line"] != n:
                fail(where + ": line %r, expected %d" % (rec["line"], n))
            kind = rec["error"].split(":")[0]
            if kinds is not None and kinds[i] != kind:
                fail(where + ": error kind %r, expected %r (%s)" % (kind, kinds[i], rec["error"]))
            if kinds is None:
                fail(where + ": unexpected error record: " + rec["error"])
            continue
        if kinds is not None and kinds[i] != "ok":
            fail(where + ": expected an error of kind %r, got a result" % kinds[i])
        if text is None:
            fail(where + ": a result for an input without usable text")
        if a.format == "entities":
            if set(rec) != {"id", "entities"}:
                fail(where + ": keys %s" % sorted(rec))
            last = -1
            for e in rec["entities"]:
                if not (isinstance(e["start"], int) and isinstance(e["end"], int) and 0 <= e["start"] < e["end"] <= len(text)):
                    fail(where + ": bad offsets %r for a text of %d code points" % (e, len(text)))
                if e["start"] < last:
                    fail(where + ": entities not sorted by start")
                last = e["start"]
                if e["text"] != text[e["start"]:e["end"]]:
                    fail(where + ": entity text %r but input[%d:%d] is %r" % (e["text"], e["start"], e["end"], text[e["start"]:e["end"]]))
                if not isinstance(e["label"], str) or not e["label"]:
                    fail(where + ": bad label in %r" % e)
                if not (isinstance(e["score"], (int, float)) and 0.0 <= e["score"] <= 1.0):
                    fail(where + ": bad score in %r" % e)
            if a.long_coverage and len(text) > 20000:
                if not any(e["start"] >= 0.9 * len(text) for e in rec["entities"]):
                    fail(where + ": no entity in the last tenth of a %d-character document (truncated?)" % len(text))
            if expected is not None and not expected[i].get("skip"):
                exp = expected[i]
                got = [(e["start"], e["end"], e["label"]) for e in rec["entities"]]
                want = [(e["start"], e["end"], e["label"]) for e in exp["entities"]]
                if got != want:
                    fail(where + ": entities differ from the reference\n  got  %s\n  want %s" % (got, want))
                for g, w in zip(rec["entities"], exp["entities"]):
                    if "score" in w and abs(g["score"] - w["score"]) > 0.01:
                        fail(where + ": score %r, reference %r" % (g["score"], w["score"]))
        elif a.format == "merged":
            if set(rec) != {"id", "text"} or not isinstance(rec["text"], str):
                fail(where + ": merged record keys %s" % sorted(rec))
            if text.strip() and not rec["text"]:
                fail(where + ": empty merged text")
            if expected is not None and not expected[i].get("skip") and rec["text"] != expected[i]["text"]:
                fail(where + ": merged text differs from the reference\n  got  %r\n  want %r" % (rec["text"], expected[i]["text"]))
        else:
            if set(rec) != {"id", "tokens", "tags"} or len(rec["tokens"]) != len(rec["tags"]):
                fail(where + ": iob record must have tokens and tags of equal length")
            prev = "O"
            for t in rec["tags"]:
                if not (t == "O" or t[:2] in ("B-", "I-")):
                    fail(where + ": bad tag %r" % t)
                if t.startswith("I-") and prev[2:] != t[2:]:
                    fail(where + ": %r follows %r" % (t, prev))
                prev = t
    print("check_output: ok: %d records (%d errors) in %s" % (len(out_lines), errors, a.output))


main()
