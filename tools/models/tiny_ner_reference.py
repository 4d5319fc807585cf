#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The transformers reference for a model made by train_tiny_ner.py: the token-classification pipeline
(aggregation "simple", fp32, CPU) on every EWT document that fits in one 512-token window (the pipeline
truncates longer ones unless given a stride; nerpipe never truncates), written to
MODEL_DIR/reference.jsonl as {"index", "text", "entities": [{"entity_group", "score", "word", "start", "end"}]}.
`index` counts dev then train documents. tests/unit/hf_trained.cpp compares nerpipe's CPU output with it.

Pinned: requirements-train.txt beside this file.
Usage: python tools/models/tiny_ner_reference.py MODEL_DIR EWT_DIR
"""
import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer, BertForTokenClassification, pipeline


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model_dir, ewt_dir = Path(sys.argv[1]), Path(sys.argv[2])
    raw = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    if raw.truncation is not None or raw.padding is not None:  # models saved before the fix kept the fixture's
        raw.no_truncation()
        raw.no_padding()
        raw.save(str(model_dir / "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertForTokenClassification.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    pipe = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", device="cpu")
    texts = []
    for split in ("dev", "train"):
        with open(ewt_dir / f"{split}.jsonl", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    n = n_ent = 0
    with open(model_dir / "reference.jsonl", "w", encoding="utf-8") as out:
        for i, text in enumerate(texts):
            if len(tok(text)["input_ids"]) > 512:
                continue
            ents = [{"entity_group": e["entity_group"], "score": float(e["score"]), "word": e["word"],
                     "start": int(e["start"]), "end": int(e["end"])} for e in pipe(text)]
            out.write(json.dumps({"index": i, "text": text, "entities": ents}, ensure_ascii=False) + "\n")
            n += 1
            n_ent += len(ents)
    print(f"{model_dir / 'reference.jsonl'}: {n} of {len(texts)} documents, {n_ent} entities")


if __name__ == "__main__":
    main()
