"""Probes of cheap, CPU-only levers on the shipped codec model, kept so that their figures can be rerun.

    python -m research.probes deadzone ../shared/data/kodak --out benchmarks/results/probes/deadzone.json
    python -m research.probes refine ../shared/data/kodak --out benchmarks/results/probes/refine.json
    python -m research.probes spatial ../shared/data/kodak --train ../shared/data/train --minutes 20 \
        --out benchmarks/results/probes/spatial.json
    python -m research.probes ceiling ../shared/data/kodak --limit 8 --out benchmarks/results/probes/ceiling.json

Each asks whether something short of more training of the transforms moves the rate-distortion
curve of the default model (+60.7 % BD-rate against BPG):

* ``deadzone``: encoder-only rounding towards the mean (``sign(r) * floor(|r| + 0.5 - delta)``) for the
  latent ``y``; files stay valid. Reported as BD-rate against delta = 0 on the same images.
* ``refine``: encoder-only gradient refinement of ``y`` (Adam on lambda * MSE + bits through the float
  model, straight-through rounding), the amortisation-gap idea of Yang et al. 2020 at the iteration
  counts a CPU encoder can afford. Real file bytes and decoded pixels before and after.
* ``spatial``: a checkerboard spatial context (He et al. 2021) on top of the frozen model: per slice,
  a small network reads the slice's decoded anchor half and corrects the non-anchor half's mean and
  scale; trained on the rate alone (uniform-noise proxy, the transforms cannot change), measured as
  the exact discrete bits (-log2 of the quantized Gaussian of each coded symbol plus the hyper-latent).
* ``ceiling``: whether the top of the curve is capped by the quantization step or by the transforms:
  at some qualities, the PSNR of real rounding (the fidelity decoder) against the PSNR of
  ``g_s`` reading the unrounded latent at that quality's gains (the transforms' own ceiling) and the
  latent rounded to a grid 2 and 4 times finer than its step (a grid around 0, where the codec
  rounds around the predicted means). No bits are coded: this bounds the
  distortion a finer step (more levels above the top one) could reach, whatever it costs.

Nothing here is a product path: these are measurements for docs/training.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmarks.bdrate import bd_rate
from benchmarks.dataset import load_rgb
from diffcodec.coding.codec import Analysis, Codec, pad_to_multiple, quality_to_level
from diffcodec.image_io import to_tensor
from diffcodec.coding.refine import rd_cost
from diffcodec.models.hyperprior import _conv, channel_context_loop
from diffcodec.psnr import psnr_of_mse
from diffcodec.training.data import CropSampler, list_images, load_corpus
from diffcodec.zoo.registry import DEFAULT_MODEL_ID, load_model


def _image(path: Path) -> Tensor:
    return to_tensor(load_rgb(path))


def _mse(a: Tensor, b: Tensor) -> float:
    return float(((a - b) ** 2).mean())


def _z_bits(net, z_hat: Tensor) -> Tensor:
    """-log2 likelihood of the hyper-latent ``z_hat`` under the factorized prior (summed)."""
    return -torch.log2(net.rounded_z_likelihoods(z_hat)).sum()


# ---- deadzone ------------------------------------------------------------------------------
class DeadzoneCodec(Codec):
    """The codec with y rounded towards its mean by ``delta`` (z rounding unchanged)."""

    def __init__(self, model, delta: float):
        super().__init__(model)
        self.delta = delta

    def round_latent(self, residual: Tensor) -> Tensor:
        return torch.sign(residual) * torch.floor(residual.abs() + 0.5 - self.delta)


def probe_deadzone(images: list[Path], qualities: list[float], deltas: list[float]) -> dict:
    model = load_model(DEFAULT_MODEL_ID)
    codecs = {d: DeadzoneCodec(model, d) for d in deltas}
    points = {d: [[0.0, 0.0] for _ in qualities] for d in deltas}  # summed (bpp, psnr)
    for path in images:
        x = _image(path)
        analysis = codecs[deltas[0]].analyse(x)
        for d, codec in codecs.items():
            for k, q in enumerate(qualities):
                stream = codec.code(analysis, q)
                rec = codec.decode(stream, q, *x.shape[-2:])
                points[d][k][0] += len(stream) * 8 / (x.shape[-2] * x.shape[-1]) / len(images)
                points[d][k][1] += psnr_of_mse(_mse(rec, x), 1.0) / len(images)
    base = points[deltas[0]]
    return {"model": model.name, "images": [p.name for p in images], "qualities": qualities,
            "curves": {str(d): {"bpp": [p[0] for p in c], "psnr": [p[1] for p in c],
                                "bd_rate_vs_first": bd_rate([p[0] for p in base], [p[1] for p in base],
                                                            [p[0] for p in c], [p[1] for p in c])}
                       for d, c in points.items()}}


# ---- latent refinement -----------------------------------------------------------------------
def _refined(codec: Codec, x: Tensor, analysis: Analysis, quality: float, iterations: int, lr: float) -> Analysis:
    """``analysis`` with y moved by Adam on the float model's lambda * 255^2 * MSE + bpp with
    straight-through rounding (the cost :func:`diffcodec.coding.refine.rd_cost` computes; the
    shipped refinement descends its relaxed form instead, because this one rises)."""
    net = codec.net
    t = quality_to_level(codec.model, quality)
    gain, _ = net.gains(t)
    y = (analysis.y * gain).clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=lr)
    h, w = x.shape[-2:]
    for _ in range(iterations):
        loss = rd_cost(net, y, x, t, h, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Analysis(y=(y.detach() / gain), height=h, width=w)


def probe_refine(images: list[Path], qualities: list[float], settings: list[tuple[int, float]]) -> dict:
    model = load_model(DEFAULT_MODEL_ID)
    codec = Codec(model)
    rows = []
    for path in images:
        x = _image(path)
        analysis = codec.analyse(x)
        for q in qualities:
            lam = float(codec.net.level_lambda(quality_to_level(model, q)))
            for iterations, lr in [(0, 0.0), *settings]:
                t0 = time.perf_counter()
                refined = _refined(codec, x, analysis, q, iterations, lr) if iterations else analysis
                seconds = time.perf_counter() - t0
                stream = codec.code(refined, q)
                mse = _mse(codec.decode(stream, q, *x.shape[-2:]), x)
                bpp = len(stream) * 8 / (x.shape[-2] * x.shape[-1])
                rows.append({"image": path.name, "quality": q, "iterations": iterations, "lr": lr,
                             "bpp": bpp, "psnr": psnr_of_mse(mse, 1.0), "rd_cost": lam * 255.0**2 * mse + bpp,
                             "refine_seconds": seconds})
    return {"model": model.name, "rows": rows}


# ---- checkerboard spatial context on the frozen model -------------------------------------------
def _spatial_network(s: int, width: int) -> nn.Sequential:
    net = nn.Sequential(_conv(3 * s, width, 5, 1), nn.ReLU(), _conv(width, width, 3, 1), nn.ReLU(),
                        _conv(width, 2 * s, 3, 1))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def _spatial_bits(model, spatial: nn.ModuleList | None, x: Tensor, t: Tensor, noisy: bool) -> Tensor:
    """Bits of ``x`` at levels ``t``: exact discrete rate (noisy=False) or the uniform-noise proxy."""
    net = model.net
    gain, _ = net.gains(t)
    with torch.no_grad():
        y = net.g_a(x) * gain
        medians = net.entropy_bottleneck._get_medians()
        z_hat = torch.round(net.h_a(y) - medians) + medians
        means, scales = net.split_params(net.h_s(z_hat))
    ii, jj = torch.meshgrid(torch.arange(y.shape[-2]), torch.arange(y.shape[-1]), indexing="ij")
    anchor = ((ii + jj) % 2 == 0).float()[None, None]
    bits = _z_bits(net, z_hat)
    unit = torch.distributions.Normal(0.0, 1.0)
    slice_bits: list[Tensor] = []
    hyper_params = net.hyper_slice_params(means, scales)

    def params(i: int, previous: list[Tensor]) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return hyper_params(i, previous)

    def latent(i: int, bounds: tuple[int, int], mu: Tensor, sigma: Tensor) -> Tensor:
        y_i = y[:, bounds[0]:bounds[1]]
        decoded = (torch.round(y_i - mu) + mu).detach()  # the next slices' context: what a decoder has
        if spatial is not None:
            d_mu, d_sigma = spatial[i](torch.cat([mu, sigma, decoded * anchor], dim=1)).chunk(2, dim=1)
            mu, sigma = mu + (1 - anchor) * d_mu, sigma + (1 - anchor) * d_sigma
        r = y_i - mu + torch.empty_like(y_i).uniform_(-0.5, 0.5) if noisy else torch.round(y_i - mu)
        sigma = sigma.clamp_min(0.11)
        p = unit.cdf((r + 0.5) / sigma) - unit.cdf((r - 0.5) / sigma)
        slice_bits.append(-torch.log2(p.clamp_min(1e-9)).sum())
        return decoded

    channel_context_loop(net.slice_bounds(), params, latent)
    return bits + sum(slice_bits)


def probe_spatial(images: list[Path], qualities: list[float], train: Path, minutes: float, lr: float,
                  width: int, batch: int, crop: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = load_model(DEFAULT_MODEL_ID)
    levels = model.net.config.levels
    s = model.net.config.m // model.net.config.context_slices
    spatial = nn.ModuleList([_spatial_network(s, width) for _ in range(model.net.config.context_slices)])

    def kodak_bits() -> tuple[float, float]:
        base = with_spatial = 0.0
        with torch.no_grad():
            for path in images:
                x = _image(path)
                x = pad_to_multiple(x, model.net.downsampling)
                for q in qualities:
                    t = quality_to_level(model, q)
                    base += float(_spatial_bits(model, None, x, t, noisy=False))
                    with_spatial += float(_spatial_bits(model, spatial, x, t, noisy=False))
        return base, with_spatial

    sampler = CropSampler(load_corpus(train, crop), crop, seed)
    opt = torch.optim.Adam(spatial.parameters(), lr=lr)
    log, step, t0 = [], 0, time.time()
    while time.time() - t0 < 60 * minutes:
        x = sampler.sample(batch).float() / 255.0
        loss = _spatial_bits(model, spatial, x, torch.rand(batch) * (levels - 1), noisy=True) / (batch * crop * crop)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            log.append({"step": step, "proxy_bpp": round(loss.item(), 5), "sec": round(time.time() - t0, 1)})
    base, with_spatial = kodak_bits()
    return {"model": model.name, "images": [p.name for p in images], "qualities": qualities,
            "steps": step, "minutes": minutes, "lr": lr, "width": width, "batch": batch, "crop": crop,
            "kodak_bits_base": base, "kodak_bits_spatial": with_spatial,
            "rate_change_percent": 100.0 * (with_spatial / base - 1.0), "log": log}


# ---- the transforms' ceiling -------------------------------------------------------------
@torch.no_grad()
def probe_ceiling(images: list[Path], qualities: list[float], finer: tuple[int, ...] = (2, 4)) -> dict:
    loaded = load_model(DEFAULT_MODEL_ID)
    net = loaded.net.float().eval()
    names = ["rounded", *[f"step/{k}" for k in finer], "unrounded"]
    sums = {q: dict.fromkeys(names, 0.0) for q in qualities}
    for path in images:
        x = _image(path)
        padded = pad_to_multiple(x, 64)
        y = net.g_a(padded)
        h, w = x.shape[-2:]
        for q in qualities:
            t = quality_to_level(loaded, q)
            gain, inv_gain = net.gains(t)
            decoded = {"rounded": net.synthesize(net.rounded_latent(y, t))}
            for k in finer:
                decoded[f"step/{k}"] = net.g_s(torch.round(y * gain * k) / k * inv_gain)
            decoded["unrounded"] = net.g_s(y * gain * inv_gain)
            for name, rec in decoded.items():
                sums[q][name] += psnr_of_mse(_mse(rec[..., :h, :w].clamp(0, 1), x), 1.0) / len(images)
    return {"model": loaded.name, "images": [p.name for p in images],
            "psnr_rgb_by_quality": {f"{q:g}": sums[q] for q in qualities}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("probe", choices=["deadzone", "refine", "spatial", "ceiling"])
    p.add_argument("images", type=Path, help="folder of evaluation images")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--limit", type=int, default=4, help="first N images, every len/N-th (default 4)")
    p.add_argument("--qualities", type=float, nargs="+", default=None)
    p.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2])
    p.add_argument("--refine", type=str, nargs="+", default=["10:0.005", "5:0.05"], help="iterations:lr")
    p.add_argument("--train", type=Path, default=Path("../shared/data/train"))
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    paths = list_images(args.images)
    images = paths[:: max(1, len(paths) // args.limit)][: args.limit]
    if args.probe == "deadzone":
        result = probe_deadzone(images, args.qualities or [0, 20, 40, 60, 80, 100], args.deltas)
    elif args.probe == "refine":
        settings = [(int(a), float(b)) for a, b in (s.split(":") for s in args.refine)]
        result = probe_refine(images, args.qualities or [30], settings)
    elif args.probe == "ceiling":
        result = probe_ceiling(images, args.qualities or [0, 50, 90, 100])
    else:
        result = probe_spatial(images, args.qualities or [0, 30, 60, 90], args.train, args.minutes, args.lr,
                               args.width, batch=8, crop=256, seed=1)
    result["command"] = "python -m research.probes " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("log", "rows")}, indent=1))


if __name__ == "__main__":
    main()
