#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""GPU peers for bench/encoder/bench_bert_cuda.cu: the same BERT-base shapes with random weights (12 layers,
hidden 768, 12 heads, FFN 3072, 512 positions, 9 labels; the committed uncased WordPiece tokenizer of
tests/fixtures/hf/tokenizer/uncased) on the same text (EWT dev + train repeated to --docs documents), in bf16
on one CUDA GPU:

  hf-pipeline   transformers.pipeline("token-classification", aggregation_strategy="simple"): text in,
                entities out (tokenizing, padding, the model, post-processing), at the best batch size of
                --batch-sizes (chosen on the first 2,000 documents, then timed on all of them)
  torch-encoder the encoder-only lower bound: pre-tokenized ids (truncated to 512), sorted by length, batches
                padded to their longest with an attention mask, BertForTokenClassification with SDPA attention
                in bf16 under inference_mode, logits argmax copied back; tokenizing is not timed

Both count real tokens (with [CLS]/[SEP]; long documents truncated to 512, as the pipeline does without a
stride; nerpipe instead windows them, so compare docs/s too). Prints one `PEER <name>: ...` line each and,
with --json, writes the figures there. No network: nothing is downloaded.

Environment: the GPU machine's Python (torch 2.11, transformers 5.x); pinned for local runs in
tools/peers/requirements-gpu-peer.txt.

Usage:
  python tools/peers/hf_gpu_peer.py [--docs 20000] [--batch-sizes 32 64 128 256] [--batch-tokens 32768]
                                    [--json peers.json]
"""
import argparse
import json
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForTokenClassification, PreTrainedTokenizerFast, pipeline

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def load_texts(n):
    base = []
    for split in ("dev", "train"):
        for line in open(ROOT / "tests" / "data" / "ewt" / f"{split}.jsonl", encoding="utf-8"):
            base.append(json.loads(line)["text"])
    return [base[i % len(base)] for i in range(n)]


DEVICE = "cuda"


def make_model(vocab_size):
    config = BertConfig(vocab_size=vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2,
                        layer_norm_eps=1e-12, hidden_act="gelu", num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    try:
        config._attn_implementation = "sdpa"
    except Exception:  # older/newer config classes: the default is SDPA where available
        pass
    torch.manual_seed(20240601)
    model = BertForTokenClassification(config)
    with torch.no_grad():  # "O" wins most tokens, as in bench_bert_cuda.cu, so post-processing does real work
        model.classifier.bias[0] += 3.5
    return model.to(device=DEVICE, dtype=torch.bfloat16).eval()


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def time_pipeline(model, tok, texts, batch_size):
    nlp = pipeline("token-classification", model=model, tokenizer=tok, device=0 if DEVICE == "cuda" else -1,
                   aggregation_strategy="simple")
    nlp(texts[: min(len(texts), 2 * batch_size)], batch_size=batch_size)  # warm-up
    sync()
    t0 = time.perf_counter()
    out = nlp(texts, batch_size=batch_size)
    sync()
    secs = time.perf_counter() - t0
    return secs, sum(len(o) for o in out)


def time_encoder(model, ids, batch_tokens):
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    batches, cur, longest = [], [], 0
    for i in order:
        n = len(ids[i])
        if cur and max(longest, n) * (len(cur) + 1) > batch_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    tensors = []
    for b in batches:
        width = max(len(ids[i]) for i in b)
        x = torch.zeros((len(b), width), dtype=torch.long)
        mask = torch.zeros((len(b), width), dtype=torch.long)
        for r, i in enumerate(b):
            x[r, : len(ids[i])] = torch.tensor(ids[i])
            mask[r, : len(ids[i])] = 1
        tensors.append((x.pin_memory(), mask.pin_memory()) if DEVICE == "cuda" else (x, mask))

    def run():
        outs = []
        with torch.inference_mode():
            for x, mask in tensors:
                logits = model(input_ids=x.to(DEVICE, non_blocking=True), attention_mask=mask.to(DEVICE, non_blocking=True)).logits
                outs.append(logits.argmax(-1).to("cpu", non_blocking=True))
        sync()
        return outs

    run()  # warm-up (cuBLAS plans, SDPA kernels)
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0, len(batches)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--batch-tokens", type=int, default=32768)
    ap.add_argument("--json")
    ap.add_argument("--cpu-smoke", action="store_true", help="run on the CPU (a check of the script, not a figure)")
    args = ap.parse_args()
    global DEVICE
    if args.cpu_smoke:
        DEVICE = "cpu"
    elif not torch.cuda.is_available():
        raise SystemExit("hf_gpu_peer: no CUDA device")

    tok = PreTrainedTokenizerFast(tokenizer_file=str(ROOT / "tests/fixtures/hf/tokenizer/uncased/tokenizer.json"),
                                  unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                                  mask_token="[MASK]", model_max_length=512)
    texts = load_texts(args.docs)
    ids = tok(texts, truncation=True, max_length=512)["input_ids"]
    tokens = sum(len(x) for x in ids)
    model = make_model(tok.vocab_size if hasattr(tok, "vocab_size") else len(tok))
    result = {"gpu": torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu", "torch": torch.__version__, "docs": len(texts), "tokens": tokens}
    import transformers
    result["transformers"] = transformers.__version__

    enc_s, nb = time_encoder(model, ids, args.batch_tokens)
    result["torch_encoder"] = {"seconds": enc_s, "batches": nb, "tokens_per_s": tokens / enc_s, "docs_per_s": len(texts) / enc_s}
    print(f"PEER torch-encoder bf16 (SDPA, length-sorted, {args.batch_tokens} padded tokens per batch): "
          f"{tokens / enc_s / 1e6:.3f} M tokens/s, {len(texts) / enc_s:.0f} docs/s ({len(texts)} docs, {tokens} tokens, "
          f"{enc_s:.2f} s, {nb} batches)", flush=True)

    probe = texts[: min(len(texts), 2000)]
    probe_tokens = sum(len(x) for x in ids[: len(probe)])
    best = None
    for bs in args.batch_sizes:
        secs, _ = time_pipeline(model, tok, probe, bs)
        print(f"PEER-PROBE hf-pipeline batch_size {bs}: {probe_tokens / secs / 1e6:.3f} M tokens/s on {len(probe)} docs",
              flush=True)
        if best is None or secs < best[1]:
            best = (bs, secs)
    secs, ents = time_pipeline(model, tok, texts, best[0])
    result["hf_pipeline"] = {"batch_size": best[0], "seconds": secs, "entities": ents, "tokens_per_s": tokens / secs,
                             "docs_per_s": len(texts) / secs}
    print(f"PEER hf-pipeline bf16 (token-classification, simple, batch_size {best[0]}): {tokens / secs / 1e6:.3f} M tokens/s, "
          f"{len(texts) / secs:.0f} docs/s ({len(texts)} docs, {ents} entities, {secs:.2f} s)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
