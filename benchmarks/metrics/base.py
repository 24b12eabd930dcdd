"""Metric interface: a reference is prepared once, then compared with many reconstructions."""
from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from diffcodec.image_io import to_tensor  # noqa: F401  (the one image->tensor)


class Metric(ABC):
    """Full-reference image metric on uint8 (H, W, 3) RGB arrays."""

    #: key in the results JSON (CompressAI naming where one exists)
    name: str = ""
    label: str = ""
    higher_is_better: bool = True

    def prepare(self, ref: np.ndarray) -> Any:
        """Per-reference state (features etc.), computed once per source image."""
        return ref

    @abstractmethod
    def compare(self, ref_state: Any, rec: np.ndarray) -> float:
        """Metric value of a reconstruction against a prepared reference."""

    def __call__(self, ref: np.ndarray, rec: np.ndarray) -> float:
        return self.compare(self.prepare(ref), rec)

    def weight_digests(self) -> list[str]:
        """SHA-256 of weight files used (enter the version)."""
        return []

    def versioned_objects(self) -> list[Any]:
        """Classes/functions whose source code defines the values (hashed into the version)."""
        return [type(self), to_tensor]

    def version_extra(self) -> str:
        """Other value-relevant facts (constants, library versions)."""
        return ""

    def version(self) -> str:
        """Implementation version for the result cache: hash of the code computing the value,
        of the weights' checksums and of :meth:`version_extra`."""
        h = hashlib.sha256()
        for obj in self.versioned_objects():
            h.update(inspect.getsource(obj).encode())
        for d in self.weight_digests():
            h.update(d.encode())
        h.update(self.version_extra().encode())
        return h.hexdigest()[:16]
