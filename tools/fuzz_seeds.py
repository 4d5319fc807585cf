#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the fuzzers' seed corpora (tests/fuzz/corpus/<target>/) and the small spaCy pipeline the
spacy_model target mutates (tests/fuzz/spacy_base/). Python standard library only; deterministic (the same
bytes on every run), so the committed seeds can be regenerated and compared.

  python3 tools/fuzz_seeds.py            # from the repository root

Inputs: tests/fixtures/hf/tokenizer/{uncased,bpe-roberta,unigram-xlmr}/tokenizer.json (trimmed to a few
hundred tokens, so a seed parses in microseconds) and tests/data/ewt/dev.jsonl (a few lines). Each seed
starts with the selector byte of its target (see tests/fuzz/fuzz_targets.cpp).
"""
import json
import math
import pathlib
import random
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "fuzz"
CORPUS = FUZZ / "corpus"
BASE = FUZZ / "spacy_base"


# ---- msgpack (the subset srsly writes) ---------------------------------------------------------------------
class Raw(bytes):
    """Bytes written as they are (an already encoded value)."""


def mp(v):
    if isinstance(v, Raw):
        return bytes(v)
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if 0 <= v < 2**64:
            return b"\xcf" + struct.pack(">Q", v)
        if -32 <= v < 0:
            return struct.pack("b", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xdb" + struct.pack(">I", len(b))) + b
    if isinstance(v, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(v)) + bytes(v)
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(type(v))


def nd_array(shape, rng):
    n = 1
    for d in shape:
        n *= d
    data = struct.pack("<%df" % n, *[round(rng.gauss(0, 0.5), 3) for _ in range(n)])
    return {b"nd": True, b"type": "<f4", b"kind": b"", b"shape": list(shape), b"data": data}


# ---- spaCy string ids (MurmurHash64A, seed 1), for key2row keys --------------------------------------------
def murmurhash64a(data, seed=1):
    m, r, mask = 0xC6A4A7935BD1E995, 47, 2**64 - 1
    h = (seed ^ (len(data) * m)) & mask
    n = len(data) // 8
    for i in range(n):
        k = struct.unpack_from("<Q", data, 8 * i)[0]
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h ^= k
        h = (h * m) & mask
    tail = data[8 * n:]
    if tail:
        for i, b in enumerate(tail):
            h ^= b << (8 * i)
        h = (h * m) & mask
    h ^= h >> r
    h = (h * m) & mask
    h ^= h >> r
    return h


# ---- the spaCy pipeline: the synthetic one of the unit tests, with static vectors ---------------------------
def spacy_pipeline():
    rng = random.Random(15)
    W, H, P, depth, window, enc_pieces, mix_pieces = 8, 4, 2, 2, 1, 3, 3
    rows = [50, 20, 30, 30]
    vec_rows, vec_width = 6, 5
    files = {}
    files["meta.json"] = json.dumps({"lang": "en", "name": "fuzzbase", "version": "0.0.1", "pipeline": ["ner"]}).encode()
    files["config.cfg"] = (
        "[nlp]\nlang = \"en\"\npipeline = [\"ner\"]\ntokenizer = {\"@tokenizers\":\"spacy.Tokenizer.v1\"}\n\n"
        "[components]\n\n[components.ner]\nfactory = \"ner\"\nmoves = null\n\n"
        "[components.ner.model]\n@architectures = \"spacy.TransitionBasedParser.v2\"\nstate_type = \"ner\"\n"
        "extra_state_tokens = false\nhidden_width = %d\nmaxout_pieces = %d\nuse_upper = true\nnO = null\n\n"
        "[components.ner.model.tok2vec]\n@architectures = \"spacy.Tok2Vec.v2\"\n\n"
        "[components.ner.model.tok2vec.embed]\n@architectures = \"spacy.MultiHashEmbed.v2\"\nwidth = %d\n"
        "attrs = [\"NORM\",\"PREFIX\",\"SUFFIX\",\"SHAPE\"]\nrows = [%s]\ninclude_static_vectors = true\n\n"
        "[components.ner.model.tok2vec.encode]\n@architectures = \"spacy.MaxoutWindowEncoder.v2\"\nwidth = %d\n"
        "depth = %d\nwindow_size = %d\nmaxout_pieces = %d\n" % (H, P, W, ",".join(map(str, rows)), W, depth, window, enc_pieces)
    ).encode()
    files["tokenizer"] = mp({
        "prefix_search": "^\\(|^\"", "suffix_search": "\\)$|\\.$|,$", "infix_finditer": "-|(?<=[a-z])/(?=[a-z])",
        "token_match": None, "url_match": "^https?://\\S+$",
        "exceptions": {"don't": [{65: "do"}, {65: "n't", 67: "not"}], ":)": [{65: ":)"}]},
        "faster_heuristics": True,
    })
    files["ner/cfg"] = b'{"moves":null,"beam_width":1}'
    files["ner/moves"] = mp({
        "moves": json.dumps({"0": {}, "1": {"ORG": 10, "PERSON": 5, "GPE": 3}, "2": {"ORG": 10, "PERSON": 5, "GPE": 3},
                             "3": {"ORG": 10, "PERSON": 5, "GPE": 3}, "4": {"ORG": 10, "PERSON": 5, "GPE": 3, "": 1},
                             "5": {"": 1}}, separators=(",", ":")),
        "cfg": {"neg_key": None},
    })
    n_actions = 3 + 3 + 3 + 4 + 1  # B, I, L per label, U per label and the blocked "", O (as the loader counts)
    nodes = [("parser_model", {}, {})]
    nodes.append(("precomputable_affine", {}, {"W": nd_array((3, H, P, H), rng), "b": nd_array((H, P), rng),
                                               "pad": nd_array((1, 3, H, P), rng)}))
    nodes.append(("linear", {}, {"W": nd_array((n_actions, H), rng), "b": nd_array((n_actions,), rng)}))
    nodes.append(("linear", {}, {"W": nd_array((H, W), rng), "b": nd_array((H,), rng)}))
    nodes.append(("with_array(residual(expand_window>>maxout>>layernorm>>dropout)>>residual(...))",
                  {"pad": mp(depth * window)}, {}))
    for i, nv in enumerate(rows):
        nodes.append(("hashembed", {"column": mp(i), "seed": mp(8 + i)}, {"E": nd_array((nv, W), rng)}))
    nodes.append(("static_vectors", {}, {"W": nd_array((W, vec_width), rng)}))
    nodes.append(("maxout", {}, {"W": nd_array((W, mix_pieces, W * 5), rng), "b": nd_array((W, mix_pieces), rng)}))
    nodes.append(("layernorm", {}, {"G": nd_array((W,), rng), "b": nd_array((W,), rng)}))
    for _ in range(depth):
        nodes.append(("maxout", {}, {"W": nd_array((W, enc_pieces, W * (2 * window + 1)), rng),
                                     "b": nd_array((W, enc_pieces), rng)}))
        nodes.append(("layernorm", {}, {"G": nd_array((W,), rng), "b": nd_array((W,), rng)}))
    files["ner/model"] = mp({
        "nodes": [{"index": i, "name": n, "dims": {}, "refs": {}} for i, (n, _, _) in enumerate(nodes)],
        "attrs": [{k: v for k, v in a.items()} for _, a, _ in nodes],
        "params": [p for _, _, p in nodes],
        "shims": [[] for _ in nodes],
    })
    # Static vectors: a .npy table and key2row for a few words (ORTH string ids).
    n = vec_rows * vec_width
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (vec_rows, vec_width)
    header = header + " " * (118 - len(header)) + "\n"
    files["vocab/vectors"] = (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
                              + struct.pack("<%df" % n, *[round(rng.gauss(0, 1), 3) for _ in range(n)]))
    words = ["Barack", "Obama", "Hawaii", "the", "born", "York"]
    files["vocab/key2row"] = mp({murmurhash64a(w.encode()): i for i, w in enumerate(words)})
    files["vocab/vectors.cfg"] = b'{"mode":"default"}'
    files["vocab/lookups.bin"] = mp({"lexeme_norm": {murmurhash64a(b"Barack"): "barack", murmurhash64a(b"n't"): "not"}})
    return files


# ---- tokenizer.json files, trimmed ---------------------------------------------------------------------------
def small_wordpiece():
    j = json.load(open(ROOT / "tests/fixtures/hf/tokenizer/uncased/tokenizer.json", encoding="utf-8"))
    keep = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "was", "born", "in", "hawaii", "obama", "new", "york",
            "un", "##aff", "##able", "##s", "##ing", "##ed", ".", ",", "(", ")", "'", "t", "don", "!", "?", "##a", "##b", "北", "京"]
    old = j["model"]["vocab"]
    vocab = {t: i for i, t in enumerate([t for t in keep if t in old])}
    j["model"]["vocab"] = vocab
    j["added_tokens"] = [dict(a, id=vocab[a["content"]]) for a in j["added_tokens"] if a["content"] in vocab]
    for name, st in j["post_processor"]["special_tokens"].items():
        st["ids"] = [vocab[name]]
    return json.dumps(j, ensure_ascii=False, separators=(",", ":")).encode()


def small_bpe():
    j = json.load(open(ROOT / "tests/fixtures/hf/tokenizer/bpe-roberta/tokenizer.json", encoding="utf-8"))
    old = j["model"]["vocab"]
    vocab = {t: i for t, i in old.items() if i < 320}
    merges = []
    for mg in j["model"]["merges"]:
        a, b = mg if isinstance(mg, list) else mg.split(" ")
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(mg)
    j["model"]["vocab"] = vocab
    j["model"]["merges"] = merges
    j["added_tokens"] = [a for a in j["added_tokens"] if a["id"] in vocab.values()]
    return json.dumps(j, ensure_ascii=False, separators=(",", ":")).encode()


def small_unigram():
    j = json.load(open(ROOT / "tests/fixtures/hf/tokenizer/unigram-xlmr/tokenizer.json", encoding="utf-8"))
    j["model"]["vocab"] = j["model"]["vocab"][:200]
    j["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Replace", "pattern": {"String": "  "},
                                                                                 "content": " "}]}
    j["added_tokens"] = [a for a in j["added_tokens"] if a["id"] < 200]
    return json.dumps(j, ensure_ascii=False, separators=(",", ":")).encode()


def safetensors(tensors):
    header, data = {}, b""
    for name, shape, dtype, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def tiny_bert_weights():
    # The tiny config of fuzz_safetensors: vocab 4, hidden 2, 1 layer, intermediate 2, positions 4, 1 type, 2 labels.
    def f(*shape):
        n = math.prod(shape)
        return struct.pack("<%df" % n, *([0.25] * n))

    t = [("bert.embeddings.word_embeddings.weight", [4, 2]), ("bert.embeddings.position_embeddings.weight", [4, 2]),
         ("bert.embeddings.token_type_embeddings.weight", [1, 2]), ("bert.embeddings.LayerNorm.weight", [2]),
         ("bert.embeddings.LayerNorm.bias", [2])]
    p = "bert.encoder.layer.0."
    for m in ("query", "key", "value"):
        t += [(p + "attention.self." + m + ".weight", [2, 2]), (p + "attention.self." + m + ".bias", [2])]
    t += [(p + "attention.output.dense.weight", [2, 2]), (p + "attention.output.dense.bias", [2]),
          (p + "attention.output.LayerNorm.weight", [2]), (p + "attention.output.LayerNorm.bias", [2]),
          (p + "intermediate.dense.weight", [2, 2]), (p + "intermediate.dense.bias", [2]),
          (p + "output.dense.weight", [2, 2]), (p + "output.dense.bias", [2]),
          (p + "output.LayerNorm.weight", [2]), (p + "output.LayerNorm.bias", [2]),
          ("classifier.weight", [2, 2]), ("classifier.bias", [2])]
    return safetensors([(n, s, "F32", f(*s)) for n, s in t])


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    if BASE.exists():
        shutil.rmtree(BASE)
    # spacy_base and the spaCy seeds
    files = spacy_pipeline()
    for name, data in files.items():
        (BASE / name).parent.mkdir(parents=True, exist_ok=True)
        (BASE / name).write_bytes(data)
    order = ["config.cfg", "meta.json", "tokenizer", "ner/cfg", "ner/moves", "ner/model", "vocab/vectors", "vocab/key2row",
             "vocab/lookups.bin", "vocab/vectors.cfg"]
    for i, name in enumerate(order):
        write("spacy_model", "base-" + name.replace("/", "-"), bytes([i]) + files[name])
    by_reader = [("tokenizer", 0), ("vocab/lookups.bin", 1), ("ner/moves", 2), ("ner/model", 3), ("vocab/key2row", 4),
                 ("vocab/vectors", 5), ("config.cfg", 6), ("meta.json", 7), ("ner/cfg", 7)]
    for name, sel in by_reader:
        write("spacy_files", "%d-%s" % (sel, name.replace("/", "-")), bytes([sel]) + files[name])
    write("spacy_files", "8-array", bytes([8]) + mp(nd_array((2, 3), random.Random(1))))

    # jsonl
    ewt = (ROOT / "tests/data/ewt/dev.jsonl").read_bytes().split(b"\n")[:3]
    lines = b"\n".join(l[:300] + b'"}' if len(l) > 300 else l for l in ewt) + b"\n"
    bad = (b'{"id": "g1", "text": "Barack Obama was born in Hawaii."}\n{"id": "b1", "text": "unterminated}\n\n'
           b'{"id": "b3", "text": 12345}\n{"id": "b5", "text": "raw \xff byte"}\n["an", "array"]\n'
           b'{"id": "b6", "text": "x"} trailing\n\xef\xbb\xbf{"id": "bom", "text": "late BOM"}\n'
           b'{"id": {"doc": 4, "part": [1, 2]}, "text": "Object id"}\r\n{"id": 3.0e2, "text": "lone \\ud800 surrogate"}\n'
           b'{"id": "g8", "text": "no final newline"}')
    for sel in (0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40):
        write("jsonl", "bad-%02x" % sel, bytes([sel]) + bad)
    write("jsonl", "ewt-00", b"\x00" + lines)
    write("jsonl", "text-01", b"\x01line one\n\nline two \xe2\x82\xac\n")
    out = (b'{"id": "g1", "entities": []}\n{"id": "b1", "line": 2, "error": "invalid_json: x"}\n'
           b'{"id": "b3", "line": 4, "error": "missing_text: x"}\n{"id": "b5", "line": 5, "er')
    write("jsonl", "resume-80", b"\x80" + bad + b"\x1e" + out)
    write("jsonl", "resume-89", b"\x89" + bad + b"\x1e" + out)

    # tokenizer_json
    write("tokenizer_json", "wordpiece", b"\x00" + small_wordpiece())
    write("tokenizer_json", "bpe", b"\x01" + small_bpe())
    write("tokenizer_json", "unigram", b"\x01" + small_unigram())
    for name in ("uncased", "bpe-roberta", "unigram-xlmr"):
        cfg = (ROOT / "tests/fixtures/hf/tokenizer" / name / "tokenizer_config.json").read_bytes()
        j = json.loads(cfg)
        j.pop("added_tokens_decoder", None)
        write("tokenizer_json", "config-" + name, b"\x02" + json.dumps(j, separators=(",", ":")).encode())

    # tokenizers: texts for each of the four fixture tokenizers
    texts = [b"Barack Obama was born in Hawaii.", "  Ünïcödé, 北京 😀 — don't\ttabs\u00a0x ".encode(),
             b"unaffable r\xc3\xa9sum\xc3\xa9 http://x.org/a?b=1", b""]
    for sel in range(4):
        for k, t in enumerate(texts):
            write("tokenizers", "t%d-%d" % (sel, k), bytes([sel, 0x25]) + t)

    # safetensors and config.json
    write("safetensors", "tiny-bert", b"\x00" + tiny_bert_weights())
    write("safetensors", "f16-bf16", b"\x00" + safetensors([("a", [2], "F16", b"\x00\x3c\x00\xc0"), ("b", [1, 2], "BF16", b"\x80\x3f\x00\x40"),
                                                           ("c", [0], "F32", b""), ("d", [3], "I8", b"\x01\x02\x03")]))
    cfg = json.loads((ROOT / "tests/fixtures/hf/models/bert/config.json").read_text())
    write("safetensors", "config-bert", b"\x01" + json.dumps(cfg, separators=(",", ":")).encode())
    cfg = json.loads((ROOT / "tests/fixtures/hf/models/distilbert/config.json").read_text())
    write("safetensors", "config-distilbert", b"\x01" + json.dumps(cfg, separators=(",", ":")).encode())


if __name__ == "__main__":
    main()
