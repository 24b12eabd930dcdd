"""The denoising network of the realism decoder: a small U-Net on pixel-unshuffled images.

It predicts ``v`` (Salimans & Ho 2022) or the clean residual for a noisy *residual* ``r_t`` on top of the
fidelity reconstruction ``x_f`` (DIRAC-style: the network only adds what the MSE decoder
lost), conditioned on ``x_f`` itself, the diffusion time and the rate level. Everything
runs at 1/4 resolution and below (pixel-unshuffle by 4 first), because a full-resolution
U-Net costs seconds per step on a 2-core CPU.

With ``synthesis_width`` the network also owns a trainable copy of the codec's synthesis
transform g_s, started from the codec's weights: it decodes the latent a second time into a
"perceptual" image ``x_p`` that training pulls towards the perceptual losses. The U-Net reads
``x_p`` and adds a time- and rate-gated share of ``x_p - x_f`` to its prediction, so what the
latent holds reaches the output through a full-resolution decoder instead of only through the
1/16 level (No-GAN / MS-ILLM train the whole decoder this way; here it rides the diffusion steps).

The sampler lives in :mod:`diffcodec.realism.schedule` (which also turns either output into
the clean residual and the noise: :func:`~diffcodec.realism.schedule.interpret`); this module
only defines the network.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffcodec.models.hyperprior import synthesis_transform


#: the codec's latent is at 1/16 of the image resolution
LATENT_STRIDE = 16


@dataclass(frozen=True)
class DenoiserConfig:
    """Architecture; stored in the weight file so a loader can rebuild the network."""

    width: int = 64  # channels at 1/4 resolution
    mults: tuple[int, ...] = (1, 2, 3)  # width multipliers at 1/4, 1/8, 1/16 resolution
    blocks: int = 2  # residual blocks per resolution on the way down (and up)
    unshuffle: int = 4
    levels: int = 8  # rate levels of the codec it serves (conditioning input in [0, levels-1])
    residual_scale: float = 0.1  # residual / scale has roughly unit variance
    # what the output is: "v" (v-prediction, trained with the diffusion loss) or "r0" (the clean
    # residual, trained through the unrolled sampler; a zero output is then the fidelity image)
    prediction: str = "v"
    # > 0: also conditioned on the synthesis transform's input (the decoded latent divided by
    # the rate gain, this many channels at 1/16 resolution), added at the U-Net's 1/16 level;
    # 0: on the fidelity image only (every file before realism-cc5-cpu2)
    latent_channels: int = 0
    # > 0: a trainable copy of the codec's g_s with this many hidden channels (and
    # ``synthesis_blocks`` residual blocks per scale) turns the latent into a second image x_p
    # (see the module docstring); 0: none (every file before realism-cc10-cpu5)
    synthesis_width: int = 0
    synthesis_blocks: int = 0

    def __post_init__(self) -> None:
        if self.width <= 0 or not self.mults or self.blocks < 1:
            raise ValueError("width, mults and blocks must be positive")
        if self.prediction not in ("v", "r0"):
            raise ValueError(f"prediction must be 'v' or 'r0', got {self.prediction!r}")
        if self.latent_channels < 0:
            raise ValueError("latent_channels must be >= 0")
        if self.latent_channels and self.unshuffle * 2 ** (len(self.mults) - 1) != LATENT_STRIDE:
            raise ValueError(f"latent conditioning needs the U-Net's lowest level at 1/{LATENT_STRIDE} resolution")
        if self.synthesis_width < 0 or self.synthesis_blocks < 0:
            raise ValueError("synthesis_width and synthesis_blocks must be >= 0")
        if self.synthesis_width and (not self.latent_channels or self.prediction != "r0"):
            raise ValueError("a synthesis copy needs latent_channels and the clean-residual ('r0') prediction")

    def to_dict(self) -> dict:
        return {**asdict(self), "mults": list(self.mults)}

    @staticmethod
    def from_dict(d: dict) -> "DenoiserConfig":
        return DenoiserConfig(**{**d, "mults": tuple(d["mults"])})


def _embedding(values: Tensor, dim: int) -> Tensor:
    """Sinusoidal features of scalars in [0, 1] (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=values.device, dtype=torch.float32) * (-math.log(1000.0) / half))
    angles = values.float()[:, None] * 1000.0 * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ChannelNorm(nn.Module):
    """Layer normalisation over the channels of each pixel.

    Unlike GroupNorm it has no statistics over the image, so every output pixel depends only
    on a bounded neighbourhood: large images can be denoised in tiles without seams.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # one fused kernel over the channel dimension (a view, no copy, in channels_last)
        # instead of the mean, variance and affine written out as separate ops
        c = x.shape[1]
        out = F.layer_norm(x.permute(0, 2, 3, 1), (c,), self.weight.view(c), self.bias.view(c), self.eps)
        return out.permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """Norm-SiLU-conv twice, with the conditioning added as a per-channel shift and scale."""

    def __init__(self, cin: int, cout: int, emb: int):
        super().__init__()
        self.norm1 = ChannelNorm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb, 2 * cout)
        self.norm2 = ChannelNorm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class ClampedSynthesis(nn.Module):
    """The realism decoder's own g_s: latent (B, m, h, w) -> image (B, 3, 16 h, 16 w) in [0, 1], fp32 out."""

    def __init__(self, m: int, width: int, residual_blocks: int):
        super().__init__()
        self.g_s = synthesis_transform(m, width, residual_blocks)

    def forward(self, latent: Tensor) -> Tensor:
        dtype = self.g_s[0].weight.dtype  # bf16 when trained through models.precision.call_in_dtype
        return self.g_s(latent.to(dtype)).float().clamp(0, 1)


class ResidualDenoiser(nn.Module):
    """v-prediction for the residual ``r_t`` given ``x_f``; a zero network output means 'add nothing'."""

    def __init__(self, config: DenoiserConfig = DenoiserConfig()):
        super().__init__()
        self.config = config
        c, u = config.width, config.unshuffle
        emb = 4 * c
        self.embed = nn.Sequential(nn.Linear(2 * c, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.null_condition = nn.Parameter(torch.zeros(1, 3 * u * u, 1, 1))  # x_f "dropped"
        self.inp = nn.Conv2d(2 * 3 * u * u, c, 3, padding=1)
        widths = [c * m for m in config.mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [c]
        cur = c
        for i, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(config.blocks):
                blocks.append(ResBlock(cur, w, emb))
                cur = w
                skips.append(cur)
            self.down.append(blocks)
            if i + 1 < len(widths):
                self.downsample.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                skips.append(cur)
        if config.latent_channels:  # zero-initialised: a network without it decodes the same
            self.latent_in = nn.Conv2d(config.latent_channels, widths[-2] if len(widths) > 1 else c, 3, padding=1)
            nn.init.zeros_(self.latent_in.weight)
            nn.init.zeros_(self.latent_in.bias)
        self.mid = ResBlock(cur, cur, emb)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(config.blocks + 1):
                blocks.append(ResBlock(cur + skips.pop(), w, emb))
                cur = w
            self.up.append(blocks)
            if i > 0:
                self.upsample.append(nn.Conv2d(cur, cur, 3, padding=1))
        self.out_norm = ChannelNorm(cur)
        self.out = nn.Conv2d(cur, 3 * u * u, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if config.synthesis_width:
            self.synthesis = ClampedSynthesis(config.latent_channels, config.synthesis_width, config.synthesis_blocks)
            self.synthesis_in = nn.Conv2d(3 * u * u, c, 3, padding=1)  # zero-initialised, as latent_in
            nn.init.zeros_(self.synthesis_in.weight)
            nn.init.zeros_(self.synthesis_in.bias)
            # share of x_p - x_f added to the prediction, per output channel, from time and rate;
            # it starts at 1, where the copy still equals the codec's g_s (x_p = x_f): nothing changes
            # at first, but the copy's gradient flows from the first step
            self.synthesis_gate = nn.Linear(emb, 3 * u * u)
            nn.init.zeros_(self.synthesis_gate.weight)
            nn.init.ones_(self.synthesis_gate.bias)

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (callers pad)."""
        return self.config.unshuffle * 2 ** (len(self.config.mults) - 1)

    def forward(self, r_t: Tensor, x_f: Tensor | None, t: Tensor, level: Tensor,
                latent: Tensor | None = None, x_p: Tensor | None = None) -> Tensor:
        """r_t, x_f: (B, 3, H, W); t in [0, 1] and level in [0, levels-1]: (B,). ``x_f=None``: unconditional.

        ``latent`` (B, latent_channels, H/16, W/16): the synthesis transform's input, for a
        network with ``latent_channels``; ``None`` leaves that condition out. ``x_p``: this
        network's ``synthesis(latent)`` where the caller has it already (it does not depend on
        ``r_t`` or ``t``, so a decode computes it once); else, with ``synthesis_width``, it is
        computed from ``latent``.
        """
        u = self.config.unshuffle
        dtype = self.inp.weight.dtype  # bf16 when trained through models.precision.call_in_dtype
        r = F.pixel_unshuffle(r_t, u)
        cond = F.pixel_unshuffle(x_f * 2 - 1, u) if x_f is not None else self.null_condition.expand_as(r)
        emb = self.embed(torch.cat([_embedding(t, self.config.width),
                                    _embedding(level / (self.config.levels - 1), self.config.width)],
                                   dim=1).to(dtype))
        h = self.inp(torch.cat([r, cond], dim=1).to(dtype))
        synthesis = bool(self.config.synthesis_width) and x_f is not None and (x_p is not None or latent is not None)
        if synthesis:
            x_p = self.synthesis(latent) if x_p is None else x_p
            h = h + self.synthesis_in(F.pixel_unshuffle(x_p * 2 - 1, u).to(dtype))
        hs = [h]
        last = len(self.down) - 1
        for i, blocks in enumerate(self.down):
            if i == last and latent is not None and self.config.latent_channels:
                h = h + self.latent_in(latent.to(dtype))
            for block in blocks:
                h = block(h, emb)
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid(h, emb)
        for i, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.out(F.silu(self.out_norm(h)))
        if synthesis:
            gate = self.synthesis_gate(emb)[:, :, None, None]
            out = out + gate * F.pixel_unshuffle((x_p - x_f) / self.config.residual_scale, u).to(out.dtype)
        return F.pixel_shuffle(out, u)
