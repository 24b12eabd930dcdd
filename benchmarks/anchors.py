"""Published rate-quality curves (CompressAI result files and perceptual-codec results)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_KODAK_ANCHORS = Path("../shared/anchors/kodak_published.json")

# keys in the anchor files -> our metric names
_METRIC_MAP = {"psnr": "psnr-rgb", "psnr-rgb": "psnr-rgb", "ms-ssim": "ms-ssim-rgb",
               "ms-ssim-rgb": "ms-ssim-rgb", "lpips": "lpips", "dists": "dists"}

#: curves drawn on the plots by default (key in file -> label)
PLOT_KODAK = {"jpeg": "JPEG", "bpg_444_x265_ycbcr": "BPG 4:4:4 x265", "webp": "WebP",
              "av1": "AV1", "vtm": "VTM"}
PLOT_PERCEPTUAL = {"BPG|kodak(DiffEIC-xlsx)": "BPG (DiffEIC)",
                   "HiFiC|kodak(DiffEIC-xlsx)": "HiFiC", "MS-ILLM|kodak": "MS-ILLM",
                   "No-GAN|kodak": "No-GAN (MS-ILLM)"}


@dataclass
class AnchorCurve:
    """One published curve: bpp and metric values keyed by our metric names."""

    key: str
    label: str
    bpp: list[float]
    values: dict[str, list[float]]
    source: str


def _curve(key: str, label: str, data: dict) -> AnchorCurve | None:
    res = data.get("results", data)
    bpp = res.get("bpp")
    if not bpp:
        return None
    values = {}
    for k, m in _METRIC_MAP.items():
        v = res.get(k)
        if isinstance(v, list) and len(v) == len(bpp) and m not in values:
            values[m] = v
    return AnchorCurve(key, label, list(bpp), values,
                       str(data.get("source") or data.get("source_path") or ""))


def load_anchors(path: Path | None, keys: dict[str, str] | None = None) -> dict[str, AnchorCurve]:
    """Curves of an anchor file (only ``keys`` if given); {} when the file is missing."""
    if path is None or not Path(path).is_file():
        return {}
    with open(path) as f:
        data = json.load(f)
    out: dict[str, AnchorCurve] = {}
    for key, entry in data.items():
        if key.startswith("_") or not isinstance(entry, dict):
            continue
        if keys is not None and key not in keys:
            continue
        c = _curve(key, (keys or {}).get(key, str(entry.get("name", key))), entry)
        if c is not None:
            out[key] = c
    return out
