"""Few-step DDIM sampling of the residual on top of the fidelity reconstruction.

Separate from the network (as diffusers separates scheduler and model): the sampler only
needs a function ``v(r_t, t, conditional) -> v-prediction``. Continuous time ``t`` in [0, 1]
with the cosine schedule ``alpha = cos(pi t / 2)``, ``sigma = sin(pi t / 2)``;
``x = x_f + scale * r_0``.

Knobs:
- ``steps``: 0 returns the fidelity reconstruction unchanged (bit for bit).
- ``eta``: 0 is the deterministic DDIM (probability-flow) sampler; up to 1 adds fresh noise
  at every step (ancestral), which gives more texture and less fidelity.
- ``guidance``: classifier-free guidance between the prediction without the fidelity
  reconstruction as a condition (``guidance = 0``) and with it (``guidance = 1``, one
  network call per step); above 1 extrapolates towards more detail.
- ``seed``: the noise comes from a seeded CPU generator, so the same file and settings give
  the same pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

MAX_STEPS = 64
VFunction = Callable[[Tensor, Tensor, bool], Tensor]  # (r_t, t (B,), conditional) -> v


@dataclass(frozen=True)
class SamplerSettings:
    steps: int = 4
    eta: float = 0.0
    guidance: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be within 0..{MAX_STEPS}, got {self.steps}")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be within 0..1, got {self.eta}")
        if not 0.0 <= self.guidance <= 10.0:
            raise ValueError(f"guidance must be within 0..10, got {self.guidance}")


def alpha_sigma(t: float) -> tuple[float, float]:
    return math.cos(math.pi * t / 2), math.sin(math.pi * t / 2)


def guided_v(v: VFunction, r_t: Tensor, t: Tensor, guidance: float) -> Tensor:
    """Classifier-free guidance: uncond + g * (cond - uncond); g = 1 or 0 costs one call."""
    if guidance == 1.0:
        return v(r_t, t, True)
    uncond = v(r_t, t, False)
    if guidance == 0.0:
        return uncond
    return uncond + guidance * (v(r_t, t, True) - uncond)


def sample_residual(v: VFunction, shape: tuple[int, ...], settings: SamplerSettings,
                    device: torch.device | str = "cpu") -> Tensor:
    """Sample r_0 of ``shape`` (normalised residual) in ``settings.steps`` DDIM steps from t = 1."""
    gen = torch.Generator().manual_seed(settings.seed)

    def noise() -> Tensor:  # drawn on the CPU: the same numbers on every device
        return torch.randn(shape, generator=gen, dtype=torch.float32).to(device)

    r = noise()  # alpha(1) = 0: pure noise
    times = [1.0 - i / settings.steps for i in range(settings.steps + 1)]
    for t, t_next in zip(times[:-1], times[1:]):
        a, s = alpha_sigma(t)
        a_next, s_next = alpha_sigma(t_next)
        v_hat = guided_v(v, r, torch.full((shape[0],), t, device=device), settings.guidance).float()
        x0 = a * r - s * v_hat
        eps = s * r + a * v_hat
        if t_next <= 0.0:
            r = x0
            break
        # DDIM (Song et al. 2021) with alpha_bar = alpha^2; eta interpolates to ancestral sampling
        ab, ab_next = a * a, a_next * a_next
        c = settings.eta * math.sqrt(max(0.0, (1 - ab_next) / (1 - ab) * (1 - ab / ab_next))) if ab_next > 0 else 0.0
        r = a_next * x0 + math.sqrt(max(0.0, s_next * s_next - c * c)) * eps
        if c > 0:
            r = r + c * noise()
    return r
