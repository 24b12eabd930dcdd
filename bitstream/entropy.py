"""Entropy coding of integer latents with constriction's ANS coder.

One ANS stack holds all symbols of a file. :class:`StreamWriter` records coding
operations in *decode* order and :meth:`StreamWriter.finish` pushes them in reverse,
so :class:`StreamReader` pops them in the natural order: hyper-latent first (its
probabilities are fixed tables), then the latent (whose standard deviations the caller
derives from the decoded hyper-latent), then escapes.

Probabilities never depend on floating-point model outputs directly: the Gaussian
standard deviations come from :data:`bitstream.tables.SCALE_TABLE` by index and the
categorical tables are fixed arrays handed in by the caller.
"""
from __future__ import annotations

from typing import Callable

import constriction
import numpy as np

from bitstream.errors import CorruptError
from bitstream.tables import SCALE_TABLE

GAUSSIAN_RANGE = 1023  # symbols are coded in [-R, R]; the edge values escape to a raw field
ESCAPE_BITS = 20  # excess magnitude beyond R, coded uniformly; larger values are clipped
MAX_ESCAPE = (1 << ESCAPE_BITS) - 1

_GAUSSIAN = constriction.stream.model.QuantizedGaussian(-GAUSSIAN_RANGE, GAUSSIAN_RANGE)
_ESCAPE = constriction.stream.model.Uniform(1 << ESCAPE_BITS)


def _categorical(pmf: np.ndarray) -> constriction.stream.model.Categorical:
    return constriction.stream.model.Categorical(np.asarray(pmf, dtype=np.float64), perfect=False)


def clip_to_codable(symbols: np.ndarray) -> np.ndarray:
    """The values a Gaussian-coded latent can take (|s| <= R + MAX_ESCAPE)."""
    return np.clip(symbols, -(GAUSSIAN_RANGE + MAX_ESCAPE), GAUSSIAN_RANGE + MAX_ESCAPE)


class StreamWriter:
    """Collects symbols to code; :meth:`finish` returns the compressed bytes."""

    def __init__(self) -> None:
        self._ops: list[Callable[[constriction.stream.stack.AnsCoder], None]] = []

    def categorical(self, symbols: np.ndarray, pmfs: np.ndarray) -> None:
        """Code row ``c`` of ``symbols`` (C, n), values in [0, L), with the probability row ``pmfs[c]`` (C, L)."""
        symbols = np.ascontiguousarray(symbols, dtype=np.int32).reshape(pmfs.shape[0], -1)
        if symbols.size and (symbols.min() < 0 or symbols.max() >= pmfs.shape[1]):
            raise ValueError("categorical symbol out of the table's range")
        for row, pmf in zip(symbols, pmfs):
            model = _categorical(pmf)
            self._ops.append(lambda coder, row=row, model=model: coder.encode_reverse(row, model))

    def gaussian(self, symbols: np.ndarray, scale_indices: np.ndarray) -> None:
        """Code integer ``symbols`` with zero-mean quantized Gaussians of std SCALE_TABLE[index]."""
        symbols = clip_to_codable(np.asarray(symbols, dtype=np.int64).ravel())
        stds = SCALE_TABLE[np.asarray(scale_indices).ravel()]
        clipped = np.clip(symbols, -GAUSSIAN_RANGE, GAUSSIAN_RANGE).astype(np.int32)
        excess = (np.abs(symbols[np.abs(clipped) == GAUSSIAN_RANGE]) - GAUSSIAN_RANGE).astype(np.int32)
        means = np.zeros_like(stds)
        self._ops.append(lambda coder: coder.encode_reverse(clipped, _GAUSSIAN, means, stds))
        if excess.size:
            self._ops.append(lambda coder: coder.encode_reverse(excess, _ESCAPE))

    def finish(self) -> bytes:
        coder = constriction.stream.stack.AnsCoder()
        for op in reversed(self._ops):
            op(coder)
        return coder.get_compressed().astype(">u4").tobytes()


class StreamReader:
    """Decodes what a :class:`StreamWriter` wrote, in the same order; errors become CorruptError."""

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise CorruptError("latent stream is not whole 32-bit words")
        words = np.frombuffer(data, dtype=">u4").astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except Exception as exc:  # constriction rejects e.g. a zero last word
            raise CorruptError(f"latent stream is corrupt ({exc})") from None

    def categorical(self, pmfs: np.ndarray, count: int) -> np.ndarray:
        """(C, count) symbols, row c decoded with pmfs[c]."""
        out = np.empty((pmfs.shape[0], count), dtype=np.int32)
        try:
            for c, pmf in enumerate(pmfs):
                out[c] = self._coder.decode(_categorical(pmf), count)
        except Exception as exc:
            raise CorruptError(f"latent stream is corrupt ({exc})") from None
        return out

    def gaussian(self, scale_indices: np.ndarray) -> np.ndarray:
        """Symbols for the given std indices (flattened order), escapes resolved; int64."""
        stds = SCALE_TABLE[np.asarray(scale_indices).ravel()]
        try:
            symbols = self._coder.decode(_GAUSSIAN, np.zeros_like(stds), stds).astype(np.int64)
            edge = np.abs(symbols) == GAUSSIAN_RANGE
            n_edge = int(edge.sum())
            if n_edge:
                excess = self._coder.decode(_ESCAPE, n_edge).astype(np.int64)
                symbols[edge] += np.sign(symbols[edge]) * excess
        except Exception as exc:
            raise CorruptError(f"latent stream is corrupt ({exc})") from None
        return symbols

    def finish(self) -> None:
        """Every word must have been consumed; leftover data means a corrupt or foreign stream."""
        if not self._coder.is_empty():
            raise CorruptError("latent stream is corrupt (data left over after decoding)")
