"""The codec pipeline: image tensor -> latents -> entropy-coded bytes, and back.

Data path (encode):  pad -> analysis g_a -> gain -> hyper-analysis h_a -> round z ->
exact hyper-synthesis (means, scales) -> for each channel slice of y: exact context
correction from the earlier slices -> round(y - mean), scale index -> ANS.
Decode mirrors it: ANS -> z -> exact hyper-synthesis -> for each slice: exact context ->
symbols -> y = symbols + mean -> inverse gain -> synthesis g_s -> crop.
A model without a context model has one slice, and its stream is that of format 1's first model.
The analysis and synthesis may run on any device and dtype; everything that selects a
probability (hyper-latent symbols, the exact hyper-synthesis, table indices) depends only
on integers decoded from the file.
"""
from __future__ import annotations

import copy
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bitstream import SCALE_TABLE, StreamReader, StreamWriter, scale_indices
from bitstream.entropy import clip_to_codable
from diffcodec.coding.exact_hyper import ExactHyperSynthesis
from diffcodec.coding.refine import check_refinable, refine_latent
from diffcodec.models.hyperprior import channel_context_loop
from diffcodec.models.subpixel import with_subpixel_convolutions
from diffcodec.tiling import apply_tiled
from diffcodec.zoo.weight_files import Z_RANGE, LoadedModel


@dataclass(frozen=True)
class LatentShape:
    """Sizes of the coded arrays for an image of height x width."""

    y_channels: int
    z_channels: int
    z_height: int
    z_width: int

    @property
    def y_height(self) -> int:
        return 4 * self.z_height

    @property
    def y_width(self) -> int:
        return 4 * self.z_width


def latent_shape(model: LoadedModel, height: int, width: int) -> LatentShape:
    d = model.net.downsampling
    return LatentShape(model.net.config.m, model.net.config.n, -(-height // d), -(-width // d))


def quality_to_level(model: LoadedModel, quality: float) -> Tensor:
    """Quality 0..100 -> continuous gain level in [0, K-1] (float32, shape (1,))."""
    if not 0.0 <= quality <= 100.0:
        raise ValueError(f"quality must be within 0..100, got {quality}")
    return torch.tensor([quality / 100.0 * (model.net.config.levels - 1)], dtype=torch.float32)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Replicate-pad (B, C, H, W) on the bottom/right to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


@dataclass
class Analysis:
    """Quality-independent encoder state: computing g_a once makes rate searches cheap."""

    y: Tensor  # (1, M, h, w) un-gained latent
    height: int
    width: int


#: y is 1/16 of the image; halos (in image pixels) exceed the transforms' receptive fields
#: (analysis: 61 px wide; synthesis: about 5 latent pixels), so tiles meet without seams.
Y_STRIDE = 16
ANALYSIS_HALO = 64
SYNTHESIS_HALO = 64
DEFAULT_TILE = 1024
#: what each residual block (ModelConfig.residual_blocks) adds to both halos, in image pixels:
#: two 3x3 convolutions at 1/4 and two at 1/8 reach 2*4 + 2*8 = 24 px further, rounded up to 32
HALO_PER_RESIDUAL_BLOCK = 32


def halos(residual_blocks: int) -> tuple[int, int]:
    """(analysis, synthesis) halos in image pixels for a network with that many residual blocks per scale."""
    extra = HALO_PER_RESIDUAL_BLOCK * residual_blocks
    return ANALYSIS_HALO + extra, SYNTHESIS_HALO + extra


def thread_invariant(net: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``net`` called on a channels-last copy of its input: bit-identical outputs whatever the
    thread count, for a network of forward convolutions (see :mod:`diffcodec.models.subpixel`
    for the transposed ones).

    oneDNN picks its blocking by thread count, and on contiguous (NCHW) tensors that changed
    the float summation order: pixels differed by one level between 1 and 2 threads. On
    channels-last tensors its forward convolutions gave the same bits on 1 to 16 threads for
    every image size tried (tests/test_codec.py checks 1, 2 and 3 threads), and ran a Kodak
    synthesis three times faster on a 2-core CPU than PyTorch's native im2col convolutions,
    which the codec used before release 0.20.0 for the same guarantee.
    """
    def call(x: Tensor) -> Tensor:
        return net(x.contiguous(memory_format=torch.channels_last))

    return call


def stream_key(height: int, width: int, quality: float) -> bytes:
    """The header fields a latent stream depends on, as its end marker's key (bitstream.entropy)."""
    return struct.pack(">IIH", height, width, round(quality * 100))


class Codec:
    """Encoder and fidelity decoder around one loaded model.

    ``tile`` (image pixels, a multiple of 64) bounds the memory of the transforms: larger
    images are analysed and synthesized in overlapping tiles of that size.
    """

    def __init__(self, model: LoadedModel, device: str | torch.device = "cpu", tile: int = DEFAULT_TILE):
        if tile <= 0 or tile % model.net.downsampling:
            raise ValueError(f"tile must be a positive multiple of {model.net.downsampling}")
        self.model = model
        self.device = torch.device(device)
        self.tile = tile
        # A GPU codec gets its own copy so that a CPU codec sharing the loaded model is unaffected.
        self.net = model.net if self.device.type == "cpu" else copy.deepcopy(model.net).to(self.device)
        # g_s with its transposed convolutions as convolutions + pixel shuffles (thread-invariant)
        self.synthesis = with_subpixel_convolutions(self.net.g_s).to(memory_format=torch.channels_last)
        self.exact_h_s = ExactHyperSynthesis(model.net.h_s)
        self.exact_context = [ExactHyperSynthesis(net) for net in model.net.context]
        self.slices = model.net.slice_bounds()
        self.z_pmf = model.z_pmf.double().numpy()
        self.z_medians = model.z_medians.double()

    # ---- shared ------------------------------------------------------------------------
    def rate_lambda(self, quality: float) -> float:
        """The rate trade-off a file of ``quality`` was coded at (what the realism decoder's level input reads)."""
        return self.net.lambda_at(float(quality_to_level(self.model, quality)))

    def _hyper(self, z_symbols: Tensor) -> tuple[Tensor, Tensor]:
        """Means and scales (float64, exact) from hyper-latent symbols (int, CPU)."""
        z_hat = z_symbols.to(torch.float64) + self.z_medians.view(1, -1, 1, 1)
        means, scales = self.exact_h_s(z_hat).chunk(2, dim=1)
        return means, scales

    def _slice(self, i: int, means: Tensor, scales: Tensor, previous: list[Tensor]) -> tuple[Tensor, np.ndarray]:
        """Exact mean (float64) and scale-table indices of slice ``i`` given the decoded earlier slices."""
        c0, c1 = self.slices[i]
        mu, sigma = means[:, c0:c1], scales[:, c0:c1]
        if i:
            d_mu, d_sigma = self.exact_context[i - 1](torch.cat([mu, sigma, *previous], dim=1)).chunk(2, dim=1)
            mu, sigma = mu + d_mu, sigma + d_sigma  # sums of values on a 2**-26 grid: exact
        return mu, scale_indices(sigma.numpy())

    # ---- encoder -----------------------------------------------------------------------
    @torch.no_grad()
    def analyse(self, image: Tensor) -> Analysis:
        """image: (1, 3, H, W) float in [0, 1]."""
        x = pad_to_multiple(image.to(self.device, torch.float32), self.net.downsampling)
        halo = halos(self.net.config.residual_blocks)[0]
        y = apply_tiled(thread_invariant(self.net.g_a), x, Fraction(1, Y_STRIDE), self.tile, halo, align=Y_STRIDE)
        return Analysis(y=y, height=image.shape[-2], width=image.shape[-1])

    def refine(self, analysis: Analysis, image: Tensor, quality: float, iterations: int) -> Analysis:
        """The analysis with its latent refined for ``quality`` (:mod:`diffcodec.coding.refine`):
        code it at that quality only. ``iterations`` 0 returns it as it is."""
        if iterations == 0:
            return analysis
        check_refinable(analysis.height, analysis.width)
        # autograd back on, also inside a caller's inference_mode (whose tensors it cannot save)
        with torch.inference_mode(False), torch.enable_grad():
            t = quality_to_level(self.model, quality).to(self.device)
            gain = self.net.gains(t)[0].detach()
            x = pad_to_multiple(image.to(self.device, torch.float32), self.net.downsampling).clone()
            y, _ = refine_latent(self.net, x, analysis.y.clone() * gain, t, iterations, analysis.height, analysis.width)
        return Analysis(y=y / gain, height=analysis.height, width=analysis.width)

    def round_latent(self, residual: Tensor) -> Tensor:
        """The quantizer of ``y - mean`` (float64): nearest integer. An encoder-side choice only,
        since the decoder reads the symbols whatever chose them (research/probes.py tries others)."""
        return torch.round(residual)

    @torch.no_grad()
    def quantize(self, analysis: Analysis, quality: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z symbols (1, N, zh, zw), y symbols (1, M, h, w), y scale indices) at ``quality``."""
        t = quality_to_level(self.model, quality).to(self.device)
        gain, _ = self.net.gains(t)
        y = analysis.y * gain
        z = self.net.h_a(y)
        z_symbols = torch.round(z.float().cpu().double() - self.z_medians.view(1, -1, 1, 1))
        z_symbols = z_symbols.clamp(-Z_RANGE, Z_RANGE).to(torch.int64)
        means, scales = self._hyper(z_symbols)
        y64 = y.float().cpu().double()
        symbols, indices = [], []

        def latent(i: int, bounds: tuple[int, int], mu: Tensor, idx: np.ndarray) -> Tensor:
            # the codable range is what the decoder will see, so the context uses the same values
            residual = self.round_latent(y64[:, bounds[0]:bounds[1]] - mu).to(torch.int64).numpy()
            sym = torch.from_numpy(clip_to_codable(residual))
            symbols.append(sym)
            indices.append(idx)
            return sym.to(torch.float64) + mu

        channel_context_loop(self.slices, lambda i, previous: self._slice(i, means, scales, previous), latent)
        return z_symbols.numpy(), torch.cat(symbols, dim=1).numpy(), np.concatenate(indices, axis=1)

    def code(self, analysis: Analysis, quality: float, terminated: bool = True) -> bytes:
        """Entropy-code the latent at ``quality``; returns the latent stream, with its end marker
        unless ``terminated`` is False (a format version 1 stream, as older files hold)."""
        z_symbols, y_symbols, idx = self.quantize(analysis, quality)
        writer = StreamWriter(end_key=stream_key(analysis.height, analysis.width, quality) if terminated else None)
        writer.categorical(z_symbols[0].reshape(z_symbols.shape[1], -1) + Z_RANGE, self.z_pmf)
        for c0, c1 in self.slices:  # one Gaussian run per slice, in decoding order
            writer.gaussian(y_symbols[:, c0:c1], idx[:, c0:c1])
        return writer.finish()

    def encode(self, image: Tensor, quality: float) -> bytes:
        return self.code(self.analyse(image), quality)

    # ---- decoder -----------------------------------------------------------------------
    def decode_latent(self, stream: bytes, height: int, width: int, quality: float,
                      terminated: bool = True) -> Tensor:
        """Entropy-decode the latent stream; returns the gained latent y_hat (1, M, h, w) float64, CPU.

        ``terminated`` is the header's :attr:`bitstream.Header.stream_terminated` (False for
        format version 1 files). A stream that was not coded for exactly this ``height``,
        ``width`` and ``quality`` raises :class:`bitstream.CorruptError`, before any synthesis.
        """
        shape = latent_shape(self.model, height, width)
        reader = StreamReader(stream, end_key=stream_key(height, width, quality) if terminated else None)
        z_symbols = reader.categorical(self.z_pmf, shape.z_height * shape.z_width) - Z_RANGE
        reader.check_not_dry()  # a header claiming a larger image is refused before the hyper-synthesis
        z_symbols = torch.from_numpy(z_symbols.astype(np.int64)).view(1, shape.z_channels, shape.z_height, shape.z_width)
        means, scales = self._hyper(z_symbols)
        y_hat = channel_context_loop(
            self.slices, lambda i, previous: self._slice(i, means, scales, previous),
            lambda i, bounds, mu, idx: torch.from_numpy(reader.gaussian(idx)).view(mu.shape).to(torch.float64) + mu)
        reader.finish()
        return y_hat

    def synthesis_input(self, y_hat: Tensor, quality: float) -> Tensor:
        """The decoded latent over the rate gain: what g_s reads (and a realism decoder may)."""
        t = quality_to_level(self.model, quality).to(self.device)
        _, inv_gain = self.net.gains(t)
        return y_hat.to(self.device, torch.float32) * inv_gain

    @torch.no_grad()
    def synthesize(self, y_hat: Tensor, quality: float, height: int, width: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """Fidelity decoder: (1, 3, height, width) float in [0, 1]."""
        y = self.synthesis_input(y_hat, quality)
        def g_s(latent: Tensor) -> Tensor:
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32):
                return self.synthesis(latent).float()

        halo = halos(self.net.config.residual_blocks)[1]
        x = apply_tiled(thread_invariant(g_s), y, Fraction(Y_STRIDE), self.tile // Y_STRIDE, halo // Y_STRIDE)
        return x.float()[..., :height, :width].clamp(0, 1)

    def decode(self, stream: bytes, quality: float, height: int, width: int) -> Tensor:
        return self.synthesize(self.decode_latent(stream, height, width, quality), quality, height, width)

    # ---- rate estimate -----------------------------------------------------------------
    def estimated_bits(self, analysis: Analysis, quality: float) -> float:
        """The model's own -log2 probability of the symbols that :meth:`code` writes."""
        z_symbols, y_symbols, idx = self.quantize(analysis, quality)
        zs = (z_symbols[0].reshape(z_symbols.shape[1], -1) + Z_RANGE).astype(np.int64)
        z_bits = -np.log2(np.take_along_axis(self.z_pmf, zs, axis=1)).sum()
        std = torch.from_numpy(SCALE_TABLE[idx.ravel()])
        s = torch.from_numpy(y_symbols.ravel().astype(np.float64))
        normal = torch.distributions.Normal(0.0, std)
        p = normal.cdf(s + 0.5) - normal.cdf(s - 0.5)
        return float(z_bits + (-torch.log2(p.clamp_min(1e-300))).sum().item())
