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


#: What ``--precision`` accepts in the training scripts; ``auto`` is bf16 where it is native.
PRECISIONS = ("fp32", "bf16", "auto")


def has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware. A CPU without AMX-BF16 or AVX512-BF16 runs
    torch's bf16 convolutions emulated, several times slower than fp32 (docs/training.md), so
    bf16 only pays where this is true."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        capabilities = getattr(torch.cpu, "get_capabilities", dict)()
        return bool(capabilities.get("amx_bf16") or capabilities.get("avx512_bf16"))
    return False


def training_dtype(precision: str, device: torch.device) -> tuple[torch.dtype, str | None]:
    """The dtype a ``--precision`` choice computes in on ``device``, and a one-line warning when
    the choice is bf16 on a device that would emulate it (None otherwise)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    native = has_native_bf16(device)
    if precision == "fp32" or (precision == "auto" and not native):
        return torch.float32, None
    warning = None if native else (
        f"warning: this {device.type} has no native bf16 (AMX-BF16 or AVX512-BF16): bf16 transforms "
        "run several times slower than fp32 here; --precision auto picks fp32 on such machines")
    return torch.bfloat16, warning
