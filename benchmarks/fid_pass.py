"""Optional FID/KID pass over a finished run (``--fid``); refused for small image sets."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from benchmarks.cache import ResultCache
from benchmarks.codecs import Codec
from benchmarks.codecs.base import format_setting
from benchmarks.dataset import ImageEntry
from benchmarks.metrics import fid


class LazyInception:
    """InceptionV3 loaded on first use, so a pass whose features are all cached never loads it."""

    def __init__(self) -> None:
        self._net: fid.InceptionFeatures | None = None

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        if self._net is None:
            self._net = fid.InceptionFeatures()
        return self._net(patches)


def check_images(images: Sequence[ImageEntry], patch: int) -> None:
    """Raise ``fid.FIDRefused`` when the images give too few patches for a meaningful FID."""
    fid.check_allowed(fid.count_patches(((im.height, im.width) for im in images), patch), len(images), patch)


def cached_features(cache: ResultCache, inception: Callable[[np.ndarray], np.ndarray], image_sha256: str,
                    codec_name: str, label: str, version: str, patch: int,
                    pixels: Callable[[], np.ndarray]) -> np.ndarray:
    """Patch features of one decoded image: from the cache, else computed from ``pixels()`` and kept."""
    tag = fid.feature_tag(patch)
    f = cache.get_array(image_sha256, codec_name, label, version, tag)
    if f is None:
        f = inception(fid.extract_patches(pixels(), patch))
        cache.put_array(image_sha256, codec_name, label, version, tag, f)
    return f


def compute(images: Sequence[ImageEntry], codecs: dict[str, Codec], spec, outcome,
            progress: bool = True, patch: int = fid.PATCH, max_bpp: float | None = None,
            only: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """{codec: {setting label: {"fid": ..., "kid": ...}}}; raises ``fid.FIDRefused``.

    ``max_bpp`` skips settings whose mean bpp over the images is above it (FID costs an
    InceptionV3 pass over every patch of every decoded image); ``only`` limits the codecs.
    """
    from tqdm import tqdm

    check_images(images, patch)
    inception = LazyInception()
    cache = ResultCache(Path(spec.cache_root) if spec.cache_root else None)

    def features(im: ImageEntry, codec_name: str, label: str, version: str, decode) -> np.ndarray:
        return cached_features(cache, inception, im.sha256, codec_name, label, version, patch, decode)

    ref = np.concatenate([features(im, "original", "ref", "1", lambda im=im: im.load()) for im in images])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, codec in codecs.items():
        if only is not None and name not in only:
            continue
        for s in spec.settings[name]:
            label = format_setting(s)
            entries = [outcome.entries.get((name, label, im.name)) for im in images]
            if max_bpp is not None and all(entries) and np.mean([e["bpp"] for e in entries]) > max_bpp:
                continue
            feats = []
            for im in tqdm(images, desc=f"FID {name} {label}", disable=not progress):
                e = outcome.entries.get((name, label, im.name))
                if e is None:
                    break

                def decode(im=im, e=e) -> np.ndarray:
                    data = cache.get_bitstream(im.sha256, name, label, e["codec_version"])
                    if data is None:
                        data = codec.encode(im.load(), s)
                    return np.asarray(codec.decode(data))

                feats.append(features(im, name, label, e["codec_version"], decode))
            else:
                f = np.concatenate(feats)
                out.setdefault(name, {})[label] = {"fid": fid.fid_from_features(ref, f),
                                                   "kid": fid.kid_from_features(ref, f)}
    return out
