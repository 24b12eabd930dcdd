"""PSNR over the three RGB channels of 8-bit images (CompressAI's ``psnr-rgb``)."""
from __future__ import annotations

import numpy as np

from benchmarks.metrics.base import Metric
from diffcodec.psnr import psnr as psnr_rgb  # the one PSNR (finite for identical images)


class PSNR(Metric):
    name = "psnr-rgb"
    label = "PSNR-RGB [dB]"

    def versioned_objects(self) -> list:
        return [type(self), psnr_rgb]

    def compare(self, ref_state: np.ndarray, rec: np.ndarray) -> float:
        return psnr_rgb(ref_state, rec)
