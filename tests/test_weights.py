"""Shipped weights: checksum-verified loading, clean errors, and a quality floor on Kodak."""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import kodak_path
from PIL import Image

import diffcodec
from diffcodec.zoo.registry import MODELS, WEIGHTS_DIR, load_model
from diffcodec.zoo.weight_files import WeightError, load_weights


def test_shipped_weights_match_their_pinned_checksum():
    for entry in MODELS.values():
        model = load_model(entry.model_id)
        assert model.sha256 == entry.sha256 and model.name == entry.name


def test_damaged_weights_are_refused(tmp_path):
    entry = MODELS[min(MODELS)]
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


# Floors per registered model: (max bpp, min PSNR) of kodim23 at quality 50, compressed with
# that model and decoded through the normal path (which picks the model from the header, so
# files of an older default model keep decoding). Measured values in the comments; the floors
# leave a margin for other CPUs' float rounding.
KODIM23_Q50_FLOORS = {
    2: (0.345, 34.0),  # channel-context-cpu2: measured 0.328 bpp, 34.49 dB
    16: (0.204, 33.1),  # channel-context-res3-cpu15 (model 4's scale): 0.192 bpp, 33.73 dB
}


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_shipped_model_quality_floor_on_kodak(model_id):
    from diffcodec.api import compress_detailed, get_codec

    with Image.open(kodak_path(23)) as im:
        rgb = np.asarray(im.convert("RGB"))
    data = compress_detailed(Image.fromarray(rgb), 50, codec=get_codec(model_id)).data
    assert diffcodec.read_header(data).header.model_id == model_id
    out = np.asarray(diffcodec.decompress(data), dtype=np.float64)
    bpp = len(data) * 8 / (rgb.shape[0] * rgb.shape[1])
    psnr = 10 * math.log10(255.0**2 / np.mean((out - rgb) ** 2))
    max_bpp, min_psnr = KODIM23_Q50_FLOORS[model_id]
    assert bpp <= max_bpp
    assert psnr >= min_psnr


# The shipped realism decoder at its defaults costs 0.64-0.84 dB of PSNR against the fidelity
# decoder on Kodak at qualities 0-30 (benchmarks/results/realism/cc13-on-model13); the floor allows 1 dB.
REALISM_MAX_PSNR_DROP_DB = 1.0


def test_shipped_realism_decoders_load_and_decode_a_kodak_crop():
    """Each registered realism decoder: checksum-verified load, and a realism decode of a Kodak
    crop that differs from the fidelity image but stays close to the original (a sanity floor)."""
    from diffcodec.zoo.registry import DENOISERS, realism_decoder_for

    if not DENOISERS:
        pytest.skip("no realism decoder registered")
    with Image.open(kodak_path(23)) as im:
        crop = im.convert("RGB").crop((200, 100, 456, 292))
    rgb = np.asarray(crop, dtype=np.float64)
    for model_id in DENOISERS:
        # the codec's whole quality range maps onto the denoiser's level input through lambda:
        # quality 0 of a model with a wider grid lands below its level 0 (extrapolated)
        decoder = realism_decoder_for(model_id)
        levels = decoder.net.config.levels
        lam = load_model(model_id).net.lambda_at
        codec_levels = load_model(model_id).net.config.levels
        lo, hi = (decoder.level(lam(t)) for t in (0, codec_levels - 1))
        assert hi == pytest.approx(levels - 1) and -3 < lo <= 0
        from diffcodec.api import compress_detailed, get_codec

        data = compress_detailed(crop, 10, codec=get_codec(model_id)).data
        fidelity = np.asarray(diffcodec.decompress(data, steps=0), dtype=np.float64)
        real = np.asarray(diffcodec.decompress(data, realism=True, seed=0), dtype=np.float64)
        psnr = lambda out: 10 * math.log10(255.0**2 / np.mean((out - rgb) ** 2))  # noqa: E731
        assert not np.array_equal(real, fidelity)
        assert psnr(real) >= psnr(fidelity) - REALISM_MAX_PSNR_DROP_DB
