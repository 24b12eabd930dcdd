"""Bjontegaard delta rate (BD-rate) and delta quality between two rate-quality curves.

BD-rate is the mean difference of log-rate over the overlapping quality interval, expressed
as a percentage rate change of the test curve against the anchor: -10 means the test codec
needs 10 % fewer bits for the same quality. Two interpolations of log-rate as a function of
quality are offered:

* ``"pchip"`` (default): monotone piecewise-cubic Hermite interpolation through the points,
  integrated exactly; robust for any number (>= 2) of points.
* ``"cubic"``: the classic VCEG-M33 least-squares cubic polynomial fit (>= 4 points).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

METHODS = ("pchip", "cubic")


@dataclass
class Curve:
    """Cleaned curve: log-rate and quality, quality strictly increasing."""

    log_rate: np.ndarray
    quality: np.ndarray
    dropped: int  # points removed because they were not monotone


def clean_curve(rate: Sequence[float], quality: Sequence[float],
                higher_is_better: bool = True) -> Curve:
    """Sort by rate and keep the points whose quality strictly improves on all cheaper ones.

    Quality is negated for lower-is-better metrics so that it always increases. Points with
    missing (None/NaN/inf) values or non-positive rate are ignored.
    """
    pts = [(float(r), float(q)) for r, q in zip(rate, quality)
           if r is not None and q is not None and math.isfinite(float(r))
           and math.isfinite(float(q)) and float(r) > 0]
    n_in = len(pts)
    pts.sort()
    sign = 1.0 if higher_is_better else -1.0
    kept: list[tuple[float, float]] = []
    for r, q in pts:
        q = sign * q
        if not kept or q > kept[-1][1]:
            kept.append((r, q))
    arr = np.array(kept, dtype=np.float64).reshape(-1, 2)
    return Curve(np.log(arr[:, 0]), arr[:, 1], n_in - len(kept))


def _integral(curve_x: np.ndarray, curve_y: np.ndarray, lo: float, hi: float,
              method: str) -> float:
    if method == "pchip":
        return float(PchipInterpolator(curve_x, curve_y).integrate(lo, hi))
    if method == "cubic":
        poly = np.polyint(np.polyfit(curve_x, curve_y, 3))
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    raise ValueError(f"unknown BD method {method!r}; use one of {METHODS}")


def _min_points(method: str) -> int:
    return 4 if method == "cubic" else 2


def overlap(anchor: Curve, test: Curve) -> tuple[float, float]:
    """Overlapping quality interval [lo, hi] (empty when hi <= lo)."""
    return (max(anchor.quality.min(), test.quality.min()),
            min(anchor.quality.max(), test.quality.max()))


def bd_rate(rate_anchor: Sequence[float], q_anchor: Sequence[float],
            rate_test: Sequence[float], q_test: Sequence[float],
            method: str = "pchip", higher_is_better: bool = True,
            quality_range: tuple[float, float] | None = None) -> float:
    """BD-rate of the test curve against the anchor in percent (NaN without overlap).

    ``quality_range`` (in the metric's own units) narrows the overlapping interval, e.g. to
    compare two versions of a codec over the range both of them cover.
    """
    a = clean_curve(rate_anchor, q_anchor, higher_is_better)
    t = clean_curve(rate_test, q_test, higher_is_better)
    if min(len(a.quality), len(t.quality)) < _min_points(method):
        return math.nan
    lo, hi = overlap(a, t)
    if quality_range is not None:
        sign = 1.0 if higher_is_better else -1.0
        q_lo, q_hi = sorted(sign * q for q in quality_range)
        lo, hi = max(lo, q_lo), min(hi, q_hi)
    if not hi > lo:
        return math.nan
    avg = (_integral(t.quality, t.log_rate, lo, hi, method)
           - _integral(a.quality, a.log_rate, lo, hi, method)) / (hi - lo)
    return (math.exp(avg) - 1.0) * 100.0


def bd_quality(rate_anchor: Sequence[float], q_anchor: Sequence[float],
               rate_test: Sequence[float], q_test: Sequence[float],
               method: str = "pchip", higher_is_better: bool = True) -> float:
    """BD-quality (e.g. BD-PSNR in dB): mean quality gain at equal rate (NaN without overlap).

    Positive means the test curve is better (for lower-is-better metrics the sign is
    flipped back, so a negative value means lower, i.e. better, LPIPS/DISTS).
    """
    a = clean_curve(rate_anchor, q_anchor, higher_is_better)
    t = clean_curve(rate_test, q_test, higher_is_better)
    if min(len(a.quality), len(t.quality)) < _min_points(method):
        return math.nan
    lo = max(a.log_rate.min(), t.log_rate.min())
    hi = min(a.log_rate.max(), t.log_rate.max())
    if not hi > lo:
        return math.nan
    # quality is strictly increasing with rate after cleaning, so q(log r) is well defined
    avg = (_integral(t.log_rate, t.quality, lo, hi, method)
           - _integral(a.log_rate, a.quality, lo, hi, method)) / (hi - lo)
    return avg if higher_is_better else -avg


def overlap_rate_range(rate_anchor: Sequence[float], q_anchor: Sequence[float],
                       rate_test: Sequence[float], q_test: Sequence[float],
                       higher_is_better: bool = True) -> tuple[float, float] | None:
    """bpp range of the test curve over the overlapping quality interval (for reporting)."""
    a = clean_curve(rate_anchor, q_anchor, higher_is_better)
    t = clean_curve(rate_test, q_test, higher_is_better)
    if min(len(a.quality), len(t.quality)) < 2:
        return None
    lo, hi = overlap(a, t)
    if not hi > lo:
        return None
    f = PchipInterpolator(t.quality, t.log_rate)
    return float(np.exp(f(lo))), float(np.exp(f(hi)))


def anchor_quality_at(rate_anchor: Sequence[float], q_anchor: Sequence[float], rates: Sequence[float],
                      higher_is_better: bool = True) -> list[float | None]:
    """The anchor's quality at each of ``rates`` (monotone cubic in log-rate through its cleaned
    points), None outside its rate range: the per-point companion of a BD figure, which shows
    where along the curve a codec gains or loses."""
    a = clean_curve(rate_anchor, q_anchor, higher_is_better)
    if len(a.quality) < 2:
        return [None] * len(rates)
    sign = 1.0 if higher_is_better else -1.0
    f = PchipInterpolator(a.log_rate, a.quality)
    out: list[float | None] = []
    for r in rates:
        x = math.log(r) if r is not None and r > 0 else math.nan
        inside = a.log_rate[0] <= x <= a.log_rate[-1]
        out.append(sign * float(f(x)) if inside else None)
    return out
