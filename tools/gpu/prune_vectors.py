# SPDX-License-Identifier: Apache-2.0
"""Shrinks a spaCy pipeline's static vectors (vocab/vectors + vocab/key2row) to the rows a corpus reaches.

scripts/gpu-pack.sh uses it for en_core_web_md in .gpu/: the GPU check compares cuda_policy with cpu_policy on
the same copy, and the full table (24 MB + 8 MB) does not fit in what a GPU run may carry. Every key of every
token of the corpus (ORTH, LOWER and NORM) keeps its row, so on that corpus the copy gives the full model's
vectors; any other key becomes out-of-vocabulary in the copy.

    python tools/gpu/prune_vectors.py MODEL_DIR OUT_VOCAB_DIR CORPUS.jsonl [CORPUS.jsonl ...]

Needs spaCy (tools/peers/requirements*.txt pins it) for the pipeline's own tokenizer and string hashes.
"""
import json
import pathlib
import sys

import numpy as np
import spacy
import srsly


def main() -> None:
    model_dir, out_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    nlp = spacy.load(model_dir, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner", "senter"])
    keys = set()
    for corpus in sys.argv[3:]:
        with open(corpus, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                for t in nlp.tokenizer(json.loads(line)["text"]):
                    keys.update((t.orth, t.lower, t.norm))
    key2row = srsly.read_msgpack(model_dir / "vocab" / "key2row")
    with open(model_dir / "vocab" / "vectors", "rb") as f:
        data = np.load(f, allow_pickle=False)
    kept = {k: key2row[k] for k in keys if k in key2row and 0 <= key2row[k] < data.shape[0]}
    rows = sorted(set(kept.values()))
    new_row = {r: i for i, r in enumerate(rows)}
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "vectors", "wb") as f:
        np.save(f, np.ascontiguousarray(data[rows]), allow_pickle=False)
    srsly.write_msgpack(out_dir / "key2row", {k: new_row[r] for k, r in kept.items()})
    print(f"prune_vectors: {len(rows)} of {data.shape[0]} rows, {len(kept)} of {len(key2row)} keys", file=sys.stderr)


if __name__ == "__main__":
    main()
