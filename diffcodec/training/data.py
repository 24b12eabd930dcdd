"""Training crops: the whole corpus decoded into memory once, random crops drawn from it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffcodec.image_io import IMAGE_SUFFIXES


def list_images(root: Path) -> list[Path]:
    """Image files under ``root`` in a stable order."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def load_corpus(root: Path, min_side: int) -> list[np.ndarray]:
    """Decode every image under ``root`` to an RGB uint8 array (H, W, 3); skip ones too small to crop."""
    images = []
    for path in list_images(root):
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        if min(arr.shape[:2]) >= min_side:
            images.append(arr)
    if not images:
        raise ValueError(f"no images of at least {min_side} px found under {root}")
    return images


class CropSampler:
    """Random crops with random flips and transposes, as uint8 tensors (B, 3, crop, crop)."""

    def __init__(self, images: list[np.ndarray], crop: int, seed: int):
        self.images = images
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> torch.Tensor:
        out = np.empty((batch, self.crop, self.crop, 3), dtype=np.uint8)
        for i in range(batch):
            img = self.images[self.rng.integers(len(self.images))]
            h, w = img.shape[:2]
            y0 = self.rng.integers(h - self.crop + 1)
            x0 = self.rng.integers(w - self.crop + 1)
            patch = img[y0 : y0 + self.crop, x0 : x0 + self.crop]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            if self.rng.random() < 0.5:
                patch = patch.transpose(1, 0, 2)
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2)
