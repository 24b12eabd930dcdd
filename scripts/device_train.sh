#!/usr/bin/env bash
# One training sitting on a lent GPU machine (the device tool); see docs/training.md.
#
#   bash scripts/device_train.sh SHARD_DIR MINUTES TOTAL_STEPS [more training options]
#
# TRAINER=diffcodec.training.realism trains the realism decoder instead of the codec (its
# snapshot directory is then runs/gpu/denoiser-snapshot).
# Expects in the carried working tree: .whl/ (compressai, constriction, pytorch-msssim wheels
# for CPython 3.12), the data shard, and runs/gpu/snapshot/ (the snapshot to resume from);
# INIT=path overrides where it starts (a snapshot directory or a shipped .safetensors file,
# which travels with the repository). DEVICE=cpu rehearses the script on a machine without a GPU.
# Writes to $OUT: snapshot/ (the new snapshot, parts < 16 MiB), log.jsonl, train.txt.
set -euo pipefail
shard=$1 minutes=$2 steps=$3
shift 3
site=${SITE:-/tmp/site}
[ -d "$site/compressai" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
export PYTHONPATH=$site:$PWD PYTHONUNBUFFERED=1
device=${DEVICE:-cuda}
if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
fi
status=0
trainer=${TRAINER:-diffcodec.training.fidelity}
init=runs/gpu/snapshot
[ "$trainer" = diffcodec.training.realism ] && init=runs/gpu/denoiser-snapshot
init=${INIT:-$init}
init_args=()
[ -e "$init" ] && init_args=(--init "$init")
python3 -m "$trainer" --device "$device" --data "$shard" --out /tmp/run "${init_args[@]}" \
    --snapshot "$OUT/snapshot" --minutes "$minutes" --steps "$steps" --threads 8 --ckpt-every 1000 "$@" \
    >"$OUT/train.txt" 2>&1 || status=$?
cp /tmp/run/log.jsonl "$OUT/log.jsonl" 2>/dev/null || true
tail -n 5 "$OUT/train.txt"
exit $status
