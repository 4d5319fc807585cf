#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Packs what scripts/gpu-check.sh needs on a GPU machine that reaches no package registry, into .gpu/
# (git-ignored; carry it with the working tree, 64 MiB at most):
#   .gpu/debs/*.deb       the Debian packages of our dependencies (apt-get download; unpacked there with dpkg -x)
#   .gpu/models.tar.xz    the files of en_core_web_sm / md that the NER reads (scripts/get-model.sh first)
# (The EWT text travels with the tree in tests/data; the trained BERT of the bf16 parity test is committed:
# tests/fixtures/hf/models/trained-tiny.) Run on a Debian 12 machine with the models in models/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu
rm -rf "$out"
mkdir -p "$out/debs"

pkgs=(libsimdjson-dev libsimdjson14 libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev libopenblas0
      libgfortran5 catch2 libbenchmark-dev libbenchmark1debian libutf8proc-dev libutf8proc2 libpcre2-dev
      libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libmsgpack-cxx-dev libcli11-dev libblas3 libblas-dev
      liblapack3)
(cd "$out/debs" && apt-get download "${pkgs[@]}")

# The NER reads meta.json, config.cfg, tokenizer, ner/ and vocab/ (vectors, key2row, lookups.bin);
# strings.json and the other components stay behind.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
for m in models/en_core_web_sm-3.8.0 models/en_core_web_md-3.8.0; do
  [ -d "$m" ] || { echo "gpu-pack: $m missing; run scripts/get-model.sh models sm (and md) first" >&2; exit 1; }
  name="$(basename "$m")"
  mkdir -p "$stage/$name/vocab"
  cp -r "$m/meta.json" "$m/config.cfg" "$m/tokenizer" "$m/ner" "$stage/$name/"
  for f in vectors vectors.cfg key2row lookups.bin; do
    if [ -f "$m/vocab/$f" ]; then cp "$m/vocab/$f" "$stage/$name/vocab/"; fi
  done
done
tar -C "$stage" -cf - . | xz -6 -T0 > "$out/models.tar.xz"

bytes=$(du -sb "$out" | cut -f1)
echo "gpu-pack: $out holds $((bytes / 1048576)) MiB:"
du -sh "$out"/*
if [ "$bytes" -gt $((64 * 1048576)) ]; then echo "gpu-pack: over the 64 MiB a run may carry" >&2; exit 1; fi
