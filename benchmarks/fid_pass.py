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
            progress: bool = True) -> dict[str, dict[str, dict[str, float]]]:
    """{codec: {setting label: {"fid": ..., "kid": ...}}}; raises ``fid.FIDRefused``."""
    from tqdm import tqdm

    n = fid.count_patches((im.height, im.width) for im in images)
    fid.check_allowed(n, len(images))
    inception = fid.InceptionFeatures()
    cache = ResultCache(Path(spec.cache_root) if spec.cache_root else None)
    ref = np.concatenate([inception(fid.extract_patches(im.load())) for im in images])
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, codec in codecs.items():
        for s in spec.settings[name]:
            label = format_setting(s)
            feats = []
            for im in tqdm(images, desc=f"FID {name} {label}", disable=not progress):
                e = outcome.entries.get((name, label, im.name))
                if e is None:
                    break
                data = cache.get_bitstream(im.sha256, name, label, e["codec_version"])
                rgb = im.load()
                if data is None:
                    data = codec.encode(rgb, s)
                feats.append(inception(fid.extract_patches(np.asarray(codec.decode(data)))))
            else:
                f = np.concatenate(feats)
                out.setdefault(name, {})[label] = {"fid": fid.fid_from_features(ref, f),
                                                   "kid": fid.kid_from_features(ref, f)}
    return out
