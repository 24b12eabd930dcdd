#!/bin/bash
# Equal-time architecture comparison (issue #14): the same minutes of bf16 training from the same
# weights, once as they are and once grown by one residual block per scale (--residual-blocks 1),
# then both EMA exports scored on all 24 Kodak images with real file bytes.
#
#   bash scripts/equal_time.sh INIT.safetensors MINUTES OUT_DIR
#
# benchmarks/results/equal_time/ was made with model 6 (release 0.6.0; its weights:
# git show a9c66ad:diffcodec/zoo/weights/channel-context-cpu5.safetensors > cpu5.safetensors),
# MINUTES=30. Run it alone: a second CPU-heavy process slows training about tenfold.
set -euo pipefail
INIT=$1 MINUTES=$2 OUT=$3
PY=${PYTHON:-python}
COMMON=(--data ../shared/data/train --init "$INIT" --precision bf16 --steps 100000 --minutes "$MINUTES"
        --batch 8 --crop 256 --lr 1e-4 --lr-drop 0.8 --ema 0.999 --warmup 100 --ckpt-every 200 --threads 2 --seed 7)
$PY -m diffcodec.training.fidelity --out "$OUT/plain" "${COMMON[@]}"
$PY -m diffcodec.training.fidelity --out "$OUT/res1" "${COMMON[@]}" --residual-blocks 1
for arm in plain res1; do
  $PY -m diffcodec.training.export "$OUT/$arm/checkpoint.pt" "$OUT/$arm/ema.safetensors"
  $PY -m diffcodec.training.evaluate "$OUT/$arm/ema.safetensors" --limit 24 --qualities 0 20 40 60 80 100 \
      --threads 2 --json "$OUT/$arm.json"
done
$PY -m benchmarks bdrate "$OUT/plain.json" "$OUT/res1.json"
