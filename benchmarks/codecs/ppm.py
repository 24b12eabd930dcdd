"""Read/write binary 8-bit PPM (P6) files for the command-line codecs."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ppm(path: Path, rgb: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) array as P6."""
    h, w = rgb.shape[:2]
    with open(path, "wb") as f:
        f.write(f"P6\n{w} {h}\n255\n".encode())
        f.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())


def read_ppm(path: Path) -> np.ndarray:
    """Read an 8-bit P6 file (comments allowed) into a uint8 (H, W, 3) array."""
    data = Path(path).read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise ValueError(f"unsupported PPM {fields!r}")
    w, h = int(fields[1]), int(fields[2])
    pos += 1  # the single whitespace after maxval
    return np.frombuffer(data, np.uint8, count=w * h * 3, offset=pos).reshape(h, w, 3).copy()
