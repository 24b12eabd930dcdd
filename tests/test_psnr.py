"""The shared PSNR definition."""
from __future__ import annotations

import math

import numpy as np
import pytest

from diffcodec.psnr import MSE_FLOOR, psnr


def test_psnr_of_a_known_error_and_of_identical_images():
    a = np.zeros((4, 5, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 60  # MSE = 3600 / 60 = 60
    assert psnr(a, b) == pytest.approx(10 * math.log10(255.0**2 / 60.0))
    assert psnr(a, b) == psnr(b, a)
    assert psnr(a, a) == pytest.approx(10 * math.log10(255.0**2 / MSE_FLOOR))  # finite, not inf


def test_psnr_does_not_wrap_uint8_differences():
    a = np.full((2, 2), 10, np.uint8)
    b = np.full((2, 2), 250, np.uint8)  # uint8 subtraction would wrap to 16
    assert psnr(a, b) == pytest.approx(10 * math.log10(255.0**2 / 240.0**2))


def test_psnr_refuses_different_shapes():
    with pytest.raises(ValueError, match="different shapes"):
        psnr(np.zeros((2, 2)), np.zeros((2, 3)))
