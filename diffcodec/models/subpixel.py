"""Transposed convolutions rewritten as a convolution followed by a pixel shuffle.

A stride-s transposed convolution whose output is exactly s times its input computes every
output phase (a, b) as an ordinary convolution of the input with a subset of its taps. Doing
all s*s phases as one convolution with s*s times the output channels and interleaving them
with ``pixel_shuffle`` gives the same function. The decoder uses it because oneDNN's
transposed convolutions change their float summation order with the thread count on some
shapes (measured: 3, 5 and 16 threads against 1 and 2), while its forward convolutions on
channels-last tensors did not on any shape tried, and because PyTorch's native transposed
convolution (the thread-invariant alternative) was three times slower on a 2-core CPU.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def _phase_taps(kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """(first, last) input offset d that any output phase reads: out[s*m + a] sums x[m + d]."""
    return math.ceil((padding - kernel + 1) / stride), (stride - 1 + padding) // stride


def subpixel_convolution(deconv: nn.ConvTranspose2d) -> nn.Sequential:
    """A ``Conv2d`` + ``PixelShuffle`` computing what ``deconv`` computes (up to float summation order).

    Needs equal strides, kernel sizes and paddings along both axes, no groups or dilation, and
    an output exactly ``stride`` times the input (``kernel + output_padding - 2 * padding == stride``).
    """
    s, k, p, op = deconv.stride[0], deconv.kernel_size[0], deconv.padding[0], deconv.output_padding[0]
    if (deconv.stride[1], deconv.kernel_size[1], deconv.padding[1], deconv.output_padding[1]) != (s, k, p, op):
        raise ValueError("needs the same stride, kernel, padding and output padding along both axes")
    if deconv.groups != 1 or deconv.dilation != (1, 1) or k + op - 2 * p != s:
        raise ValueError("needs no groups, no dilation and an output exactly stride times the input")
    first, last = _phase_taps(k, s, p)
    taps = last - first + 1
    cin, cout = deconv.in_channels, deconv.out_channels
    weight = deconv.weight.detach()  # (cin, cout, k, k)
    phases = weight.new_zeros(cout, s, s, cin, taps, taps)  # (out channel, phase row, phase col, ...)
    for a in range(s):
        for t in range(taps):
            row = a + p - s * (first + t)  # kernel row that phase a's tap t reads
            if not 0 <= row < k:
                continue
            for b in range(s):
                for u in range(taps):
                    col = b + p - s * (first + u)
                    if 0 <= col < k:
                        phases[:, a, b, :, t, u] = weight[:, :, row, col].T
    symmetric = -first == last
    conv = nn.Conv2d(cin, cout * s * s, taps, padding=last if symmetric else 0, bias=deconv.bias is not None,
                     device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(phases.reshape(cout * s * s, cin, taps, taps))
        if deconv.bias is not None:
            conv.bias.copy_(deconv.bias.detach().repeat_interleave(s * s))
    pad = [] if symmetric else [nn.ZeroPad2d((-first, last, -first, last))]  # (a negative side crops)
    return nn.Sequential(*pad, conv, nn.PixelShuffle(s))


def with_subpixel_convolutions(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every transposed convolution replaced by :func:`subpixel_convolution`."""
    net = copy.deepcopy(net)
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.ConvTranspose2d):
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, child, subpixel_convolution(module))
    return net
