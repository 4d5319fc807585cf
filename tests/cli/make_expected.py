#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes reference outputs for the CLI tests with the reference implementations (a tool; versions in
requirements-cli.txt). Run from the repository root with the tools' Python:

    python tests/cli/make_expected.py

spaCy (models/en_core_web_sm-3.8.0, when present): `spacy.load(dir)`, the full default pipeline nerpipe
runs by default (the parser sets the sentence starts the NER reads), entities as (start_char, end_char,
label_), and the merged text of merge_entities + `" ".join(t.ent_type_ or t.text for t in doc)`.
Hugging Face (tests/fixtures/hf/models/{bert,distilbert}): transformers' token-classification
pipeline, aggregation_strategy="simple"; documents longer than one window are marked {"skip": true}
(the reference truncates or fails there; nerpipe windows them).
"""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parents[2]
cli = root / "tests" / "cli"
inputs = cli / "inputs"


def read_inputs(name):
    """(id, text) per non-blank line, as nerpipe reads them (text input: id = line number)."""
    out = []
    raw = (inputs / name).read_bytes().split(b"\n")
    for n, line in enumerate(raw, 1):
        line = line.rstrip(b"\r")
        if not line.strip(b" \t\r\f\v"):
            continue
        if name.endswith(".txt"):
            out.append((n, line.decode("utf-8")))
        else:
            obj = json.loads(line.decode("utf-8"))
            out.append((obj.get("id"), obj["text"]))
    return out


def write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    print("wrote", path.relative_to(root))


def spacy_expected():
    import spacy
    model = root / "models" / "en_core_web_sm-3.8.0"
    if not model.exists():
        print("skipping spaCy: no", model)
        return
    nlp = spacy.load(model)
    merged = spacy.load(model)
    merged.add_pipe("merge_entities")
    out = cli / "expected" / model.name
    for name in ["good.jsonl", "unicode.jsonl", "plain.txt", "long.jsonl"]:
        recs = []
        for doc_id, text in read_inputs(name):
            doc = nlp(text)
            recs.append({"id": doc_id, "entities": [{"start": e.start_char, "end": e.end_char, "label": e.label_}
                                                     for e in doc.ents]})
        write(out / (name.rsplit(".", 1)[0] + ".entities.jsonl"), recs)
    for name in ["good.jsonl", "unicode.jsonl"]:
        recs = []
        for doc_id, text in read_inputs(name):
            doc = merged(text)
            recs.append({"id": doc_id, "text": " ".join(t.ent_type_ or t.text for t in doc)})
        write(out / (name.rsplit(".", 1)[0] + ".merged.jsonl"), recs)


def hf_expected():
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline
    for fam in ["bert", "distilbert"]:
        model_dir = root / "tests" / "fixtures" / "hf" / "models" / fam
        if not model_dir.exists():
            print("skipping", fam)
            continue
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForTokenClassification.from_pretrained(model_dir)
        ner = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", device="cpu")
        limit = min(tok.model_max_length, model.config.max_position_embeddings)
        out = cli / "expected" / fam
        for name in ["good.jsonl", "unicode.jsonl", "plain.txt"]:
            recs = []
            for doc_id, text in read_inputs(name):
                if len(tok(text)["input_ids"]) > limit:
                    recs.append({"id": doc_id, "skip": True})
                    continue
                ents = ner(text)
                recs.append({"id": doc_id, "entities": [{"start": int(e["start"]), "end": int(e["end"]),
                                                         "label": e["entity_group"], "score": float(e["score"])}
                                                        for e in ents]})
            write(out / (name.rsplit(".", 1)[0] + ".entities.jsonl"), recs)


import sys

if "--spacy-only" not in sys.argv:
    hf_expected()
spacy_expected()
