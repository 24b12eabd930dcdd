"""Reading any image a user has into the codec's RGB(+alpha) form, and writing results.

The codec itself codes 8-bit RGB. Other sources are mapped onto it and the file remembers
what the source was, so decoding gives back the same kind of image: greyscale stays
greyscale, alpha is kept (coded losslessly beside the latent), 16-bit is reduced to 8 bits
with a notice, palette images are expanded, EXIF orientation is applied.
"""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from bitstream import CorruptError



#: the image files diffcodec reads (the one list: CLI batches, training data, Dask, the benchmark)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm",
                            ".gif", ".avif"})


class ImageInputError(ValueError):
    """The input cannot be read as an image; message is one line for the user."""


@dataclass
class SourceImage:
    """An image prepared for coding."""

    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None  # (H, W) uint8 or None
    channels: int  # 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
    bit_depth: int  # 8 or 16 (of the source)
    notices: list[str] = field(default_factory=list)


_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


def _raw_modes(image: Image.Image) -> list[str]:
    """The raw modes of a not yet loaded image's tiles (Pillow stores a string or a tuple)."""
    modes = []
    for tile in getattr(image, "tile", None) or []:
        args = getattr(tile, "args", None)
        if isinstance(args, str):
            modes.append(args)
        elif isinstance(args, tuple):
            modes += [a for a in args if isinstance(a, str)]
    return modes


def is_sixteen_bit_colour(image: Image.Image) -> bool:
    """Whether Pillow reads this RGB(A) image from 16 bits per channel (it hands out 8).

    A 48- or 64-bit PNG or TIFF opens as mode RGB/RGBA with a raw mode such as ``RGB;16B``:
    only the raw mode tells, and only before :meth:`PIL.Image.Image.load`.
    """
    return image.mode in ("RGB", "RGBA") and any(";16" in m for m in _raw_modes(image))


def prepare(image: Image.Image, max_pixels: int | None = None) -> SourceImage:
    """Normalise a PIL image (any mode, orientation) to :class:`SourceImage`."""
    notices: list[str] = []
    w, h = image.size
    if w < 1 or h < 1:
        raise ImageInputError("image has no pixels")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageInputError(f"image of {w}x{h} pixels exceeds the limit of {max_pixels} pixels")
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not stop compression
        notices.append("EXIF orientation could not be read; image used as stored")
    mode = image.mode
    bit_depth = 8
    if mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(image).astype(np.float64)
        if mode == "F":
            arr = np.clip(arr, 0.0, 1.0) * 255.0 if arr.max(initial=0) <= 1.0 else np.clip(arr, 0, 65535) / 257.0
        else:
            arr = np.clip(arr, 0, 65535) / 257.0
        bit_depth = 16
        notices.append(f"{mode} image reduced to 8 bits per channel")
        grey = np.round(arr).astype(np.uint8)
        return SourceImage(np.repeat(grey[..., None], 3, axis=2), None, 1, bit_depth, notices)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode == "La":
        image = image.convert("LA")
    elif mode == "RGBa":
        image = image.convert("RGBA")
    if image.mode == "L":
        grey = np.asarray(image)
        return SourceImage(np.repeat(grey[..., None], 3, axis=2), None, 1, bit_depth, notices)
    if image.mode == "LA":
        arr = np.asarray(image)
        return SourceImage(np.repeat(arr[..., :1], 3, axis=2), arr[..., 1].copy(), 2, bit_depth, notices)
    if image.mode == "RGBA":
        arr = np.asarray(image)
        return SourceImage(arr[..., :3].copy(), arr[..., 3].copy(), 4, bit_depth, notices)
    if image.mode != "RGB":
        notices.append(f"{image.mode} image converted to RGB")
        image = image.convert("RGB")
    return SourceImage(np.asarray(image).copy(), None, 3, bit_depth, notices)


def open_image(path: Path | BinaryIO, max_pixels: int | None = None, name: str | None = None) -> SourceImage:
    """Read an image file (a path or an open binary file, e.g. an upload, named ``name`` in
    messages); unreadable or non-image files raise :class:`ImageInputError`."""
    label = name or path
    try:
        with Image.open(path) as im:
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageInputError(f"{label}: image of {w}x{h} pixels exceeds the limit of {max_pixels} pixels")
            sixteen_bit_rgb = is_sixteen_bit_colour(im)
            im.load()
            source = prepare(im, max_pixels)
            if sixteen_bit_rgb:
                source.bit_depth = 16
                source.notices.append("16-bit image reduced to 8 bits per channel")
            return source
    except ImageInputError:
        raise
    except FileNotFoundError:
        raise ImageInputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ImageInputError(f"{label}: is a directory") from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{label}: not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:  # Pillow's own guard, left as Pillow sets it
        raise ImageInputError(f"{label}: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageInputError(f"{label}: damaged or unsupported image ({exc})") from None


def to_tensor(rgb: np.ndarray):
    """uint8 (H, W, 3) -> float32 torch tensor (1, 3, H, W) in [0, 1] (torch imported here only)."""
    import torch

    return torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None].div_(255.0)


def encode_alpha(alpha: np.ndarray) -> bytes:
    """Lossless alpha plane as a PNG (Pillow's zlib + filters beat plain zlib on masks)."""
    buf = io.BytesIO()
    Image.fromarray(alpha, mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def decode_alpha(data: bytes, width: int, height: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG" or im.mode != "L" or im.size != (width, height):
                raise ValueError("unexpected alpha plane")
            return np.asarray(im).copy()
    except Exception as exc:
        raise CorruptError(f"alpha stream is corrupt ({exc})") from None


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None, channels: int) -> Image.Image:
    """Decoded RGB (+alpha) back to the source's kind of image."""
    if channels in (1, 2):
        grey = np.round(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
        if channels == 2 and alpha is not None:
            return Image.fromarray(np.stack([grey, alpha], axis=2), mode="LA")
        return Image.fromarray(grey, mode="L")
    if channels == 4 and alpha is not None:
        return Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA")
    return Image.fromarray(rgb, mode="RGB")


def _current_umask() -> int:
    """The process umask (reading it means setting it, so it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: bytes | None = None, image: Image.Image | None = None, fmt: str | None = None,
                 write: Callable[[BinaryIO], None] | None = None) -> None:
    """Write bytes, an image or what ``write(file)`` writes (a checkpoint) to ``path`` via a
    temporary file in the same folder and a rename.

    An interruption leaves either the old file or the complete new one, never a partial file.
    Replacing a file keeps its permission bits (a private 0600 file stays private); a symbolic
    link is followed, so its target is replaced and the link stays a link. A new file gets the
    permissions a plain open() gives (umask).
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_current_umask()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    try:
        # mkstemp makes the file private (0600): give it the replaced file's or open()'s permissions
        os.chmod(tmp_name, mode)
        with os.fdopen(fd, "wb") as fh:
            if data is not None:
                fh.write(data)
            elif write is not None:
                write(fh)
            else:
                assert image is not None
                image.save(fh, format=fmt)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                  ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM"}


def output_format(path: Path) -> str:
    """Pillow format name for an output path's extension (PNG when unknown suffix is absent)."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "PNG"
    if suffix not in OUTPUT_FORMATS:
        raise ImageInputError(f"unsupported output format '{suffix}' (use one of {', '.join(sorted(OUTPUT_FORMATS))})")
    return OUTPUT_FORMATS[suffix]


def save_image(image: Image.Image, path: Path) -> tuple[Image.Image, list[str]]:
    """Save atomically in the format its extension names; returns (the image as written, notices).

    JPEG, BMP and PPM cannot store alpha: it is dropped, and a notice says so.
    """
    fmt = output_format(path)
    notices = []
    if fmt in ("JPEG", "PPM", "BMP") and image.mode in ("RGBA", "LA"):
        notices.append(f"alpha dropped: {fmt} cannot store it")
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    atomic_write(path, image=image, fmt=fmt)
    return image, notices
