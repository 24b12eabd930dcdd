"""``.dcf`` through Pillow's public API only: Image.open / save, lazy decoding, errors, bomb limit."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import bitstream
import diffcodec  # registers the plugin
from diffcodec.psnr import psnr


def _smooth(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([(128 + 100 * np.sin(xx / 7.0)), (128 + 100 * np.cos(yy / 5.0)), (xx + yy) % 256]).astype(np.uint8)


def test_registered_extension_and_mime():
    assert Image.registered_extensions()[".dcf"] == "DCF"
    assert Image.MIME["DCF"] == "image/x-dcf"


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P", "I;16", "CMYK", "1"])
def test_save_and_open_round_trip(tmp_path, mode):
    rgb = Image.fromarray(_smooth(40, 56))
    source = {"LA": lambda: rgb.convert("LA"), "RGBA": lambda: rgb.convert("RGBA"), "P": lambda: rgb.convert("P"),
              "I;16": lambda: Image.fromarray((np.asarray(rgb.convert("L")).astype(np.uint16) * 257)),
              }.get(mode, lambda: rgb.convert(mode))()
    path = tmp_path / "x.dcf"
    source.save(path, quality=90)
    with Image.open(path) as im:
        assert im.format == "DCF" and im.size == (56, 40)
        expected_mode = {"P": "RGB", "I;16": "L", "CMYK": "RGB", "1": "L"}.get(mode, mode)
        assert im.mode == expected_mode
        assert im.info["quality"] == 90.0
        pixels = np.asarray(im)
    assert np.array_equal(pixels, np.asarray(diffcodec.decompress(path.read_bytes())))
    if mode in ("RGB", "RGBA"):
        assert psnr(np.asarray(source.convert("RGB")), pixels[..., :3]) > 28


def test_open_reads_the_header_only_and_decodes_on_load(tmp_path, monkeypatch):
    path = tmp_path / "x.dcf"
    Image.fromarray(_smooth(40, 56)).save(path)
    import diffcodec.api

    calls = []
    real = diffcodec.api.decompress
    monkeypatch.setattr(diffcodec.api, "decompress", lambda *a, **k: calls.append(1) or real(*a, **k))
    im = Image.open(path)
    assert (im.size, im.mode, calls) == ((56, 40), "RGB", [])
    im.load()
    im.load()
    assert calls == [1]


def test_save_options(tmp_path):
    rgb = Image.fromarray(_smooth(64, 96))
    rgb.save(tmp_path / "low.dcf", quality=10)
    rgb.save(tmp_path / "high.dcf", quality=90)
    assert (tmp_path / "low.dcf").stat().st_size < (tmp_path / "high.dcf").stat().st_size
    rgb.save(tmp_path / "budget.dcf", target_bpp=0.5)
    assert (tmp_path / "budget.dcf").stat().st_size * 8 <= 0.5 * 64 * 96
    rgb.save(tmp_path / "explicit.bin", format="DCF")
    assert (tmp_path / "explicit.bin").read_bytes()[:4] == bitstream.MAGIC
    rgb.save(tmp_path / "refined.dcf", quality=40, refine=2)
    assert (tmp_path / "refined.dcf").read_bytes() == diffcodec.compress(rgb, 40, refine=2)


def test_bad_save_option_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="quality"):
        Image.fromarray(_smooth(8, 8)).save(tmp_path / "x.dcf", quality=500)
    assert not (tmp_path / "x.dcf").exists()


def test_corrupt_files_raise_oserror_with_diffcodecs_message(tmp_path):
    data = diffcodec.compress(Image.fromarray(_smooth(40, 56)))
    (tmp_path / "cut.dcf").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="diffcodec: file is truncated"):
        Image.open(tmp_path / "cut.dcf")
    body = bytearray(data[:-4])
    body[-3] ^= 0x40  # inside the latent stream, checksum recomputed: the header is fine
    (tmp_path / "bad.dcf").write_bytes(bitstream.seal(bytes(body)))
    with Image.open(tmp_path / "bad.dcf") as im:
        assert im.size == (56, 40)
        with pytest.raises(OSError, match="diffcodec: latent stream is corrupt"):
            im.load()


def test_decompression_bomb_limit_is_pillows(tmp_path, monkeypatch):
    data = diffcodec.compress(Image.fromarray(_smooth(40, 56)))
    c = bitstream.parse(data)
    (tmp_path / "x.dcf").write_bytes(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 56 x 40 = 2240 > 2 x 1000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "x.dcf")
    monkeypatch.undo()
    huge = bitstream.pack(bitstream.Header(**{**c.header.__dict__, "width": 30000, "height": 30000}), c.latent)
    (tmp_path / "huge.dcf").write_bytes(huge)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "huge.dcf")
