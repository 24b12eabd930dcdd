"""PSNR of 8-bit images: the one definition every diffcodec report uses."""
from __future__ import annotations

import numpy as np

#: the MSE floor of identical images (PSNR ~228 dB instead of infinity, so means stay finite)
MSE_FLOOR = 1e-12


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of two same-shape images on the 0..255 scale (any dtype), over all samples."""
    if reference.shape != test.shape:
        raise ValueError(f"PSNR of different shapes {reference.shape} and {test.shape}")
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float(10 * np.log10(255.0**2 / max(mse, MSE_FLOOR)))
