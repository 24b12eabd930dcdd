"""Running a trainable network in bf16 while its optimizer keeps fp32 master weights.

On CPUs with bf16 matrix units (AMX) pure-bf16 convolutions are several times faster than
fp32, and faster than ``torch.autocast``, which casts per op and keeps some ops in fp32
(``benchmarks/results/train_speed/``). Casting the parameters on the fly through
``functional_call`` makes gradients flow back through the casts to the fp32 masters, so the
optimizer, EMA and saved weights never see bf16.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def call_in_dtype(net: nn.Module, dtype: torch.dtype, *inputs, **kwargs):
    """``net(*inputs, **kwargs)`` with its floating parameters and buffers cast to ``dtype``; a
    tensor output comes back in fp32. In fp32 it is a plain call.

    Inputs are passed as they are: the caller (or the network) casts what should compute in
    ``dtype`` and keeps scalars such as a diffusion time in fp32.
    """
    if dtype == torch.float32:
        return net(*inputs, **kwargs)
    weights = {k: v.to(dtype) if v.is_floating_point() else v
               for k, v in (*net.named_parameters(), *net.named_buffers())}
    out = torch.func.functional_call(net, weights, inputs, kwargs)
    return out.float() if isinstance(out, Tensor) else out


def memory_format_for(dtype: torch.dtype) -> torch.memory_format:
    """Channels-last where a network computes in bf16 (the layout AMX convolutions run fastest
    in); the default layout in fp32, where it would only cost transposes."""
    return torch.contiguous_format if dtype == torch.float32 else torch.channels_last
