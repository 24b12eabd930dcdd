"""Throughput of ``diffcodec compress|decompress DIR -o OUT --workers N`` against ``--workers 1``.

    python -m benchmarks.batch_throughput ../shared/data/kodak --workers 1 2 --out benchmarks/results/batch/throughput.json

Each setting runs the CLI as a child process on the whole folder (wall time includes
starting the processes and loading the model, as a user sees it) and checks that every
setting wrote the same ``.dcf`` bytes as the first.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def run_cli(args: list[str]) -> float:
    cli = str(Path(sys.executable).with_name("diffcodec"))
    t0 = time.perf_counter()
    subprocess.run([cli, *args, "--quiet"], check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.batch_throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads in all (shared by workers)")
    p.add_argument("--quality", type=float, default=75.0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    images = sorted(args.dataset.glob("*.png"))
    pixels = sum(Image.open(i).size[0] * Image.open(i).size[1] for i in images)
    rows, reference = [], None
    with tempfile.TemporaryDirectory(prefix="dc_batch_") as tmp:
        for n in args.workers:
            dcf, png = Path(tmp) / f"dcf{n}", Path(tmp) / f"png{n}"
            common = ["--workers", str(n), "--threads", str(args.threads)]
            enc = run_cli(["compress", str(args.dataset), "-o", str(dcf), "--quality", str(args.quality), *common])
            dec = run_cli(["decompress", str(dcf), "-o", str(png), *common])
            outputs = {f.name: f.read_bytes() for f in sorted(dcf.iterdir())}
            reference = reference or outputs
            rows.append({"workers": n, "threads_per_worker": max(1, args.threads // n), "files": len(images),
                         "compress_s": round(enc, 2), "decompress_s": round(dec, 2),
                         "compress_images_per_s": round(len(images) / enc, 3),
                         "compress_mp_per_s": round(pixels / 1e6 / enc, 3),
                         "decompress_images_per_s": round(len(images) / dec, 3),
                         "decompress_mp_per_s": round(pixels / 1e6 / dec, 3),
                         "same_bytes_as_first": outputs == reference})
            print(rows[-1], flush=True)
    result = {"command": "python -m benchmarks.batch_throughput " + " ".join(argv if argv is not None else sys.argv[1:]),
              "dataset": str(args.dataset), "cpu_count": os.cpu_count(), "quality": args.quality, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
