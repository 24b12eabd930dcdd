"""Reference image pairs with published LPIPS/DISTS/PSNR values, for metric tests.

The five pairs of pyiqa's ``ResultsCalibra`` folder ship inside the ``pyiqa==0.1.16`` wheel;
the wheel is only *downloaded* (never installed or imported) and the BMPs are read from the
zip. Expected values: pyiqa's ``ResultsCalibra/calibration_summary.csv`` (rows ``lpips``,
``dists``, ``psnr``: pyiqa's outputs, which agree with the official implementations to 1e-4).
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

PYIQA_SPEC = "pyiqa==0.1.16"
PYIQA_WHEEL = "pyiqa-0.1.16-py3-none-any.whl"
PAIRS = ("I03", "I04", "I06", "I08", "I19")
EXPECTED = {  # pyiqa 0.1.16 calibration_summary.csv, "(ours)" rows, 4 decimals
    "lpips": (0.7237, 0.2572, 0.0508, 0.0521, 0.4253),
    "dists": (0.4742, 0.1424, 0.0682, 0.0287, 0.3123),
    "psnr-rgb": (21.1136, 20.9872, 27.0139, 23.3002, 21.6186),
}


def find_wheel(cache_dir: Path = Path("benchmarks/.cache/pyiqa"), download: bool = True
               ) -> Path | None:
    """Path of the pyiqa wheel: $BENCH_PYIQA_WHEEL, the cache, or a fresh ``pip download``."""
    env = os.environ.get("BENCH_PYIQA_WHEEL")
    if env and Path(env).is_file():
        return Path(env)
    wheel = cache_dir / PYIQA_WHEEL
    if wheel.is_file():
        return wheel
    if not download:
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        PYIQA_SPEC, "-d", str(cache_dir)], check=True, timeout=300,
                       capture_output=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return wheel if wheel.is_file() else None


def load_pairs(wheel: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, reference, distorted) uint8 RGB arrays from the wheel."""
    out = []
    with zipfile.ZipFile(wheel) as z:
        for n in PAIRS:
            ref = Image.open(io.BytesIO(z.read(f"ResultsCalibra/ref_dir/{n}.bmp"))).convert("RGB")
            dis = Image.open(io.BytesIO(z.read(f"ResultsCalibra/dist_dir/{n}.bmp"))).convert("RGB")
            out.append((n, np.asarray(ref), np.asarray(dis)))
    return out
