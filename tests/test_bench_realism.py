"""The strength-curve benchmark: one row per strength, strength 0 is the fidelity decoder."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from diffcodec.models.denoiser import DenoiserConfig, ResidualDenoiser
from diffcodec.zoo.weight_files import export_denoiser


def test_strength_curve_rows_and_seed_effect(monkeypatch, tmp_path):
    pytest.importorskip("benchmarks.metrics.lpips")
    pytest.importorskip("scipy")
    from benchmarks import realism_strength
    from diffcodec import api
    from diffcodec.zoo import registry

    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (256, 384, 3), dtype=np.uint8)).save(data / "a.png")
    net = ResidualDenoiser(DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=10, prediction="r0"))
    torch.manual_seed(0)
    for prm in net.parameters():
        prm.data.normal_(0, 0.05)
    path = tmp_path / "real.safetensors"
    registry.load_model(registry.DEFAULT_MODEL_ID)  # the codec loads (and is cached) from the real folder
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(registry.DENOISERS, registry.DEFAULT_MODEL_ID,
                        registry.DenoiserEntry(path.name, export_denoiser(net, path), steps=2, strength=1.0))
    registry.load_denoiser_file.cache_clear()
    out = tmp_path / "strength.json"
    try:
        rc = realism_strength.main([str(data), "--out", str(out), "--quality", "20", "--strengths", "0", "1",
                                    "--threads", "1"])
    finally:
        registry.load_denoiser_file.cache_clear()
        api._on.cache_clear()
    assert rc == 0
    result = json.loads(out.read_text())
    assert out.with_suffix(".png").exists()
    fidelity, real = result["rows"]
    assert (fidelity["strength"], real["strength"]) == (0.0, 1.0) and result["steps"] == 2
    assert fidelity["seed_mad"] == 0.0 and real["seed_mad"] > 0  # only the realism decoder draws noise
    assert fidelity["psnr"] != real["psnr"] and fidelity["patches"] == real["patches"] == 6 + 2
    assert all(np.isfinite([r["lpips"], r["dists"], r["kid"]]).all() for r in result["rows"])
