"""The noise schedule and the few-step DDIM sampler of the realism decoder's residual.

One module owns the noise algebra, for training and for decoding alike (as diffusers'
schedulers do): the cosine schedule ``alpha = cos(pi t / 2)``, ``sigma = sin(pi t / 2)`` in
continuous time ``t`` in [0, 1], noising a residual, the v-target, and the DDIM update. The
residual lives on top of the fidelity reconstruction: ``x = x_f + scale * r_0``, so the
fidelity image itself is ``r_0 = 0``.

Sampling starts from the fidelity image noised to the start time ``t_s = strength``
(SDEdit/DIRAC style: ``r = sigma(t_s) * eps``) and runs ``steps`` DDIM steps down to 0.
Strength 1 starts from pure noise. The sampler only needs a prediction function
``predict(r_t, t, conditional) -> (r0_hat, eps_hat)``; the network decides how it
parameterises that (:meth:`diffcodec.models.denoiser.ResidualDenoiser.predict`).

Knobs:
- ``strength``: the start time; 0 (or ``steps = 0``) returns the fidelity image bit for bit.
- ``steps``: network evaluations.
- ``eta``: 0 is the deterministic DDIM (probability-flow) sampler; up to 1 adds fresh noise
  at every step (ancestral).
- ``guidance``: classifier-free guidance between the prediction without the fidelity
  reconstruction as a condition (0) and with it (1, one network call per step).
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
Prediction = tuple[Tensor, Tensor]  # (r0_hat, eps_hat)
PredictFunction = Callable[[Tensor, Tensor, bool], Prediction]  # (r_t, t (B,), conditional) -> prediction
NoiseFunction = Callable[[], Tensor]


@dataclass(frozen=True)
class SamplerSettings:
    steps: int = 4
    eta: float = 0.0
    guidance: float = 1.0
    seed: int = 0
    strength: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be within 0..{MAX_STEPS}, got {self.steps}")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be within 0..1, got {self.eta}")
        if not 0.0 <= self.guidance <= 10.0:
            raise ValueError(f"guidance must be within 0..10, got {self.guidance}")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be within 0..1, got {self.strength}")

    @property
    def is_fidelity(self) -> bool:
        """No network runs: the output is the fidelity image itself."""
        return self.steps == 0 or self.strength == 0.0


def alpha_sigma(t: float | Tensor) -> tuple[float, float] | tuple[Tensor, Tensor]:
    """Signal and noise coefficients at time ``t``: a float, or a (B,) tensor -> (B, 1, 1, 1) each."""
    if isinstance(t, Tensor):
        angle = (math.pi / 2) * t.double()
        shape = (-1, 1, 1, 1)
        return torch.cos(angle).float().view(shape), torch.sin(angle).float().view(shape)
    return math.cos(math.pi * t / 2), math.sin(math.pi * t / 2)


def add_noise(r0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
    """``r_t = alpha r_0 + sigma eps`` at per-sample times ``t`` (B,)."""
    a, s = alpha_sigma(t)
    return a * r0 + s * eps


def v_target(r0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
    """The v-prediction target (Salimans & Ho 2022) ``alpha eps - sigma r_0``."""
    a, s = alpha_sigma(t)
    return a * eps - s * r0


def from_v(r_t: Tensor, v: Tensor, t: Tensor) -> Prediction:
    """(r0_hat, eps_hat) implied by a v-prediction."""
    a, s = alpha_sigma(t)
    return a * r_t - s * v, s * r_t + a * v


def from_r0(r_t: Tensor, r0: Tensor, t: Tensor) -> Prediction:
    """(r0_hat, eps_hat) implied by a clean-residual prediction (``t > 0``)."""
    a, s = alpha_sigma(t)
    return r0, (r_t - a * r0) / s


def interpret(prediction: str, r_t: Tensor, out: Tensor, t: Tensor) -> Prediction:
    """(r0_hat, eps_hat) from a network output that is a ``"v"`` or an ``"r0"`` prediction."""
    return (from_v if prediction == "v" else from_r0)(r_t, out, t)


def time_grid(strength: float | Tensor, steps: int) -> list[float] | Tensor:
    """The ``steps + 1`` times from the start time ``strength`` down to 0, evenly spaced.

    A float strength (the decoder's) gives a list of floats; a ``(B,)`` tensor of per-crop
    strengths (training) gives a ``(steps + 1, B)`` tensor, one column per crop.
    """
    fractions = [1.0 - i / steps for i in range(steps + 1)]
    if isinstance(strength, Tensor):
        return torch.tensor(fractions, dtype=strength.dtype, device=strength.device)[:, None] * strength[None, :]
    return [strength * f for f in fractions]


def guided(predict: PredictFunction, r_t: Tensor, t: Tensor, guidance: float) -> Prediction:
    """Classifier-free guidance: uncond + g * (cond - uncond); g = 1 or 0 costs one call.

    Both predictions are linear in the network's output, so guiding them equals guiding v.
    """
    if guidance == 1.0:
        return predict(r_t, t, True)
    uncond = predict(r_t, t, False)
    if guidance == 0.0:
        return uncond
    cond = predict(r_t, t, True)
    return tuple(u + guidance * (c - u) for u, c in zip(uncond, cond))  # type: ignore[return-value]


def ddim(predict: Callable[[Tensor, Tensor], Prediction], r: Tensor, times: Tensor, eta: float = 0.0,
         noise: NoiseFunction | None = None) -> Tensor:
    """Run DDIM (Song et al. 2021) from ``r`` along ``times`` (steps + 1, B); returns ``r0_hat``.

    Differentiable: training unrolls exactly the steps a decode runs ("fixed-step
    fine-tuning", RDEIC) through this function. ``eta > 0`` needs ``noise``.
    """
    for i in range(times.shape[0] - 1):
        t, t_next = times[i], times[i + 1]
        r0, eps = predict(r, t)
        if bool((t_next <= 0).all()):
            return r0
        a, s = alpha_sigma(t)
        a_next, s_next = alpha_sigma(t_next)
        if eta == 0:  # deterministic DDIM: all of the remaining noise is the predicted one
            r = a_next * r0 + s_next * eps
            continue
        ab, ab_next = a * a, a_next * a_next
        c = eta * torch.sqrt(((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)).clamp(min=0))
        r = a_next * r0 + torch.sqrt((s_next * s_next - c * c).clamp(min=0)) * eps + c * noise()
    return r0


def sample_residual(predict: PredictFunction, shape: tuple[int, ...], settings: SamplerSettings,
                    device: torch.device | str = "cpu") -> Tensor:
    """Sample ``r_0`` of ``shape`` in ``settings.steps`` DDIM steps from the noised fidelity image."""
    gen = torch.Generator().manual_seed(settings.seed)

    def noise() -> Tensor:  # drawn on the CPU: the same numbers on every device
        return torch.randn(shape, generator=gen, dtype=torch.float32).to(device)

    _, s_start = alpha_sigma(settings.strength)
    r = s_start * noise()
    grid = torch.tensor(time_grid(settings.strength, settings.steps), device=device)
    times = grid[:, None].expand(-1, shape[0])
    return ddim(lambda r_t, t: guided(predict, r_t, t, settings.guidance), r, times, settings.eta, noise)
