"""Optional FID/KID pass over a finished run (``--fid``); refused for small image sets."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.cache import ResultCache
from benchmarks.codecs import Codec
from benchmarks.codecs.base import format_setting
from benchmarks.dataset import ImageEntry
from benchmarks.metrics import fid


def compute(images: Sequence[ImageEntry], codecs: dict[str, Codec], spec, outcome,
            progress: bool = True, patch: int = fid.PATCH, max_bpp: float | None = None,
            only: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """{codec: {setting label: {"fid": ..., "kid": ...}}}; raises ``fid.FIDRefused``.

    ``max_bpp`` skips settings whose mean bpp over the images is above it (FID costs an
    InceptionV3 pass over every patch of every decoded image); ``only`` limits the codecs.
    """
    from tqdm import tqdm

    n = fid.count_patches(((im.height, im.width) for im in images), patch)
    fid.check_allowed(n, len(images), patch)
    inception = fid.InceptionFeatures()
    cache = ResultCache(Path(spec.cache_root) if spec.cache_root else None)
    ref = np.concatenate([inception(fid.extract_patches(im.load(), patch)) for im in images])
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
                data = cache.get_bitstream(im.sha256, name, label, e["codec_version"])
                rgb = im.load()
                if data is None:
                    data = codec.encode(rgb, s)
                feats.append(inception(fid.extract_patches(np.asarray(codec.decode(data)), patch)))
            else:
                f = np.concatenate(feats)
                out.setdefault(name, {})[label] = {"fid": fid.fid_from_features(ref, f),
                                                   "kid": fid.kid_from_features(ref, f)}
    return out
