#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The transformers reference for the trained fixture model (train_tiny_ner.py): what
pipeline("token-classification") of transformers 4.57.6 (fp32, CPU) returns for EVERY EWT document (dev
then train, 858) with each aggregation strategy, written as MODEL_DIR/reference.jsonl, which
tests/unit/hf_trained.cpp compares nerpipe's CPU output with.

Long documents. A document of more than model_max_length (256) tokens with its [CLS] and [SEP] is run
with stride=32 for simple / first / average / max (the pipeline's overlapping windows and their merge;
nerpipe with annotate_options::stride = 32 windows it the same way). The pipeline refuses stride with
aggregation "none", so "none" of a long document is the pipeline without stride: the entities of the
first window only (it truncates). Documents that fit are run without stride.

Format (UTF-8, one JSON object per line, compact so that the fixture folder stays under 5 MB):
  line 1: {"format": "nerpipe-hf-trained-reference/2", "model_max_length": 256, "stride": 32,
           "documents": 858, "labels": [config.json's id2label], "entity_groups": [sorted group names],
           "versions": {...}, ...}
  then one line per document, in EWT order (dev then train):
  {"doc": n, "id": EWT id, "tokens": text tokens, "windows": 1 (fits) or the number of stride windows,
   "none":   [[label, index, gap, length, q(, word)], ...]    label: an index into "labels"
   "simple": [[group, gap, length, q(, word)], ...]          group: an index into "entity_groups"
   "first" | "average" | "max": "simple" where the list is exactly simple's (spans and q); else simple's
            entities taken in order: a number q >= 0 is the next simple entity's span with this score, a
            negative number -n skips n of simple's entities, and a row [group, gap, length, q(, word)] is
            an entity simple does not have}
  gap = start - the end of the list's previous entity (of any kind; the first: start itself), length = end - start,
  in code points of the document's text (the pipeline's offsets); q = round((1 - score) * 1e7), so
  score = 1 - q / 1e7 within 5e-8; word only where it is not the lowercased text[start:end] (ASCII).

Pinned: requirements-train.txt beside this file. Usage, from the repository root:
  nice -n 10 python tools/models/tiny_ner_reference.py tests/fixtures/hf/models/trained-tiny [--ewt tests/data/ewt]
Prints the entities of each strategy, the size and the time (about 3 minutes on one core).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import tokenizers
import torch
import transformers
from transformers import AutoTokenizer, BertForTokenClassification, pipeline

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ["none", "simple", "first", "average", "max"]
STRIDE = 32


def q7(score) -> int:
    return round((1.0 - float(score)) * 1e7)


def span(e):
    return e.get("entity", e.get("entity_group")), int(e["start"]), int(e["end"]), e["word"]


def rows(ents, text, labels, base=None):
    """Entities in the format above; with `base` (simple's entities), the relative form of first/average/max."""
    out, prev_end, cursor = [], 0, 0
    base_spans = [span(e) for e in base] if base is not None else []
    for e in ents:
        start, end = int(e["start"]), int(e["end"])
        if base is not None and span(e) in base_spans[cursor:]:
            skip = base_spans.index(span(e), cursor) - cursor
            if skip:
                out.append(-skip)
            out.append(q7(e["score"]))
            cursor += skip + 1
            prev_end = end
            continue
        if "entity" in e:
            row = [labels.index(e["entity"]), int(e["index"])]
        else:
            row = [labels.index(e["entity_group"])]
        row += [start - prev_end, end - start, q7(e["score"])]
        piece = text[start:end]
        if not (piece.isascii() and piece.lower() == e["word"]):
            row.append(e["word"])
        out.append(row)
        prev_end = end
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--ewt", type=Path, default=ROOT / "tests/data/ewt")
    ap.add_argument("--limit", type=int, default=0, help="only the first N documents (trying the script out)")
    ap.add_argument("--bf16", action="store_true",
                    help="also print on how many documents PyTorch's own bf16 run (model.to(torch.bfloat16), "
                         "LayerNorm and softmax in bf16 too) keeps the fp32 'simple' entity spans (the figure "
                         "tests/cuda/hf_bf16.cu quotes)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    model = BertForTokenClassification.from_pretrained(a.model_dir, dtype=torch.float32).eval()
    pipe = pipeline("token-classification", model=model, tokenizer=tok, device="cpu")
    mml = tok.model_max_length
    docs = []
    for split in ("dev", "train"):
        with open(a.ewt / f"{split}.jsonl", encoding="utf-8") as f:
            docs += [json.loads(line) for line in f if line.strip()]
    if a.limit:
        docs = docs[:a.limit]

    tags = [model.config.id2label[i] for i in range(model.config.num_labels)]
    groups = sorted({t[2:] if t[:2] in ("B-", "I-") else t for t in tags if t != "O"})
    header = {"format": "nerpipe-hf-trained-reference/2", "model_max_length": mml, "stride": STRIDE,
              "documents": len(docs), "labels": tags, "entity_groups": groups,
              "ewt": "tests/data/ewt: dev.jsonl then train.jsonl",
              "versions": {"python": sys.version.split()[0], "torch": torch.__version__.split("+")[0],
                           "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}}
    counts = {s: 0 for s in STRATEGIES}
    long_docs = 0
    kinds = {"same as simple": 0, "relative to simple": 0}
    with open(a.model_dir / "reference.jsonl", "w", encoding="utf-8", newline="\n") as out:
        out.write(json.dumps(header, ensure_ascii=False, separators=(",", ":")) + "\n")
        for n, d in enumerate(docs):
            text = d["text"]
            tokens = len(tok(text, add_special_tokens=False, verbose=False)["input_ids"])
            fits = tokens + tok.num_special_tokens_to_add() <= mml
            windows = 1
            if not fits:
                long_docs += 1
                windows = len(tok(text, truncation=True, max_length=mml, stride=STRIDE,
                                  return_overflowing_tokens=True)["input_ids"])
            rec = {"doc": n, "id": d["id"], "tokens": tokens, "windows": windows}
            for s in STRATEGIES:
                kw = {} if fits or s == "none" else {"stride": STRIDE}
                ents = pipe(text, aggregation_strategy=s, **kw)
                counts[s] += len(ents)
                if s in ("none", "simple"):
                    rec[s] = rows(ents, text, tags if s == "none" else groups)
                    if s == "simple":
                        simple = ents
                elif [span(e) + (q7(e["score"]),) for e in ents] == [span(e) + (q7(e["score"]),) for e in simple]:
                    rec[s] = "simple"
                    kinds["same as simple"] += 1
                else:
                    rec[s] = rows(ents, text, groups, simple)
                    kinds["relative to simple"] += 1
            out.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
    if a.bf16:
        pipe16 = pipeline("token-classification", model=BertForTokenClassification.from_pretrained(
            a.model_dir, dtype=torch.bfloat16).eval(), tokenizer=tok, device="cpu")
        same = 0
        for d in docs:
            kw = {"stride": STRIDE} if len(tok(d["text"], verbose=False)["input_ids"]) > mml else {}
            spans = [[(e["entity_group"], e["start"], e["end"], e["word"])
                      for e in p(d["text"], aggregation_strategy="simple", **kw)]
                     for p in (pipe, pipe16)]
            same += spans[0] == spans[1]
        print(f"PyTorch bf16 keeps the fp32 'simple' entity spans of {same}/{len(docs)} documents")
    path = a.model_dir / "reference.jsonl"
    print(f"{path}: {len(docs)} documents ({long_docs} longer than {mml} tokens: stride {STRIDE}, 'none' on the "
          f"first window), {path.stat().st_size / 1e6:.2f} MB, {time.time() - t0:.0f} s")
    for s in STRATEGIES:
        print(f"  {s:8s} {counts[s]} entities")
    print(f"  first/average/max lists: {kinds}")


if __name__ == "__main__":
    main()
