"""A projected discriminator for the realism decoder's adversarial term (training only).

Projected GAN (Sauer et al. 2021) and Vision-aided GAN (Kumari et al. 2022): small trainable
heads on the features of a *frozen pretrained* network learn far faster, and on far less
data, than a discriminator trained from scratch. The frozen network here is LPIPS's AlexNet,
whose unit-normalised features the perceptual loss computes anyway, so the adversarial term
costs only the heads. Each head sees one feature level and returns a map of logits; the
hinge losses average over heads and positions. Differentiable augmentation (DiffAugment,
Zhao et al. 2020: colour and translation) is applied to real and decoded crops alike before
the features, because a small corpus otherwise lets the heads memorise it.

A *conditional* discriminator (HiFiC's and MS-ILLM's are) also sees the fidelity image the
decoder started from: each head reads the judged image's features beside the fidelity
image's. Unconditioned, the heads judge only whether a crop looks natural, which LPIPS over
the same AlexNet features may largely settle already; conditioned, they judge whether the
detail added to *this* fidelity image is the kind real images have.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ProjectedHeads(nn.Module):
    """One head per feature level: 1x1 projection, a 3x3 convolution, one logit per position.

    ``conditional`` heads read twice the channels: the judged image's features and the
    condition's (the fidelity image's), concatenated per level.
    """

    def __init__(self, channels: tuple[int, ...], width: int = 64, conditional: bool = False):
        super().__init__()
        self.width, self.conditional = width, conditional
        inputs = 2 if conditional else 1
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(inputs * c, width, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(width, 1, 1),
            )
            for c in channels
        )

    def settings(self) -> dict:
        """What a checkpoint must match to restore these heads."""
        return {"width": self.width, "conditional": self.conditional}

    def forward(self, features: list[Tensor], condition: list[Tensor] | None = None) -> list[Tensor]:
        """Per-level logit maps (B, 1, h, w); ``condition``: the fidelity image's features."""
        if self.conditional != (condition is not None):
            raise ValueError("conditional heads need the condition's features, and only they take them")
        if condition is not None:
            features = [torch.cat([f, c.to(f.dtype)], dim=1) for f, c in zip(features, condition)]
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
