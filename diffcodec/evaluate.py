"""Quick rate-distortion check of a weight file or training checkpoint, with real file bytes.

    python -m diffcodec.evaluate runs/cc5/checkpoint.pt --images ../shared/data/kodak --limit 6

For watching a training run, not for reporting: the committed figures come from the
benchmark suite (``python -m benchmarks run ...``). Prints mean bpp and PSNR per quality
over the first ``--limit`` images, coded with the real entropy coder (exact tables).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffcodec.codec import Codec
from diffcodec.data import list_images
from diffcodec.psnr import psnr
from diffcodec.weights import export, load_weights


def load_any(path: Path):
    """A LoadedModel from a .safetensors file, a checkpoint.pt (EMA weights) or a snapshot directory."""
    if path.suffix == ".safetensors":
        return load_weights(path, None)
    from diffcodec.model import ModelConfig, VariableRateHyperprior
    from diffcodec.parts import load_snapshot

    if path.is_dir():
        model, ema, _, config = load_snapshot(path)
    else:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        model, ema, config = ck["model"], ck["ema"], ck["config"]
    net = VariableRateHyperprior(ModelConfig(**config))
    net.load_state_dict(ema, strict=False)
    net.entropy_bottleneck.quantiles.data.copy_(model["entropy_bottleneck.quantiles"])
    with tempfile.TemporaryDirectory() as tmp:
        export(net.eval(), Path(tmp) / "w.safetensors")
        return load_weights(Path(tmp) / "w.safetensors", None)


def evaluate(codec: Codec, images: list[Path], qualities: list[float]) -> list[tuple[float, float, float]]:
    """(quality, mean bpp, mean PSNR-RGB) per quality."""
    rows = []
    for q in qualities:
        bpps, psnrs = [], []
        for path in images:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
            stream = codec.encode(x, q)
            out = codec.decode(stream, q, rgb.shape[0], rgb.shape[1])
            rec = np.round(out[0].permute(1, 2, 0).numpy() * 255)
            bpps.append(len(stream) * 8 / (rgb.shape[0] * rgb.shape[1]))
            psnrs.append(psnr(rgb, rec))
        rows.append((q, float(np.mean(bpps)), float(np.mean(psnrs))))
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("weights", type=Path)
    p.add_argument("--images", type=Path, default=Path("../shared/data/kodak"))
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--qualities", type=float, nargs="+", default=[0, 25, 50, 75, 100])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    codec = Codec(load_any(args.weights))
    for q, bpp, psnr in evaluate(codec, list_images(args.images)[: args.limit], args.qualities):
        print(f"quality {q:5.1f}: {bpp:.4f} bpp  {psnr:.2f} dB")


if __name__ == "__main__":
    main()
