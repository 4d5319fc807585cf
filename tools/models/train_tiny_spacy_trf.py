#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Trains the small spaCy transformer pipeline committed as tests/fixtures/spacy/trf-tiny/.

Why: nerpipe runs spaCy's transformer pipelines (en_core_web_trf's shape: a `transformer` component,
spacy-transformers.TransformerModel.v3 over strided spans, and an `ner` whose TransitionBasedParser.v2
listens to it through TransformerListener.v1 with reduce_mean pooling, use_upper = false) from the spaCy
directory alone; tests/unit/spacy_trf.cpp checks its entities against spacy.load(dir) on every EWT document.
That needs a TRAINED pipeline (random weights put near ties everywhere) small enough to commit.

What: RoBERTa from transformers' RobertaConfig, randomly initialised (seeded): 2 layers, hidden 64, 4 heads,
FFN 128, 514 positions, over the byte-level BPE tokenizer of tests/fixtures/hf/tokenizer/bpe-roberta (8,000
entries, trained with `tokenizers` on the EWT text by tools/fixtures/hf_subword_fixtures.py). Spans of 48
spaCy tokens every 32 (strided_spans.v1; most EWT documents are cut into several overlapping spans, so the
pooling across spans is exercised). The NER: hidden_width 64, maxout_pieces 2, use_upper = false, as in
en_core_web_trf. Both trained together (grad_factor 1.0) from scratch on the silver labels of en_core_web_sm
3.8.0's NER alone (tok2vec + ner) over the 858 EWT documents (tests/data/ewt), Adam, seeded.

Pinned: requirements-spacy-trf.txt beside this file (CPython 3.11.7). From the repository root:
  nice -n 10 python tools/models/train_tiny_spacy_trf.py models/en_core_web_sm-3.8.0 tests/fixtures/spacy/trf-tiny
  nice -n 10 python tools/fixtures/spacy_trf_fixtures.py tests/fixtures/spacy/trf-tiny
Arguments: SPACY_SM_DIR OUT_DIR [--epochs 6] [--threads 2] [--ewt tests/data/ewt]
"""
import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import spacy
import torch
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch
from transformers import RobertaConfig, RobertaModel

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261206


def fix_name(cfg_path):
    """TransformerModel's `name` is where initialize() found the Hugging Face files (a temporary folder); loading
    the pipeline reads transformer/model instead, so the saved config names the model, not that folder."""
    text = cfg_path.read_text(encoding="utf-8")
    lines = [('name = "roberta-tiny"' if line.startswith("name = ") and "roberta-tiny" in line else line)
             for line in text.split("\n")]
    cfg_path.write_text("\n".join(lines), encoding="utf-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spacy_sm_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ewt", type=Path, default=ROOT / "tests/data/ewt")
    ap.add_argument("--tokenizer", type=Path, default=ROOT / "tests/fixtures/hf/tokenizer/bpe-roberta")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    fix_random_seed(SEED)
    torch.manual_seed(SEED)

    texts = []
    for split in ("dev", "train"):
        with open(a.ewt / f"{split}.jsonl", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]

    # Silver labels: en_core_web_sm's NER alone, as character spans.
    sm = spacy.load(a.spacy_sm_dir, exclude=["parser", "tagger", "attribute_ruler", "lemmatizer", "senter"])
    silver = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in sm.pipe(texts, batch_size=32)]
    labels = sorted({l for ents in silver for _, _, l in ents})
    print(f"{len(texts)} documents, {sum(map(len, silver))} silver entities, labels {labels}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        # The randomly initialised RoBERTa and its tokenizer, where TransformerModel's `name` finds them.
        hf_dir = Path(tmp) / "roberta-tiny"
        cfg = RobertaConfig(vocab_size=8000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, max_position_embeddings=514, type_vocab_size=1,
                            pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
        RobertaModel(cfg).save_pretrained(hf_dir)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(a.tokenizer / name, hf_dir / name)

        nlp = spacy.blank("en")
        nlp.add_pipe("transformer", config={"model": {
            "@architectures": "spacy-transformers.TransformerModel.v3",
            "name": str(hf_dir),
            "tokenizer_config": {"use_fast": True},
            "transformer_config": {},
            "mixed_precision": False,
            "grad_scaler_config": {},
            "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 48, "stride": 32},
        }})
        nlp.add_pipe("ner", config={"model": {
            "@architectures": "spacy.TransitionBasedParser.v2",
            "state_type": "ner",
            "extra_state_tokens": False,
            "hidden_width": 64,
            "maxout_pieces": 2,
            "use_upper": False,
            "nO": None,
            "tok2vec": {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
                        "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "*"},
        }})
        examples = []
        for text, ents in zip(texts, silver):
            doc = nlp.make_doc(text)
            spans = [doc.char_span(s, e, label=l) for s, e, l in ents]
            examples.append(Example.from_dict(doc, {"entities": [(s.start_char, s.end_char, s.label_)
                                                                  for s in spans if s is not None]}))
        for label in labels:
            nlp.get_pipe("ner").add_label(label)
        optimizer = nlp.initialize(lambda: examples[:64])
        optimizer.learn_rate = 1e-3
        rng = random.Random(SEED)
        t0 = time.time()
        for epoch in range(a.epochs):
            rng.shuffle(examples)
            losses = {}
            for batch in minibatch(examples, size=4):
                nlp.update(batch, sgd=optimizer, drop=0.1, losses=losses)
            print(f"epoch {epoch + 1}: losses {losses} ({time.time() - t0:.0f} s)", flush=True)
        nlp.meta["name"] = "trf_tiny"
        nlp.meta["version"] = "0.0.1"
        if a.out_dir.exists():
            shutil.rmtree(a.out_dir)
        nlp.to_disk(a.out_dir)
    fix_name(a.out_dir / "config.cfg")

    # How close the pipeline comes to its teacher (on the text it was trained on).
    nlp = spacy.load(a.out_dir)
    same = total = 0
    for doc, ents in zip(nlp.pipe(texts, batch_size=16), silver):
        got = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
        same += len(got & set(ents))
        total += len(ents)
    print(f"entities of sm recovered: {same}/{total} ({100.0 * same / max(total, 1):.1f}%)")


if __name__ == "__main__":
    main()
