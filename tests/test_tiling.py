"""Tiled transforms equal the untiled ones: halos cover the receptive fields, so no seams."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import to_tensor

from diffcodec.coding.codec import Codec
from diffcodec.tiling import apply_tiled


def test_apply_tiled_matches_whole_for_up_and_down_sampling():
    torch.manual_seed(0)
    down = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5, 2, 2), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 5, 2, 2))
    up = torch.nn.ConvTranspose2d(4, 3, 5, 2, 2, output_padding=1)
    x = torch.rand(1, 3, 72, 120)
    with torch.no_grad():
        whole = down(x)
        tiled = apply_tiled(down, x, Fraction(1, 4), tile=32, halo=16, align=4)
        assert tiled.shape == whole.shape
        assert torch.allclose(tiled, whole, atol=1e-6)
        whole_up = up(whole)
        tiled_up = apply_tiled(up, whole, Fraction(2), tile=7, halo=3)
        assert torch.allclose(tiled_up, whole_up, atol=1e-6)


def test_apply_tiled_rejects_misaligned_tiles():
    with pytest.raises(ValueError):
        apply_tiled(lambda t: t, torch.zeros(1, 1, 8, 8), Fraction(1), tile=6, halo=2, align=4)


def test_codec_tiles_without_seams(tiny_model):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    rgb = np.kron(base, np.ones((5, 5, 1), dtype=np.uint8))[:190, :290]  # some structure, odd size
    x = to_tensor(rgb)
    whole, tiled = Codec(tiny_model, tile=4096), Codec(tiny_model, tile=64)
    a_whole, a_tiled = whole.analyse(x), tiled.analyse(x)
    assert torch.allclose(a_whole.y, a_tiled.y, atol=1e-5)
    stream = whole.code(a_whole, 70.0)
    y_hat = whole.decode_latent(stream, 190, 290, 70.0)
    img_whole = whole.synthesize(y_hat, 70.0, 190, 290)
    img_tiled = tiled.synthesize(y_hat, 70.0, 190, 290)
    assert (img_whole - img_tiled).abs().max().item() < 1e-5


def test_codec_tile_must_be_multiple_of_64(tiny_model):
    with pytest.raises(ValueError):
        Codec(tiny_model, tile=100)
