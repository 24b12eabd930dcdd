"""Quick look at a realism decoder against the fidelity decoder of the same files.

    python -m diffcodec.training.evaluate_realism runs/den6/checkpoint.pt --limit 6 --qualities 11 33 --steps 1 4
    python -m diffcodec.training.evaluate_realism --guidance 1 1.5 2     # the registered denoiser, 1 step
    python -m diffcodec.training.evaluate_realism --grain 0.004 0.008    # against plain seeded Gaussian grain
    python -m diffcodec.training.evaluate_realism runs/rd1/checkpoint.pt --steps 2 --strengths 0.5 1

For watching a training run or choosing settings, not for reporting: the committed figures
come from the benchmark suite (``python -m benchmarks run ...``). The files are made by the
default model through :func:`diffcodec.compress` and decoded through
:func:`diffcodec.decompress`, with the denoiser given here instead of the registered one.
Prints mean bpp, PSNR-RGB, LPIPS (AlexNet) and DISTS over the first ``--limit`` images, for
the fidelity decoder and each (step count, guidance scale). ``--grain`` adds baselines that
need no network: the fidelity image plus seeded Gaussian noise of that standard deviation (in
0..1 units, rounded to 8 bits like any decoded image), to tell learned detail from plain
grain. Needs the benchmark's metric weights (``benchmarks/requirements-metrics.txt``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffcodec.models.denoiser import DenoiserConfig, ResidualDenoiser
from diffcodec.psnr import psnr
from diffcodec.training.data import list_images
from diffcodec.zoo.registry import DEFAULT_MODEL_ID, load_model
from diffcodec.zoo.weight_files import RealismDecoder, load_denoiser


def load_denoiser_any(path: Path, raw: bool = False) -> ResidualDenoiser:
    """A denoiser from a weight file or a training checkpoint (EMA weights unless ``raw``)."""
    if path.suffix == ".safetensors":
        return load_denoiser(path, None).net
    ck = torch.load(path, map_location="cpu", weights_only=False)
    net = ResidualDenoiser(DenoiserConfig.from_dict(ck["config"]))
    net.load_state_dict(ck["model" if raw else "ema"])
    return net.eval().requires_grad_(False)


def with_grain(rgb: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """``rgb`` (uint8) plus Gaussian noise of std ``sigma`` (0..1 units), rounded and clipped to uint8."""
    noise = np.random.default_rng(seed).standard_normal(rgb.shape) * sigma * 255.0
    return np.clip(np.rint(rgb.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def evaluate(decoder: RealismDecoder | None, images: list[Path], qualities: list[float],
             step_counts: list[int], guidances: tuple[float, ...] = (1.0,),
             grains: tuple[float, ...] = (), strengths: tuple[float, ...] = (1.0,)) -> list[dict]:
    """One row per (quality, steps, guidance, strength), fidelity (steps 0) first, then one per
    grain baseline (steps 0, ``grain`` set): means over ``images``."""
    from diffcodec.api import compress, decompress
    from diffcodec.image_io import to_tensor
    from diffcodec.perceptual.dists import DISTSNet
    from diffcodec.perceptual.lpips import LPIPSNet

    lpips, dists = LPIPSNet("alex"), DISTSNet()
    rows = []
    for q in qualities:
        modes = [(0, 1.0, 0.0, 0.0)] + [(s, g, 0.0, st) for s in step_counts for g in guidances for st in strengths]
        modes += [(0, 1.0, sigma, 0.0) for sigma in grains]
        sums: dict[tuple[int, float, float, float], dict[str, list[float]]] = {
            mode: {"bpp": [], "psnr": [], "lpips": [], "dists": []} for mode in modes}
        for path in images:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            data = compress(rgb, quality=q)
            bpp = len(data) * 8 / (rgb.shape[0] * rgb.shape[1])
            with torch.no_grad():  # the original's features, once for every decoder
                x = to_tensor(rgb)
                x_lpips, x_dists = lpips.embed(x), dists.features(x)
            fidelity = np.asarray(decompress(data, steps=0).convert("RGB"))
            for (steps, guidance, grain, strength), acc in sums.items():
                if steps:
                    out = np.asarray(decompress(data, steps=steps, guidance=guidance, strength=strength,
                                            realism_decoder=decoder).convert("RGB"))
                else:
                    out = with_grain(fidelity, grain) if grain else fidelity
                with torch.no_grad():
                    y = to_tensor(out)
                    acc["lpips"].append(float(lpips.distance(lpips.embed(y), x_lpips)))
                    acc["dists"].append(float(dists.distance(dists.features(y), x_dists)))
                acc["psnr"].append(psnr(rgb, out))
                acc["bpp"].append(bpp)
        rows += [{"quality": q, "steps": s, "guidance": g, "grain": sigma, "strength": st,
                  **{k: float(np.mean(v)) for k, v in acc.items()}} for (s, g, sigma, st), acc in sums.items()]
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("denoiser", type=Path, nargs="?", default=None,
                   help="denoiser .safetensors or training checkpoint.pt (default: the registered one)")
    p.add_argument("--raw", action="store_true", help="a checkpoint's trained weights instead of its EMA")
    p.add_argument("--lambda-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="lambdas of its level input (default: the default codec's own range, which a run "
                        "without --lambda-range trains)")
    p.add_argument("--images", type=Path, default=Path("../shared/data/kodak"))
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--qualities", type=float, nargs="+", default=[11, 33])
    p.add_argument("--steps", type=int, nargs="+", default=[1])
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0],
                   help="guidance scales to try at each step count (1: the default decode)")
    p.add_argument("--strengths", type=float, nargs="+", default=[1.0], help="realism strengths to try")
    p.add_argument("--grain", type=float, nargs="+", default=[],
                   help="also score the fidelity image plus seeded Gaussian noise of these std devs (0..1 units)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    decoder = None  # None: decompress loads the registered one
    if args.denoiser is not None:
        config = load_model(DEFAULT_MODEL_ID).net.config  # trained without --lambda-range: the codec's own
        lambda_range = tuple(args.lambda_range) if args.lambda_range else (config.lambda_min, config.lambda_max)
        decoder = RealismDecoder(load_denoiser_any(args.denoiser, args.raw), lambda_range)
    for r in evaluate(decoder, list_images(args.images)[: args.limit], args.qualities, args.steps,
                      tuple(args.guidance), tuple(args.grain), tuple(args.strengths)):
        mode = "fidelity" if r["steps"] == 0 else f"{r['steps']} step" + "s" * (r["steps"] > 1)
        if r["grain"]:
            mode = f"grain {r['grain']:g}"
        if r["steps"] and len(args.guidance) > 1:
            mode += f" g{r['guidance']:g}"
        if r["steps"] and len(args.strengths) > 1:
            mode += f" s{r['strength']:g}"
        print(f"quality {r['quality']:5.1f} {mode:>13}: {r['bpp']:.4f} bpp  {r['psnr']:.2f} dB  "
              f"LPIPS {r['lpips']:.4f}  DISTS {r['dists']:.4f}", flush=True)


if __name__ == "__main__":
    main()
