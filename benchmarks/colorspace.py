"""Full-range BT.601 RGB <-> YCbCr (the JFIF/BPG convention), 8-bit."""
from __future__ import annotations

import numpy as np

# Forward matrix: rows give Y, Cb, Cr from R, G, B (Cb/Cr offset by 128 afterwards).
_FWD = np.array([
    [0.299, 0.587, 0.114],
    [-0.168735892, -0.331264108, 0.5],
    [0.5, -0.418687589, -0.081312411],
])
_INV = np.linalg.inv(_FWD)


def rgb_to_ycbcr444(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> uint8 planar (3, H, W) Y, Cb, Cr, full range."""
    x = rgb.astype(np.float64) @ _FWD.T
    x[..., 1:] += 128.0
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).transpose(2, 0, 1).copy()


def ycbcr444_to_rgb(planes: np.ndarray) -> np.ndarray:
    """uint8 planar (3, H, W) full-range Y, Cb, Cr -> uint8 (H, W, 3) RGB."""
    x = planes.astype(np.float64).transpose(1, 2, 0).copy()
    x[..., 1:] -= 128.0
    return np.clip(np.rint(x @ _INV.T), 0, 255).astype(np.uint8)
