"""Turn per-image results into CompressAI-style JSON files, Markdown tables and BD-rates."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks import bdrate
from benchmarks.anchors import AnchorCurve
from benchmarks.codecs.base import format_setting
from benchmarks.dataset import ImageEntry

MB = 1024.0 * 1024.0
HIGHER_IS_BETTER = {"psnr-rgb": True, "ms-ssim-rgb": True, "lpips": False, "lpips-vgg": False,
                    "dists": False}
METRIC_LABELS = {"psnr-rgb": "PSNR-RGB", "ms-ssim-rgb": "MS-SSIM", "lpips": "LPIPS",
                 "lpips-vgg": "LPIPS-VGG", "dists": "DISTS"}


@dataclass
class CodecCurve:
    """Aggregated curve of one codec (what goes into its JSON file)."""

    name: str  # codec id
    label: str
    description: str
    results: dict[str, list]
    meta: dict[str, Any]

    def to_json(self) -> dict:
        return {"name": self.label, "description": self.description, "results": self.results,
                "meta": self.meta}


def _mean(values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values) or not values:
        return None
    return float(np.mean(values))


def aggregate(entries: dict[tuple[str, str, str], dict], codec: str, settings: Sequence[float],
              images: Sequence[ImageEntry], metrics: Sequence[str],
              set_metrics: dict[str, dict[str, float]] | None = None) -> list[dict]:
    """Per-setting means over images (only settings complete for every image), by bpp.

    ``set_metrics`` holds set-level values per setting label (FID/KID) to merge in.
    """
    points = []
    for s in settings:
        label = format_setting(s)
        es = [entries.get((codec, label, im.name)) for im in images]
        if not es or any(e is None for e in es):
            continue
        pt: dict[str, Any] = {"quality": float(s), "bpp": _mean([e["bpp"] for e in es])}
        for m in metrics:
            pt[m] = _mean([(e["metrics"].get(m) or {}).get("value") for e in es])
        for k in ("encoding_time", "decoding_time"):
            pt[k] = _mean([e[k] for e in es])
        for k in ("encoding_peak_mem", "decoding_peak_mem"):
            vals = [e.get(k) for e in es]
            pt[k + "_mb"] = None if any(v is None for v in vals) else max(vals) / MB
        pt.update((set_metrics or {}).get(label, {}))
        if any("parameter_set_bytes" in e for e in es):
            pt["bpp_without_parameter_sets"] = _mean(
                [(e["num_bytes"] - e.get("parameter_set_bytes", 0)) * 8.0
                 / (e["height"] * e["width"]) for e in es])
        points.append(pt)
    points.sort(key=lambda p: p["bpp"])
    return points


def make_curve(codec_name: str, label: str, description: str, points: list[dict],
               meta: dict[str, Any]) -> CodecCurve:
    keys: list[str] = []
    for p in points:
        for k in p:
            if k not in keys:
                keys.append(k)
    order = ["bpp"] + [k for k in keys if k != "bpp"]
    results = {k: [p.get(k) for p in points] for k in order}
    return CodecCurve(codec_name, label, description, results, meta)


def write_curve(out_dir: Path, curve: CodecCurve) -> Path:
    """Write ``<out>/<codec>.json`` in CompressAI's results schema (plus a ``meta`` block)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{curve.name}.json"
    path.write_text(json.dumps(curve.to_json(), indent=2) + "\n")
    return path


def read_curve(path: Path) -> CodecCurve:
    data = json.loads(Path(path).read_text())
    return CodecCurve(Path(path).stem, data.get("name", Path(path).stem),
                      data.get("description", ""), data["results"], data.get("meta", {}))


# ------------------------------------------------------------------ BD-rate tables
@dataclass
class Reference:
    """An anchor curve for BD-rate tables: ours (a CodecCurve) or published."""

    label: str
    bpp: list[float]
    values: dict[str, list[float]]


def reference_from_curve(c: CodecCurve) -> Reference:
    return Reference(f"{c.label} (ours)" if not c.label.endswith(")") else c.label,
                     list(c.results["bpp"]),
                     {m: c.results[m] for m in HIGHER_IS_BETTER if m in c.results})


def reference_from_anchor(a: AnchorCurve, label: str | None = None) -> Reference:
    return Reference(label or f"{a.label} (published)", a.bpp, a.values)


def bd_table(curves: Sequence[CodecCurve], ref: Reference, metrics: Sequence[str],
             method: str = "pchip") -> dict[str, dict[str, float | None]]:
    """{codec: {metric: BD-rate %}} of each curve against ``ref`` (None where undefined)."""
    table: dict[str, dict[str, float | None]] = {}
    for c in curves:
        row: dict[str, float | None] = {}
        for m in metrics:
            if m not in ref.values or m not in c.results:
                row[m] = None
                continue
            v = bdrate.bd_rate(ref.bpp, ref.values[m], c.results["bpp"], c.results[m],
                               method=method, higher_is_better=HIGHER_IS_BETTER[m])
            row[m] = None if math.isnan(v) else v
        table[c.name] = row
    return table


def fmt(v: float | None, digits: int = 2, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def bd_markdown(curves: Sequence[CodecCurve], ref: Reference, metrics: Sequence[str],
                method: str = "pchip") -> str:
    table = bd_table(curves, ref, metrics, method)
    used = [m for m in metrics if m in ref.values]
    header = ["codec"] + [f"BD-rate {METRIC_LABELS.get(m, m)} [%]" for m in used]
    rows = [[c.label] + [fmt(table[c.name][m], 1, True) for m in used] for c in curves]
    return markdown_table(header, rows)


def points_markdown(c: CodecCurve, metrics: Sequence[str]) -> str:
    r = c.results
    header = ["setting", "bpp"] + [METRIC_LABELS.get(m, m) for m in metrics if m in r] + [
        "enc s", "dec s", "enc peak MB", "dec peak MB"]
    rows = []
    for i in range(len(r["bpp"])):
        row = [format_setting(r["quality"][i]), fmt(r["bpp"][i], 4)]
        for m in metrics:
            if m in r:
                row.append(fmt(r[m][i], 2 if m == "psnr-rgb" else 4))
        row += [fmt(r["encoding_time"][i], 3), fmt(r["decoding_time"][i], 3),
                fmt(r.get("encoding_peak_mem_mb", [None] * len(r["bpp"]))[i], 1),
                fmt(r.get("decoding_peak_mem_mb", [None] * len(r["bpp"]))[i], 1)]
        rows.append(row)
    return markdown_table(header, rows)
