"""Export a training checkpoint's EMA weights to a shipped fp16 safetensors file.

    python -m diffcodec.training.export runs/base/checkpoint.pt diffcodec/zoo/weights/hyperprior-vr-cpu1.safetensors
    python -m diffcodec.training.export runs/gpu/snapshot diffcodec/zoo/weights/hyperprior-vr-cpu1.safetensors

Prints the SHA-256 to pin in :mod:`diffcodec.zoo.registry`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior
from diffcodec.training.parts import load_snapshot
from diffcodec.zoo.weight_files import export


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="checkpoint.pt or a snapshot directory")
    p.add_argument("out", type=Path)
    p.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA")
    args = p.parse_args(argv)
    if args.checkpoint.is_dir():  # a compact snapshot (diffcodec.training.parts)
        model, ema, step, config = load_snapshot(args.checkpoint)
        ck = {"model": model, "ema": ema, "step": step, "config": config}
    else:
        ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    if "width" in ck["config"]:  # a realism-decoder denoiser (diffcodec.training.realism)
        from diffcodec.models.denoiser import DenoiserConfig, ResidualDenoiser
        from diffcodec.zoo.weight_files import export_denoiser

        denoiser = ResidualDenoiser(DenoiserConfig.from_dict(ck["config"]))
        denoiser.load_state_dict(ck["model" if args.raw else "ema"])
        print(f"step {ck['step']}  sha256 {export_denoiser(denoiser.eval(), args.out)}  -> {args.out}")
        return
    net = VariableRateHyperprior(ModelConfig(**ck["config"]))
    net.load_state_dict(ck["model" if args.raw else "ema"], strict=False)
    # The EMA copy's quantiles (medians) are only trained in the raw model: take them from there.
    net.entropy_bottleneck.quantiles.data.copy_(ck["model"]["entropy_bottleneck.quantiles"])
    digest = export(net.eval(), args.out)
    print(f"step {ck['step']}  sha256 {digest}  -> {args.out}")


if __name__ == "__main__":
    main()
