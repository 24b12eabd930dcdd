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


def test_codec_with_residual_blocks_tiles_without_seams(tmp_path, monkeypatch):
    """The halos grow with the residual blocks' receptive field: tiled = whole, and without the
    extra halo the tiles would show (so the check can fail)."""
    from diffcodec.coding import codec as codec_mod
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior
    from diffcodec.zoo.weight_files import export, load_weights

    torch.manual_seed(1)
    # image transforms wider than the hyperprior (transform_width): the codec reads z's width from n
    net = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4, residual_blocks=2, transform_width=24)).eval()
    with torch.no_grad():  # trained blocks are not the identity: weights that matter, outputs still of image scale
        for name, p in net.named_parameters():
            if ".res." in name:
                p.normal_(0, 0.12)
    digest = export(net, tmp_path / "res.safetensors")
    model = load_weights(tmp_path / "res.safetensors", digest, "res")
    assert model.net.config.residual_blocks == 2 and model.net.config.transform_width == 24
    rng = np.random.default_rng(4)
    rgb = np.kron(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), np.ones((5, 5, 1), dtype=np.uint8))[:190, :290]
    x = to_tensor(rgb)

    def differences() -> tuple[float, float]:
        whole, tiled = Codec(model, tile=4096), Codec(model, tile=64)
        a_whole, a_tiled = whole.analyse(x), tiled.analyse(x)
        y_hat = whole.decode_latent(whole.code(a_whole, 70.0), 190, 290, 70.0)
        img = [c.synthesize(y_hat, 70.0, 190, 290) for c in (whole, tiled)]
        return (a_whole.y - a_tiled.y).abs().max().item(), (img[0] - img[1]).abs().max().item()

    analysis, synthesis = differences()  # float summation order only (oneDNN blocks by tensor size)
    assert analysis < 1e-4 and synthesis < 1e-4, (analysis, synthesis)
    monkeypatch.setattr(codec_mod, "HALO_PER_RESIDUAL_BLOCK", 0)
    analysis, synthesis = differences()
    assert analysis > 1e-2 and synthesis > 1e-2, (analysis, synthesis)
