"""Python API with the shipped model: every image mode, odd sizes, target bpp, header checks."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bitstream
import diffcodec
from bitstream import FormatError, ModelMismatchError, UnsupportedVersionError
from diffcodec.image_io import ImageInputError
from diffcodec.psnr import psnr


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
    if min(size) >= 45:  # a 1x1 or 3-pixel-high image is all padding to the codec
        assert psnr(arr, np.asarray(out)) > 28.0


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
    bilevel = diffcodec.decompress(diffcodec.compress(Image.new("1", (9, 9), 1), quality=90))
    assert bilevel.mode == "L" and np.abs(np.asarray(bilevel).astype(int) - 255).max() <= 8
    cmyk = Image.fromarray(_smooth(64, 64)).convert("CMYK")
    out = diffcodec.decompress(diffcodec.compress(cmyk, quality=90))
    assert out.mode == "RGB"
    assert psnr(np.asarray(cmyk.convert("RGB")), np.asarray(out)) > 28.0  # the colours, converted, not garbage


def _png_48bit(path, rgb16: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow writes none)."""
    import struct
    import zlib

    h, w, _ = rgb16.shape
    raw = b"".join(b"\0" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_sixteen_bit_rgb_is_labelled_and_noticed(tmp_path):
    rgb16 = (_smooth(32, 48).astype(np.uint16) * 257)
    _png_48bit(tmp_path / "deep.png", rgb16)
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode == "RGB"  # Pillow hands out 8 bits: only the raw mode tells
    res = diffcodec.compress_detailed(tmp_path / "deep.png", quality=90)
    assert any("16-bit" in n for n in res.notices)
    assert diffcodec.read_header(res.data).header.bit_depth == 16
    assert psnr(_smooth(32, 48), np.asarray(diffcodec.decompress(res.data))) > 28.0


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
    out = np.asarray(diffcodec.decompress(diffcodec.compress(Image.open(buf), quality=90))).astype(float)
    assert out.shape[:2] == (60, 20)
    upright = np.asarray(Image.open(buf).transpose(Image.Transpose.ROTATE_270)).astype(float)  # what orientation 6 shows
    wrong_way = np.asarray(Image.open(buf).transpose(Image.Transpose.ROTATE_90)).astype(float)
    assert np.abs(out - upright).mean() < 4 < np.abs(out - wrong_way).mean()


def test_numpy_input_and_bad_types():
    assert diffcodec.decompress(diffcodec.compress(_smooth(16, 16))).size == (16, 16)
    with pytest.raises(ImageInputError):
        diffcodec.compress(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ImageInputError):
        diffcodec.compress(42)


@pytest.mark.parametrize("kwargs", [{"quality": None}, {"quality": "high"}, {"quality": 101}, {"quality": float("nan")},
                                    {"target_bpp": "0.3"}, {"target_bpp": -1}])
def test_bad_settings_raise_value_error_not_type_error(kwargs):
    with pytest.raises(ValueError, match="quality|bpp"):
        diffcodec.compress(_smooth(16, 16), **kwargs)


@pytest.mark.parametrize("data", ["photo.dcf", None, 42, [1, 2]])
def test_decompress_of_something_not_bytes_is_a_format_error(data):
    with pytest.raises(FormatError, match="bytes of a .dcf file"):
        diffcodec.decompress(data)


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


def test_decoding_is_deterministic(tmp_path):
    """Same pixels in this process and in fresh processes with 1 and 2 threads."""
    import hashlib
    import subprocess
    import sys

    data = diffcodec.compress(Image.fromarray(_smooth(50, 70)), quality=40)
    (tmp_path / "a.dcf").write_bytes(data)
    here = hashlib.sha256(np.asarray(diffcodec.decompress(data)).tobytes()).hexdigest()
    script = ("import hashlib, sys, numpy, torch, diffcodec; torch.set_num_threads(int(sys.argv[2])); "
              "print(hashlib.sha256(numpy.asarray(diffcodec.decompress(open(sys.argv[1], 'rb').read())).tobytes())"
              ".hexdigest())")
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.dcf"), str(threads)],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == here


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
    from diffcodec.zoo.registry import RETIRED

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


def test_resealed_payload_mutations_are_rejected_before_synthesis(monkeypatch):
    """A changed latent byte with a recomputed CRC: the stream checks refuse it (100 of 100 here),
    and the synthesis transform never runs on it."""
    from diffcodec.coding.codec import Codec

    data = diffcodec.compress(Image.fromarray(_smooth(64, 96)), quality=50)
    diffcodec.decompress(data)
    container = bitstream.parse(data)
    start = len(data) - 4 - len(container.latent)
    monkeypatch.setattr(Codec, "synthesize", lambda *a, **k: pytest.fail("synthesis ran on a corrupt stream"))
    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(100):
        body = bytearray(data[:-4])
        body[int(rng.integers(start, len(body)))] ^= int(rng.integers(1, 256))
        try:
            diffcodec.decompress(_reseal(bytes(body)))
        except bitstream.CorruptError:
            rejected += 1
    assert rejected == 100


@pytest.mark.parametrize("size", [(96, 65), (95, 64), (32, 64), (96, 128), (4000, 4000)])
def test_wrong_size_headers_with_valid_crc_are_rejected(size, monkeypatch):
    from diffcodec.coding.codec import Codec

    data = diffcodec.compress(Image.fromarray(_smooth(64, 96)), quality=50)
    c = bitstream.parse(data)
    forged = bitstream.pack(bitstream.Header(**{**c.header.__dict__, "width": size[0], "height": size[1]}), c.latent)
    monkeypatch.setattr(Codec, "synthesize", lambda *a, **k: pytest.fail("synthesis ran on a forged header"))
    with pytest.raises(bitstream.CorruptError, match="latent stream"):
        diffcodec.decompress(forged)


def test_version_1_files_still_decode():
    """A file written before the end marker (format 1): same latent without the marker."""
    from diffcodec.api import get_codec

    arr = _smooth(64, 96)
    codec = get_codec()
    stream_v1 = codec.code(codec.analyse(torch_image(arr)), 50.0, terminated=False)
    new = bitstream.parse(diffcodec.compress(Image.fromarray(arr), quality=50))
    header = bitstream.Header(**{**new.header.__dict__, "format_version": 1})
    old = bitstream.pack(header, stream_v1)
    assert np.array_equal(np.asarray(diffcodec.decompress(old)), np.asarray(diffcodec.decompress(bitstream.pack(
        new.header, new.latent))))


def torch_image(arr):
    import torch

    return torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 255


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


def test_force_keeps_the_replaced_files_permissions_and_follows_symlinks(tmp_path):
    import os
    import stat

    src = tmp_path / "a.png"
    Image.fromarray(_smooth(16, 16)).save(src)
    private = tmp_path / "private.dcf"
    private.write_bytes(b"old")
    os.chmod(private, 0o600)
    diffcodec.compress_file(src, private, force=True)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_bytes()[:4] == b"\x89DCF"
    target = tmp_path / "target.dcf"
    target.write_bytes(b"old")
    link = tmp_path / "link.dcf"
    link.symlink_to(target)
    with pytest.raises(diffcodec.OutputExistsError):
        diffcodec.compress_file(src, link)
    diffcodec.compress_file(src, link, force=True)
    assert link.is_symlink() and target.read_bytes()[:4] == b"\x89DCF"


def test_output_that_is_the_input_is_refused_even_with_force(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(_smooth(16, 16)).save(src)
    before = src.read_bytes()
    with pytest.raises(diffcodec.OutputExistsError, match="input file itself"):
        diffcodec.compress_file(src, src, force=True)
    assert src.read_bytes() == before


def test_missing_or_read_only_output_folder_is_named_before_any_work(tmp_path, monkeypatch):
    import os

    from diffcodec.api import OutputLocationError

    src = tmp_path / "a.png"
    Image.fromarray(_smooth(16, 16)).save(src)
    monkeypatch.setattr(diffcodec.api, "compress_detailed", lambda *a, **k: pytest.fail("coded before checking"))
    with pytest.raises(OutputLocationError, match=f"{tmp_path / 'nowhere'}: output folder does not exist"):
        diffcodec.compress_file(src, tmp_path / "nowhere" / "a.dcf")
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked)  # root may write anywhere
    with pytest.raises(OutputLocationError, match="not writable"):
        diffcodec.compress_file(src, locked / "a.dcf")


def test_importing_diffcodec_leaves_pillows_bomb_guard_alone():
    import subprocess
    import sys

    code = ("from PIL import Image; before = Image.MAX_IMAGE_PIXELS; import diffcodec, diffcodec.api, "
            "diffcodec.image_io; print(before == Image.MAX_IMAGE_PIXELS, Image.MAX_IMAGE_PIXELS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split()[0] == "True" and out.stdout.split()[1] != "None", out.stderr
