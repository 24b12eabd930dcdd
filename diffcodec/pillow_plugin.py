"""``.dcf`` files in Pillow: ``Image.open("photo.dcf")`` and ``image.save("photo.dcf", quality=60)``.

Registered when :mod:`diffcodec` is imported (registration imports Pillow only, not torch),
or explicitly with :func:`register_pillow`. Opening reads the header alone: ``size`` and
``mode`` are known without decoding, Pillow's decompression-bomb limit applies to the
announced size, and the fidelity decoder runs on ``load()``. A damaged or unreadable file
raises :class:`OSError` (Pillow's error for broken image data) with diffcodec's message.

Save options: ``quality`` (0-100) or ``target_bpp``, and ``refine``, as in :func:`diffcodec.compress`.
"""
from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

import bitstream
from bitstream.container import MAX_SIDE

FORMAT = "DCF"
MIME = "image/x-dcf"
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _accept(prefix: bytes) -> bool:
    return prefix[: len(bitstream.MAGIC)] == bitstream.MAGIC


def _pixel_limit() -> int:
    """The format's own ceiling only: Pillow's bomb check (``Image.MAX_IMAGE_PIXELS``) decides,
    right after ``_open`` and before anything is decoded, as for every other format."""
    return MAX_SIDE * MAX_SIDE


class DcfImageFile(ImageFile.ImageFile):
    """A ``.dcf`` file opened by Pillow; decoded by diffcodec's fidelity decoder on ``load()``."""

    format = FORMAT
    format_description = "diffcodec learned image codec"

    def _open(self) -> None:
        self._dcf_data = self.fp.read()
        try:
            header = bitstream.parse(self._dcf_data, max_pixels=_pixel_limit()).header
        except bitstream.FormatError as exc:
            raise OSError(f"diffcodec: {exc}") from None
        self._mode = MODES[header.channels]
        self._size = (header.width, header.height)
        self.info["quality"] = header.quality
        self.info["dcf_model_id"] = header.model_id
        self.tile = []

    def load(self):
        if self._im is None:
            from diffcodec.api import decompress  # torch is imported on the first decode only

            try:
                decoded = decompress(self._dcf_data, max_pixels=_pixel_limit())
            except bitstream.FormatError as exc:
                raise OSError(f"diffcodec: {exc}") from None
            self.im = decoded.im
            self._dcf_data = b""
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:  # noqa: ARG001
    from diffcodec.api import DEFAULT_QUALITY, compress

    options = im.encoderinfo
    target = options.get("target_bpp")
    quality = options.get("quality", DEFAULT_QUALITY if target is None else None)
    data = compress(im, DEFAULT_QUALITY if quality is None else quality, target_bpp=target,
                    refine=options.get("refine", 0))
    fp.write(data)  # written once the whole file exists: Pillow removes the file if compress fails


def register_pillow() -> None:
    """Teach Pillow the ``.dcf`` format (idempotent)."""
    Image.register_open(FORMAT, DcfImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".dcf")
    Image.register_mime(FORMAT, MIME)
