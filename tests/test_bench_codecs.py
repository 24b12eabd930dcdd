"""Codec adapters: round trips, bpp from real bytes, colour conversion, optional tools."""
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from benchmarks import colorspace
from benchmarks.codecs import CodecUnavailable, expand_names, get_codec, hevc_bitstream
from benchmarks.codecs.ppm import read_ppm, write_ppm
from benchmarks.metrics.psnr import psnr_rgb


def _image(h=96, w=128, seed=0):
    """Smooth synthetic photo-like image (gradients + a few edges + mild noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w) + 60], -1)
    img[h // 3:h // 2, w // 4:w // 2] = [200, 40, 40]
    img = img + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _need(name):
    c = get_codec(name)
    ok, why = c.available()
    if not ok:
        pytest.skip(why)
    return c


def test_colorspace_round_trip_within_one():
    v = np.arange(0, 256, 5, dtype=np.uint8)
    grid = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 1, 3)
    back = colorspace.ycbcr444_to_rgb(colorspace.rgb_to_ycbcr444(grid))
    assert np.abs(back.astype(int) - grid).max() <= 1
    # exact values of the full-range BT.601 matrix
    ycc = colorspace.rgb_to_ycbcr444(np.array([[[255, 0, 0], [255, 255, 255]]], np.uint8))
    assert ycc[:, 0, 0].tolist() == [76, 85, 255]
    assert ycc[:, 0, 1].tolist() == [255, 128, 128]


def test_ppm_round_trip(tmp_path):
    img = _image(5, 7)
    write_ppm(tmp_path / "a.ppm", img)
    np.testing.assert_array_equal(read_ppm(tmp_path / "a.ppm"), img)


@pytest.mark.parametrize("name", ["jpeg420", "jpeg444", "webp", "avif", "jxl", "hevc"])
def test_round_trip_and_rate_monotone(name):
    codec = _need(name)
    img = _image()
    s = list(codec.default_settings)
    lo, hi = s[1], s[-2]  # a low and a high quality setting
    data_lo, data_hi = codec.encode(img, lo), codec.encode(img, hi)
    rec_lo, rec_hi = codec.decode(data_lo), codec.decode(data_hi)
    assert rec_hi.shape == img.shape and rec_hi.dtype == np.uint8
    assert len(data_hi) > len(data_lo)
    assert psnr_rgb(img, rec_hi) > psnr_rgb(img, rec_lo)
    assert psnr_rgb(img, rec_hi) > 30
    m = codec.encode_measured(img, hi)
    assert m.value == data_hi and m.seconds > 0


def test_jpeg_444_keeps_chroma_better():
    j420, j444 = get_codec("jpeg420"), get_codec("jpeg444")
    img = _image()
    assert psnr_rgb(img, j444.decode(j444.encode(img, 90))) > \
        psnr_rgb(img, j420.decode(j420.encode(img, 90)))


def test_hevc_is_444_and_handles_odd_sizes():
    codec = _need("hevc")
    for h, w in [(67, 101), (29, 37)]:
        img = _image(h, w)
        data = codec.encode(img, 22)
        info = hevc_bitstream.parse_sps(data)
        assert (info.chroma_format_idc, info.height, info.width) == (3, h, w)
        assert 0 < hevc_bitstream.parameter_set_bytes(data) < 200
        rec = codec.decode(data)
        assert rec.shape == img.shape
        assert psnr_rgb(img, rec) > 35
    with pytest.raises(Exception):
        codec.encode(_image(8, 8), 30)


def test_hevc_external_memory_measured():
    codec = _need("hevc")
    if not shutil.which("time") and not shutil.os.path.exists("/usr/bin/time"):
        pytest.skip("GNU time not installed")
    m = codec.encode_measured(_image(), 32)
    assert m.peak_bytes is not None and m.peak_bytes > 1 << 20


def test_sps_parser_rejects_garbage():
    with pytest.raises(ValueError):
        hevc_bitstream.parse_sps(b"\x00\x00\x01\x40\x01\x0c")


def test_versions_change_with_parameters():
    a, b = get_codec("jpeg420"), get_codec("jpeg444")
    assert a.version() != b.version()
    assert a.version() == get_codec("jpeg420").version()


def test_diffcodec_adapter_skips_cleanly_without_api(monkeypatch):
    fake = types.ModuleType("diffcodec")
    monkeypatch.setitem(sys.modules, "diffcodec", fake)
    ok, why = get_codec("diffcodec").available()
    assert not ok and "compress" in why
    with pytest.raises(CodecUnavailable):
        get_codec("diffcodec").check_available()


def test_diffcodec_adapter_with_fake_api(monkeypatch):
    from PIL import Image

    calls = {}

    def compress(img, quality):
        import torch

        calls["threads"] = torch.get_num_threads()
        calls["quality"] = quality
        return np.asarray(img).tobytes()[:100]

    def decompress(data, steps=None, realism=False):
        calls["steps"] = steps
        return Image.new("RGB", (16, 8), (1, 2, 3))

    fake = types.ModuleType("diffcodec")
    fake.__file__ = __file__
    fake.compress, fake.decompress = compress, decompress
    monkeypatch.setitem(sys.modules, "diffcodec", fake)
    codec = get_codec("diffcodec")
    assert codec.available() == (True, "")
    m = codec.encode_measured(np.zeros((8, 16, 3), np.uint8), 30)
    assert calls == {"threads": 2, "quality": 30.0} and len(m.value) == 100
    assert codec.decode_measured(m.value).value.shape == (8, 16, 3) and calls["steps"] == 0
    # realism mode needs a realism decoder registered for the default model
    from diffcodec.zoo.registry import DEFAULT_MODEL_ID, DENOISERS

    monkeypatch.delitem(DENOISERS, DEFAULT_MODEL_ID, raising=False)
    ok, why = get_codec("diffcodec-realism").available()
    assert not ok and "no realism decoder" in why


def test_codec_name_expansion():
    assert expand_names("jpeg,bpg") == ["jpeg420", "jpeg444", "hevc"]
    with pytest.raises(ValueError):
        expand_names("jpeg,foo")


def test_diffcodec_cache_version_follows_only_what_decoding_reads(monkeypatch, tmp_path):
    """Trainer edits keep cached results; decode code changes both modes; a denoiser file only realism's."""
    from diffcodec.zoo import registry

    pkg = tmp_path / "diffcodec"
    for rel in ("__init__.py", "api.py", "training/loop.py", "zoo/weights/realism-x.safetensors"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text("0")
    # the layers above the API are read from the repository's own import contract
    shutil.copy(Path(__file__).resolve().parents[1] / "pyproject.toml", tmp_path / "pyproject.toml")
    fake = types.ModuleType("diffcodec")
    fake.__file__ = str(pkg / "__init__.py")
    monkeypatch.setitem(sys.modules, "diffcodec", fake)
    monkeypatch.setattr(registry, "DENOISERS", {1: types.SimpleNamespace(filename="realism-x.safetensors")})

    def versions():
        return get_codec("diffcodec").tool_version(), get_codec("diffcodec-realism").tool_version()

    before = versions()
    (pkg / "training/loop.py").write_text("1")
    assert versions() == before
    (pkg / "zoo/weights/realism-x.safetensors").write_text("1")
    after_denoiser = versions()
    assert after_denoiser[0] == before[0] and after_denoiser[1] != before[1]
    (pkg / "api.py").write_text("1")
    after_api = versions()
    assert after_api[0] != after_denoiser[0] and after_api[1] != after_denoiser[1]


def test_layers_above_the_api_come_from_the_import_contract(tmp_path):
    """A layer added above ``api`` in pyproject.toml is skipped without editing the adapter."""
    from benchmarks.codecs.diffcodec_adapter import above_api

    pkg = tmp_path / "diffcodec"
    (pkg / "training").mkdir(parents=True)
    assert above_api(pkg) == ()  # no pyproject.toml beside it (an installed wheel): hash everything
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.importlinter.contracts]]\ntype = "layers"\ncontainers = ["diffcodec"]\n'
        'layers = ["cli", "server | batch", "training", "api", "zoo"]\n')
    assert above_api(pkg) == ("cli.py", "server.py", "batch.py", "training")
    real = above_api(Path(__file__).resolve().parents[1] / "diffcodec")
    assert set(real) == {"cli.py", "distributed.py", "batch.py", "pillow_plugin.py", "training"}


def test_realism_strength_variant_decodes_at_its_strength(monkeypatch):
    """``diffcodec-realism-s0.5`` passes strength=0.5 to decompress and keys its own cache entries."""
    from PIL import Image

    calls = {}

    def decompress(data, steps=None, realism=False, strength=None):
        calls.update(steps=steps, realism=realism, strength=strength)
        return Image.new("RGB", (16, 8))

    fake = types.ModuleType("diffcodec")
    fake.__file__ = __file__
    fake.compress, fake.decompress = (lambda img, quality: b"x"), decompress
    monkeypatch.setitem(sys.modules, "diffcodec", fake)
    assert expand_names("hevc,diffcodec-realism-s0.5") == ["hevc", "diffcodec-realism-s0.5"]
    codec = get_codec("diffcodec-realism-s0.5")
    assert codec.name == "diffcodec-realism-s0.5" and "0.5" in codec.label
    codec.decode(b"x")
    assert calls == {"steps": None, "realism": False, "strength": 0.5}
    assert codec.version_extra() != get_codec("diffcodec-realism").version_extra()
    for bad in ("diffcodec-realism-s2", "diffcodec-realism-s", "diffcodec-realism-s0.5x"):
        with pytest.raises(ValueError):
            expand_names(bad)


def test_refine_variant_compresses_with_refinement(monkeypatch):
    """``diffcodec-refine20`` passes refine=20 to compress, decodes in fidelity mode and keys its own cache entries."""
    from PIL import Image

    calls = {}

    def compress(img, quality, refine=0):
        calls.update(quality=quality, refine=refine)
        return b"x"

    fake = types.ModuleType("diffcodec")
    fake.__file__ = __file__
    fake.compress, fake.decompress = compress, (lambda data, steps=None: Image.new("RGB", (16, 8)))
    monkeypatch.setitem(sys.modules, "diffcodec", fake)
    assert expand_names("diffcodec,diffcodec-refine20") == ["diffcodec", "diffcodec-refine20"]
    codec = get_codec("diffcodec-refine20")
    assert codec.name == "diffcodec-refine20" and "refine 20" in codec.label
    codec.encode(np.zeros((8, 16, 3), dtype=np.uint8), 40)
    assert calls == {"quality": 40.0, "refine": 20}
    assert codec.version_extra() != get_codec("diffcodec").version_extra()
    assert codec.decode_kwargs == get_codec("diffcodec").decode_kwargs
    for bad in ("diffcodec-refine0", "diffcodec-refine", "diffcodec-refine-3", "diffcodec-refine1000"):
        with pytest.raises(ValueError):
            expand_names(bad)
