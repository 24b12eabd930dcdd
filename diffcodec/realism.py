"""Realism decoding: the fidelity reconstruction plus a sampled residual.

``decode_realism(x_f, ...)`` pads the fidelity image to the network's multiple, runs the
sampler of :mod:`diffcodec.sampler` with the denoiser of :mod:`diffcodec.denoiser`, and
crops. ``steps = 0`` or ``strength = 0`` returns ``x_f`` itself, so the fidelity decoder is one setting of the
same call. Denoiser weights are fp16 safetensors with their config, checksummed like the
codec's (:func:`load_denoiser`).
"""
from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load, save
from torch import Tensor

from diffcodec.denoiser import DenoiserConfig, ResidualDenoiser
from diffcodec.tiling import apply_tiled
from diffcodec.sampler import SamplerSettings, sample_residual
from diffcodec.weights import WeightError, read_verified, safetensors_metadata


@dataclass
class LoadedDenoiser:
    net: ResidualDenoiser
    sha256: str


@dataclass(frozen=True)
class RealismDecoder:
    """A denoiser and the lambdas its rate-level input spans: all that realism decoding needs.

    The registry makes one for each shipped denoiser; :func:`diffcodec.decompress` also takes
    one directly, to look at a denoiser that is not registered (a training checkpoint).
    """

    net: ResidualDenoiser
    lambda_range: tuple[float, float]
    steps: int = 1  # the defaults of `decompress --realism`
    strength: float = 1.0

    def level(self, lam: float) -> float:
        """The level input for a file coded at rate trade-off ``lam``."""
        return denoiser_level(lam, self.lambda_range, self.net.config.levels)


def export_denoiser(net: ResidualDenoiser, path: Path) -> str:
    """fp16 safetensors with the config as metadata; returns the SHA-256."""
    tensors = {k: v.detach().cpu().half().contiguous() for k, v in net.state_dict().items()}
    data = save(tensors, metadata={"config": json.dumps(net.config.to_dict()), "format": "diffcodec-denoiser-1"})
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_denoiser(path: Path, expected_sha256: str | None) -> LoadedDenoiser:
    """Load and verify a denoiser weight file (``expected_sha256=None`` skips the check, for training)."""
    data, digest = read_verified(path, expected_sha256, "denoiser weights")
    try:
        meta = safetensors_metadata(data)
        if meta.get("format") != "diffcodec-denoiser-1":
            raise ValueError("not a denoiser file")
        net = ResidualDenoiser(DenoiserConfig.from_dict(json.loads(meta["config"])))
        net.load_state_dict({k: v.float() for k, v in load(data).items()})
    except Exception as exc:
        raise WeightError(f"{path} is not a diffcodec denoiser weight file ({exc})") from None
    return LoadedDenoiser(net.eval().requires_grad_(False), digest)


def denoiser_level(lam: float | Tensor, lambda_range: tuple[float, float], levels: int) -> float | Tensor:
    """The denoiser's rate-level input for a file coded at rate trade-off ``lam``.

    Its level input is log-spaced over ``lambda_range`` (the codec it was trained with), so
    a codec whose level grid differs reaches it through lambda; below the range the input
    extrapolates (the sinusoidal embedding is defined for any value).
    """
    lo, hi = math.log(lambda_range[0]), math.log(lambda_range[1])
    log_lam = torch.log(lam) if isinstance(lam, Tensor) else math.log(lam)  # a tensor in training
    return (log_lam - lo) / (hi - lo) * (levels - 1)


#: Large images are denoised in tiles of this many pixels, widened by the halo (both multiples of 16).
REALISM_TILE = 1024
REALISM_HALO = 256


@torch.no_grad()
def decode_realism(x_f: Tensor, level: float, denoiser: ResidualDenoiser, settings: SamplerSettings,
                   dtype: torch.dtype = torch.float32, tile: int = REALISM_TILE, halo: int = REALISM_HALO) -> Tensor:
    """x_f: (1, 3, H, W) fidelity reconstruction in [0, 1] -> realism reconstruction, same shape.

    Repeated decodes on one machine with the same thread count give the same pixels (seeded
    noise). Across thread counts oneDNN's convolutions sum in another order, so pixels may
    differ slightly; the bitstream and the fidelity image never do. On a CPU, bf16 with
    oneDNN is the fast path (2 cores, 768x512, width 64, 4 steps, untrained network: 0.68 s
    in bf16, 1.4 s in fp32, measured once with a one-off script).
    """
    if settings.is_fidelity:
        return x_f
    device = x_f.device
    h, w = x_f.shape[-2:]
    m = denoiser.multiple
    cond = F.pad(x_f, (0, (-w) % m, 0, (-h) % m), mode="replicate").contiguous(memory_format=torch.channels_last)
    level_t = torch.full((cond.shape[0],), float(level), device=device)

    def predict(r_t: Tensor, t: Tensor, conditional: bool) -> tuple[Tensor, Tensor]:
        def net(pair: Tensor) -> Tensor:  # (r_t, x_f) stacked, so one tiling cuts both alike
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                r0, eps = denoiser.predict(pair[:, :3], pair[:, 3:] if conditional else None, t, level_t)
            return torch.cat([r0, eps], dim=1).float()

        # every network evaluation is tiled (not the whole sampling), so tiles never drift apart
        out = apply_tiled(net, torch.cat([r_t, cond], dim=1), Fraction(1), tile, halo, align=m)
        return out[:, :3], out[:, 3:]

    r0 = sample_residual(predict, tuple(cond.shape), settings, device)
    x = cond + denoiser.config.residual_scale * r0
    return x[..., :h, :w].clamp(0, 1)
