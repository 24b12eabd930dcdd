"""The CPU probes of research/probes.py measure what they say (their figures are in docs/training.md)."""
from __future__ import annotations

import numpy as np
import torch
from conftest import kodak_path
from PIL import Image

from research import probes
from diffcodec.coding.codec import Codec
from diffcodec.zoo.registry import DEFAULT_MODEL_ID, load_model


def _crop() -> torch.Tensor:
    with Image.open(kodak_path(7)) as im:
        rgb = np.asarray(im.convert("RGB"))[200:328, 300:492]
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0


def test_deadzone_zero_codes_like_the_codec_and_a_dead_zone_saves_bits():
    model = load_model(DEFAULT_MODEL_ID)
    x = _crop()
    codec = Codec(model)
    analysis = codec.analyse(x)
    plain = codec.code(analysis, 50)
    assert probes.DeadzoneCodec(model, 0.0).code(analysis, 50) == plain
    dead = probes.DeadzoneCodec(model, 0.3).code(analysis, 50)
    assert len(dead) < len(plain)
    assert codec.decode(dead, 50, *x.shape[-2:]).shape == x.shape  # still a valid stream


def test_refine_without_iterations_keeps_the_latent_and_with_them_moves_it():
    model = load_model(DEFAULT_MODEL_ID)
    codec = Codec(model)
    x = _crop()
    analysis = codec.analyse(x)
    same = probes._refined(codec, x, analysis, 30, 0, 0.01)
    assert torch.allclose(same.y, analysis.y, rtol=1e-6, atol=1e-6)
    moved = probes._refined(codec, x, analysis, 30, 2, 0.01)
    assert torch.isfinite(moved.y).all() and not torch.allclose(moved.y, analysis.y)


def test_spatial_context_starts_as_a_no_op_and_changes_the_rate_once_trained():
    model = load_model(DEFAULT_MODEL_ID)
    s = model.net.config.m // model.net.config.context_slices
    spatial = torch.nn.ModuleList([probes._spatial_network(s, 8) for _ in range(model.net.config.context_slices)])
    x = _crop()
    t = torch.tensor([4.0])
    with torch.no_grad():
        base = float(probes._spatial_bits(model, None, x, t, noisy=False))
        assert float(probes._spatial_bits(model, spatial, x, t, noisy=False)) == base
        # within a few percent of the real coder's own estimate (table-snapped scales, exact means)
        estimate = Codec(model).estimated_bits(Codec(model).analyse(x), 4.0 / (model.net.config.levels - 1) * 100)
        assert abs(base / estimate - 1) < 0.03
        for net in spatial:
            net[-1].weight.normal_(0, 0.01)
        assert float(probes._spatial_bits(model, spatial, x, t, noisy=False)) != base


def test_ceiling_rounded_matches_the_decoder_and_the_unrounded_latent_is_above_it(tmp_path):
    from diffcodec.psnr import psnr_of_mse

    x = _crop()
    path = tmp_path / "crop.png"
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    result = probes.probe_ceiling([path], [50.0])["psnr_rgb_by_quality"]["50"]
    codec = Codec(load_model(DEFAULT_MODEL_ID))
    decoded = codec.decode(codec.code(codec.analyse(x), 50), 50, *x.shape[-2:])
    real = psnr_of_mse(float(((decoded - x) ** 2).mean()), 1.0)
    assert abs(result["rounded"] - real) < 0.05  # the float hyper-networks, not the exact ones
    assert result["unrounded"] > result["step/4"] > result["rounded"]
