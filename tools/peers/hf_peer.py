#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Peer timings for bench/encoder/bench_encoder.cpp: PyTorch (and ONNX Runtime when installed) on the CPU,
BERT-base shapes with random weights, the same EWT documents and thread counts.

Pinned: requirements-hf.txt (torch 2.15.0, transformers 4.57.6); ONNX Runtime 1.31.1 if present.

Documents (same rule as the C++ bench): the first EWT dev documents (file order) of at most 512 tokens,
taken while the total stays within 2048 tokens, tokenized with the bert-base-uncased tokenizer of
tests/fixtures/hf/models/bert.

Usage:
  python tools/peers/hf_peer.py [--threads 1 2] [--repeats 3] [--no-onnx]
Prints one line per (engine, mode, threads): wall and process-CPU seconds for the batch (best of the
repeats by wall time) and real tokens per second of each. Modes:
  per-doc      one document per forward call, no padding (what the pipeline does with batch_size=1)
  padded       all documents in one call, padded to the longest, attention_mask set
  pipeline     transformers.pipeline("token-classification", aggregation_strategy="simple"), batch_size=1
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertConfig, BertForTokenClassification, pipeline

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def pick_docs(tok):
    texts, encs, total = [], [], 0
    for line in open(ROOT / "tests/data/ewt/dev.jsonl", encoding="utf-8"):
        text = json.loads(line)["text"]
        ids = tok(text)["input_ids"]
        if len(ids) > 512:
            continue
        if total + len(ids) > 2048:
            break
        total += len(ids)
        texts.append(text)
        encs.append(ids)
    return texts, encs, total


def best_of(repeats, fn):
    """(wall seconds, process CPU seconds) of the fastest of `repeats` runs after one warm-up."""
    fn()
    best = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        r = (time.perf_counter() - t0, time.process_time() - c0)
        best = r if best is None or r[0] < best[0] else best
    return best


def report(r, total):
    engine, mode, threads, (wall, cpu) = r
    print(f"{engine:18s} {mode:9s} threads={threads}  wall {wall:.3f} s ({total / wall:.0f} tokens/s)  "
          f"cpu {cpu:.3f} s ({total / cpu:.0f} tokens/cpu-s)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-onnx", action="store_true")
    args = ap.parse_args()

    tok = AutoTokenizer.from_pretrained(ROOT / "tests/fixtures/hf/models/bert")
    texts, encs, total = pick_docs(tok)
    print(f"{len(texts)} docs, {total} tokens (longest {max(map(len, encs))})")
    torch.manual_seed(0)
    cfg = BertConfig(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                     label2id={l: i for i, l in enumerate(LABELS)})  # bert-base shapes
    model = BertForTokenClassification(cfg).eval()
    singles = [torch.tensor([ids]) for ids in encs]
    longest = max(map(len, encs))
    padded = torch.zeros((len(encs), longest), dtype=torch.long)
    mask = torch.zeros((len(encs), longest), dtype=torch.long)
    for i, ids in enumerate(encs):
        padded[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = 1

    rows = []
    for t in args.threads:
        torch.set_num_threads(t)
        with torch.inference_mode():
            s = best_of(args.repeats, lambda: [model(input_ids=x) for x in singles])
            rows.append(("pytorch", "per-doc", t, s))
            s = best_of(args.repeats, lambda: model(input_ids=padded, attention_mask=mask))
            rows.append(("pytorch", "padded", t, s))
        nlp = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", device="cpu")
        s = best_of(args.repeats, lambda: nlp(texts, batch_size=1))
        rows.append(("pytorch", "pipeline", t, s))
        for r in rows[-3:]:
            report(r, total)

    if not args.no_onnx:
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
            print("onnxruntime: not installed, skipped")
        if ort is not None:
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "bert.onnx")
                torch.onnx.export(model, (padded[:1], mask[:1]), path, input_names=["input_ids", "attention_mask"],
                                  output_names=["logits"], dynamic_axes={"input_ids": {0: "b", 1: "s"},
                                                                         "attention_mask": {0: "b", 1: "s"},
                                                                         "logits": {0: "b", 1: "s"}},
                                  opset_version=17, dynamo=False)
                for t in args.threads:
                    so = ort.SessionOptions()
                    so.intra_op_num_threads = t
                    so.inter_op_num_threads = 1
                    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                    one = [(x.numpy(), np.ones_like(x.numpy())) for x in singles]
                    s = best_of(args.repeats, lambda: [sess.run(None, {"input_ids": a, "attention_mask": m})
                                                       for a, m in one])
                    rows.append((f"onnxruntime {ort.__version__}", "per-doc", t, s))
                    s = best_of(args.repeats, lambda: sess.run(None, {"input_ids": padded.numpy(),
                                                                      "attention_mask": mask.numpy()}))
                    rows.append((f"onnxruntime {ort.__version__}", "padded", t, s))
                    for r in rows[-2:]:
                        report(r, total)


if __name__ == "__main__":
    main()
