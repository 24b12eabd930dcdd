"""Python API with the shipped model: every image mode, odd sizes, target bpp, header checks."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import bitstream
import diffcodec
from bitstream import ModelMismatchError, UnsupportedVersionError, FormatError
from diffcodec.image_io import ImageInputError


def _noise(h, w, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _smooth(h, w, seed=0):
    yy, xx = np.mgrid[0:h, 0:w]
    r = (128 + 100 * np.sin(xx / 7.0 + seed)).astype(np.uint8)
    g = (128 + 100 * np.cos(yy / 5.0)).astype(np.uint8)
    b = ((xx + yy) % 256).astype(np.uint8)
    return np.dstack([r, g, b])


@pytest.mark.parametrize("size", [(1, 1), (3, 200), (67, 45), (64, 128)])
def test_rgb_round_trip_any_size(size):
    arr = _smooth(*size)
    out = diffcodec.decompress(diffcodec.compress(Image.fromarray(arr), quality=90))
    assert out.mode == "RGB" and out.size == (size[1], size[0])


def test_greyscale_stays_greyscale():
    grey = Image.fromarray(_smooth(40, 50)[..., 0], mode="L")
    out = diffcodec.decompress(diffcodec.compress(grey, quality=80))
    assert out.mode == "L" and out.size == (50, 40)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_kept_exactly(mode):
    rgba = np.dstack([_smooth(33, 47), _noise(33, 47, 1, seed=3)[..., 0]])
    im = Image.fromarray(rgba, mode="RGBA").convert(mode)
    out = diffcodec.decompress(diffcodec.compress(im, quality=50))
    assert out.mode == mode
    assert np.array_equal(np.asarray(out)[..., -1], np.asarray(im)[..., -1])


def test_palette_with_transparency():
    im = Image.fromarray(_smooth(20, 30)).convert("P", palette=Image.ADAPTIVE)
    im.info["transparency"] = 0
    out = diffcodec.decompress(diffcodec.compress(im))
    assert out.mode == "RGBA" and out.size == (30, 20)


def test_bilevel_and_cmyk_inputs():
    assert diffcodec.decompress(diffcodec.compress(Image.new("1", (9, 9), 1))).mode == "L"
    assert diffcodec.decompress(diffcodec.compress(Image.new("CMYK", (9, 9), (0, 50, 0, 0)))).mode == "RGB"


def test_sixteen_bit_is_reduced_with_notice():
    arr = (np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 50)
    im = Image.fromarray(arr)
    assert im.mode == "I;16"
    res = diffcodec.compress_detailed(im, quality=60)
    assert any("8 bits" in n for n in res.notices)
    header = diffcodec.read_header(res.data).header
    assert header.bit_depth == 16 and header.channels == 1
    assert diffcodec.decompress(res.data).mode == "L"


def test_exif_orientation_applied():
    im = Image.fromarray(_smooth(20, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif.tobytes())
    buf.seek(0)
    out = diffcodec.decompress(diffcodec.compress(Image.open(buf)))
    assert out.size == (20, 60)


def test_numpy_input_and_bad_types():
    assert diffcodec.decompress(diffcodec.compress(_smooth(16, 16))).size == (16, 16)
    with pytest.raises(ImageInputError):
        diffcodec.compress(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ImageInputError):
        diffcodec.compress(42)


def test_quality_orders_rate():
    im = Image.fromarray(_smooth(128, 128))
    sizes = [len(diffcodec.compress(im, quality=q)) for q in (0, 30, 60, 100)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def _kodak_crop(n: int, h: int = 256, w: int = 384) -> Image.Image:
    from conftest import kodak_path

    with Image.open(kodak_path(n)) as im:
        return im.convert("RGB").crop((0, 0, w, h))


def test_target_bpp_is_met_and_tight():
    im = _kodak_crop(23)  # spans about 0.09-0.78 bpp over the quality range (default model)
    for target in (0.2, 0.6):
        res = diffcodec.compress_detailed(im, target_bpp=target)
        assert res.bpp <= target
        assert 0 < res.quality < 100
        above = diffcodec.compress_detailed(im, quality=min(100.0, res.quality + 1.0))
        assert above.bpp > target * 0.9


def test_target_below_lowest_rate_uses_quality_zero_with_notice():
    res = diffcodec.compress_detailed(Image.fromarray(_noise(64, 64)), target_bpp=0.001)
    assert res.quality == 0.0
    assert any("below the lowest rate" in n for n in res.notices)


def test_decoding_is_deterministic():
    data = diffcodec.compress(Image.fromarray(_smooth(50, 70)), quality=40)
    a = np.asarray(diffcodec.decompress(data))
    b = np.asarray(diffcodec.decompress(data))
    assert np.array_equal(a, b)


_reseal = bitstream.seal


def test_unknown_model_and_mismatched_weights_rejected():
    data = diffcodec.compress(Image.fromarray(_smooth(8, 8)))
    body = bytearray(data[:-4])
    body[6] = 99
    with pytest.raises(ModelMismatchError, match="unknown model"):
        diffcodec.decompress(_reseal(bytes(body)))
    body = bytearray(data[:-4])
    body[7] ^= 0xFF
    with pytest.raises(ModelMismatchError, match="other weights"):
        diffcodec.decompress(_reseal(bytes(body)))


def test_files_of_a_retired_model_name_the_release_that_decodes_them():
    from diffcodec.registry import RETIRED

    model_id, (name, release) = next(iter(RETIRED.items()))
    body = bytearray(diffcodec.compress(Image.fromarray(_smooth(8, 8)))[:-4])
    body[6] = model_id
    with pytest.raises(ModelMismatchError, match=f"{name} .retired: decode with diffcodec {release}.*no longer ships"):
        diffcodec.decompress(_reseal(bytes(body)))


def test_wrong_version_rejected():
    data = bytearray(diffcodec.compress(Image.fromarray(_smooth(8, 8))))
    data[4] = 7
    with pytest.raises(UnsupportedVersionError):
        diffcodec.decompress(bytes(data))


def test_corrupt_latent_that_passes_crc_never_crashes():
    """A crafted file (valid CRC, garbage latent) ends in FormatError or an image, nothing else."""
    data = diffcodec.compress(Image.fromarray(_smooth(64, 64)), quality=50)
    rng = np.random.default_rng(0)
    body = bytearray(data[:-4])
    start = len(body) - (len(body) - 20) // 4 * 4
    for _ in range(20):
        mutated = bytearray(body)
        for pos in rng.integers(start, len(body), 3):
            mutated[pos] ^= int(rng.integers(1, 256))
        try:
            img = diffcodec.decompress(_reseal(bytes(mutated)))
            assert img.size == (64, 64)
        except FormatError:
            pass


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    """Atomic writes go through a private temporary file; the result must not stay private."""
    import os
    import stat

    from diffcodec.image_io import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", b"x")
        os.umask(0o077)
        atomic_write(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o600
