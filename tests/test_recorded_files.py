"""Same bytes and pixels as the recording (a refactor must not change what the codec writes).

``tests/data/recorded/`` holds what the code wrote for two Kodak images at three qualities with
the default model: the ``.dcf`` files and the SHA-256 of their decoded pixels (``recorded.json``
names the commit and the machine). A move, a refactor or a "cleanup" that changes what the
codec writes or decodes fails here. The first recording (release 0.4.0, model 5) was made by
the code from before the sub-package move; a new default model needs a new recording
(``python tests/test_recorded_files.py --record``), made before any refactor that it guards.

On a machine whose float kernels sum in the same order (the one that recorded them) both
checks are exact. The
symbols of a recorded file always decode exactly (integer coding), but the float synthesis
of another CPU may round a pixel the other way, and its float analysis may round a latent the
other way; there the checks fall back to at most one level of difference in a few pixels and
to the recorded PSNR and to a file of the same size and quality. Which branch ran is printed (``pytest -s``).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffcodec.api import compress, decompress, read_header
from diffcodec.psnr import psnr

DATA = Path(__file__).parent / "data" / "recorded"
KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
RECORDED = json.loads((DATA / "recorded.json").read_text())["files"]


def _rgb(name: str) -> np.ndarray:
    path = KODAK / f"{name}.png"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared Kodak set sits beside the repository)")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_recorded_files_decode_to_the_recorded_pixels(key):
    data = (DATA / f"{key}.dcf").read_bytes()
    assert hashlib.sha256(data).hexdigest() == RECORDED[key]["bytes_sha256"]
    pixels = np.asarray(decompress(data).convert("RGB"))
    if hashlib.sha256(pixels.tobytes()).hexdigest() == RECORDED[key]["pixels_sha256"]:
        print(f"{key}: pixels identical")
        return
    # another CPU's float synthesis: the symbols are the same, a few pixels may round the other way
    measured = psnr(_rgb(key.split("-")[0]), pixels)
    print(f"{key}: pixels differ from the recording (other float kernels); PSNR {measured:.4f} dB, "
          f"recorded {RECORDED[key]['psnr']:.4f} dB")
    assert abs(measured - RECORDED[key]["psnr"]) < 0.01


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_compressing_again_writes_the_recorded_bytes(key):
    name, quality = key.split("-q")
    rgb = _rgb(name)
    data = compress(rgb, quality=float(quality))
    recorded = (DATA / f"{key}.dcf").read_bytes()
    if data == recorded:
        print(f"{key}: bytes identical")
        return
    # another CPU's float analysis may round a few latents the other way: same size and quality
    print(f"{key}: bytes differ from the recording (other float kernels): {len(data)} vs {len(recorded)}")
    assert read_header(data).header == read_header(recorded).header
    assert abs(len(data) - len(recorded)) <= 0.005 * len(recorded) + 8
    ours, theirs = (np.asarray(decompress(d).convert("RGB")) for d in (data, recorded))
    assert abs(psnr(rgb, ours) - psnr(rgb, theirs)) < 0.02


def record(names: tuple[str, ...] = ("kodim01", "kodim23"), qualities: tuple[int, ...] = (10, 50, 90)) -> None:
    """Write the recordings again, with the default model of this checkout (when the default changes).

        python tests/test_recorded_files.py --record
    """
    import platform
    import subprocess

    import torch

    from diffcodec.zoo.registry import DEFAULT_MODEL_ID, MODELS

    files = {}
    for name in names:
        rgb = _rgb(name)
        for q in qualities:
            key = f"{name}-q{q}"
            data = compress(rgb, quality=float(q))
            pixels = np.asarray(decompress(data).convert("RGB"))
            (DATA / f"{key}.dcf").write_bytes(data)
            files[key] = {"bytes_sha256": hashlib.sha256(data).hexdigest(),
                          "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),
                          "num_bytes": len(data), "psnr": round(psnr(rgb, pixels), 6)}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=DATA).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    meta = {"made_by": f"python tests/test_recorded_files.py --record on git commit {commit} (plus the "
                       f"working tree), default model {DEFAULT_MODEL_ID} ({MODELS[DEFAULT_MODEL_ID].name}), "
                       "diffcodec.compress(rgb, quality=Q) and diffcodec.decompress(data)",
            "machine": cpu, "torch": torch.__version__, "files": files}
    (DATA / "recorded.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_recorded_files.py --record")
    record()
