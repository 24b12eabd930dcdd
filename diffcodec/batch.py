"""One file's compress or decompress job, as a value that a worker process (a multiprocessing pool
or a Dask worker) can receive, and the mapping of the library's expected errors onto one line.

Used by the CLI's batches (:mod:`diffcodec.cli`, ``--workers``) and by :mod:`diffcodec.distributed`.
The codec is loaded once per process (:func:`diffcodec.api.get_codec` caches it).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class UserError(Exception):
    """Expected failure of one input: reported as one line, never a traceback."""


def as_user_error(exc: BaseException) -> UserError | None:
    """The library's expected exceptions as a :class:`UserError` with a one-line message."""
    from bitstream import FormatError
    from diffcodec.api import OutputExistsError
    from diffcodec.image_io import ImageInputError
    from diffcodec.zoo.weight_files import WeightError

    if isinstance(exc, WeightError):
        return None
    if isinstance(exc, (FormatError, ImageInputError, OutputExistsError, ValueError)):
        return UserError(str(exc))
    if isinstance(exc, PermissionError):
        return UserError(f"permission denied: {exc.filename}")
    if isinstance(exc, OSError):  # name the path that failed (the output's temporary file, e.g. on a full disk)
        where = f"{exc.filename}: " if exc.filename else ""
        return UserError(f"{where}{exc.strerror or exc}")
    return None


def _timed(fn: Callable, *args, **kwargs):
    """(``fn``'s result, seconds); the library's expected errors come out as :class:`UserError`."""
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs), time.perf_counter() - t0
    except Exception as exc:
        raise as_user_error(exc) or exc from None


def _notes(notices: list[str]) -> str:
    return "".join(f" ({n})" for n in notices)


@dataclass(frozen=True)
class CompressJob:
    """Compress one file (a value, so that batch worker processes can receive it)."""

    quality: float
    target_bpp: float | None
    max_pixels: int
    force: bool
    device: str
    refine: int = 0

    def __call__(self, src: Path, dst: Path) -> str:
        from diffcodec.api import compress_file

        res, dt = _timed(compress_file, src, dst, self.quality, target_bpp=self.target_bpp, force=self.force,
                         device=self.device, max_pixels=self.max_pixels, refine=self.refine)
        return (f"{src} -> {dst}: {len(res.data)} bytes, {res.bpp:.4f} bpp, quality {res.quality:g}, {dt:.2f} s"
                f"{_notes(res.notices)}")


@dataclass(frozen=True)
class DecompressJob:
    """Decompress one file (a value, so that batch worker processes can receive it)."""

    max_pixels: int
    steps: int | None
    guidance: float
    eta: float
    seed: int
    force: bool
    device: str
    realism: bool = False
    strength: float | None = None

    def __call__(self, src: Path, dst: Path) -> str:
        from diffcodec.api import decompress_file

        image, dt = _timed(decompress_file, src, dst, force=self.force, device=self.device, max_pixels=self.max_pixels,
                           steps=self.steps, guidance=self.guidance, eta=self.eta, seed=self.seed,
                           realism=self.realism, strength=self.strength)
        return f"{src} -> {dst}: {image.width}x{image.height} {image.mode}, {dt:.2f} s{_notes(image.info.get('notices', []))}"


def attempt(task: tuple[Callable[[Path, Path], str], Path, Path]) -> tuple[Path, Path, bool, str]:
    """(src, dst, True, report line) or (src, dst, False, one-line error); anything else (a model
    that cannot be loaded, a bug) propagates."""
    work, src, dst = task
    try:
        return src, dst, True, work(src, dst)
    except UserError as exc:
        return src, dst, False, str(exc)
