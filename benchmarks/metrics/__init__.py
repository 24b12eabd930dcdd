"""Registry of full-reference metrics by result-key name."""
from __future__ import annotations

from typing import Callable

from benchmarks.metrics.base import Metric


def _factories() -> dict[str, Callable[[], Metric]]:
    from benchmarks.metrics.dists import DISTS
    from benchmarks.metrics.lpips import LPIPS
    from benchmarks.metrics.msssim import MSSSIM
    from benchmarks.metrics.psnr import PSNR

    return {
        "psnr-rgb": PSNR,
        "ms-ssim-rgb": MSSSIM,
        "lpips": LPIPS,
        "lpips-vgg": lambda: LPIPS("vgg"),
        "dists": DISTS,
    }


ALIASES = {"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-rgb", "msssim": "ms-ssim-rgb",
           "lpips-alex": "lpips"}
DEFAULT_METRICS = ["psnr-rgb", "ms-ssim-rgb", "lpips", "dists"]


def metric_names() -> list[str]:
    return list(_factories())


def expand_names(spec: str | list[str] | None) -> list[str]:
    """'psnr,lpips' -> ['psnr-rgb', 'lpips']; unknown names raise ValueError."""
    if spec is None:
        return list(DEFAULT_METRICS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    known = _factories()
    out: list[str] = []
    for item in (s.strip() for s in items):
        if not item:
            continue
        name = ALIASES.get(item, item)
        if name not in known:
            raise ValueError(f"unknown metric {item!r}; known: {', '.join(known)}")
        if name not in out:
            out.append(name)
    return out


def get_metric(name: str) -> Metric:
    return _factories()[name]()


__all__ = ["Metric", "DEFAULT_METRICS", "expand_names", "get_metric", "metric_names"]
