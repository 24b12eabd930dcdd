"""Pieces shared by the two training loops (:mod:`diffcodec.train`, :mod:`diffcodec.train_denoiser`)."""
from __future__ import annotations

import torch


def learning_rate(base: float, step: int, opt_start: int, warmup: int, dropped: bool) -> float:
    """Linear warm-up from the step Adam (re)started, then ``base``, divided by 10 once ``dropped``."""
    return base * min(1.0, (step - opt_start + 1) / warmup) * (0.1 if dropped else 1.0)


def lr_dropped(step: int, lr_drop: float, total_steps: int, elapsed_s: float, minutes: float | None) -> bool:
    """Whether the run is past ``lr_drop`` of its length: of ``total_steps``, or of ``minutes`` when a
    time limit ends it first (a GPU sitting does not know beforehand how many steps it will reach)."""
    if step >= int(lr_drop * total_steps):
        return True
    return minutes is not None and elapsed_s >= lr_drop * 60.0 * minutes


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, copy_buffers: bool = True) -> None:
    """ema <- decay * ema + (1 - decay) * model, in one fused call per device (cheap on a GPU)."""
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - decay)
    if copy_buffers:
        for be, bm in zip(ema.buffers(), model.buffers()):
            be.copy_(bm)


def configure_device(device: torch.device) -> None:
    """TF32 matmuls/convolutions and cuDNN autotuning on a GPU (the crops have fixed shapes)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
