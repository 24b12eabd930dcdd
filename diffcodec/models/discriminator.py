"""A projected discriminator for the realism decoder's adversarial term (training only).

Projected GAN (Sauer et al. 2021) and Vision-aided GAN (Kumari et al. 2022): small trainable
heads on the features of a *frozen pretrained* network learn far faster, and on far less
data, than a discriminator trained from scratch. The frozen network here is LPIPS's AlexNet,
whose unit-normalised features the perceptual loss computes anyway, so the adversarial term
costs only the heads. Each head sees one feature level and returns a map of logits; the
hinge losses average over heads and positions. Differentiable augmentation (DiffAugment,
Zhao et al. 2020: colour and translation) is applied to real and decoded crops alike before
the features, because a small corpus otherwise lets the heads memorise it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ProjectedHeads(nn.Module):
    """One head per feature level: 1x1 projection, two 3x3 convolutions, one logit per position."""

    def __init__(self, channels: tuple[int, ...], width: int = 64):
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, width, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, 1, 1),
            )
            for c in channels
        )

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Per-level logit maps (B, 1, h, w)."""
        return [head(f) for head, f in zip(self.heads, features)]


def discriminator_loss(real_logits: list[Tensor], fake_logits: list[Tensor]) -> Tensor:
    """Hinge loss of the heads (fake features detached by the caller)."""
    real = torch.stack([F.relu(1 - r).mean() for r in real_logits]).mean()
    fake = torch.stack([F.relu(1 + f).mean() for f in fake_logits]).mean()
    return real + fake


def generator_loss(fake_logits: list[Tensor]) -> Tensor:
    """Per-sample hinge generator loss (B,): minus the mean logit over heads and positions."""
    return -torch.stack([f.mean(dim=(1, 2, 3)) for f in fake_logits]).mean(dim=0)


def diff_augment(*images: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
    """The same random colour jitter and translation (by up to 1/8 of the side) for each
    image batch, per sample; differentiable in the images."""
    x = images[0]
    b, dev = x.shape[0], x.device
    rand = lambda *shape: torch.rand(*shape, generator=generator).to(dev)  # noqa: E731
    brightness = rand(b, 1, 1, 1) - 0.5
    saturation = rand(b, 1, 1, 1) * 2
    contrast = rand(b, 1, 1, 1) + 0.5
    h, w = x.shape[-2:]
    shift_y = ((rand(b) * 2 - 1) * (h // 8)).round().long()
    shift_x = ((rand(b) * 2 - 1) * (w // 8)).round().long()
    ys = (torch.arange(h, device=dev)[None, :] - shift_y[:, None]).clamp(0, h - 1)  # (B, H), edge pixels repeat
    xs = (torch.arange(w, device=dev)[None, :] - shift_x[:, None]).clamp(0, w - 1)

    def one(img: Tensor) -> Tensor:
        img = img + brightness
        mean = img.mean(dim=1, keepdim=True)
        img = (img - mean) * saturation + mean
        mean = img.mean(dim=(1, 2, 3), keepdim=True)
        img = (img - mean) * contrast + mean
        img = torch.gather(img, 2, ys[:, None, :, None].expand(-1, img.shape[1], -1, w))
        return torch.gather(img, 3, xs[:, None, None, :].expand(-1, img.shape[1], h, -1))

    return tuple(one(img) for img in images)
