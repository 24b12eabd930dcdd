"""Realism decoding: the fidelity reconstruction plus a sampled residual.

``decode_realism(x_f, ...)`` pads the fidelity image to the network's multiple, runs the
sampler of :mod:`diffcodec.realism.schedule` with the denoiser of
:mod:`diffcodec.models.denoiser`, and crops. ``steps = 0`` or ``strength = 0`` returns ``x_f``
itself, so the fidelity decoder is one setting of the same call. The denoiser's weight files
and their loader live in :mod:`diffcodec.zoo`.
"""
from __future__ import annotations

from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor

from diffcodec.models.denoiser import ResidualDenoiser
from diffcodec.realism.schedule import SamplerSettings, interpret, sample_residual
from diffcodec.tiling import apply_tiled

#: Large images are denoised in tiles of this many pixels, widened by the halo (both multiples of 16).
REALISM_TILE = 1024
REALISM_HALO = 256


@torch.no_grad()
def decode_realism(x_f: Tensor, level: float, denoiser: ResidualDenoiser, settings: SamplerSettings,
                   dtype: torch.dtype = torch.float32, tile: int = REALISM_TILE, halo: int = REALISM_HALO,
                   latent: Tensor | None = None) -> Tensor:
    """x_f: (1, 3, H, W) fidelity reconstruction in [0, 1] -> realism reconstruction, same shape.

    ``latent``: the synthesis transform's input (1, C, >= H/16, >= W/16), read by a denoiser
    with ``latent_channels`` (and ignored by one without). A denoiser with its own synthesis
    copy decodes it once, in the same tiles, into the image ``x_p`` that every step reads.

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
    s = denoiser.multiple  # a network that reads the latent has it at 1/16 = 1/multiple (DenoiserConfig)
    if tile % s or halo % s:
        raise ValueError(f"tile and halo must be multiples of {s}")
    cond = F.pad(x_f, (0, (-w) % s, 0, (-h) % s), mode="replicate")
    level_t = torch.full((cond.shape[0],), float(level), device=device)
    use_latent = latent is not None and denoiser.config.latent_channels > 0
    use_synthesis = use_latent and denoiser.config.synthesis_width > 0
    if use_latent:
        latent = latent[..., :cond.shape[-2] // s, :cond.shape[-1] // s].to(device, torch.float32)
    images, x_p = 2, None  # r_t, x_f (and x_p) travel as one unshuffled grid
    if use_synthesis:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            x_p = apply_tiled(denoiser.synthesis, latent, Fraction(s), tile // s, halo // s).float()
        images = 3

    def predict(r_t: Tensor, t: Tensor, conditional: bool) -> tuple[Tensor, Tensor]:
        def net(grid: Tensor) -> Tensor:
            # r_t and x_f unshuffled onto the network's coarsest grid (the latent's), so that one
            # tiling cuts them and the latent alike
            pair = F.pixel_shuffle(grid[:, :3 * images * s * s], s).contiguous(memory_format=torch.channels_last)
            r_t = pair[:, :3]
            lat = grid[:, 3 * images * s * s:] if use_latent and conditional else None
            x_p_tile = pair[:, 6:9] if use_synthesis and conditional else None
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                out = denoiser(r_t, pair[:, 3:6] if conditional else None, t, level_t, lat, x_p_tile).float()
                r0, eps = interpret(denoiser.config.prediction, r_t, out, t)
            return F.pixel_unshuffle(torch.cat([r0, eps], dim=1).float(), s)

        grid = F.pixel_unshuffle(torch.cat([r_t, cond, x_p] if use_synthesis else [r_t, cond], dim=1), s)
        if use_latent:
            grid = torch.cat([grid, latent], dim=1)
        # every network evaluation is tiled (not the whole sampling), so tiles never drift apart
        out = F.pixel_shuffle(apply_tiled(net, grid, Fraction(1), tile // s, halo // s), s)
        return out[:, :3], out[:, 3:]

    r0 = sample_residual(predict, tuple(cond.shape), settings, device)
    x = cond + denoiser.config.residual_scale * r0
    return x[..., :h, :w].clamp(0, 1)
