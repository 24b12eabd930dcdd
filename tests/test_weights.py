"""Shipped weights: checksum-verified loading, clean errors, and a quality floor on Kodak."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import diffcodec
from conftest import kodak_path
from diffcodec.registry import MODELS, WEIGHTS_DIR, load_model
from diffcodec.weights import WeightError, load_weights


def test_shipped_weights_match_their_pinned_checksum():
    for entry in MODELS.values():
        model = load_model(entry.model_id)
        assert model.sha256 == entry.sha256 and model.name == entry.name


def test_damaged_weights_are_refused(tmp_path):
    entry = MODELS[1]
    data = bytearray((WEIGHTS_DIR / entry.filename).read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / entry.filename
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightError, match="checksum"):
        load_weights(bad, entry.sha256)


def test_foreign_and_missing_weight_files_are_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightError, match="not a diffcodec weight file"):
        load_weights(junk, None)
    with pytest.raises(WeightError, match="cannot read"):
        load_weights(tmp_path / "missing.safetensors", None)


# Measured with the shipped weights (diffcodec.compress of kodim23 at quality 50, as below)
# (kodim23 at quality 50); the floor leaves a margin for other CPUs' float rounding.
KODIM23_Q50_MAX_BPP = 0.43  # measured 0.410
KODIM23_Q50_MIN_PSNR = 32.5  # measured 33.04 dB


def test_shipped_model_quality_floor_on_kodak():
    with Image.open(kodak_path(23)) as im:
        rgb = np.asarray(im.convert("RGB"))
    data = diffcodec.compress(Image.fromarray(rgb), quality=50)
    out = np.asarray(diffcodec.decompress(data), dtype=np.float64)
    bpp = len(data) * 8 / (rgb.shape[0] * rgb.shape[1])
    psnr = 10 * math.log10(255.0**2 / np.mean((out - rgb) ** 2))
    assert bpp <= KODIM23_Q50_MAX_BPP
    assert psnr >= KODIM23_Q50_MIN_PSNR
