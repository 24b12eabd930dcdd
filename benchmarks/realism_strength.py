"""What the realism knob does: LPIPS, DISTS, FID, KID and PSNR against the strength, and the seed's effect.

    python -m benchmarks.realism_strength ../shared/data/kodak --quality 10 \\
        --out benchmarks/results/realism/strength.json

Every image is compressed once at ``--quality`` by the default model and decoded with
``diffcodec.decompress(strength=S, seed=0)`` for each strength (0 is the fidelity decoder),
and again with seed 1 to measure how much the seed changes the pixels (mean absolute
difference in 8-bit levels and PSNR between the two decodes). FID and KID use the patch
protocol of ``benchmarks/metrics/fid.py`` (``--fid-patch``, half-shifted grid) over all
images; LPIPS (AlexNet), DISTS and PSNR-RGB are means over images. With ``--reference`` (a
benchmark result JSON, e.g. HEVC's) the plot marks that codec's values at the same mean bpp
(interpolated in log-rate). Writes the JSON and a PNG beside it.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np


def decode_rows(images: list[Path], quality: float, strengths: list[float], steps: int | None,
                patch: int) -> tuple[list[dict], float]:
    """Per-strength means (and FID/KID over all patches); returns (rows, mean bpp)."""
    import torch
    from PIL import Image

    import diffcodec
    from benchmarks.metrics import fid
    from diffcodec.image_io import to_tensor
    from diffcodec.perceptual.dists import DISTSNet
    from diffcodec.perceptual.lpips import LPIPSNet
    from diffcodec.psnr import psnr

    lpips, dists, inception = LPIPSNet("alex"), DISTSNet(), fid.InceptionFeatures()

    def decode(data: bytes, s: float, seed: int) -> np.ndarray:
        return np.asarray(diffcodec.decompress(data, strength=s, steps=steps if s else None, seed=seed).convert("RGB"))

    acc = {s: {"psnr": [], "lpips": [], "dists": [], "seed_mad": [], "seed_psnr": [], "feats": []} for s in strengths}
    ref_feats, bpps = [], []
    for path in images:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        data = diffcodec.compress(rgb, quality=quality)
        bpps.append(len(data) * 8 / (rgb.shape[0] * rgb.shape[1]))
        ref_feats.append(inception(fid.extract_patches(rgb, patch)))
        with torch.no_grad():
            x = to_tensor(rgb)
            x_lpips, x_dists = lpips.embed(x), dists.features(x)
        for s in strengths:
            out = decode(data, s, 0)
            other = decode(data, s, 1) if s else out  # strength 0 is the fidelity decoder: no noise is drawn
            a = acc[s]
            with torch.no_grad():
                y = to_tensor(out)
                a["lpips"].append(float(lpips.distance(lpips.embed(y), x_lpips)))
                a["dists"].append(float(dists.distance(dists.features(y), x_dists)))
            a["psnr"].append(psnr(rgb, out))
            a["seed_mad"].append(float(np.abs(out.astype(np.int16) - other.astype(np.int16)).mean()))
            a["seed_psnr"].append(psnr(out, other))
            a["feats"].append(inception(fid.extract_patches(out, patch)))
    ref = np.concatenate(ref_feats)
    rows = []
    for s in strengths:
        a = acc[s]
        f = np.concatenate(a.pop("feats"))
        row = {"strength": s, **{k: float(np.mean(v)) for k, v in a.items()}}
        row.update(fid=fid.fid_from_features(ref, f), kid=fid.kid_from_features(ref, f), patches=int(len(f)))
        rows.append(row)
    return rows, float(np.mean(bpps))


def reference_at(path: Path, bpp: float) -> dict:
    """A result JSON's metrics at ``bpp`` (linear in log-rate), where its curve reaches."""
    r = json.loads(path.read_text())["results"]
    out = {}
    for key in ("psnr-rgb", "lpips", "dists", "fid", "kid"):
        pairs = sorted((b, v) for b, v in zip(r["bpp"], r.get(key, [])) if v is not None)
        if len(pairs) >= 2 and pairs[0][0] <= bpp <= pairs[-1][0]:
            out[key] = float(np.interp(math.log(bpp), np.log([b for b, _ in pairs]), [v for _, v in pairs]))
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, ref = result["rows"], result.get("reference", {})
    xs = [r["strength"] for r in rows]
    panels = [("lpips", "LPIPS-Alex", "lpips"), ("dists", "DISTS", "dists"), ("fid", "FID (patches)", "fid"),
              ("psnr", "PSNR-RGB [dB]", "psnr-rgb")]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for ax, (key, label, ref_key) in zip(axes, panels):
        ax.plot(xs, [r[key] for r in rows], "o-", label="diffcodec realism")
        if ref_key in ref:
            ax.axhline(ref[ref_key], ls="--", color="grey", label=f"{result['reference_label']} at {result['bpp']:.3f} bpp")
        ax.set_xlabel("strength (0 = fidelity decoder)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    # one legend under the panels, where it hides no curve or tick label
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"{result['dataset']}: quality {result['quality']:g} ({result['bpp']:.3f} bpp), "
                 f"{result['steps']} steps", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path)
    p.add_argument("--out", type=Path, required=True, help="JSON path (the PNG is written beside it)")
    p.add_argument("--quality", type=float, default=10.0)
    p.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--steps", type=int, default=None, help="sampler steps [default: the realism decoder's]")
    p.add_argument("--fid-patch", type=int, default=128)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reference", type=Path, default=None, help="a benchmark result JSON to mark (e.g. hevc.json)")
    args = p.parse_args(argv)
    import torch

    from diffcodec.image_io import IMAGE_SUFFIXES
    from diffcodec.zoo.registry import DEFAULT_MODEL_ID, realism_decoder_for

    torch.set_num_threads(args.threads)
    images = sorted(f for f in args.dataset.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)[: args.limit]
    if not images:
        print(f"error: no images in {args.dataset}", file=sys.stderr)
        return 2
    decoder = realism_decoder_for(DEFAULT_MODEL_ID)
    t0 = time.time()
    rows, bpp = decode_rows(images, args.quality, args.strengths, args.steps, args.fid_patch)
    result = {
        "command": "python -m benchmarks.realism_strength " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "dataset": args.dataset.name, "images": len(images), "quality": args.quality, "bpp": bpp,
        "steps": args.steps or decoder.steps, "default_strength": decoder.strength, "fid_patch": args.fid_patch,
        "seconds": round(time.time() - t0, 1), "rows": rows,
        "notes": "seed_mad: mean |seed 0 - seed 1| in 8-bit levels; seed_psnr: PSNR between the two decodes; "
                 "LPIPS (and, from realism-cc5-cpu2 on, DISTS) is in the realism decoder's training loss; "
                 "FID and KID are not",
    }
    if args.reference is not None:
        result["reference_label"] = json.loads(args.reference.read_text()).get("name", args.reference.stem)
        result["reference"] = reference_at(args.reference, bpp)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    for r in rows:
        print(f"strength {r['strength']:.2f}: PSNR {r['psnr']:.2f}  LPIPS {r['lpips']:.4f}  DISTS {r['dists']:.4f}  "
              f"FID {r['fid']:.1f}  KID {r['kid']:.4f}  seed MAD {r['seed_mad']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
