"""Python API: ``compress(image) -> bytes`` and ``decompress(bytes) -> PIL.Image``, plus file variants.

This is the code path of the CLI and the benchmarks; a .dcf file is exactly the bytes
returned by :func:`compress`.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import bitstream
from bitstream import DEFAULT_MAX_PIXELS, Header, ModelMismatchError
from diffcodec.coding.codec import Codec
from diffcodec.coding.refine import check_refinable
from diffcodec.image_io import (
    ImageInputError,
    SourceImage,
    atomic_write,
    decode_alpha,
    encode_alpha,
    open_image,
    output_format,
    prepare,
    save_image,
    to_pil,
    to_tensor,
)
from diffcodec.models.precision import has_native_bf16
from diffcodec.realism.decode import decode_realism
from diffcodec.realism.schedule import MAX_STEPS, SamplerSettings
from diffcodec.zoo.registry import (
    DEFAULT_MODEL_ID,
    DENOISERS,
    MODELS,
    RETIRED,
    load_model,
    model_label,
    realism_decoder_for,
)
from diffcodec.zoo.weight_files import RealismDecoder

DEFAULT_QUALITY = 75.0


class OutputExistsError(FileExistsError):
    """Refused to overwrite an existing output without ``force`` (or an output that is the input)."""


class OutputLocationError(ValueError):
    """The output's folder is missing or not writable: found before any coding work."""


def _check_quality(quality: object) -> float:
    """``quality`` as a float in 0..100, or a one-line ValueError."""
    try:
        q = float(quality)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"quality must be a number from 0 to 100, got {quality!r}") from None
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"quality must be from 0 to 100, got {q:g}")
    return q


@lru_cache(maxsize=4)
def _on(denoiser: torch.nn.Module, device: str) -> torch.nn.Module:
    """The denoiser on ``device`` in channels-last layout (one copy per device per process)."""
    return copy.deepcopy(denoiser).to(device, memory_format=torch.channels_last)


@lru_cache(maxsize=4)
def get_codec(model_id: int = DEFAULT_MODEL_ID, device: str = "cpu") -> Codec:
    """One :class:`Codec` per (model, device) per process."""
    return Codec(load_model(model_id), device)


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device '{device}' (use cpu, cuda or auto)")
    return device


def _as_source(image: Image.Image | np.ndarray | str | Path) -> SourceImage:
    if isinstance(image, SourceImage):
        return image
    if isinstance(image, (str, Path)):
        return open_image(Path(image))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageInputError(f"numpy images must be uint8, got {image.dtype}")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise ImageInputError(f"cannot compress an object of type {type(image).__name__}")
    return prepare(image)


@dataclass
class CompressResult:
    """The .dcf bytes with what the caller may want to report."""

    data: bytes
    quality: float
    pixels: int
    notices: list[str]

    @property
    def bpp(self) -> float:
        return len(self.data) * 8 / self.pixels


def _container(source: SourceImage, codec: Codec, stream: bytes, quality: float, alpha: bytes | None) -> bytes:
    h, w = source.rgb.shape[:2]
    header = Header(
        model_id=codec.model.model_id, fingerprint=codec.model.fingerprint, width=w, height=h,
        channels=source.channels, bit_depth=source.bit_depth, quality=quality,
    )
    return bitstream.pack(header, stream, alpha)


def compress_detailed(
    image: Image.Image | np.ndarray | str | Path,
    quality: float = DEFAULT_QUALITY,
    *,
    target_bpp: float | None = None,
    device: str = "cpu",
    codec: Codec | None = None,
    refine: int = 0,
) -> CompressResult:
    """Compress an image; with ``target_bpp`` the highest quality whose file fits that budget.

    ``refine`` > 0 spends that many gradient steps per image refining the latent for the chosen
    quality (encoder only, :mod:`diffcodec.coding.refine`): fewer bits for the same quality at
    about 1.7 s per step for 768x512 on 2 CPU threads (benchmarks/results/refine). With
    ``target_bpp`` the quality is chosen without it and the refined file replaces the plain one
    where it fits the budget.
    """
    if target_bpp is None:
        _check_quality(quality)  # before the analysis, not after it
    if not isinstance(refine, int) or isinstance(refine, bool) or refine < 0:
        raise ValueError(f"refine must be a non-negative integer, got {refine!r}")
    source = _as_source(image)
    codec = codec or get_codec(DEFAULT_MODEL_ID, _resolve_device(device))
    h, w = source.rgb.shape[:2]
    if refine:
        check_refinable(h, w)  # before the analysis, not after it
    x = to_tensor(source.rgb)
    analysis = codec.analyse(x)
    alpha = encode_alpha(source.alpha) if source.alpha is not None else None
    notices = list(source.notices)

    def make(q: float) -> bytes:
        return _container(source, codec, codec.code(analysis, q), q, alpha)

    if target_bpp is None:
        q = round(_check_quality(quality), 2)
        data = make(q)
    else:
        if not isinstance(target_bpp, (int, float)) or not target_bpp > 0 or not math.isfinite(target_bpp):
            raise ValueError(f"target bpp must be a positive number, got {target_bpp!r}")
        budget_bits = target_bpp * w * h
        lo, hi = 0.0, 100.0
        best = make(lo)
        q = lo
        if len(best) * 8 > budget_bits:
            notices.append(f"target {target_bpp} bpp is below the lowest rate; used quality 0")
        else:
            top = make(hi)
            if len(top) * 8 <= budget_bits:
                best, q = top, hi
            else:
                for _ in range(12):  # bisection to 0.025 quality
                    mid = round((lo + hi) / 2, 2)
                    data = make(mid)
                    if len(data) * 8 <= budget_bits:
                        lo, best, q = mid, data, mid
                    else:
                        hi = mid
                    if hi - lo < 0.05:
                        break
        data = best
    if refine:
        refined = _container(source, codec, codec.code(codec.refine(analysis, x, q, refine), q), q, alpha)
        if target_bpp is None or len(refined) * 8 <= target_bpp * w * h:
            data = refined
        else:
            notices.append(f"the refined file exceeded target {target_bpp} bpp; kept the unrefined one")
    return CompressResult(data=data, quality=q, pixels=w * h, notices=notices)


def compress(
    image: Image.Image | np.ndarray | str | Path,
    quality: float = DEFAULT_QUALITY,
    *,
    target_bpp: float | None = None,
    device: str = "cpu",
    refine: int = 0,
) -> bytes:
    """Compress an image (PIL image, uint8 array or path) to .dcf bytes (``refine``: as in
    :func:`compress_detailed`)."""
    return compress_detailed(image, quality, target_bpp=target_bpp, device=device, refine=refine).data


def read_header(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> bitstream.Container:
    """Parse and validate .dcf bytes, including that this diffcodec has the model that made them."""
    container = bitstream.parse(data, max_pixels=max_pixels)
    header = container.header
    entry = MODELS.get(header.model_id)
    if header.model_id in RETIRED:
        raise ModelMismatchError(f"file was made by model id {header.model_id}, {model_label(header.model_id)}, "
                                 "whose weights this diffcodec no longer ships")
    if entry is None:
        raise ModelMismatchError(f"file was made by unknown model id {header.model_id}; this diffcodec has {sorted(MODELS)}")
    if bytes.fromhex(entry.sha256[:8]) != header.fingerprint:
        raise ModelMismatchError(
            f"file was made with other weights for model '{entry.name}' (fingerprint {header.fingerprint.hex()}, "
            f"installed {entry.sha256[:8]})"
        )
    return container


def decompress(
    data: bytes,
    *,
    device: str = "cpu",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    dtype: torch.dtype = torch.float32,
    steps: int | None = None,
    guidance: float = 1.0,
    eta: float = 0.0,
    seed: int = 0,
    realism_decoder: RealismDecoder | None = None,
    realism: bool = False,
    strength: float | None = None,
) -> Image.Image:
    """Decode .dcf bytes to a PIL image of the source's kind (L, LA, RGB or RGBA).

    The fidelity (MSE) decoder runs unless realism is asked for: ``realism=True`` (the realism
    decoder's default steps and strength), a ``strength`` in (0, 1] (how far the fidelity
    image is noised before sampling: more invented detail, less fidelity) or ``steps`` 1-64.
    ``steps=0`` or ``strength=0`` is the fidelity decoder bit for bit. With none of them the
    file's recommendation is followed where this installation can. ``guidance``, ``eta`` and
    ``seed`` as in :class:`diffcodec.realism.schedule.SamplerSettings`; ``realism_decoder`` replaces the
    registered one (to evaluate a training run).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        what = "a path" if isinstance(data, (str, Path)) else f"a {type(data).__name__}"
        raise bitstream.ForeignFileError(f"decompress takes the bytes of a .dcf file, not {what} "
                                         "(decompress_file reads a path)")
    if strength is not None and not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0..1, got {strength}")
    if steps is not None and not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be within 0..{MAX_STEPS}, got {steps}")
    container = read_header(bytes(data), max_pixels)
    header = container.header
    if header.decode_hint > MAX_STEPS:
        raise bitstream.CorruptError(f"corrupt header: decoder hint {header.decode_hint} out of range")
    if steps is None and strength is None and not realism:  # the file's recommendation, where it can be followed
        steps = header.decode_hint if header.model_id in DENOISERS or realism_decoder else 0
    wants_realism = steps != 0 and strength != 0.0
    settings = SamplerSettings(steps=0)
    device = _resolve_device(device)
    if wants_realism:
        if realism_decoder is None:
            realism_decoder = realism_decoder_for(header.model_id)  # fail before heavy work
        settings = SamplerSettings(steps=realism_decoder.steps if steps is None else steps, eta=eta,
                                   guidance=guidance, seed=seed,
                                   strength=realism_decoder.strength if strength is None else strength)
    codec = get_codec(header.model_id, device)
    y_hat = codec.decode_latent(container.latent, header.height, header.width, header.quality,
                                header.stream_terminated)
    alpha = decode_alpha(container.alpha, header.width, header.height) if container.alpha is not None else None
    x = codec.synthesize(y_hat, header.quality, header.height, header.width, dtype=dtype)
    if not settings.is_fidelity:
        lam = codec.rate_lambda(header.quality)
        net = _on(realism_decoder.net, device)
        latent = codec.synthesis_input(y_hat, header.quality) if net.config.latent_channels else None
        x = decode_realism(x, realism_decoder.level(lam), net, settings, dtype=realism_dtype(device), latent=latent)
    rgb = (x[0].permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return to_pil(rgb, alpha, header.channels)


def realism_dtype(device: str) -> torch.dtype:
    """What the realism decoder computes in: bf16 on a CPU with bf16 units (about twice as fast
    as fp32 there), fp32 elsewhere; a CPU without them emulates bf16, several times slower than fp32
    (benchmarks/results/realism/cc10-vs-cc9/fp32-decode). Realism pixels may therefore differ slightly between
    machines; the bitstream and the fidelity image never do."""
    return torch.bfloat16 if device == "cpu" and has_native_bf16(torch.device(device)) else torch.float32


def _check_output(path: Path, force: bool, source: Path) -> None:
    """Refuse an output that cannot or must not be written, before any coding work."""
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory")
    exists = path.exists() or path.is_symlink()  # a dangling link is an existing output too
    if path.exists() and source.exists() and os.path.samefile(source, path):
        raise OutputExistsError(f"{path} is the input file itself; choose another output")
    if exists and not force:
        raise OutputExistsError(f"{path} exists (use --force to overwrite)")
    folder = Path(os.path.realpath(path)).parent if path.is_symlink() else (path.parent if str(path.parent) else Path("."))
    if not folder.is_dir():
        raise OutputLocationError(f"{folder}: output folder does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputLocationError(f"{folder}: output folder is not writable")


def compress_file(
    src: str | Path, dst: str | Path, quality: float = DEFAULT_QUALITY, *, target_bpp: float | None = None,
    force: bool = False, device: str = "cpu", max_pixels: int = DEFAULT_MAX_PIXELS, refine: int = 0,
) -> CompressResult:
    """Compress an image file to a .dcf file (atomic write; no overwrite without ``force``)."""
    dst = Path(dst)
    _check_output(dst, force, Path(src))
    result = compress_detailed(open_image(Path(src), max_pixels), quality, target_bpp=target_bpp, device=device,
                               refine=refine)
    atomic_write(dst, result.data)
    return result


def decompress_file(
    src: str | Path, dst: str | Path, *, force: bool = False, device: str = "cpu", max_pixels: int = DEFAULT_MAX_PIXELS,
    steps: int | None = None, guidance: float = 1.0, eta: float = 0.0, seed: int = 0,
    realism: bool = False, strength: float | None = None,
) -> Image.Image:
    """Decode a .dcf file to an image file whose format its extension names (decoder
    settings as in :func:`decompress`).

    Returns the image as written: without alpha where the format cannot store it, with
    ``image.info["notices"]`` saying so.
    """
    dst = Path(dst)
    _check_output(dst, force, Path(src))
    output_format(dst)  # reject an unknown extension before decoding
    try:
        data = Path(src).read_bytes()
    except FileNotFoundError:
        raise ImageInputError(f"{src}: no such file") from None
    except IsADirectoryError:
        raise ImageInputError(f"{src}: is a directory") from None
    image = decompress(data, device=device, max_pixels=max_pixels, steps=steps, guidance=guidance, eta=eta, seed=seed,
                       realism=realism, strength=strength)
    written, notices = save_image(image, dst)
    written.info["notices"] = notices
    return written
