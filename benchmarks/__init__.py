"""Rate-distortion benchmark suite for diffcodec and classical image codecs.

Entry point: ``python -m benchmarks run DATASET --out DIR`` (see :mod:`benchmarks.cli`).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
