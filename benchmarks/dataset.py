"""Load an evaluation image set (a folder of images) as uint8 RGB arrays with content hashes."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from diffcodec.image_io import IMAGE_SUFFIXES


@dataclass(frozen=True)
class ImageEntry:
    """One source image: its path, short name and the SHA-256 of its decoded pixels."""

    path: Path
    name: str
    sha256: str
    height: int
    width: int

    def load(self) -> np.ndarray:
        return load_rgb(self.path)


def load_rgb(path: Path) -> np.ndarray:
    """Decode an image file to a uint8 (H, W, 3) RGB array."""
    with Image.open(path) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def content_hash(rgb: np.ndarray) -> str:
    """SHA-256 of the pixel array (shape included), independent of the file format."""
    h = hashlib.sha256(f"{rgb.shape}".encode())
    h.update(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
    return h.hexdigest()


def list_images(folder: Path, limit: int | None = None) -> list[ImageEntry]:
    """Images in ``folder`` (not recursive), sorted by name; ``limit`` keeps the first N."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    entries = []
    for p in paths:
        rgb = load_rgb(p)
        entries.append(ImageEntry(p, p.stem, content_hash(rgb), rgb.shape[0], rgb.shape[1]))
    return entries
