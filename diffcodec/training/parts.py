"""Compact training snapshots split into files small enough to carry to and from a lent GPU.

A full checkpoint (weights, EMA, two Adam moments) of the default model is about 70 MB,
but the device tool brings back at most 16 MiB per file and 64 MiB per call, and what a
call carries *to* the machine shares those 64 MiB with the repository and the training
data. A snapshot therefore keeps only what a resumed run cannot cheaply rebuild: the raw
weights in fp32 and the EMA weights in fp16 (a resumed run restarts Adam with a short
warm-up). Tensors are packed greedily into ``part-NN.safetensors`` files of at most
``max_bytes`` each, and ``snapshot.json`` records the step, the config and every part's
SHA-256 so a damaged or half-copied snapshot is refused rather than trained on.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load, save

from diffcodec.image_io import atomic_write

MAX_PART_BYTES = 15 * 1024 * 1024  # below the device tool's 16 MiB per returned file
SNAPSHOT_FILE = "snapshot.json"


class SnapshotError(RuntimeError):
    """A snapshot directory is missing, incomplete or damaged."""


def save_snapshot(directory: Path, model: dict[str, torch.Tensor], ema: dict[str, torch.Tensor],
                  step: int, config: dict, max_bytes: int = MAX_PART_BYTES) -> list[Path]:
    """Write ``model`` (fp32) and ``ema`` (fp16) state dicts as parts; returns the part paths."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{k}": v.detach().float().cpu().contiguous() for k, v in model.items()}
    tensors |= {f"ema/{k}": v.detach().half().cpu().contiguous() for k, v in ema.items()}
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if nbytes > max_bytes - 65536:
            raise ValueError(f"tensor {name} ({nbytes} bytes) does not fit one part")
        if groups[-1] and size + nbytes > max_bytes - 65536:  # leave room for the safetensors header
            groups.append({})
            size = 0
        groups[-1][name] = t
        size += nbytes
    paths, digests = [], {}
    for i, group in enumerate(groups):
        data = save(group)
        path = directory / f"part-{i:02d}.safetensors"
        atomic_write(path, data)
        paths.append(path)
        digests[path.name] = hashlib.sha256(data).hexdigest()
    for stale in directory.glob("part-*.safetensors"):
        if stale.name not in digests:
            stale.unlink()
    meta = {"format": "diffcodec-snapshot-1", "step": step, "config": config, "parts": digests}
    atomic_write(directory / SNAPSHOT_FILE, json.dumps(meta, indent=1).encode())
    return paths


def load_snapshot(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int, dict]:
    """(model state fp32, ema state fp32, step, config) from a snapshot directory, checksums verified."""
    try:
        meta = json.loads((Path(directory) / SNAPSHOT_FILE).read_text())
        parts = meta["parts"]
    except (OSError, ValueError, KeyError) as exc:
        raise SnapshotError(f"{directory} is not a training snapshot ({exc})") from None
    model: dict[str, torch.Tensor] = {}
    ema: dict[str, torch.Tensor] = {}
    for name, digest in sorted(parts.items()):
        try:
            data = (Path(directory) / name).read_bytes()
        except OSError as exc:
            raise SnapshotError(f"snapshot part {name} is missing ({exc.strerror})") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise SnapshotError(f"snapshot part {name} fails its checksum")
        for key, t in load(data).items():
            kind, _, param = key.partition("/")
            (model if kind == "model" else ema)[param] = t.float()
    return model, ema, int(meta["step"]), meta["config"]


def main(argv: list[str] | None = None) -> None:
    """``python -m diffcodec.training.parts runs/cpu2/checkpoint.pt runs/gpu/snapshot``: checkpoint -> snapshot."""
    import argparse

    p = argparse.ArgumentParser(description="Convert a training checkpoint into a compact snapshot.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    paths = save_snapshot(args.out, ck["model"], ck["ema"], ck["step"], ck["config"])
    print(f"step {ck['step']}: " + ", ".join(f"{q.name} {q.stat().st_size / 2**20:.1f} MiB" for q in paths))


if __name__ == "__main__":
    main()
