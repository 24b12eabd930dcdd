"""Variable-rate mean-scale hyperprior: the learned transforms of diffcodec.

One set of weights covers the whole rate range through per-channel gain vectors on
the latent (Cui et al., "Asymmetric Gained Deep Image Compression", 2021): a continuous
rate level ``t`` in ``[0, K-1]`` interpolates the learned log-gains of ``K`` anchor levels.
The network only defines transforms; quantization and entropy coding for real files
live in :mod:`diffcodec.coding.codec` and :mod:`bitstream`.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

with warnings.catch_warnings():  # compressai 1.2.8 scripts a function at import time
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.layers import GDN

from diffcodec.models.precision import call_in_dtype


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; stored in the weight file so a loader can rebuild the net."""

    n: int = 96  # channels of the hidden transform layers
    m: int = 160  # latent channels (y)
    levels: int = 8  # gain anchor levels
    lambda_min: float = 0.0009  # rate-distortion trade-off at quality 0 (MSE on 0..255 scale)
    lambda_max: float = 0.13  # ... at quality 100
    context_slices: int = 1  # channel slices of y; > 1 adds the channel-conditional context model
    context_width: int = 64  # hidden channels of each slice's context network
    residual_blocks: int = 0  # residual blocks at the 1/4 and 1/8 scales of g_a and g_s (0: Balle 2018's transforms)
    transform_width: int = 0  # hidden channels of g_a and g_s where wider than the hyperprior's n (0: n)

    def to_dict(self) -> dict:
        return asdict(self)


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1)


def context_network(cin: int, cout: int, width: int) -> nn.Sequential:
    """Three 3x3 convolutions with ReLU: (slice's hyper mean/scale, earlier slices) -> (d_mean, d_scale).

    Convolutions and ReLU only, so the codec can evaluate it exactly like the hyper-synthesis;
    the last layer starts at zero, so a context model initialised from a trained hyperprior
    starts out coding exactly as that hyperprior does.
    """
    net = nn.Sequential(
        _conv(cin, width, 3, 1), nn.ReLU(), _conv(width, width, 3, 1), nn.ReLU(), _conv(width, cout, 3, 1)
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class ResidualBlock(nn.Module):
    """x + conv3x3(relu(conv3x3(x))), the second convolution starting at zero: added to a trained
    transform, the block is the identity until training changes it (the network is grown, not
    restarted). Plain 3x3 convolutions: what AMX-bf16 runs fastest (no depthwise)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _conv(channels, channels, 3, 1)
        self.conv2 = _conv(channels, channels, 3, 1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class ResidualTransform(nn.Module):
    """A chain of layers with residual blocks after some of them.

    The layers keep ``nn.Sequential``'s names (``g_s.0.weight`` ...) and the blocks live under
    ``res``, so weights of the plain transform load into the grown one unchanged.
    """

    def __init__(self, layers: list[nn.Module], blocks_after: dict[int, int], channels: int):
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)
        self.count = len(layers)
        self.res = nn.ModuleDict({str(i): nn.Sequential(*[ResidualBlock(channels) for _ in range(k)])
                                  for i, k in blocks_after.items() if k})

    def __getitem__(self, i: int) -> nn.Module:
        return self._modules[str(i)]

    def forward(self, x: Tensor) -> Tensor:
        for i in range(self.count):
            x = self._modules[str(i)](x)
            if str(i) in self.res:
                x = self.res[str(i)](x)
        return x


def transform(layers: list[nn.Module], blocks_after: dict[int, int], channels: int) -> nn.Module:
    """``nn.Sequential`` when no block is asked for (the shipped models' own structure)."""
    if not any(blocks_after.values()):
        return nn.Sequential(*layers)
    return ResidualTransform(layers, blocks_after, channels)


def synthesis_transform(m: int, width: int, residual_blocks: int) -> nn.Module:
    """g_s: ``m`` latent channels at 1/16 resolution -> an RGB image (four stride-2 deconvolutions).

    The codec's fidelity decoder, and the realism decoder's own trainable copy of it
    (:class:`diffcodec.models.denoiser.ResidualDenoiser`), which starts from the codec's weights.
    """
    w, k = width, residual_blocks
    return transform(
        [_deconv(m, w), GDN(w, inverse=True), _deconv(w, w), GDN(w, inverse=True),
         _deconv(w, w), GDN(w, inverse=True), _deconv(w, 3)], {1: k, 3: k}, w
    )


SliceParams = Callable[[int, list[Tensor]], tuple[Tensor, Any]]  # (slice, decoded slices before it) -> (mean, scale)
SliceLatent = Callable[[int, tuple[int, int], Tensor, Any], Tensor]  # (slice, channels, mean, scale) -> decoded slice


def channel_context_loop(slices: list[tuple[int, int]], params: SliceParams, latent: SliceLatent) -> Tensor:
    """The channel-conditional context's decoding order: the one slice loop of training,
    reconstruction, encoding and decoding.

    Slice ``i``'s mean and scale come from ``params(i, decoded)``, where ``decoded`` holds the
    slices before it *as the decoder will have them*; ``latent(i, (c0, c1), mean, scale)``
    returns slice ``i`` as decoded (straight-through rounding in training, the coder's symbols
    plus the mean in encoding and decoding). Float networks (training) and the exact integer
    ones (coding) plug into the same order, so encoder and decoder cannot drift apart.
    """
    decoded: list[Tensor] = []
    for i, bounds in enumerate(slices):
        mean, scale = params(i, decoded)
        decoded.append(latent(i, bounds, mean, scale))
    return torch.cat(decoded, dim=1)


def grown_latent_places(old_m: int, new_m: int, slices: int) -> Tensor:
    """Where each of ``old_m`` latent channels sits in a latent grown to ``new_m`` channels with
    the same number of context ``slices``: the new channels go at the end of every slice, so each
    slice keeps its old channels first and in order (the channel-context layout stays valid)."""
    if new_m < old_m or old_m % slices or new_m % slices:
        raise ValueError(f"cannot grow {old_m} latent channels in {slices} slices to {new_m}")
    old_slice, new_slice = old_m // slices, new_m // slices
    return torch.tensor([(i // old_slice) * new_slice + i % old_slice for i in range(old_m)])


def ste_round(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


class VariableRateHyperprior(nn.Module):
    """Analysis/synthesis transforms, hyperprior and gain vectors.

    Image downsampling factor is 16 for y and 64 for z; callers pad to a multiple of 64.
    The hyper-synthesis uses only convolutions and ReLU so that it can be evaluated in exact
    fixed-point arithmetic for entropy coding (see :mod:`diffcodec.coding.exact_hyper`).
    """

    downsampling = 64

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        # dtype the four transforms compute in during training (bf16 on CPUs with bf16 units):
        # the weights stay fp32 masters; quantization, likelihoods and context stay fp32.
        self.transform_dtype = torch.float32
        n, m, k = config.n, config.m, config.residual_blocks
        w = config.transform_width or n  # the image transforms may be wider than the hyperprior
        # residual blocks after the GDNs at 1/4 and 1/8 (layers 3 and 5 of g_a, 1 and 3 of g_s):
        # more depth where it is cheap; the 1/2 scale would cost 4x as much per block
        self.g_a = transform(
            [_conv(3, w), GDN(w), _conv(w, w), GDN(w), _conv(w, w), GDN(w), _conv(w, m)], {3: k, 5: k}, w
        )
        self.g_s = synthesis_transform(m, w, k)
        self.h_a = nn.Sequential(
            _conv(m, n, 3, 1), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n)
        )
        self.h_s = nn.Sequential(
            _deconv(n, m), nn.ReLU(), _deconv(m, m * 3 // 2), nn.ReLU(), _conv(m * 3 // 2, 2 * m, 3, 1)
        )
        # Channel-conditional context (Minnen & Singh 2020, without latent residual prediction):
        # slice i's mean and scale are corrected from the slices decoded before it. Slice 0 has
        # no context and uses the hyperprior alone.
        if m % config.context_slices:
            raise ValueError(f"{m} latent channels do not split into {config.context_slices} slices")
        s = m // config.context_slices
        self.context = nn.ModuleList(
            [context_network(2 * s + i * s, 2 * s, config.context_width) for i in range(1, config.context_slices)]
        )
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.gaussian_conditional = GaussianConditional(None)
        # Gains ~ sqrt(lambda) is the high-rate optimum for a uniform quantizer: a good start.
        lambdas = self.anchor_lambdas()
        log_gain = 0.5 * torch.log(lambdas / lambdas[len(lambdas) // 2])
        self.log_gain = nn.Parameter(log_gain[:, None].repeat(1, m).clone())
        self.log_inv_gain = nn.Parameter(-log_gain[:, None].repeat(1, m).clone())

    # ---- rate level ---------------------------------------------------------------------
    def anchor_lambdas(self) -> Tensor:
        c = self.config
        return torch.exp(torch.linspace(math.log(c.lambda_min), math.log(c.lambda_max), c.levels))

    def level_lambda(self, t: Tensor) -> Tensor:
        """Lambda at continuous level(s) t in [0, K-1] (log-linear between the extremes)."""
        c = self.config
        frac = t / (c.levels - 1)
        return torch.exp(math.log(c.lambda_min) + frac * (math.log(c.lambda_max) - math.log(c.lambda_min)))

    def lambda_at(self, t: float) -> float:
        """Lambda at one level t, in float64 (what a decoder computes from a file's quality)."""
        return float(self.level_lambda(torch.tensor(t, dtype=torch.float64)))

    @staticmethod
    def _interp(table: Tensor, t: Tensor) -> Tensor:
        """Linear interpolation of rows of ``table`` (K, M) at levels ``t`` (B,) -> (B, M)."""
        lo = torch.clamp(t.floor().long(), 0, table.shape[0] - 2)
        frac = (t - lo.to(t.dtype)).unsqueeze(1)
        return table[lo] * (1 - frac) + table[lo + 1] * frac

    def gains(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Per-channel (gain, inverse gain) of shape (B, M, 1, 1) at levels t (B,)."""
        g = torch.exp(self._interp(self.log_gain, t))
        ig = torch.exp(self._interp(self.log_inv_gain, t))
        return g[:, :, None, None], ig[:, :, None, None]

    # ---- hyper-synthesis output split -----------------------------------------------------
    def split_params(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """h_s output -> (means, scales)."""
        means, scales = params.chunk(2, dim=1)
        return means, scales

    def slice_bounds(self) -> list[tuple[int, int]]:
        """Channel ranges of the slices of y, in coding order."""
        s = self.config.m // self.config.context_slices
        return [(i * s, (i + 1) * s) for i in range(self.config.context_slices)]

    def hyper_slice_params(self, means: Tensor, scales: Tensor) -> SliceParams:
        """:func:`channel_context_loop`'s ``params`` from the hyperprior's means and scales (float networks)."""
        bounds = self.slice_bounds()

        def params(i: int, previous: list[Tensor]) -> tuple[Tensor, Tensor]:
            c0, c1 = bounds[i]
            return self.slice_params(i, means[:, c0:c1], scales[:, c0:c1], previous)

        return params

    def slice_params(self, i: int, means: Tensor, scales: Tensor, previous: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Mean and scale of slice ``i`` from its hyperprior mean/scale and the decoded earlier slices."""
        if i == 0:
            return means, scales
        d_means, d_scales = self.context[i - 1](torch.cat([means, scales, *previous], dim=1)).chunk(2, dim=1)
        return means + d_means, scales + d_scales

    # ---- training forward ---------------------------------------------------------------
    def _transform(self, net: nn.Module, x: Tensor) -> Tensor:
        """``net(x)`` computed in ``transform_dtype`` (fp32 master weights), returned in fp32."""
        return call_in_dtype(net, self.transform_dtype, x.to(self.transform_dtype))

    def forward(self, x: Tensor, t: Tensor, synthesize: bool = True) -> dict:
        """Training/evaluation pass with noise (rate) and straight-through rounding (distortion).

        ``synthesize=False`` skips the synthesis (``x_hat`` is None) when only the rate is trained.
        """
        gain, _ = self.gains(t)
        return self.forward_latent(self._transform(self.g_a, x) * gain, t, synthesize)

    def forward_latent(self, y: Tensor, t: Tensor, synthesize: bool = True, rate: str = "module",
                       distortion: str = "ste") -> dict:
        """:meth:`forward` from the gained latent ``y`` on: what training and encoder-side latent
        refinement (:mod:`diffcodec.coding.refine`) both differentiate.

        ``rate``: "module" the entropy models' own proxy (uniform noise in training mode, rounding
        in eval mode), "noise" uniform noise whatever the mode, "rounded" the likelihood of the
        values the coder will code, with straight-through gradients to ``y``. ``distortion``:
        "ste" synthesizes the rounded latent (straight-through), "noise" the latent plus uniform
        noise. The hyper-latent is rounded straight-through in every case, as the coder rounds it.
        """
        if rate not in ("module", "noise", "rounded") or distortion not in ("ste", "noise"):
            raise ValueError(f"unknown rate {rate!r} or distortion {distortion!r}")
        noisy_rate = True if rate == "noise" else None  # None: the entropy model's mode decides
        _, inv_gain = self.gains(t)
        z = self._transform(self.h_a, y)
        medians = self.entropy_bottleneck._get_medians()
        z_hat = ste_round(z - medians) + medians
        z_likelihoods = (self.rounded_z_likelihoods(z_hat) if rate == "rounded"
                         else self.entropy_bottleneck(z, training=noisy_rate)[1])
        means, scales = self.split_params(self._transform(self.h_s, z_hat))
        y_likelihoods: list[Tensor] = []

        def latent(i: int, bounds: tuple[int, int], mu: Tensor, sigma: Tensor) -> Tensor:
            y_i = y[:, bounds[0]:bounds[1]]
            y_hat_i = ste_round(y_i - mu) + mu
            if rate == "rounded":
                likelihood = self.gaussian_conditional._likelihood(y_hat_i, sigma, mu)
                y_likelihoods.append(self.gaussian_conditional.likelihood_lower_bound(likelihood))
            else:
                y_likelihoods.append(self.gaussian_conditional(y_i, sigma, mu, training=noisy_rate)[1])
            return y_hat_i

        y_hat = channel_context_loop(self.slice_bounds(), self.hyper_slice_params(means, scales), latent)
        if distortion == "noise":
            y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        x_hat = self._transform(self.g_s, y_hat * inv_gain) if synthesize else None
        return {"x_hat": x_hat, "likelihoods": {"y": torch.cat(y_likelihoods, dim=1), "z": z_likelihoods}}

    def rounded_z_likelihoods(self, z_hat: Tensor) -> Tensor:
        """The hyper-latent's likelihoods at ``z_hat`` (already rounded), differentiable in it."""
        bottleneck = self.entropy_bottleneck
        values = z_hat.transpose(0, 1).reshape(z_hat.shape[1], 1, -1)  # compressai's (C, 1, N) layout
        likelihood = bottleneck.likelihood_lower_bound(bottleneck._likelihood(values)[0])
        return likelihood.reshape(z_hat.shape[1], z_hat.shape[0], *z_hat.shape[2:]).transpose(0, 1)

    @torch.no_grad()
    def synthesis_input(self, x: Tensor, t: Tensor) -> Tensor:
        """The decoded latent over the rate gain, with real rounding (float means): what g_s reads.

        Matches :meth:`diffcodec.coding.codec.Codec.synthesis_input` up to the exact
        hyper-synthesis' grid error.
        """
        return self.rounded_latent(self.g_a(x), t)

    @torch.no_grad()
    def rounded_latent(self, y: Tensor, t: Tensor) -> Tensor:
        """:meth:`synthesis_input` from g_a's output ``y`` (before the gain): lets a caller that
        also reads ``y`` itself (the ceiling probe) run the analysis transform once."""
        gain, inv_gain = self.gains(t)
        y = y * gain
        medians = self.entropy_bottleneck._get_medians()
        z_hat = torch.round(self.h_a(y) - medians) + medians
        means, scales = self.split_params(self.h_s(z_hat))
        y_hat = channel_context_loop(self.slice_bounds(), self.hyper_slice_params(means, scales),
                                     lambda i, b, mu, _: torch.round(y[:, b[0]:b[1]] - mu) + mu)
        return y_hat * inv_gain

    @torch.no_grad()
    def synthesize(self, latent: Tensor) -> Tensor:
        """The fidelity image from :meth:`synthesis_input`'s output."""
        return self.g_s(latent).clamp(0, 1)

    def reconstruct(self, x: Tensor, t: Tensor) -> Tensor:
        """The fidelity decoder's output with real rounding: training input of the realism decoder."""
        return self.synthesize(self.synthesis_input(x, t))

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()
