"""Quick look at a realism decoder against the fidelity decoder of the same files.

    python -m diffcodec.evaluate_realism runs/den6/checkpoint.pt --limit 6 --qualities 11 33 --steps 1 4

For watching a training run or choosing settings, not for reporting: the committed figures
come from the benchmark suite (``python -m benchmarks run ...``). The files are made by the
default model through :func:`diffcodec.compress` and decoded through
:func:`diffcodec.decompress`, with the denoiser given here instead of the registered one.
Prints mean bpp, PSNR-RGB, LPIPS (AlexNet) and DISTS over the first ``--limit`` images, for
the fidelity decoder and each step count. Needs the benchmark's metric weights
(``benchmarks/requirements-metrics.txt``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffcodec.data import list_images
from diffcodec.denoiser import DenoiserConfig, ResidualDenoiser
from diffcodec.psnr import psnr
from diffcodec.realism import RealismDecoder, load_denoiser
from diffcodec.registry import DEFAULT_MODEL_ID, DENOISERS


def load_denoiser_any(path: Path, raw: bool = False) -> ResidualDenoiser:
    """A denoiser from a weight file or a training checkpoint (EMA weights unless ``raw``)."""
    if path.suffix == ".safetensors":
        return load_denoiser(path, None).net
    ck = torch.load(path, map_location="cpu", weights_only=False)
    net = ResidualDenoiser(DenoiserConfig.from_dict(ck["config"]))
    net.load_state_dict(ck["model" if raw else "ema"])
    return net.eval().requires_grad_(False)


def evaluate(decoder: RealismDecoder | None, images: list[Path], qualities: list[float],
             step_counts: list[int]) -> list[dict]:
    """One row per (quality, steps) with steps 0 (fidelity) first: means over ``images``."""
    import diffcodec
    from benchmarks.metrics.base import to_tensor
    from benchmarks.metrics.dists import DISTSNet
    from benchmarks.metrics.lpips import LPIPSNet

    lpips, dists = LPIPSNet("alex"), DISTSNet()
    rows = []
    for q in qualities:
        sums: dict[int, dict[str, list[float]]] = {s: {"bpp": [], "psnr": [], "lpips": [], "dists": []}
                                                   for s in [0, *step_counts]}
        for path in images:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            data = diffcodec.compress(rgb, quality=q)
            bpp = len(data) * 8 / (rgb.shape[0] * rgb.shape[1])
            with torch.no_grad():  # the original's features, once for every decoder
                x = to_tensor(rgb)
                x_lpips, x_dists = lpips.embed(x), dists.features(x)
            for steps, acc in sums.items():
                out = np.asarray(diffcodec.decompress(data, steps=steps, realism_decoder=decoder).convert("RGB"))
                with torch.no_grad():
                    y = to_tensor(out)
                    acc["lpips"].append(float(lpips.distance(lpips.embed(y), x_lpips)))
                    acc["dists"].append(float(dists.distance(dists.features(y), x_dists)))
                acc["psnr"].append(psnr(rgb, out))
                acc["bpp"].append(bpp)
        rows += [{"quality": q, "steps": s, **{k: float(np.mean(v)) for k, v in acc.items()}}
                 for s, acc in sums.items()]
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("denoiser", type=Path, nargs="?", default=None,
                   help="denoiser .safetensors or training checkpoint.pt (default: the registered one)")
    p.add_argument("--raw", action="store_true", help="a checkpoint's trained weights instead of its EMA")
    p.add_argument("--lambda-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="lambdas of its level input (default: the registered denoiser's)")
    p.add_argument("--images", type=Path, default=Path("../shared/data/kodak"))
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--qualities", type=float, nargs="+", default=[11, 33])
    p.add_argument("--steps", type=int, nargs="+", default=[1])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    decoder = None  # None: decompress loads the registered one
    if args.denoiser is not None:
        lambda_range = tuple(args.lambda_range) if args.lambda_range else DENOISERS[DEFAULT_MODEL_ID].lambda_range
        decoder = RealismDecoder(load_denoiser_any(args.denoiser, args.raw), lambda_range)
    for r in evaluate(decoder, list_images(args.images)[: args.limit], args.qualities, args.steps):
        mode = "fidelity" if r["steps"] == 0 else f"{r['steps']} step" + "s" * (r["steps"] > 1)
        print(f"quality {r['quality']:5.1f} {mode:>9}: {r['bpp']:.4f} bpp  {r['psnr']:.2f} dB  "
              f"LPIPS {r['lpips']:.4f}  DISTS {r['dists']:.4f}", flush=True)


if __name__ == "__main__":
    main()
