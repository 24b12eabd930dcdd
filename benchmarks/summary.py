"""Write every output of a run: per-codec JSON, BD-rate tables, summary.md and figures."""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks import anchors as anchor_mod
from benchmarks import bdrate
from benchmarks.cache import ResultCache
from benchmarks.codecs import Codec
from benchmarks.dataset import ImageEntry
from benchmarks.report import (METRIC_LABELS, CodecCurve, Reference,
                               aggregate, bd_markdown, bd_table, fmt, format_setting, make_curve,
                               markdown_table, points_markdown, reference_from_anchor,
                               write_curve)

log = logging.getLogger("benchmarks")

BD_METRICS = ("psnr-rgb", "ms-ssim-rgb", "lpips", "dists")


def machine_info() -> dict[str, Any]:
    """CPU, core count, load and library versions (to read the timings against)."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(),
                            "python": sys.version.split()[0], "platform": platform.platform()}
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def _curves(codecs: dict[str, Codec], spec, outcome, images,
            extra: dict | None = None) -> list[CodecCurve]:
    curves = []
    for name, codec in codecs.items():
        points = aggregate(outcome.entries, name, spec.settings[name], images, spec.metrics,
                           (extra or {}).get(name))
        if not points:
            continue
        meta = {
            "codec": name, "codec_version": spec.codec_versions[name],
            "tool_version": codec.tool_version(), "n_images": len(images),
            "settings": [float(s) for s in spec.settings[name]],
            "metric_versions": {m: spec.metric_versions[m] for m in spec.metrics},
            "averaging": "bpp, metrics and times: arithmetic mean over images of per-image "
                         "values; peak memory: maximum over images",
            "bpp": "len(file bytes) * 8 / (H * W)",
            "memory_method": _memory_text(codec.memory_method),
            "timing": ("wall-clock seconds per image of the encode/decode call"
                       + (" (torch 2 threads, main process)" if not codec.parallel_safe
                          else "")),
        }
        curves.append(make_curve(name, codec.label, codec.description(), points, meta))
    return curves


def _memory_text(method: str) -> str:
    if method == "child-rss":
        return ("peak resident set size of the external encoder/decoder process "
                "(GNU time %M, includes the program's baseline)")
    return ("rise of this process's peak RSS during the call over its RSS before it "
            "(malloc_trim, then VmHWM reset via /proc/self/clear_refs)")


def _references(curves: list[CodecCurve], published: dict[str, anchor_mod.AnchorCurve]
                ) -> list[Reference]:
    by = {c.name: c for c in curves}
    refs = []
    if "hevc" in by:
        refs.append(Reference("HEVC-intra x265 (ours)", by["hevc"].results["bpp"],
                              {m: by["hevc"].results[m] for m in BD_METRICS
                               if m in by["hevc"].results}))
    if "bpg_444_x265_ycbcr" in published:
        refs.append(reference_from_anchor(published["bpg_444_x265_ycbcr"],
                                          "BPG 4:4:4 x265 (published)"))
    if "jpeg420" in by:
        refs.append(Reference("JPEG 4:2:0 (ours)", by["jpeg420"].results["bpp"],
                              {m: by["jpeg420"].results[m] for m in BD_METRICS
                               if m in by["jpeg420"].results}))
    if "jpeg" in published:
        refs.append(reference_from_anchor(published["jpeg"], "JPEG (published)"))
    return refs


def _hevc_validation(curves: list[CodecCurve], published) -> tuple[str, dict]:
    """BD-rate of our HEVC stand-in against the published BPG curve (the +-5 % check)."""
    by = {c.name: c for c in curves}
    if "hevc" not in by or "bpg_444_x265_ycbcr" not in published:
        return "", {}
    h, b = by["hevc"].results, published["bpg_444_x265_ycbcr"]
    out: dict[str, Any] = {}
    rows = []
    for m in ("psnr-rgb", "ms-ssim-rgb"):
        if m not in b.values or m not in h:
            continue
        for method in bdrate.METHODS:
            v = bdrate.bd_rate(b.bpp, b.values[m], h["bpp"], h[m], method=method)
            vp = (bdrate.bd_rate(b.bpp, b.values[m], h["bpp_without_parameter_sets"], h[m],
                                 method=method) if "bpp_without_parameter_sets" in h else math.nan)
            rng = bdrate.overlap_rate_range(b.bpp, b.values[m], h["bpp"], h[m])
            out[f"{m}/{method}"] = {"bd_rate": v, "bd_rate_without_parameter_sets": vp,
                                    "overlap_bpp": rng}
            rows.append([METRIC_LABELS[m], method, fmt(v, 2, True), fmt(vp, 2, True),
                         f"{rng[0]:.3f}–{rng[1]:.3f}" if rng else "–"])
    if not rows:
        return "", out
    ok = abs(out.get("psnr-rgb/pchip", {}).get("bd_rate", math.inf)) <= 5.0
    text = ("## HEVC-intra stand-in vs the published BPG curve\n\n"
            "BD-rate of our x265 4:4:4 curve against CompressAI's `bpg_444_x265_ycbcr` "
            "(BPG 0.9.8); negative = our files are smaller at equal quality. The second column "
            "excludes the VPS/SPS/PPS bytes of the raw HEVC stream, which a .bpg file stores "
            "in a compacted form.\n\n"
            + markdown_table(["metric", "interpolation", "BD-rate [%]",
                              "BD-rate w/o parameter sets [%]", "overlap [bpp]"], rows)
            + f"\n\nWithin ±5 % (PSNR, pchip): **{'yes' if ok else 'no'}**.\n")
    return text, out


def _pick_entry(entries: dict, codec: str, image: str, target: float) -> dict | None:
    cands = [e for (c, _, im), e in entries.items() if c == codec and im == image]
    if not cands:
        return None
    return min(cands, key=lambda e: abs(math.log(e["bpp"]) - math.log(target)))


def _crop_figure(out: Path, args, codecs: dict[str, Codec], images: Sequence[ImageEntry],
                 outcome, cache: ResultCache) -> Path | None:
    from benchmarks.metrics.psnr import psnr_rgb
    from benchmarks.plots import crop_figure

    names = [im.name for im in images]
    pick = args.crop_image or ("kodim23" if "kodim23" in names else names[0])
    if pick not in names:
        log.warning("crop image %s not in the dataset", pick)
        return None
    image = images[names.index(pick)]
    target = args.crop_bpp
    if target is None:
        e = _pick_entry(outcome.entries, "diffcodec", pick, 0.2)  # low rates: where the realism decoder runs
        target = e["bpp"] if e else 0.2
    panels = []
    for name, label in (("jpeg420", "JPEG 4:2:0"), ("hevc", "HEVC (BPG)"),
                        ("diffcodec", "diffcodec fidelity"),
                        ("diffcodec-realism", "diffcodec realism")):
        if name not in codecs:
            continue
        e = _pick_entry(outcome.entries, name, pick, target)
        if e is None:
            continue
        codec = codecs[name]
        data = cache.get_bitstream(e["image_sha256"], name, e["setting"], e["codec_version"])
        ref = image.load()
        try:
            if data is None:
                data = codec.encode(ref, e["setting_value"])
            rec = np.asarray(codec.decode(data), dtype=np.uint8)
        except Exception as exc:  # a figure must not fail the run
            log.warning("crop figure: %s failed: %s", name, exc)
            continue
        panels.append((f"{label}\n{e['bpp']:.3f} bpp, {psnr_rgb(ref, rec):.2f} dB", rec))
    if not panels:
        return None
    return crop_figure(image.load(), panels, out / "crops.png",
                       f"{pick}: reconstructions nearest to {target:.3f} bpp")


def write_all(*, args, command: str, images: Sequence[ImageEntry], codecs: dict[str, Codec],
              spec, outcome, skipped: dict[str, str], elapsed: float,
              extra: dict | None = None) -> None:
    """Write JSON files, bd_rates.json, summary.md and (unless --no-plots) PNG figures."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    curves = _curves(codecs, spec, outcome, images, extra)
    for c in curves:
        write_curve(out, c)

    published = anchor_mod.load_anchors(args.anchors, None)
    plot_kodak = [published[k] for k in anchor_mod.PLOT_KODAK if k in published]
    for a in plot_kodak:
        a.label = anchor_mod.PLOT_KODAK[a.key]
    perceptual = anchor_mod.load_anchors(args.perceptual_anchors, anchor_mod.PLOT_PERCEPTUAL)
    metrics = [m for m in BD_METRICS if m in spec.metrics]

    refs = _references(curves, published)
    bd_json: dict[str, Any] = {}
    bd_md = []
    for method in bdrate.METHODS:
        bd_json[method] = {r.label: bd_table(curves, r, metrics, method) for r in refs}
    for r in refs:
        bd_md.append(f"### vs {r.label}\n\n" + bd_markdown(curves, r, metrics) + "\n")
    cubic_md = ""
    if refs:
        cubic_md = (f"### vs {refs[0].label}, classic cubic-polynomial fit\n\n"
                    + bd_markdown(curves, refs[0], metrics, "cubic") + "\n")
    hevc_md, hevc_json = _hevc_validation(curves, published)
    bd_json["hevc_vs_published_bpg"] = hevc_json
    (out / "bd_rates.json").write_text(json.dumps(bd_json, indent=2, default=_json_default)
                                       + "\n")

    figures: list[str] = []
    if not args.no_plots and curves:
        from benchmarks.plots import rd_plot

        ds = Path(args.dataset).name
        for m in metrics:
            anchors = plot_kodak + (list(perceptual.values()) if m in ("lpips", "dists") else [])
            p = rd_plot(curves, anchors, m, out / f"rd_{m}.png",
                        f"{ds} ({len(images)} images): {METRIC_LABELS.get(m, m)}")
            if p:
                figures.append(p.name)
        if "psnr-rgb" in metrics:
            p = rd_plot(curves, plot_kodak, "psnr-rgb", out / "rd_psnr-rgb_full.png",
                        f"{ds}: PSNR-RGB, full rate range", max_bpp=None)
            if p:
                figures.append(p.name)
        cache = ResultCache(Path(spec.cache_root) if spec.cache_root else None)
        p = _crop_figure(out, args, codecs, images, outcome, cache)
        if p:
            figures.append(p.name)

    md = _summary_markdown(args, command, images, curves, refs, metrics, bd_md, cubic_md,
                           hevc_md, figures, skipped, outcome.failures, elapsed)
    (out / "summary.md").write_text(md)


def _interp_log_bpp(curve: CodecCurve, metric: str, bpp: float) -> float | None:
    """``metric`` of ``curve`` at ``bpp`` (linear in log-rate), None outside its measured range."""
    r = curve.results
    pairs = sorted((b, v) for b, v in zip(r["bpp"], r.get(metric, [])) if b and v is not None)
    if len(pairs) < 2 or not pairs[0][0] <= bpp <= pairs[-1][0]:
        return None
    xs = np.log([b for b, _ in pairs])
    return float(np.interp(math.log(bpp), xs, [v for _, v in pairs]))


def realism_table(curves: list[CodecCurve]) -> str:
    """Each realism curve (the registered strength, and any ``-s<strength>`` one) against HEVC-intra
    and the fidelity decoder at each realism point's bpp.

    Issue 4's yardstick: LPIPS and DISTS at most half of HEVC's at matched bpp in 0.05-0.3,
    and below the fidelity decoder's on the same files. Blank where a curve does not reach.
    """
    by_name = {c.name: c for c in curves}
    hevc, fid = by_name.get("hevc"), by_name.get("diffcodec")
    if hevc is None or fid is None:
        return ""
    return "\n".join(_realism_table(c, hevc, fid) for c in curves if c.name.startswith("diffcodec-realism"))


def _realism_table(real: CodecCurve, hevc: CodecCurve, fid: CodecCurve) -> str:
    metrics = ["lpips", "dists", "psnr-rgb"] + [m for m in ("fid", "kid") if m in real.results]
    header = ["setting", "bpp"]
    for m in metrics:
        header += [f"{METRIC_LABELS.get(m, m.upper())} realism", "fidelity", "HEVC"]
    header += ["LPIPS realism / HEVC", "DISTS realism / HEVC"]
    rows = []
    r = real.results
    for i, bpp in enumerate(r["bpp"]):
        row = [format_setting(r["quality"][i]), f"{bpp:.3f}"]
        ratios = []
        for m in metrics:
            own = r.get(m, [None] * len(r["bpp"]))[i]
            f, h = _interp_log_bpp(fid, m, bpp), _interp_log_bpp(hevc, m, bpp)
            digits = {"psnr-rgb": 2, "fid": 1, "kid": 4}.get(m, 4)
            row += [fmt(own, digits), fmt(f, digits), fmt(h, digits)]
            if m in ("lpips", "dists"):
                ratios.append(fmt(own / h, 2) if own is not None and h else "–")
        rows.append(row + ratios)
    fid_note = (" FID and KID: InceptionV3 features of the patches of all images (the run's `--fid` "
                "protocol, stated in the command), one value per setting; neither is in any training loss."
                if "fid" in metrics else "")
    title = "Realism decoder" if real.name == "diffcodec-realism" else real.label
    return (f"## {title} at matched bpp\n\n"
            "Each realism point against the fidelity decoder (same files) and HEVC-intra, both "
            "interpolated linearly in log-rate at the realism point's bpp; blank where a curve "
            "does not reach that bpp." + fid_note + "\n\n"
            + markdown_table(header, rows) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    return str(o)


def _key_table(curves: list[CodecCurve], refs: list[Reference], metrics: Sequence[str]) -> str:
    ref_pub = next((r for r in refs if "published" in r.label and "BPG" in r.label), None)
    ref_ours = next((r for r in refs if r.label.startswith("HEVC")), None)
    pub_t = bd_table(curves, ref_pub, metrics) if ref_pub else {}
    ours_t = bd_table(curves, ref_ours, metrics) if ref_ours else {}
    header = ["codec", "points", "bpp range"]
    cols: list[tuple[dict, str, str]] = []
    for m in ("psnr-rgb", "ms-ssim-rgb"):
        if m in metrics and ref_pub:
            cols.append((pub_t, m, f"BD-rate {METRIC_LABELS[m]} vs BPG (published)"))
    for m in metrics:
        if ref_ours:
            cols.append((ours_t, m, f"BD-rate {METRIC_LABELS[m]} vs HEVC (ours)"))
    header += [c[2] for c in cols] + ["enc s/img", "dec s/img", "peak enc/dec MB"]
    rows = []
    for c in curves:
        r = c.results
        enc = [v for v in r["encoding_time"] if v is not None]
        dec = [v for v in r["decoding_time"] if v is not None]
        me = [v for v in r.get("encoding_peak_mem_mb", []) if v is not None]
        md = [v for v in r.get("decoding_peak_mem_mb", []) if v is not None]
        row = [c.label, str(len(r["bpp"])), f"{min(r['bpp']):.3f}–{max(r['bpp']):.3f}"]
        row += [fmt(t.get(c.name, {}).get(m), 1, True) + " %" if t.get(c.name, {}).get(m)
                is not None else "–" for t, m, _ in cols]
        row += [fmt(float(np.mean(enc)) if enc else None, 3),
                fmt(float(np.mean(dec)) if dec else None, 3),
                f"{fmt(max(me) if me else None, 0)} / {fmt(max(md) if md else None, 0)}"]
        rows.append(row)
    return markdown_table(header, rows)


def _summary_markdown(args, command, images, curves, refs, metrics, bd_md, cubic_md, hevc_md,
                      figures, skipped, failures, elapsed) -> str:
    info = machine_info()
    lines = [f"# Rate–distortion benchmark: {Path(args.dataset).name}", "",
             "Generated by", "", "```", command, "```", "",
             f"{len(images)} images from `{args.dataset}`, "
             f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; machine: "
             f"{info.get('cpu')} ({info.get('cpu_count')} cores, 1-min load "
             f"{info.get('load_average_1min', '?')} when the report was written), "
             f"Python {info.get('python')}, torch {info.get('torch', '?')}. "
             f"Run time {elapsed:.0f} s (cached points are not recomputed).", "",
             "bpp = real file bytes × 8 / pixels; every number is the mean over images of the "
             "per-image value (CompressAI protocol). MS-SSIM and PSNR on RGB, LPIPS = LPIPS v0.1 "
             "AlexNet, DISTS = Ding et al.; full resolution. BD-rates use log-rate pchip "
             "interpolation over the overlapping quality range; negative = fewer bits than the "
             "reference. See `docs/benchmarks.md` for the protocol.", "",
             "## Key table", "", _key_table(curves, refs, metrics), ""]
    if hevc_md:
        lines += [hevc_md, ""]
    realism_md = realism_table(curves)
    if realism_md:
        lines += [realism_md, ""]
    lines += ["## BD-rate tables", ""] + bd_md
    if cubic_md:
        lines += [cubic_md]
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    lines += ["## Points", ""]
    for c in curves:
        lines += [f"### {c.label} (`{c.name}.json`)", "", c.description, "",
                  points_markdown(c, metrics), ""]
    if skipped or failures:
        lines += ["## Codecs not measured", ""]
        lines += [f"- `{k}` skipped: {v}" for k, v in skipped.items()]
        lines += [f"- `{k}` failed: {v}" for k, v in failures.items()]
        lines += [""]
    return "\n".join(lines)
