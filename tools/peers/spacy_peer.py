#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""spaCy's own speed on the documents bench/spacy/bench_spacy.cpp and bench_spacy_default.cpp use: EWT dev +
train (858 docs, tests/data/ewt).

Pinned reference (tools/fixtures/requirements-spacy.txt): spacy 3.8.7, thinc 8.3.11, blis 1.3.4,
numpy 2.4.6, en_core_web_sm 3.8.0 (or md). Runs on CPU, one process.

Usage:
  python tools/peers/spacy_peer.py [MODEL_DIR] [--data DIR] [--repeat N] [--batch-size B] [--full]
    MODEL_DIR    default models/en_core_web_sm-3.8.0 (scripts/get-model.sh)
    --full       also time the full default pipeline spacy.load(dir) (tok2vec, tagger, parser,
                 attribute_ruler, lemmatizer, ner) and the part of it the NER's output depends on
                 (tok2vec, parser, ner: what nerpipe's spacy_default_ner runs); bench_spacy_default.cpp
                 is the nerpipe side
Prints words/s (tokens per second) for the tokenizer alone and for nlp.pipe with only the ner
component (every other component excluded), best of N repeats after one warm-up pass, by wall time
and by process CPU time (the CPU figure is the one to compare on a shared machine). For one thread:
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 BLIS_NUM_THREADS=1 python tools/peers/spacy_peer.py --full
"""
import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(ROOT / "models" / "en_core_web_sm-3.8.0"))
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "ewt"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()

    import spacy
    texts = []
    for split in ("dev", "train"):
        with open(Path(args.data) / f"{split}.jsonl", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]

    def timeit(fn):
        fn()  # warm-up (lexeme cache, allocations)
        best = best_cpu = float("inf")
        words = 0
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            words = fn()
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        return words, best, best_cpu

    full = spacy.load(args.model)
    ner = spacy.load(args.model, exclude=[p for p in full.component_names if p != "ner"])
    assert ner.pipe_names == ["ner"]
    print(f"spacy {spacy.__version__}, model {full.meta['name']} {full.meta['version']}, "
          f"{len(texts)} documents, threads: OMP/BLIS {os.environ.get('OMP_NUM_THREADS', 'default')}")
    def report(what, words, secs, cpu):
        print(f"{what}: {words} words in {secs:.3f} s wall ({cpu:.3f} s CPU) = {words / secs:,.0f} words/s wall, "
              f"{words / cpu:,.0f} words/s CPU")

    report("tokenizer", *timeit(lambda: sum(len(ner.tokenizer(t)) for t in texts)))
    report(f"ner-only nlp.pipe(batch_size={args.batch_size})",
           *timeit(lambda: sum(len(d) for d in ner.pipe(texts, batch_size=args.batch_size))))
    if args.full:
        report(f"full default pipeline {full.pipe_names} nlp.pipe",
               *timeit(lambda: sum(len(d) for d in full.pipe(texts, batch_size=args.batch_size))))
        keep = ("tok2vec", "parser", "ner")
        parsed = spacy.load(args.model, exclude=[p for p in full.component_names if p not in keep])
        report(f"sentence starts + NER {parsed.pipe_names} nlp.pipe",
               *timeit(lambda: sum(len(d) for d in parsed.pipe(texts, batch_size=args.batch_size))))


if __name__ == "__main__":
    main()
