"""PSNR: the one definition every diffcodec report and benchmark uses."""
from __future__ import annotations

import math

import numpy as np

#: the MSE floor of identical images (PSNR ~228 dB at peak 255 instead of infinity, so means stay finite)
MSE_FLOOR = 1e-12


def psnr_of_mse(mse: float, peak: float = 255.0) -> float:
    """10 log10(peak^2 / MSE) with the MSE floored at :data:`MSE_FLOOR` (in units of peak 255)."""
    return 10 * math.log10(peak**2 / max(float(mse), MSE_FLOOR * (peak / 255.0) ** 2))


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of two same-shape images on the 0..255 scale (any dtype), over all samples."""
    if reference.shape != test.shape:
        raise ValueError(f"PSNR of different shapes {reference.shape} and {test.shape}")
    return psnr_of_mse(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
