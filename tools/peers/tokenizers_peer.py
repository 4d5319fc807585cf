#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Peer benchmark for bench/tokenizer/bench_wordpiece.cpp and bench/tokenizer/bench_subword.cpp: Hugging Face
tokenizers on the same EWT documents, one thread. Pinned reference: see tools/fixtures/requirements-hf.txt and
requirements-tokenizers.txt (tokenizers 0.22.2, transformers 4.57.6).

Usage:
  RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \\
    python tools/peers/tokenizers_peer.py TOKENIZER_DIR DATA_DIR [--repeat N] [--only encode]
    TOKENIZER_DIR  tests/fixtures/hf/tokenizer/uncased (or cased, bpe-roberta, unigram-xlmr, unigram-deberta)
    DATA_DIR       folder with dev.jsonl and train.jsonl (tests/data/ewt)

Measures, over all dev + train documents (the benchmark's corpus), best of N passes:
  encode      a loop of tokenizers.Tokenizer.encode(text) (the Rust core, ids + offsets + word ids)
  encode_batch  Tokenizer.encode_batch(texts) (single thread when RAYON_NUM_THREADS=1)
  transformers  the fast tokenizer as the pipeline calls it: tok(text, return_offsets_mapping=True,
              return_special_tokens_mask=True), one document at a time
and prints MB/s and tokens/s by CPU time (process_time) and by wall time, plus the digest of the output
(the one tests/unit/hf_tokenizer.cpp checks nerpipe against).
"""
import json
import os
import sys
import time
from pathlib import Path

if os.environ.get("RAYON_NUM_THREADS") != "1":
    sys.exit("set RAYON_NUM_THREADS=1 (and TOKENIZERS_PARALLELISM=false) before starting Python")

import tokenizers  # noqa: E402
import transformers  # noqa: E402


def digest(rows):
    h = 0xCBF29CE484222325
    m = (1 << 64) - 1
    for ids, offs, words in rows:
        for t, (b, e), w in zip(ids, offs, words):
            for v in (t, b, e, -1 if w is None else w):
                h ^= v & m
                h = (h * 0x100000001B3) & m
    return h


def timed(fn, repeat):
    best_cpu = best_wall = float("inf")
    out = None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return out, best_cpu, best_wall


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 5
    tok_dir, data_dir = Path(args[0]), Path(args[1])
    texts = []
    for split in ("dev", "train"):
        texts += [json.loads(line)["text"] for line in open(data_dir / f"{split}.jsonl", encoding="utf-8")]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    print(f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}, "
          f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS')}; {len(texts)} documents, {nbytes} bytes")

    raw = tokenizers.Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    raw.no_truncation()
    raw.no_padding()
    fast = transformers.AutoTokenizer.from_pretrained(str(tok_dir))
    fast.model_max_length = 10**9

    def run_encode():
        return [raw.encode(t) for t in texts]

    def run_batch():
        return raw.encode_batch(texts)

    def run_transformers():
        return [fast(t, return_offsets_mapping=True, return_special_tokens_mask=True) for t in texts]

    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    for name, fn in (("encode", run_encode), ("encode_batch", run_batch), ("transformers", run_transformers)):
        if only and name != only:
            continue
        out, cpu, wall = timed(fn, repeat)
        if name == "transformers":
            rows = [(e["input_ids"], e["offset_mapping"], e.word_ids()) for e in out]
        else:
            rows = [(e.ids, e.offsets, e.word_ids) for e in out]
        ntok = sum(len(r[0]) for r in rows)
        print(f"{name:13s} cpu {cpu * 1e3:8.1f} ms  {nbytes / cpu / 1e6:7.2f} MB/s  {ntok / cpu / 1e6:6.3f} Mtok/s | "
              f"wall {wall * 1e3:8.1f} ms  {nbytes / wall / 1e6:7.2f} MB/s | tokens {ntok} digest {digest(rows):016x}")


if __name__ == "__main__":
    main()
