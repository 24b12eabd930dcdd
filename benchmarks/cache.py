"""On-disk result cache keyed by (image content hash, codec, setting, codec adapter version).

Each entry is a JSON file (sizes, timings, memory, metric values with their own metric
versions) plus the bitstream, so new metrics can be added later by decoding again instead
of re-encoding; arrays derived from a decoded image (the FID pass's patch features) are
kept beside it under a tag that names how they were computed. Writes are atomic, so parallel
workers and interrupted runs are safe.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from diffcodec.image_io import atomic_write

DEFAULT_CACHE_DIR = Path("benchmarks/.cache")


class ResultCache:
    """Directory of cache entries; ``None`` root disables caching (nothing read or written)."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None

    def _stem(self, image_sha: str, codec: str, setting: str, codec_version: str) -> Path:
        assert self.root is not None
        return self.root / codec / f"{image_sha[:24]}_{setting}_{codec_version}"

    def get(self, image_sha: str, codec: str, setting: str, codec_version: str) -> dict | None:
        """The cached entry, or None."""
        if self.root is None:
            return None
        path = self._stem(image_sha, codec, setting, codec_version).with_suffix(".json")
        try:
            with open(path) as f:
                entry = json.load(f)
        except (OSError, ValueError):
            return None
        if entry.get("image_sha256") != image_sha or entry.get("codec_version") != codec_version:
            return None
        return entry

    def get_bitstream(self, image_sha: str, codec: str, setting: str,
                      codec_version: str) -> bytes | None:
        if self.root is None:
            return None
        path = self._stem(image_sha, codec, setting, codec_version).with_suffix(".bin")
        try:
            return path.read_bytes()
        except OSError:
            return None

    def put(self, entry: dict[str, Any], bitstream: bytes | None = None) -> None:
        """Store an entry (and optionally its bitstream) atomically."""
        if self.root is None:
            return
        stem = self._stem(entry["image_sha256"], entry["codec"], entry["setting"],
                          entry["codec_version"])
        stem.parent.mkdir(parents=True, exist_ok=True)
        if bitstream is not None:
            atomic_write(stem.with_suffix(".bin"), bitstream)
        atomic_write(stem.with_suffix(".json"), json.dumps(entry, indent=1).encode())

    def _array_path(self, image_sha: str, codec: str, setting: str, codec_version: str, tag: str) -> Path:
        stem = self._stem(image_sha, codec, setting, codec_version)
        return stem.with_name(f"{stem.name}.{tag}.npy")

    def get_array(self, image_sha: str, codec: str, setting: str, codec_version: str,
                  tag: str) -> np.ndarray | None:
        """A cached array (``tag`` names what it is, e.g. the feature network and patch size), or None."""
        if self.root is None:
            return None
        try:
            return np.load(self._array_path(image_sha, codec, setting, codec_version, tag), allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put_array(self, image_sha: str, codec: str, setting: str, codec_version: str, tag: str,
                  array: np.ndarray) -> None:
        if self.root is None:
            return
        path = self._array_path(image_sha, codec, setting, codec_version, tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        atomic_write(path, buf.getvalue())
