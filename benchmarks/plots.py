"""PNG figures: rate-distortion curves with published anchors, and a side-by-side crop."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.anchors import AnchorCurve
from benchmarks.report import HIGHER_IS_BETTER, METRIC_LABELS, CodecCurve


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _y(metric: str, values: Sequence[float | None]) -> np.ndarray:
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    if metric.startswith("ms-ssim"):
        with np.errstate(divide="ignore", invalid="ignore"):
            return -10.0 * np.log10(1.0 - v)
    return v


def y_label(metric: str) -> str:
    if metric.startswith("ms-ssim"):
        return "MS-SSIM (RGB) [dB] = -10 log10(1 - MS-SSIM)"
    label = METRIC_LABELS.get(metric, metric)
    arrow = "higher is better" if HIGHER_IS_BETTER.get(metric, True) else "lower is better"
    return f"{label} ({arrow})" + (" [dB]" if metric == "psnr-rgb" else "")


def rd_plot(curves: Sequence[CodecCurve], anchors: Sequence[AnchorCurve], metric: str,
            path: Path, title: str, max_bpp: float | None = 2.0) -> Path | None:
    """bpp vs metric: our curves solid with markers, published curves dashed '(published)'."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ys_visible: list[float] = []

    def keep(xs: np.ndarray, ys: np.ndarray) -> None:
        m = np.isfinite(ys) & ((xs <= max_bpp * 1.02) if max_bpp else True)
        ys_visible.extend(ys[m].tolist())

    drawn = 0
    for c in curves:
        if metric not in c.results:
            continue
        xs = np.array(c.results["bpp"], dtype=np.float64)
        ys = _y(metric, c.results[metric])
        if not np.isfinite(ys).any():
            continue
        lw = 2.2 if c.name.startswith("diffcodec") else 1.4
        ax.plot(xs, ys, marker="o", ms=3.5, lw=lw, label=c.label)
        keep(xs, ys)
        drawn += 1
    for a in anchors:
        if metric not in a.values:
            continue
        xs = np.array(a.bpp, dtype=np.float64)
        ys = _y(metric, a.values[metric])
        ax.plot(xs, ys, ls="--", lw=1.0, marker=".", ms=3, alpha=0.8,
                label=f"{a.label} (published)")
        keep(xs, ys)
        drawn += 1
    if drawn == 0:
        plt.close(fig)
        return None
    if max_bpp:
        ax.set_xlim(0, max_bpp)
        if ys_visible:
            lo, hi = min(ys_visible), max(ys_visible)
            pad = 0.04 * (hi - lo or 1.0)
            ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("bits per pixel (real file bytes)")
    ax.set_ylabel(y_label(metric))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def best_crop(rgb: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the size x size window with the most gradient energy."""
    h, w = rgb.shape[:2]
    size = min(size, h, w)
    g = rgb.astype(np.float32).mean(axis=2)
    energy = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1, :]
    best, pos = -1.0, (0, 0)
    step = max(8, size // 8)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            e = float(energy[y:y + size - 1, x:x + size - 1].sum())
            if e > best:
                best, pos = e, (y, x)
    return pos


def crop_figure(original: np.ndarray, panels: Sequence[tuple[str, np.ndarray]], path: Path,
                title: str, size: int = 256) -> Path:
    """original | panel 1 | panel 2 | ... cropped to the same most-detailed window."""
    plt = _plt()
    y, x = best_crop(original, size)
    s = min(size, *original.shape[:2])
    items = [("original", original)] + list(panels)
    fig, axes = plt.subplots(1, len(items), figsize=(3.1 * len(items), 3.6))
    for ax, (label, img) in zip(np.atleast_1d(axes), items):
        ax.imshow(img[y:y + s, x:x + s], interpolation="nearest")
        ax.set_title(label, fontsize=8.5)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)
