"""Quick rate-distortion check of a weight file or training checkpoint, with real file bytes.

    python -m diffcodec.training.evaluate runs/cc5/checkpoint.pt --images ../shared/data/kodak --limit 6

For watching a training run, and for a training-curve point when the full benchmark suite
(``python -m benchmarks run ...``) is too slow for the sitting. Prints mean bpp and PSNR-RGB
per quality over the first ``--limit`` images, coded with the real entropy coder (exact
tables); bpp counts whole ``.dcf`` files (header and checksum included). ``--json`` writes the
points in CompressAI's result schema.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bitstream import Header, pack
from diffcodec.coding.codec import Codec
from diffcodec.image_io import to_tensor
from diffcodec.psnr import psnr
from diffcodec.training.data import list_images
from diffcodec.zoo.weight_files import export, load_weights


def load_any(path: Path):
    """A LoadedModel from a .safetensors file, a checkpoint.pt (EMA weights) or a snapshot directory."""
    if path.suffix == ".safetensors":
        return load_weights(path, None)
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior
    from diffcodec.training.parts import load_snapshot

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


def evaluate(codec: Codec, images: list[Path], qualities: list[float], refine: int = 0) -> list[tuple[float, float, float]]:
    """(quality, mean bpp, mean PSNR-RGB) per quality; ``refine`` encoder-side refinement
    iterations per file (:meth:`Codec.refine`)."""
    rows = []
    for q in qualities:
        bpps, psnrs = [], []
        for path in images:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            x = to_tensor(rgb)
            stream = codec.code(codec.refine(codec.analyse(x), x, q, refine), q)
            out = codec.decode(stream, q, rgb.shape[0], rgb.shape[1])
            rec = np.round(out[0].permute(1, 2, 0).numpy() * 255)
            header = Header(model_id=codec.model.model_id, fingerprint=codec.model.fingerprint, width=rgb.shape[1],
                            height=rgb.shape[0], channels=3, bit_depth=8, quality=q)
            bpps.append(len(pack(header, stream)) * 8 / (rgb.shape[0] * rgb.shape[1]))  # the whole file
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
    p.add_argument("--json", type=Path, default=None, help="also write the points as CompressAI-schema JSON")
    p.add_argument("--refine", type=int, default=0,
                   help="encoder-side latent refinement iterations per file (compress --refine); 0: none")
    args = p.parse_args(argv)
    if args.refine < 0:
        p.error("--refine must be >= 0")
    torch.set_num_threads(args.threads)
    codec = Codec(load_any(args.weights))
    images = list_images(args.images)[: args.limit]
    start = time.perf_counter()
    rows = evaluate(codec, images, args.qualities, args.refine)
    seconds = time.perf_counter() - start
    for q, bpp, psnr_db in rows:
        print(f"quality {q:5.1f}: {bpp:.4f} bpp  {psnr_db:.2f} dB", flush=True)
    print(f"{seconds / (len(rows) * len(images)):.2f} s per image and quality (encode + decode)")
    if args.json is not None:
        command = "python -m diffcodec.training.evaluate " + " ".join(sys.argv[1:] if argv is None else argv)
        args.json.write_text(json.dumps({
            "name": "diffcodec", "description": f"{command} ({len(images)} images of {args.images}; real .dcf bytes)",
            "results": {"quality": [r[0] for r in rows], "bpp": [r[1] for r in rows], "psnr-rgb": [r[2] for r in rows]},
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
