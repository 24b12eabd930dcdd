"""PSNR over the three RGB channels of 8-bit images (CompressAI's ``psnr-rgb``)."""
from __future__ import annotations

import math

import numpy as np

from benchmarks.metrics.base import Metric


def psnr_rgb(ref: np.ndarray, rec: np.ndarray, peak: float = 255.0) -> float:
    """10 log10(peak^2 / MSE) with the MSE over all pixels and channels; inf when equal."""
    if ref.shape != rec.shape:
        raise ValueError(f"shape mismatch {ref.shape} vs {rec.shape}")
    mse = float(np.mean((ref.astype(np.float64) - rec.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


class PSNR(Metric):
    name = "psnr-rgb"
    label = "PSNR-RGB [dB]"

    def versioned_objects(self) -> list:
        return [type(self), psnr_rgb]

    def compare(self, ref_state: np.ndarray, rec: np.ndarray) -> float:
        return psnr_rgb(ref_state, rec)
