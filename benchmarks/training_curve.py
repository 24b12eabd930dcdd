"""The fidelity model's training curve: Kodak BD-rate against the compute spent, one point per sitting.

    python -m benchmarks.training_curve benchmarks/results/training_curve

Reads ``sittings.json`` in that folder (per sitting: the model, the Kodak result JSON of the
benchmark run that measured it, cumulative CPU-hours and GPU-minutes of its training), scores
every result against the published BPG 4:4:4 and JPEG curves (BD-rate, PSNR-RGB, pchip, over
each pair's overlap), and writes ``curve.json`` and ``curve.png`` beside it. Each sitting after the
first also gets its slope, BD-rate points (vs BPG) per CPU-hour since the previous sitting: the
issue's test of a flattening curve reads it sitting by sitting. The result files
are copies of ``benchmarks/results/kodak/diffcodec.json`` as each model's benchmark run
committed it, so every point reruns from the repository alone.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.anchors import DEFAULT_KODAK_ANCHORS, load_anchors
from benchmarks.bdrate import bd_rate

ANCHORS = {"bpg": "bpg_444_x265_ycbcr", "jpeg": "jpeg"}


def score(folder: Path, anchors_path: Path) -> list[dict]:
    """One row per sitting with its BD-rates (percent) against the published anchors."""
    sittings = json.loads((folder / "sittings.json").read_text())
    anchors = load_anchors(anchors_path)
    rows = []
    for s in sittings:
        results = json.loads((folder / s["results"]).read_text())["results"]
        row = dict(s)
        for name, key in ANCHORS.items():
            curve = anchors[key]
            row[f"bd_rate_vs_{name}_percent"] = round(
                bd_rate(curve.bpp, curve.values["psnr-rgb"], results["bpp"], results["psnr-rgb"]), 2)
        row["bpp_range"] = [round(min(results["bpp"]), 4), round(max(results["bpp"]), 4)]
        rows.append(row)
    return with_slopes(rows)


def with_slopes(rows: list[dict]) -> list[dict]:
    """The rows, each after the first with ``bpg_points_per_cpu_hour`` (None for a sitting that
    spent no CPU time, such as a GPU-only one)."""
    out = [dict(rows[0])] if rows else []
    for before, row in zip(rows, rows[1:]):
        hours = row["cpu_hours"] - before["cpu_hours"]
        points = row["bd_rate_vs_bpg_percent"] - before["bd_rate_vs_bpg_percent"]
        out.append(row | {"bpg_points_per_cpu_hour": round(points / hours, 2) if hours > 0 else None})
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = [r["cpu_hours"] for r in rows]
    for name, style in (("bpg", "o-"), ("jpeg", "s--")):
        ax.plot(x, [r[f"bd_rate_vs_{name}_percent"] for r in rows], style, label=f"vs published {name.upper()}")
    for r in rows:
        gpu = f"\n(+{r['gpu_minutes']:g} GPU-min)" if r["gpu_minutes"] else ""
        ax.annotate(f"model {r['model'].split()[0]}{gpu}", (r["cpu_hours"], r["bd_rate_vs_bpg_percent"]),
                    textcoords="offset points", xytext=(4, 6), fontsize=7)
    ax.set_xlim(0, max(x) * 1.15 + 0.2)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("cumulative training compute (2-core CPU hours)")
    ax.set_ylabel("Kodak BD-rate, PSNR-RGB (%)")
    ax.set_title("diffcodec fidelity model: rate-distortion vs training compute")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training_curve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    p.add_argument("--anchors", type=Path, default=DEFAULT_KODAK_ANCHORS)
    args = p.parse_args(argv)
    rows = score(args.folder, args.anchors)
    (args.folder / "curve.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, args.folder / "curve.png")
    for r in rows:
        slope = r.get("bpg_points_per_cpu_hour")
        print(f"{r['model']:<28} {r['cpu_hours']:6.2f} CPU-h {r['gpu_minutes']:5g} GPU-min  "
              f"BD-rate vs BPG {r['bd_rate_vs_bpg_percent']:+7.2f} %  vs JPEG {r['bd_rate_vs_jpeg_percent']:+7.2f} %"
              + (f"  {slope:+6.2f} points/CPU-h" if slope is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
