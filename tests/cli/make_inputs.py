#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the committed CLI test inputs (tests/cli/inputs/) from the EWT text in tests/data.

Run from the repository root: python3 tests/cli/make_inputs.py
The EWT texts are CC BY-SA 4.0 (see tests/cli/README.md). Standard library only.
"""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parents[2]
ewt = root / "tests" / "data" / "ewt"
out = root / "tests" / "cli" / "inputs"
out.mkdir(parents=True, exist_ok=True)

dev = [json.loads(l) for l in (ewt / "dev.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
train = [json.loads(l) for l in (ewt / "train.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False)


# good.jsonl: 12 real documents, short to long.
good = sorted(dev[:40], key=lambda d: len(d["text"]))[::3][:12]
(out / "good.jsonl").write_text("".join(dumps(d) + "\n" for d in good), encoding="utf-8")

# long.jsonl: one document far longer than any model window (train texts joined), then a short one.
long_text, i = "", 0
while len(long_text) < 60000:
    long_text += (" " if long_text else "") + train[i]["text"]
    i += 1
(out / "long.jsonl").write_text(dumps({"id": "long-1", "text": long_text}) + "\n" + dumps(dev[1]) + "\n", encoding="utf-8")

# unicode.jsonl: scripts, combining marks, emoji (astral), RTL, NBSP, tabs; CRLF line ends.
uni = [
    {"id": "u1", "text": "Angela Merkel met Emmanuel Macron in Paris on Tuesday."},
    {"id": "u2", "text": "José Müller-Lüdenscheidt visited Zürich and São Paulo in 2019."},
    {"id": "u3", "text": "😀 Apple announced the iPhone 15 in Cupertino, California 🍎🚀."},
    {"id": "u4", "text": "Ελληνικά: Η Αθήνα είναι η πρωτεύουσα. Русский: Москва — столица России."},
    {"id": "u5", "text": "日本語の文章です。東京タワーに行きました。 Then Barack Obama spoke in Chicago."},
    {"id": "u6", "text": "Combining: Cafe\u0301 de Flore in Paris; Zoe\u0308 Saldan\u0303a lives in New York."},
    {"id": "u7", "text": "Arabic: مرحبا بكم في القاهرة. Hebrew: שלום ירושלים. Microsoft Corp. is in Redmond."},
    {"id": "u8", "text": "Tabs\tand\u00a0no-break spaces: Google\u00a0LLC, Mountain\tView."},
    {"id": "u9", "text": "Mathematical 𝐀𝐁𝐂 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢; IBM bought Red Hat for $34 billion."},
    {"id": 10, "text": "Numeric id: the United Nations met in Geneva on 3 March 2021."},
]
(out / "unicode.jsonl").write_bytes(b"".join(dumps(d).encode("utf-8") + b"\r\n" for d in uni))

# plain.txt: the plain-text input format, one document per line, with a blank line.
plain = [dev[2]["text"], "", dev[3]["text"], "Short line about London and the BBC."]
(out / "plain.txt").write_text("\n".join(plain) + "\n", encoding="utf-8")

# bad.jsonl: every kind of bad record, between good ones; bad.kinds says what each line must give.
records = [
    (b'{"id": "g1", "text": "Barack Obama was born in Hawaii."}', "ok"),
    (b'{"id": "b1", "text": "unterminated string}', "invalid_json"),
    (b'', None),
    (b'{"id": "b2", "body": "no text field"}', "missing_text"),
    (b'{"id": "b3", "text": 12345}', "missing_text"),
    (b'{"id": "b4", "text": null}', "missing_text"),
    (b'{"id": "b5", "text": "raw invalid byte \xff in the text"}', "invalid_utf8"),
    (b'{"id": "g2", "text": "NUL inside \\u0000 the string is data; Paris is in France."}', "ok"),
    (b'["an", "array"]', "invalid_json"),
    (b'{"id": "b6", "text": "x"} trailing', "invalid_json"),
    (b'   \t ', None),
    (b'{"id": "b7", "text": "lone surrogate \\ud800 escape"}', "invalid_utf8"),
    (b'{"id": "g3", "text": "CRLF line ending; Berlin is in Germany."}\r', "ok"),
    (b'{"id": {"doc": 4, "part": [1, 2]}, "text": "Object id; Tokyo is in Japan."}', "ok"),
    (b'{"id": "g5", "text": ""}', "ok"),
    (b'{"id": "g6", "text": "   "}', "ok"),
    (b'{"id": "b8", "text": "trailing comma",}', "invalid_json"),
    (b'{"id": "b9", "text": "x", "n": 01}', "invalid_json"),
    (b'{"id": "b10", "text": "bad \\x escape"}', "invalid_json"),
    (b'not json at all', "invalid_json"),
    (b'{"id": 3.0e2, "text": "Number id; Rome is in Italy."}', "ok"),
    (b'{"id": "g7", "text": "dup", "text": "Duplicate keys: the last one wins, Madrid."}', "ok"),
    (b'{"id": "b11", "text": "truncated utf8 \xe2\x82"}', "invalid_utf8"),
    (b'{"id": "g8", "text": "The last record has no newline; Amazon is in Seattle."}', "ok"),
]
(out / "bad.jsonl").write_bytes(b"\n".join(r for r, _ in records))
(out / "bad.kinds").write_text("".join(k + "\n" for _, k in records if k), encoding="utf-8")

# big_line.jsonl: one record over a 4096-byte --max-record-bytes limit between two good ones.
(out / "big_line.jsonl").write_text(
    dumps({"id": 1, "text": "Before the big line, in Boston."}) + "\n" + dumps({"id": 2, "text": "word " * 2000}) + "\n" +
    dumps({"id": 3, "text": "After the big line, in Denver."}) + "\n", encoding="utf-8")
(out / "big_line.kinds").write_text("ok\ntoo_large\nok\n", encoding="utf-8")
print("wrote", sorted(p.name for p in out.iterdir()))
