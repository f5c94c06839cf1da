#!/usr/bin/env bash
# GPU check for a lent accelerator: under 8 minutes. Prints resnet101 training images/s at
# 224 px (bf16 autocast, channels_last) from random inputs (the GPU's ceiling) and through a
# real DataLoader over an embedded split (what training gets), with peak memory and the
# share of step time spent waiting for data. Target: >= 2,500 images/s.
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then
  python3 -m venv .venv && .venv/bin/pip install -q -e '.[train]' && PY=.venv/bin/python
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
for batch in 64 256; do
  timeout 150 "$PY" benchmarks/bench_train.py --archs resnet101 --device cuda --batch "$batch" --steps 20 \
    --amp --channels-last --heads --photos 60 || echo "batch $batch failed"
done
workers=$(( $(nproc) > 16 ? 16 : $(nproc) ))
timeout 200 "$PY" benchmarks/bench_train.py --pipeline --archs resnet101 --device cuda --batch 256 \
  --steps 30 --workers "$workers" || echo "pipeline failed"
