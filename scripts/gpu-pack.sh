#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Packs what scripts/gpu-check.sh needs on a GPU machine that reaches no package registry, into .gpu/
# (git-ignored; carried with the working tree, which together with the tracked files may hold 64 MiB):
#   .gpu/deps.tar.xz     the Debian packages of our dependencies, unpacked (dpkg -x) and pruned of what no
#                        build or test uses (OpenBLAS's static library, docs, LAPACK, reference BLAS, 16/32-bit PCRE2)
#   .gpu/COMMIT          the commit the pack was made for
#   .gpu/cudnn.tar.xz    cudnn-frontend/include (scripts/get-cudnn-frontend.sh) and cudnn/include (the cuDNN 9
#                        headers of this machine's CUDA toolkit); libcudnn itself is found on the GPU machine
#   .gpu/models.tar.xz   en_core_web_sm: what spacy.load(dir) runs for the entities (tokenizer, vocab without
#                        strings.json, tok2vec, parser, ner); en_core_web_md: the NER-only pipeline (ner and its
#                        static vectors, shrunk by tools/gpu/prune_vectors.py to the rows the EWT text reaches;
#                        the packed config.cfg disables the parser, so spacy.load of that copy runs NER-only):
#                        md's tok2vec + parser (6.8 MB) do not fit beside everything else
# (The EWT text travels with the tree in tests/data; the trained BERT fixture is committed.) Run on a Debian 12
# machine with the models in models/ (scripts/get-model.sh models sm; ... md). Prints the sizes and fails when
# .gpu/ plus the tracked files exceed 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu
rm -rf "$out"
mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

# ---- Debian packages, unpacked and pruned ----
pkgs=(libsimdjson-dev libsimdjson14 libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev libopenblas0
      libgfortran5 catch2 libbenchmark-dev libbenchmark1debian libutf8proc-dev libutf8proc2 libpcre2-dev
      libpcre2-8-0 libpcre2-posix3 libmsgpack-cxx-dev libcli11-dev)
mkdir -p "$stage/debs" "$stage/deps"
(cd "$stage/debs" && apt-get download "${pkgs[@]}" >/dev/null)
for d in "$stage"/debs/*.deb; do dpkg -x "$d" "$stage/deps"; done
# OpenBLAS's static library is 58 MB; Catch2's and Google Benchmark's static mains stay (their CMake configs name them).
find "$stage/deps" \( -path '*openblas-pthread/*.a' -o -path '*/blas/*' -o -path '*openblas-pthread/liblapack*' \) -delete
rm -rf "$stage/deps/usr/share/doc" "$stage/deps/usr/share/man" "$stage/deps/usr/share/lintian"
tar -C "$stage/deps" -cf - . | xz -6 -T0 > "$out/deps.tar.xz"

# ---- cuDNN frontend + cuDNN headers ----
bash scripts/get-cudnn-frontend.sh "$stage/cudnn/cudnn-frontend" >/dev/null
cudnn_inc="${NERPIPE_CUDNN_INCLUDE_DIR:-/usr/local/cuda/include}"
ls "$cudnn_inc"/cudnn*.h >/dev/null 2>&1 || { echo "gpu-pack: no cudnn*.h in $cudnn_inc (set NERPIPE_CUDNN_INCLUDE_DIR)" >&2; exit 1; }
mkdir -p "$stage/cudnn/cudnn/include"
cp "$cudnn_inc"/cudnn*.h "$stage/cudnn/cudnn/include/"
tar -C "$stage/cudnn" -cf - . | xz -6 -T0 > "$out/cudnn.tar.xz"

# ---- spaCy models ----
for m in models/en_core_web_sm-3.8.0 models/en_core_web_md-3.8.0; do
  [ -d "$m" ] || { echo "gpu-pack: $m missing; run scripts/get-model.sh models sm (and md) first" >&2; exit 1; }
  name="$(basename "$m")"
  mkdir -p "$stage/models/$name/vocab"
  cp -r "$m/meta.json" "$m/config.cfg" "$m/tokenizer" "$m/ner" "$stage/models/$name/"
  for f in vectors vectors.cfg key2row lookups.bin; do
    if [ -f "$m/vocab/$f" ]; then cp "$m/vocab/$f" "$stage/models/$name/vocab/"; fi
  done
  case "$name" in
    en_core_web_sm-*) cp -r "$m/tok2vec" "$m/parser" "$stage/models/$name/" ;;
    en_core_web_md-*)  # NER-only: the parser joins the disabled components of this copy
      sed -i 's/^disabled = \["senter"\]\(\r\?\)$/disabled = ["senter", "parser"]\1/' "$stage/models/$name/config.cfg"
      grep -q '^disabled = \["senter", "parser"\]' "$stage/models/$name/config.cfg" ||
        { echo "gpu-pack: could not disable md's parser in its config.cfg" >&2; exit 1; }
      # Its static vectors shrunk to the rows the EWT text reaches (32 MB -> 7 MB; on EWT the copy gives the
      # full table's vectors, so the same entities): spaCy for the tokenizer, $PYTHON (tools/fixtures/requirements-spacy.txt).
      "${PYTHON:-python3}" tools/gpu/prune_vectors.py "$m" "$stage/models/$name/vocab" tests/data/ewt/*.jsonl ||
        { echo "gpu-pack: could not shrink md's vectors (PYTHON must have spaCy 3.8: tools/fixtures/requirements-spacy.txt)" >&2; exit 1; } ;;
  esac
done
tar -C "$stage/models" -cf - . | xz -6 -T0 > "$out/models.tar.xz"

# The commit the pack was made for (the lent machine's copy of the tree may have no .git).
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!.gpu' 2>/dev/null || echo '+uncommitted changes')" > "$out/COMMIT"

bytes=$(du -sb "$out" | cut -f1)
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "gpu-pack: $out holds $((bytes / 1024)) KiB; tracked files $((tracked / 1024)) KiB; together $(((bytes + tracked) / 1024)) KiB of 65536 KiB"
du -sh "$out"/*
if [ $((bytes + tracked)) -gt $((64 * 1048576)) ]; then echo "gpu-pack: over the 64 MiB a run may carry" >&2; exit 1; fi
