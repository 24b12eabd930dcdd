"""Registry of codec adapters by command-line name."""
from __future__ import annotations

from typing import Callable

from benchmarks.codecs.base import Codec, CodecUnavailable


def _factories() -> dict[str, Callable[[], Codec]]:
    from benchmarks.codecs.diffcodec_adapter import DiffCodec
    from benchmarks.codecs.hevc import HEVCIntra
    from benchmarks.codecs.jxl import JPEGXL
    from benchmarks.codecs.pillow_codecs import PillowAVIF, PillowJPEG, PillowWebP

    return {
        "jpeg420": lambda: PillowJPEG(2),
        "jpeg444": lambda: PillowJPEG(0),
        "hevc": HEVCIntra,
        "webp": PillowWebP,
        "avif": PillowAVIF,
        "jxl": JPEGXL,
        "diffcodec": DiffCodec,
        "diffcodec-realism": lambda: DiffCodec("realism"),
    }


#: aliases accepted by --codecs
ALIASES = {"jpeg": ["jpeg420", "jpeg444"], "bpg": ["hevc"], "x265": ["hevc"],
           "jpegxl": ["jxl"], "classical": ["jpeg420", "jpeg444", "hevc", "webp", "avif", "jxl"],
           "all": ["jpeg420", "jpeg444", "hevc", "webp", "avif", "jxl", "diffcodec",
                   "diffcodec-realism"]}
DEFAULT_CODECS = ["jpeg420", "jpeg444", "hevc", "webp", "avif", "jxl", "diffcodec",
                  "diffcodec-realism"]


def codec_names() -> list[str]:
    """All registered codec names."""
    return list(_factories())


def _known(name: str, known: dict[str, Callable[[], Codec]]) -> bool:
    from benchmarks.codecs.diffcodec_adapter import REFINE_NAME, STRENGTH_NAME

    return name in known or any(p.fullmatch(name) is not None for p in (STRENGTH_NAME, REFINE_NAME))


def expand_names(spec: str | list[str] | None) -> list[str]:
    """Turn 'jpeg,hevc' (aliases allowed) into a de-duplicated list of codec names."""
    if spec is None:
        return list(DEFAULT_CODECS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    known = _factories()
    out: list[str] = []
    for item in (s.strip() for s in items):
        if not item:
            continue
        for name in ALIASES.get(item, [item]):
            if not _known(name, known):
                raise ValueError(f"unknown codec {name!r}; known: {', '.join(known)}, "
                                 f"diffcodec-realism-s<strength>, diffcodec-refine<steps> "
                                 f"(aliases: {', '.join(ALIASES)})")
            if name not in out:
                out.append(name)
    return out


def get_codec(name: str) -> Codec:
    """Instantiate a codec adapter by name (``diffcodec-realism-s0.5``: the realism decoder at
    strength 0.5; ``diffcodec-refine20``: encoder-side refinement in 20 steps)."""
    from benchmarks.codecs.diffcodec_adapter import REFINE_NAME, STRENGTH_NAME, DiffCodec

    match = STRENGTH_NAME.fullmatch(name)
    if match:
        return DiffCodec("realism", strength=float(match.group(1)))
    match = REFINE_NAME.fullmatch(name)
    if match:
        return DiffCodec(refine=int(match.group(1)))
    return _factories()[name]()


__all__ = ["Codec", "CodecUnavailable", "codec_names", "expand_names", "get_codec",
           "DEFAULT_CODECS"]
