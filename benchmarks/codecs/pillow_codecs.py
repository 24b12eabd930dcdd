"""Codecs run in process through Pillow: JPEG (4:2:0 and 4:4:4), WebP and AVIF."""
from __future__ import annotations

import io

import numpy as np
import PIL
from PIL import Image, features

from benchmarks.codecs.base import Codec, CodecUnavailable


def _decode_pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


class PillowJPEG(Codec):
    """Baseline JPEG through Pillow/libjpeg(-turbo), default (non-optimised) Huffman tables."""

    default_settings = (1, 5, 10, 20, 35, 50, 75, 95)

    def __init__(self, subsampling: int) -> None:
        self.subsampling = subsampling
        tag = {2: "420", 0: "444"}[subsampling]
        self.name = f"jpeg{tag}"
        self.label = f"JPEG {tag[0]}:{tag[1]}:{tag[2]}"

    def tool_version(self) -> str:
        return f"Pillow {PIL.__version__} libjpeg {features.version('jpg')}"

    def version_extra(self) -> str:
        return f"subsampling={self.subsampling}"

    def description(self) -> str:
        turbo = features.version("libjpeg_turbo")
        lib = f"libjpeg-turbo {turbo}" if turbo else f"libjpeg {features.version('jpg')}"
        return (f"{self.label} via Pillow {PIL.__version__} ({lib}), "
                f"quality=Q, subsampling={self.subsampling}, default Huffman tables, no optimize.")

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=int(setting),
                                         subsampling=self.subsampling)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        return _decode_pillow(data)


class PillowWebP(Codec):
    """Lossy WebP through Pillow/libwebp (method 4, the default)."""

    name = "webp"
    label = "WebP"
    default_settings = (0, 10, 25, 40, 55, 70, 85, 95)

    def check_available(self) -> None:
        if not features.check("webp"):
            raise CodecUnavailable("Pillow was built without WebP support")

    def tool_version(self) -> str:
        return f"Pillow {PIL.__version__} libwebp {features.version('webp')}"

    def description(self) -> str:
        return (f"WebP via Pillow {PIL.__version__} (libwebp {features.version('webp')}), "
                "lossy, quality=Q, method=4 (default); 4:2:0 is the only lossy chroma format.")

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, "WEBP", quality=int(setting), method=4)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        return _decode_pillow(data)


class PillowAVIF(Codec):
    """AVIF 4:4:4 through Pillow's libavif plugin (AV1 intra)."""

    name = "avif"
    label = "AVIF 4:4:4"
    default_settings = (2, 10, 20, 35, 50, 65, 80, 90)
    SPEED = 6

    def check_available(self) -> None:
        if not features.check("avif"):
            raise CodecUnavailable("Pillow was built without AVIF support (needs Pillow >= 11.2 "
                                   "with libavif)")

    def tool_version(self) -> str:
        return f"Pillow {PIL.__version__} libavif {features.version('avif')}"

    def version_extra(self) -> str:
        return f"speed={self.SPEED}"

    def description(self) -> str:
        return (f"AVIF via Pillow {PIL.__version__} (libavif {features.version('avif')}), "
                f"quality=Q, subsampling 4:4:4, speed={self.SPEED}, one thread, "
                "libavif's default RGB->YUV (full range BT.601 matrix).")

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, "AVIF", quality=int(setting), subsampling="4:4:4",
                                         speed=self.SPEED, max_threads=1)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        return _decode_pillow(data)
