"""Hyper-synthesis in exact integer arithmetic, so probability tables match on every machine.

Lesson #1 of other learned codecs: a one-ulp difference in the hyper-decoder between the
encoding and the decoding machine picks another probability table and the file decodes to
garbage. Here the trained hyper-synthesis (convolutions and ReLU only) is evaluated with
weights and activations on fixed-point grids, held as integer-valued float64 tensors.
Products and sums of integers below 2**53 are exact in float64 whatever the summation
order, thread count or SIMD width, so every machine computes the same integers; the
accumulator magnitude is checked to make that guarantee hold, not just likely.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACT_BITS = 10  # fractional bits of activations
WEIGHT_BITS = 16  # fractional bits of weights
_EXACT_LIMIT = 2.0**52


class InexactError(RuntimeError):
    """An accumulator left the range where float64 integer arithmetic is exact."""


@dataclass(frozen=True)
class _Layer:
    weight: Tensor  # integer-valued float64, scale 2**WEIGHT_BITS
    bias: Tensor  # integer-valued float64, scale 2**(ACT_BITS + WEIGHT_BITS)
    transposed: bool
    stride: int
    padding: int
    output_padding: int
    relu: bool


def _quantize(t: Tensor, bits: int) -> Tensor:
    return torch.round(t.detach().to(torch.float64) * 2.0**bits)


#: Bound on the im2col/col2im buffer of one float64 convolution call (elements; 128 MB).
#: PyTorch's float64 CPU convolutions unfold the input into a (C*k*k, H*W) matrix: for a 24 MP
#: image that alone took 1.6 GB. Convolutions are linear, and sums of integers below 2**53 are
#: exact in any order, so splitting the channels into chunks gives the same integers.
MAX_COLUMN_ELEMENTS = 1 << 24


def _exact_conv(x: Tensor, layer: _Layer, max_columns: int = MAX_COLUMN_ELEMENTS) -> Tensor:
    """``layer`` applied to integer-valued float64 ``x`` in channel chunks that bound the unfold buffer."""
    k2 = layer.weight.shape[-1] * layer.weight.shape[-2]
    if layer.transposed:  # buffer (C_out_chunk*k*k, H_in*W_in): split output channels
        c_out = layer.weight.shape[1]
        step = max(1, max_columns // (k2 * x.shape[-2] * x.shape[-1]))
        return torch.cat([
            F.conv_transpose2d(x, layer.weight[:, c : c + step], layer.bias[c : c + step], stride=layer.stride,
                               padding=layer.padding, output_padding=layer.output_padding)
            for c in range(0, c_out, step)
        ], dim=1)
    # buffer (C_in_chunk*k*k, H_out*W_out): split input channels and add the partial sums
    h_out = (x.shape[-2] + 2 * layer.padding - layer.weight.shape[-2]) // layer.stride + 1
    w_out = (x.shape[-1] + 2 * layer.padding - layer.weight.shape[-1]) // layer.stride + 1
    c_in = x.shape[1]
    step = max(1, max_columns // (k2 * h_out * w_out))
    acc = None
    for c in range(0, c_in, step):
        part = F.conv2d(x[:, c : c + step], layer.weight[:, c : c + step], None, stride=layer.stride,
                        padding=layer.padding)
        acc = part if acc is None else acc.add_(part)
    return acc.add_(layer.bias.view(1, -1, 1, 1))


class ExactHyperSynthesis:
    """Fixed-point copy of a ``nn.Sequential`` of Conv2d/ConvTranspose2d/ReLU layers (always on CPU)."""

    def __init__(self, h_s: nn.Sequential, max_columns: int = MAX_COLUMN_ELEMENTS):
        self.max_columns = max_columns
        layers: list[_Layer] = []
        modules = list(h_s)
        for i, mod in enumerate(modules):
            if isinstance(mod, nn.ReLU):
                continue
            if not isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                raise TypeError(f"cannot make {type(mod).__name__} exact")
            relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
            transposed = isinstance(mod, nn.ConvTranspose2d)
            layers.append(
                _Layer(
                    weight=_quantize(mod.weight.cpu(), WEIGHT_BITS),
                    bias=_quantize(mod.bias.cpu(), ACT_BITS + WEIGHT_BITS),
                    transposed=transposed,
                    stride=mod.stride[0],
                    padding=mod.padding[0],
                    output_padding=mod.output_padding[0] if transposed else 0,
                    relu=relu,
                )
            )
        self.layers = layers

    def __call__(self, z_hat: Tensor) -> Tensor:
        """Exact output (float64 on a 2**-(ACT_BITS+WEIGHT_BITS) grid) for a dequantized hyper-latent."""
        x = torch.round(z_hat.to(torch.float64).cpu() * 2.0**ACT_BITS)
        for k, layer in enumerate(self.layers):
            acc = _exact_conv(x, layer, self.max_columns)
            bound = x.abs().amax().item() * layer.weight.abs().sum(dim=(0, 2, 3) if layer.transposed else (1, 2, 3)).amax().item()
            if bound + layer.bias.abs().amax().item() >= _EXACT_LIMIT:
                raise InexactError(f"hyper-synthesis layer {k} could overflow exact range")
            if k == len(self.layers) - 1:
                return acc / 2.0 ** (ACT_BITS + WEIGHT_BITS)
            if layer.relu:
                acc = acc.clamp_min(0)
            x = torch.round(acc / 2.0**WEIGHT_BITS)
        raise AssertionError("unreachable")
