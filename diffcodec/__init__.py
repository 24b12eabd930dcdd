"""diffcodec: a learned lossy image codec (variable-rate hyperprior, .dcf files).

The API is imported on first use (PEP 562), so ``import diffcodec.zoo.registry`` or the CLI's
``info`` reads headers without loading torch. Importing diffcodec teaches Pillow the ``.dcf``
format (:mod:`diffcodec.pillow_plugin`).
"""
from __future__ import annotations

import importlib

from diffcodec.pillow_plugin import register_pillow

__version__ = "0.20.0"
__all__ = [
    "DEFAULT_QUALITY", "OutputExistsError", "compress", "compress_detailed", "compress_file", "decompress",
    "decompress_file", "read_header", "register_pillow", "__version__",
]
_API = set(__all__) - {"register_pillow", "__version__"}

register_pillow()


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module("diffcodec.api"), name)
    raise AttributeError(f"module 'diffcodec' has no attribute {name!r}")
