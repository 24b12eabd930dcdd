"""Command line: ``python -m benchmarks run DATASET --out DIR`` (also ``diffcodec benchmark``)."""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from benchmarks import codecs as codec_registry
from benchmarks import metrics as metric_registry
from benchmarks.anchors import DEFAULT_KODAK_ANCHORS, load_anchors
from benchmarks.cache import DEFAULT_CACHE_DIR

log = logging.getLogger("benchmarks")


def _parse_settings(items: Sequence[str]) -> dict[str, list[float]]:
    """['jpeg420=10,50,90', ...] -> {'jpeg420': [10.0, 50.0, 90.0]}."""
    out: dict[str, list[float]] = {}
    for item in items:
        name, _, values = item.partition("=")
        if not values:
            raise argparse.ArgumentTypeError(f"--settings expects CODEC=V1,V2,...; got {item!r}")
        out[name.strip()] = [float(v) for v in values.split(",") if v.strip()]
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="Rate-distortion benchmark suite for diffcodec.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="encode/decode a folder of images with every codec, "
                       "measure, and write JSON/Markdown/plots")
    r.add_argument("dataset", type=Path, help="folder of images, e.g. ../shared/data/kodak")
    r.add_argument("--out", type=Path, required=True, help="output folder")
    r.add_argument("--codecs", default=None,
                   help="comma list of codecs or aliases (default: all): "
                   + ", ".join(codec_registry.codec_names())
                   + "; aliases: " + ", ".join(codec_registry.ALIASES))
    r.add_argument("--metrics", default=None,
                   help="comma list (default: psnr-rgb,ms-ssim-rgb,lpips,dists); known: "
                   + ", ".join(metric_registry.metric_names()))
    r.add_argument("--settings", action="append", default=[], metavar="CODEC=V1,V2,...",
                   help="override a codec's setting sweep (repeatable)")
    r.add_argument("--workers", type=int, default=1, help="parallel worker processes "
                   "(default 1; diffcodec always runs in the main process)")
    r.add_argument("--threads", type=int, default=1,
                   help="torch threads for metric computation (default 1)")
    r.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                   help=f"result cache (default {DEFAULT_CACHE_DIR})")
    r.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    r.add_argument("--limit", type=int, default=None, help="use only the first N images")
    r.add_argument("--anchors", type=Path, default=Path("../shared/anchors/kodak_published.json"),
                   help="published CompressAI curves to overlay / compare against")
    r.add_argument("--perceptual-anchors", type=Path,
                   default=Path("../shared/anchors/perceptual_anchors.json"))
    r.add_argument("--crop-image", default=None,
                   help="image name for the side-by-side crop figure (default kodim23 or first)")
    r.add_argument("--crop-bpp", type=float, default=None,
                   help="target bpp of the crop figure (default: the diffcodec point nearest 0.2)")
    r.add_argument("--no-plots", action="store_true", help="skip PNG figures")
    r.add_argument("--fid", action="store_true",
                   help="also compute FID/KID on image patches (refused for sets with too few patches)")
    r.add_argument("--fid-patch", type=int, default=256,
                   help="FID/KID patch side (128 for Kodak: 936 patches with the half-shifted grid)")
    r.add_argument("--fid-max-bpp", type=float, default=None,
                   help="FID/KID only for settings at most this many bpp (mean over the images)")
    r.add_argument("--fid-codecs", default=None, help="comma list: FID/KID only for these codecs")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("-v", "--verbose", action="store_true")

    b = sub.add_parser("bdrate", help="BD-rate of result JSON files against an anchor JSON")
    b.add_argument("anchor", help="a result JSON file, or published:KEY for a curve of --anchors "
                                   "(e.g. published:jpeg, published:bpg_444_x265_ycbcr)")
    b.add_argument("tests", type=Path, nargs="+")
    b.add_argument("--metric", default="psnr-rgb")
    b.add_argument("--method", choices=("pchip", "cubic"), default="pchip")
    b.add_argument("--anchors", type=Path, default=DEFAULT_KODAK_ANCHORS,
                   help="published curves file for published:KEY [default: %(default)s]")
    b.add_argument("--quality-range", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                   help="only this interval of the metric (within the overlap), e.g. 26.5 40")
    b.add_argument("--per-point", action="store_true",
                   help="also print, at each test point's rate, the anchor's value there and the difference")
    return p


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from benchmarks import runner, summary
    from benchmarks.dataset import list_images

    codec_names = codec_registry.expand_names(args.codecs)
    metric_names = metric_registry.expand_names(args.metrics)
    overrides = _parse_settings(args.settings)
    unknown = set(overrides) - set(codec_names)
    if unknown:
        log.error("--settings for codecs not selected: %s", ", ".join(sorted(unknown)))
        return 2
    images = list_images(args.dataset, args.limit)
    log.info("%d images from %s", len(images), args.dataset)

    available: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    codecs = {}
    for name in codec_names:
        codec = codec_registry.get_codec(name)
        ok, why = codec.available()
        if not ok:
            skipped[name] = why
            print(f"NOTICE: codec {name} skipped: {why}", file=sys.stderr)
            continue
        codecs[name] = codec
        available[name] = list(overrides.get(name, codec.default_settings))
    metrics = {}
    for m in metric_names:
        metric = metric_registry.get_metric(m)
        try:
            metric.prepare  # noqa: B018 (weights are loaded lazily; check them now)
            metric.version()
            _check_metric(metric)
        except Exception as exc:
            print(f"NOTICE: metric {m} skipped: {exc}", file=sys.stderr)
            continue
        metrics[m] = metric

    spec = runner.RunSpec(
        settings=available, metrics=list(metrics),
        codec_versions={n: c.version() for n, c in codecs.items()},
        metric_versions={n: m.version() for n, m in metrics.items()},
        cache_root=None if args.no_cache else str(args.cache_dir), threads=args.threads)
    if args.fid and not args.no_cache:  # keep patch features while decoding (the FID pass reads them)
        from benchmarks import fid_pass
        from benchmarks.metrics.fid import FIDRefused

        try:
            fid_pass.check_images(images, args.fid_patch)
            spec.fid_patch, spec.fid_max_bpp = args.fid_patch, args.fid_max_bpp
            spec.fid_codecs = args.fid_codecs.split(",") if args.fid_codecs else None
        except FIDRefused:
            pass  # the FID pass reports it
    t0 = time.time()
    outcome = runner.run(images, spec, workers=args.workers, progress=not args.quiet)
    elapsed = time.time() - t0
    for name, msg in outcome.failures.items():
        print(f"NOTICE: codec {name} failed: {msg}", file=sys.stderr)
    extra: dict = {}
    if args.fid:
        from benchmarks import fid_pass
        from benchmarks.metrics.fid import FIDRefused

        try:
            extra = fid_pass.compute(images, codecs, spec, outcome, progress=not args.quiet, patch=args.fid_patch,
                                     max_bpp=args.fid_max_bpp,
                                     only=args.fid_codecs.split(",") if args.fid_codecs else None)
        except FIDRefused as exc:
            print(f"NOTICE: {exc}", file=sys.stderr)
            skipped["fid/kid"] = str(exc)
        except Exception as exc:  # weights missing etc.
            print(f"NOTICE: FID/KID not computed: {exc}", file=sys.stderr)
            skipped["fid/kid"] = str(exc)
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in argv)
    summary.write_all(args=args, command=command, images=images, codecs=codecs, spec=spec,
                      outcome=outcome, skipped=skipped, elapsed=elapsed, extra=extra)
    print(f"{outcome.computed} points computed, {outcome.cached} from cache, "
          f"{elapsed:.0f} s; results in {args.out}", file=sys.stderr)
    return 0


def _check_metric(metric) -> None:
    """Load a metric's weights now so that a missing package is reported before the run."""
    import numpy as np

    dummy = np.zeros((32, 32, 3), np.uint8)
    if metric.name.startswith("ms-ssim"):
        return
    metric.prepare(dummy)


def cmd_bdrate(args: argparse.Namespace) -> int:
    from benchmarks import bdrate
    from benchmarks.report import HIGHER_IS_BETTER, read_curve

    if args.anchor.startswith("published:"):
        key = args.anchor.split(":", 1)[1]
        curves = load_anchors(args.anchors)
        if key not in curves or args.metric not in curves[key].values:
            log.error("no published curve %r with %s in %s", key, args.metric, args.anchors)
            return 2
        a_label, a_bpp, a_values = f"{key} (published)", curves[key].bpp, curves[key].values[args.metric]
    else:
        anchor = read_curve(Path(args.anchor))
        a_label, a_bpp, a_values = anchor.label, anchor.results["bpp"], anchor.results[args.metric]
    span = "" if args.quality_range is None else f", {args.metric} in {args.quality_range[0]:g}..{args.quality_range[1]:g}"
    higher = HIGHER_IS_BETTER.get(args.metric, True)
    for t in args.tests:
        c = read_curve(t)
        v = bdrate.bd_rate(a_bpp, a_values, c.results["bpp"], c.results[args.metric], method=args.method,
                           higher_is_better=higher,
                           quality_range=tuple(args.quality_range) if args.quality_range else None)
        print(f"{c.label}: BD-rate ({args.metric}, {args.method}{span}) vs {a_label}: {v:+.2f} %")
        if args.per_point:
            rates, values = c.results["bpp"], c.results[args.metric]
            for r, q, qa in zip(rates, values, bdrate.anchor_quality_at(a_bpp, a_values, rates, higher)):
                there = "outside the anchor's rates" if qa is None else f"anchor {qa:.4f}, difference {q - qa:+.4f}"
                print(f"  {r:.4f} bpp: {args.metric} {q:.4f}; {there}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(message)s")
    if args.command == "run":
        return cmd_run(args, argv)
    if args.command == "bdrate":
        return cmd_bdrate(args)
    return 2
