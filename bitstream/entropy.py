"""Entropy coding of integer latents with constriction's ANS coder.

One ANS stack holds all symbols of a file. :class:`StreamWriter` records coding
operations in *decode* order and :meth:`StreamWriter.finish` pushes them in reverse,
so :class:`StreamReader` pops them in the natural order: hyper-latent first (its
probabilities are fixed tables), then the latent (whose standard deviations the caller
derives from the decoded hyper-latent), then escapes.

Probabilities never depend on floating-point model outputs directly: the Gaussian
standard deviations come from :data:`bitstream.tables.SCALE_TABLE` by index and the
categorical tables are fixed arrays handed in by the caller.

Format version 2 streams end (in decode order) with a 32-bit end marker, pushed first so
that it is popped last. The marker is a CRC of a key the caller derives from the header
fields the stream depends on (image size, quality), so a header edited to another size or
quality is refused as well, even where the latent grid stays the same. ANS decoding of damaged data raises nothing by itself:
a coder whose words run out keeps returning symbols. The marker makes every such stream
fail a check: one that runs dry early is empty before a segment (the marker keeps a valid
stream non-empty until its very end), one with a changed word or another symbol count
pops a different marker (chance 2**-32 to match), and one with words left over is not empty
afterwards. Version 1 streams have no marker and get only the last check.
"""
from __future__ import annotations

import zlib
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
_MARKER_MODEL = constriction.stream.model.Uniform(1 << 16)


def end_marker(key: bytes) -> np.ndarray:
    """The two 16-bit symbols that end a stream coded under ``key``."""
    word = zlib.crc32(b"dcf-end-marker" + key)
    return np.array([word >> 16, word & 0xFFFF], dtype=np.int32)


def _categorical(pmf: np.ndarray) -> constriction.stream.model.Categorical:
    return constriction.stream.model.Categorical(np.asarray(pmf, dtype=np.float64), perfect=False)


def clip_to_codable(symbols: np.ndarray) -> np.ndarray:
    """The values a Gaussian-coded latent can take (|s| <= R + MAX_ESCAPE)."""
    return np.clip(symbols, -(GAUSSIAN_RANGE + MAX_ESCAPE), GAUSSIAN_RANGE + MAX_ESCAPE)


class StreamWriter:
    """Collects symbols to code; :meth:`finish` returns the compressed bytes, ending with the
    marker of ``end_key`` (None writes a format version 1 stream, without a marker)."""

    def __init__(self, end_key: bytes | None = b"") -> None:
        self.end_key = end_key
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
        if self.end_key is not None:  # pushed first: popped after every symbol
            coder.encode_reverse(end_marker(self.end_key), _MARKER_MODEL)
        for op in reversed(self._ops):
            op(coder)
        return coder.get_compressed().astype(">u4").tobytes()


class StreamReader:
    """Decodes what a :class:`StreamWriter` wrote, in the same order; errors become CorruptError.

    ``end_key`` must be the writer's (None for format version 1 streams, which have no marker).
    """

    def __init__(self, data: bytes, end_key: bytes | None = b""):
        self.end_key = end_key
        if len(data) % 4:
            raise CorruptError("latent stream is not whole 32-bit words")
        words = np.frombuffer(data, dtype=">u4").astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except Exception as exc:  # constriction rejects e.g. a zero last word
            raise CorruptError(f"latent stream is corrupt ({exc})") from None

    def check_not_dry(self) -> None:
        """A stream with a marker holds data until the marker: an empty coder here ran dry early.

        Called before every segment, and by a caller about to spend work on what it decoded.
        """
        if self.end_key is not None and self._coder.is_empty():
            raise CorruptError("latent stream is corrupt (it ends before the symbols its header announces)")

    def categorical(self, pmfs: np.ndarray, count: int) -> np.ndarray:
        """(C, count) symbols, row c decoded with pmfs[c]."""
        if pmfs.shape[0] and count:
            self.check_not_dry()
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
        if stds.size:
            self.check_not_dry()
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
        """The end marker must follow the last symbol, and nothing after it: otherwise the stream
        was damaged, cut, padded or made for another image size."""
        if self.end_key is not None:
            self.check_not_dry()
            expected = end_marker(self.end_key)
            try:
                marker = self._coder.decode(_MARKER_MODEL, len(expected))
            except Exception as exc:
                raise CorruptError(f"latent stream is corrupt ({exc})") from None
            if not np.array_equal(marker, expected):
                raise CorruptError("latent stream is corrupt (its end marker does not match: damaged data, "
                                   "or a header of another size or quality)")
        if not self._coder.is_empty():
            raise CorruptError("latent stream is corrupt (data left over after decoding)")
