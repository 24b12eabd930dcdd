"""MS-SSIM on RGB (pytorch-msssim, Gaussian window 11, sigma 1.5, the 5 standard weights)."""
from __future__ import annotations

import math

import numpy as np

from benchmarks.metrics.base import Metric, to_tensor

#: pytorch-msssim needs min(H, W) > (win_size - 1) * 2**4 = 160
MIN_SIDE = 161


class MSSSIM(Metric):
    """Mean over RGB channels of MS-SSIM, data range [0, 1] (as CompressAI evaluates)."""

    name = "ms-ssim-rgb"
    label = "MS-SSIM (RGB)"

    def version_extra(self) -> str:
        from importlib.metadata import version

        return f"pytorch-msssim {version('pytorch-msssim')} min_side={MIN_SIDE}"

    def prepare(self, ref: np.ndarray):
        return to_tensor(ref)

    def compare(self, ref_state, rec: np.ndarray) -> float:
        import torch
        from pytorch_msssim import ms_ssim

        if min(rec.shape[:2]) < MIN_SIDE:
            return math.nan
        with torch.inference_mode():
            return float(ms_ssim(ref_state, to_tensor(rec), data_range=1.0, size_average=True))
