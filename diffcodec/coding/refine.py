"""Encoder-side latent refinement: spend encode time to lower the rate-distortion cost.

A trained analysis transform only approximates, for each image, the latent that minimises
``lambda * 255^2 * MSE + bpp`` (the amortization gap, large for a network that saw little
training). Refinement descends that cost from the analysis' latent through the synthesis and the
entropy models (Campos et al. 2019, "Content adaptive optimization for neural image
compression"). It descends the relaxed cost, uniform noise in place of rounding for both rate and
distortion: straight-through rounding, what the coder does, made the real cost rise here (each
Adam step moves every element by about the learning rate, and the steps that cross a rounding
boundary cost more distortion than the straight-through gradient sees). The real cost (rounded)
decides at the end whether the refined latent or the analysis' own is coded.

Only the encoder changes: the decoder reads whatever symbols the file holds, so refined files
decode with any diffcodec that knows the model, and the bitstream is the same format.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from diffcodec.models.hyperprior import VariableRateHyperprior

#: refinement differentiates through the whole synthesis at once (no tiles): larger images are
#: refused rather than allowed to exhaust memory
MAX_REFINE_PIXELS = 2**22
#: the relaxed cost's noise comes from this seed: the same image, quality and iterations give
#: the same file
REFINE_SEED = 0


def check_refinable(height: int, width: int) -> None:
    """ValueError (one line) for an image too large to refine: callers check before any work."""
    if height * width > MAX_REFINE_PIXELS:
        raise ValueError(f"refinement is limited to {MAX_REFINE_PIXELS} pixels ({width}x{height} has {height * width})")


@dataclass(frozen=True)
class RefineTrace:
    """Real (rounded) cost of the analysis' latent and of the refined one; which was kept."""

    start_cost: float
    refined_cost: float
    kept_refined: bool


def rd_cost(net: VariableRateHyperprior, y: Tensor, x: Tensor, t: Tensor, height: int, width: int,
            relaxed: bool = False) -> Tensor:
    """``lambda * 255^2 * MSE + bpp`` of gained latent ``y`` for the padded image ``x`` (1, 3, H, W)
    whose top-left ``height`` x ``width`` is the real image (the only pixels the MSE and bpp
    count): rounded as the coder rounds, or ``relaxed`` with uniform noise for both terms."""
    kind = "noise" if relaxed else "rounded"
    out = net.forward_latent(y, t, rate=kind, distortion="noise" if relaxed else "ste")
    bits = sum((-torch.log2(lik)).sum() for lik in out["likelihoods"].values())
    mse = ((out["x_hat"][..., :height, :width] - x[..., :height, :width]) ** 2).mean()
    return net.level_lambda(t)[0] * 255.0**2 * mse + bits / (height * width)


def refine_latent(net: VariableRateHyperprior, x: Tensor, y: Tensor, t: Tensor, iterations: int,
                  height: int, width: int, lr: float = 0.02) -> tuple[Tensor, RefineTrace]:
    """Gained latent ``y`` (1, M, h, w) after ``iterations`` Adam steps on the relaxed
    :func:`rd_cost` at level ``t`` (learning rate decaying linearly to zero), or ``y`` itself
    where that has the lower real cost. Deterministic: the noise is seeded (REFINE_SEED), and the
    caller's random state is left as it was.
    """
    if iterations < 0:
        raise ValueError(f"refinement iterations must be >= 0, got {iterations}")
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)  # gradients for the latent only
    try:
        with torch.no_grad():
            start_cost = rd_cost(net, y, x, t, height, width).item()
        current = y.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([current], lr=lr)
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(REFINE_SEED)
            for i in range(iterations):
                for group in opt.param_groups:
                    group["lr"] = lr * (1 - i / iterations)
                opt.zero_grad(set_to_none=True)
                rd_cost(net, current, x, t, height, width, relaxed=True).backward()
                opt.step()
        with torch.no_grad():
            refined_cost = rd_cost(net, current, x, t, height, width).item()
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)
    keep = refined_cost < start_cost
    return (current.detach() if keep else y.detach()), RefineTrace(start_cost, refined_cost, keep)
