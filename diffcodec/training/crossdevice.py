"""Files made on a GPU decode on a CPU: make such files on a GPU, check them on a CPU.

    python -m diffcodec.training.crossdevice make OUTDIR --device cuda     # on the lent GPU machine
    python -m diffcodec.training.crossdevice check OUTDIR                   # here, on the CPU

``make`` compresses the bundled sample at a few qualities on the GPU and on the CPU, and
decodes the GPU files on the GPU (fidelity decoder) too. ``check`` decodes the GPU files on
the CPU and compares: the entropy decoder must recover the same latent the GPU encoder coded
(else the image would be garbage, or the checksum would fail), and the CPU reconstruction may
differ from the GPU one only by the float rounding of the synthesis transform.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from diffcodec.psnr import psnr

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "chelsea.png"
QUALITIES = (10, 50, 90)


def make(out: Path, device: str) -> None:
    """Write gpu-qNN.dcf, cpu-qNN.dcf and gpu-qNN.gpu.png for each quality, and ENV.json."""
    import torch

    from diffcodec.api import compress, decompress

    out.mkdir(parents=True, exist_ok=True)
    env = {"torch": torch.__version__, "numpy": np.__version__, "device": device,
           "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"}
    (out / "ENV.json").write_text(json.dumps(env, indent=1))
    for q in QUALITIES:
        gpu_file = compress(SAMPLE, q, device=device)
        (out / f"gpu-q{q}.dcf").write_bytes(gpu_file)
        (out / f"cpu-q{q}.dcf").write_bytes(compress(SAMPLE, q, device="cpu"))
        decompress(gpu_file, device=device, steps=0).save(out / f"gpu-q{q}.gpu.png")
        print(f"q{q}: {len(gpu_file)} bytes on {device}", flush=True)


def check(directory: Path) -> list[dict]:
    """Decode every gpu-qNN.dcf on the CPU; per file the figures the test and the note report."""
    from diffcodec.api import decompress

    source = np.asarray(Image.open(SAMPLE).convert("RGB"))
    rows = []
    for gpu_path in sorted(directory.glob("gpu-q*.dcf"), key=lambda p: int(p.stem[5:])):
        q = int(gpu_path.stem[5:])
        gpu_file = gpu_path.read_bytes()
        cpu_file = (directory / f"cpu-q{q}.dcf").read_bytes()
        on_cpu = np.asarray(decompress(gpu_file, device="cpu", steps=0))
        cpu_made = np.asarray(decompress(cpu_file, device="cpu", steps=0))
        row = {
            "quality": q, "gpu_bytes": len(gpu_file), "cpu_bytes": len(cpu_file),
            "same_bytes": gpu_file == cpu_file,
            "psnr_gpu_file_on_cpu": round(psnr(on_cpu, source), 3),
            "psnr_cpu_file_on_cpu": round(psnr(cpu_made, source), 3),
        }
        gpu_png = directory / f"gpu-q{q}.gpu.png"
        if gpu_png.exists():  # the committed copy keeps one GPU decode
            on_gpu = np.asarray(Image.open(gpu_png).convert("RGB"))
            row["psnr_gpu_file_on_gpu"] = round(psnr(on_gpu, source), 3)
            row["max_diff_cpu_vs_gpu_decode"] = int(np.abs(on_cpu.astype(int) - on_gpu.astype(int)).max())
            row["share_pixels_differing"] = round(float(np.mean(np.any(on_cpu != on_gpu, axis=2))), 6)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("out", type=Path)
    m.add_argument("--device", default="cuda")
    c = sub.add_parser("check")
    c.add_argument("directory", type=Path)
    args = p.parse_args(argv)
    if args.command == "make":
        make(args.out, args.device)
    else:
        rows = check(args.directory)
        if not rows:
            sys.exit(f"error: no gpu-q*.dcf files in {args.directory}")
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
