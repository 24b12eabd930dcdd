"""Run a fully convolutional transform over a large tensor in overlapping tiles.

Why: the analysis and synthesis transforms hold ~100 feature maps at half the image
resolution; a 24-megapixel photo would need several GB at once. Every output pixel of a
convolutional network depends only on a bounded window of its input (the receptive field),
so cutting the input into tiles, each widened by a halo at least that wide, and keeping
only each tile's core gives the untiled result up to float rounding: no visible seams.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Callable

from torch import Tensor


def _starts(size: int, tile: int) -> list[int]:
    return list(range(0, size, tile)) or [0]


def apply_tiled(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    scale: Fraction,
    tile: int,
    halo: int,
    align: int = 1,
) -> Tensor:
    """``fn(x)`` computed tile by tile.

    ``fn`` maps (B, C, H, W) to (B, C', H*scale, W*scale); ``tile`` and ``halo`` are in input
    pixels and multiples of ``align`` (so every tile's output lands on whole output pixels).
    A tensor no larger than one tile goes through ``fn`` in one piece.
    """
    if tile % align or halo % align or tile <= 0 or halo < 0:
        raise ValueError("tile and halo must be positive multiples of align")
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        return fn(x)
    out: Tensor | None = None
    for y0 in _starts(h, tile):
        for x0 in _starts(w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            # the tile widened by the halo, clipped to the tensor (edges see the true border)
            ty0, tx0 = max(0, y0 - halo), max(0, x0 - halo)
            ty1, tx1 = min(h, y1 + halo), min(w, x1 + halo)
            piece = fn(x[..., ty0:ty1, tx0:tx1])
            if out is None:
                out = piece.new_empty((*piece.shape[:-2], int(h * scale), int(w * scale)))
            oy, ox = int((y0 - ty0) * scale), int((x0 - tx0) * scale)
            oh, ow = int((y1 - y0) * scale), int((x1 - x0) * scale)
            out[..., int(y0 * scale) : int(y0 * scale) + oh, int(x0 * scale) : int(x0 * scale) + ow] = (
                piece[..., oy : oy + oh, ox : ox + ow]
            )
            del piece
    assert out is not None
    return out
