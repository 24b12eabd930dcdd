"""The command line as a user meets it: exit codes, one-line errors, no lost or partial files."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DIFFCODEC = [sys.executable, "-m", "diffcodec"]


def run(*args, cwd=None, timeout=300):
    return subprocess.run([*DIFFCODEC, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:80]
    base = np.dstack([(xx * 3) % 256, (yy * 5) % 256, (xx + yy) % 256]).astype(np.uint8)
    Image.fromarray(base).save(tmp_path / "a.png")
    Image.fromarray(np.roll(base, 7, axis=1)).save(tmp_path / "b.jpg", quality=95)
    Image.fromarray(rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)).save(tmp_path / "c.webp", lossless=True)
    return tmp_path


def _no_traceback(result):
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr


def test_compress_decompress_info(images):
    r = run("compress", images / "a.png", images / "a.dcf", "--quality", "55")
    assert r.returncode == 0, r.stderr
    assert "bpp" in r.stdout
    r = run("info", images / "a.dcf")
    assert r.returncode == 0 and "quality: 55.0" in r.stdout and "width: 80" in r.stdout
    r = run("decompress", images / "a.dcf", images / "a_out.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(images / "a_out.png").size == (80, 48)
    r = run("decompress", images / "a.dcf", images / "a_out.webp")
    assert r.returncode == 0 and Image.open(images / "a_out.webp").format == "WEBP"


def test_compress_refine_writes_an_ordinary_file_and_refuses_bad_counts(images):
    r = run("compress", images / "a.png", images / "a.dcf", "--quality", "40", "--refine", "2")
    assert r.returncode == 0, r.stderr
    r = run("decompress", images / "a.dcf", images / "a_out.png")
    assert r.returncode == 0 and Image.open(images / "a_out.png").size == (80, 48)
    r = run("compress", images / "a.png", images / "b.dcf", "--refine", "-3")
    assert r.returncode == 2 and "--refine" in r.stderr and not (images / "b.dcf").exists()
    _no_traceback(r)


def test_never_overwrites_without_force(images):
    target = images / "a.dcf"
    target.write_bytes(b"precious")
    r = run("compress", images / "a.png", target)
    assert r.returncode == 1 and "exists" in r.stderr and "--force" in r.stderr
    assert target.read_bytes() == b"precious"
    _no_traceback(r)
    assert run("compress", images / "a.png", target, "--force").returncode == 0
    assert target.read_bytes()[:4] == b"\x89DCF"


def test_batch_continues_past_bad_file_and_reports(images):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = images / "out"
    r = run("compress", images, "-o", out)
    assert r.returncode == 1
    _no_traceback(r)
    assert "broken.png" in r.stderr and "1 of 4 files failed" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.dcf", "b.dcf", "c.dcf"]
    r = run("decompress", str(out / "*.dcf"), "-o", images / "dec", "--format", "png")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (images / "dec").iterdir()) == ["a.png", "b.png", "c.png"]


@pytest.mark.parametrize("payload,message", [
    (b"", "empty file"),
    (b"GIF89a" + b"\0" * 50, "not a .dcf file"),
    (b"\x89DCF\x09" + b"\0" * 40, "unsupported .dcf format version 9"),
])
def test_bad_dcf_inputs_give_one_line_errors(images, payload, message):
    bad = images / "bad.dcf"
    bad.write_bytes(payload)
    r = run("decompress", bad, images / "bad.png")
    assert r.returncode == 1
    _no_traceback(r)
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (images / "bad.png").exists()


def test_truncated_and_corrupt_files_leave_no_output(images):
    assert run("compress", images / "a.png", images / "a.dcf").returncode == 0
    data = (images / "a.dcf").read_bytes()
    (images / "t.dcf").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    (images / "x.dcf").write_bytes(bytes(flipped))
    for name, msg in (("t", "truncated"), ("x", "corrupt")):
        r = run("decompress", images / f"{name}.dcf", images / f"{name}.png")
        assert r.returncode == 1 and msg in r.stderr, r.stderr
        _no_traceback(r)
        assert not (images / f"{name}.png").exists()
    assert not [p for p in images.iterdir() if p.name.endswith(".part")]


def test_usage_errors_exit_2(images):
    assert run("compress").returncode == 2
    assert run("compress", images / "a.png", "--quality", "101").returncode == 2
    assert run("compress", images / "a.png", "--quality", "5", "--target-bpp", "0.5").returncode == 2
    assert run("compress", str(images / "*.nothing")).returncode == 2


def test_missing_and_non_image_inputs(images):
    (images / "notes.txt").write_text("hello")
    r = run("compress", images / "missing.png", images / "m.dcf")
    assert r.returncode == 1 and "no such file" in r.stderr
    r = run("compress", images / "notes.txt", images / "n.dcf")
    assert r.returncode == 1 and "not an image" in r.stderr
    _no_traceback(r)


def test_unknown_output_extension_rejected_before_decoding(images):
    assert run("compress", images / "a.png", images / "a.dcf").returncode == 0
    r = run("decompress", images / "a.dcf", images / "a.xyz")
    assert r.returncode == 1 and "unsupported output format" in r.stderr


def test_target_bpp_option(images):
    r = run("compress", images / "a.png", images / "t.dcf", "--target-bpp", "0.5")
    assert r.returncode == 0, r.stderr
    size = (images / "t.dcf").stat().st_size
    assert size * 8 / (80 * 48) <= 0.5


def test_pixel_limit_on_decode(images):
    assert run("compress", images / "a.png", images / "a.dcf").returncode == 0
    r = run("decompress", images / "a.dcf", images / "big.png", "--max-pixels", "100")
    assert r.returncode == 1 and "exceeds the limit" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_signal_mid_batch_leaves_no_partial_file(tmp_path, sig, workers):
    yy, xx = np.mgrid[0:512, 0:768]
    big = np.dstack([(xx * 3) % 256, (yy * 5) % 256, (xx + yy) % 256]).astype(np.uint8)
    for i in range(6):
        Image.fromarray(np.roll(big, i, axis=0)).save(tmp_path / f"img{i}.png")
    out = tmp_path / "out"
    # a test run started in the background inherits SIGINT ignored (as nohup/`&` set it), which
    # the CLI rightly keeps; give the child the default disposition so the test means the same anywhere
    proc = subprocess.Popen([*DIFFCODEC, "compress", str(tmp_path), "-o", str(out), "--workers", workers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(out.iterdir())):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    leftovers = [p.name for p in out.iterdir() if not p.name.endswith(".dcf")]
    assert leftovers == []
    for f in out.iterdir():
        assert f.read_bytes()[:4] == b"\x89DCF"
        assert run("info", f).returncode == 0


def test_realism_flag(images):
    """--realism decodes with the registered realism decoder, or refuses in one line without one."""
    from diffcodec.zoo.registry import DEFAULT_MODEL_ID, DENOISERS

    assert run("compress", images / "a.png", images / "a.dcf").returncode == 0
    r = run("decompress", images / "a.dcf", images / "real.png", "--realism", "--seed", "3")
    _no_traceback(r)
    if DEFAULT_MODEL_ID in DENOISERS:
        assert r.returncode == 0, r.stderr
        assert Image.open(images / "real.png").size == (80, 48)
    else:
        assert r.returncode == 1 and "no realism decoder" in r.stderr and len(r.stderr.strip().splitlines()) <= 2
        assert not (images / "real.png").exists()
    r = run("decompress", images / "a.dcf", images / "x.png", "--steps", "65")
    assert r.returncode == 2
    r = run("decompress", images / "a.dcf", images / "x.png", "--strength", "1.5")
    assert r.returncode == 2 and "strength" in r.stderr and not (images / "x.png").exists()
    r = run("decompress", "--help")
    assert "--realism" in r.stdout and "--strength" in r.stdout and "fidelity" in r.stdout


def test_strength_zero_writes_the_fidelity_image(images):
    """--strength 0 is the fidelity decoder: the same PNG as the plain decode, with or without a
    realism decoder installed (no network runs)."""
    assert run("compress", images / "a.png", images / "s.dcf").returncode == 0
    assert run("decompress", images / "s.dcf", images / "plain.png").returncode == 0
    r = run("decompress", images / "s.dcf", images / "zero.png", "--strength", "0")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.asarray(Image.open(images / "zero.png")), np.asarray(Image.open(images / "plain.png")))


def test_a_retired_models_file_is_named_and_refused_in_one_line(images):
    import bitstream
    from diffcodec.zoo.registry import RETIRED

    model_id, (name, release) = next(iter(RETIRED.items()))
    assert run("compress", images / "a.png", images / "a.dcf").returncode == 0
    body = bytearray((images / "a.dcf").read_bytes()[:-4])
    body[6] = model_id
    (images / "old.dcf").write_bytes(bitstream.seal(bytes(body)))
    r = run("info", images / "old.dcf")
    assert r.returncode == 0 and f"model: {name} (retired: decode with diffcodec {release})" in r.stdout
    r = run("decompress", images / "old.dcf", images / "old.png")
    assert r.returncode == 1 and f"diffcodec {release}" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (images / "old.png").exists()
    _no_traceback(r)


def test_output_directory_that_cannot_be_created_is_one_line(images):
    (images / "plain").write_text("a regular file")
    r = run("compress", images / "a.png", images / "b.jpg", "-o", images / "plain" / "out")
    assert r.returncode == 1, r.stderr
    _no_traceback(r)
    assert "cannot create output directory" in r.stderr and str(images / "plain" / "out") in r.stderr


def test_a_missing_output_folder_is_named_not_the_input(images):
    r = run("compress", images / "a.png", images / "nowhere" / "a.dcf")
    assert r.returncode == 1
    _no_traceback(r)
    assert f"{images / 'nowhere'}: output folder does not exist" in r.stderr
    assert "a.png: No such file" not in r.stderr


def test_batch_errors_go_to_stderr_only(images):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    r = run("compress", images, "-o", images / "out")
    assert r.returncode == 1
    assert "broken.png" in r.stderr and "broken.png" not in r.stdout


def test_alpha_dropped_by_the_output_format_is_reported(images):
    rgba = np.dstack([np.asarray(Image.open(images / "a.png")), np.full((48, 80), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(images / "t.png")
    assert run("compress", images / "t.png", images / "t.dcf").returncode == 0
    r = run("decompress", images / "t.dcf", images / "t.jpg")
    assert r.returncode == 0, r.stderr
    assert " RGB," in r.stdout and "alpha dropped: JPEG cannot store it" in r.stdout
    assert Image.open(images / "t.jpg").mode == "RGB"


def test_same_input_and_output_is_refused_even_with_force(images):
    before = (images / "a.png").read_bytes()
    r = run("compress", images / "a.png", images / "a.png", "--force")
    assert r.returncode in (1, 2)
    _no_traceback(r)
    assert (images / "a.png").read_bytes() == before


def test_directory_with_a_single_output_name_is_a_usage_error(images):
    assert run("compress", images / "a.png", images / "a.dcf").returncode == 0
    r = run("decompress", images, images / "out.png")
    assert r.returncode == 2 and "-o DIR" in r.stderr
    _no_traceback(r)


def test_info_reads_the_header_without_loading_torch(images):
    assert run("compress", images / "a.png", images / "a.dcf").returncode == 0
    code = ("import runpy, sys; sys.argv = ['diffcodec', 'info', sys.argv[1]]\n"
            "try:\n    runpy.run_module('diffcodec', run_name='__main__')\nexcept SystemExit as e:\n"
            "    print('exit', e.code, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(images / "a.dcf")], capture_output=True, text=True, timeout=120)
    assert "format_version: 2" in r.stdout and r.stdout.strip().endswith("exit 0 False"), r.stdout + r.stderr


def test_workers_write_the_same_bytes_as_one_process(images):
    one, two = images / "one", images / "two"
    assert run("compress", images, "-o", one, "--workers", "1", "--quiet").returncode == 0
    r = run("compress", images, "-o", two, "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(" -> ") == 3
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in two.iterdir()) == ["a.dcf", "b.dcf", "c.dcf"]
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes()
    r = run("decompress", two, "-o", images / "dec", "--workers", "auto")
    assert r.returncode == 0, r.stderr
    for name in names:
        stem = name[:-4]
        assert np.array_equal(np.asarray(Image.open(images / "dec" / f"{stem}.png")),
                              np.asarray(diffcodec_decompress(one / name)))


def test_workers_continue_past_a_bad_file(images):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    r = run("compress", images, "-o", images / "out", "--workers", "2")
    assert r.returncode == 1
    _no_traceback(r)
    assert "1 of 4 files failed" in r.stderr and "broken.png" not in r.stdout
    assert sorted(p.name for p in (images / "out").iterdir()) == ["a.dcf", "b.dcf", "c.dcf"]
    assert run("compress", images / "a.png", "-o", images / "o2", "--workers", "0").returncode == 2


def diffcodec_decompress(path):
    import diffcodec

    return diffcodec.decompress(Path(path).read_bytes())
