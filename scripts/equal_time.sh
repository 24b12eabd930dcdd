#!/bin/bash
# Equal-time architecture comparison (issue #14): the same minutes of training (bf16 where the CPU
# computes it natively, fp32 elsewhere: --precision auto) from the same
# weights for each arm (its extra training flags), then every arm's EMA export scored on all 24
# Kodak images with real file bytes and compared by BD-rate with the first arm.
#
#   bash scripts/equal_time.sh INIT.safetensors MINUTES OUT_DIR [NAME=FLAGS ...]
#
# Without arms: plain= and res1=--residual-blocks 1 (the model as it is, and grown by one residual
# block per scale). Another pair, e.g.: res3='--residual-blocks 3' wide='--transform-width 128',
# or plain= lat240='--latent-channels 240'.
# benchmarks/results/equal_time/ was made with model 6 (release 0.6.0; its weights:
# git show a9c66ad:diffcodec/zoo/weights/channel-context-cpu5.safetensors > cpu5.safetensors),
# MINUTES=30 and the default arms. Run it alone: a second CPU-heavy process slows training about tenfold.
set -euo pipefail
INIT=$1 MINUTES=$2 OUT=$3
shift 3
ARMS=("$@")
[ ${#ARMS[@]} -gt 0 ] || ARMS=("plain=" "res1=--residual-blocks 1")
PY=${PYTHON:-python}
COMMON=(--data ../shared/data/train --init "$INIT" --precision auto --steps 100000 --minutes "$MINUTES"
        --batch 8 --crop 256 --lr 1e-4 --lr-drop 0.8 --ema 0.999 --warmup 100 --ckpt-every 200 --threads 2 --seed 7)
NAMES=()
for arm in "${ARMS[@]}"; do
  name=${arm%%=*} flags=${arm#*=}
  NAMES+=("$name")
  # shellcheck disable=SC2086  # the arm's flags split into words on purpose
  $PY -m diffcodec.training.fidelity --out "$OUT/$name" "${COMMON[@]}" $flags
done
for name in "${NAMES[@]}"; do
  $PY -m diffcodec.training.export "$OUT/$name/checkpoint.pt" "$OUT/$name/ema.safetensors"
  $PY -m diffcodec.training.evaluate "$OUT/$name/ema.safetensors" --limit 24 --qualities 0 20 40 60 80 100 \
      --threads 2 --json "$OUT/$name.json"
done
for name in "${NAMES[@]:1}"; do
  $PY -m benchmarks bdrate "$OUT/${NAMES[0]}.json" "$OUT/$name.json"
done
