"""Training speed of the fidelity model in fp32 and in bf16, and whether bf16 learns the same.

    python -m benchmarks.train_speed --out benchmarks/results/train_speed/speed.json
    python -m benchmarks.train_speed --equal-steps 300 --out benchmarks/results/train_speed/equal.json
    python -m benchmarks.train_speed --model realism --crop 128 --out benchmarks/results/train_speed/realism.json
    python -m benchmarks.train_speed --model realism --crop 128 --precisions fp32 --ablate dists adv \
        --out benchmarks/results/train_speed/realism-terms.json

``--model realism`` times the realism decoder's training step instead (the default model's
denoiser on the frozen default codec, ``--objective unrolled`` with the shipped decoder's loss:
unrolled DDIM steps, LPIPS, DISTS, projected discriminator and both optimizer steps).
``--ablate`` also times that step without each named term (its weight zero; ``adv``: no
discriminator at all), so each term's share of the step is measured, not guessed;
``--d-condition`` times it with conditional discriminator heads. ``--precisions`` picks the
timed precisions (bf16 is emulated, and several times slower, on CPUs without bf16 units).

Speed: one full training step (forward, backward, gradient clipping, Adam) of the shipped
default model on the same batches, timed alone, in ``--rounds`` alternating rounds per
precision. Equal runs (``--equal-steps``): both precisions train the same number of steps
from the same weights on the same crops and rate levels; then both EMA-free networks are
scored with the real entropy coder on Kodak and compared by BD-rate (bf16 against fp32).
Run nothing else CPU-heavy beside it: two OpenMP jobs at once slow each other about tenfold.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from diffcodec.coding.codec import Codec
from diffcodec.models.denoiser import ResidualDenoiser
from diffcodec.models.discriminator import ProjectedHeads
from diffcodec.models.precision import has_native_bf16, memory_format_for
from diffcodec.models.hyperprior import VariableRateHyperprior
from diffcodec.perceptual.backbones import AlexNetFeatures
from diffcodec.training.data import CropSampler, list_images, load_corpus
from diffcodec.training.evaluate import evaluate
from diffcodec.training.fidelity import load_learned, rd_loss, with_residual_blocks, with_transform_width
from diffcodec.training.loop import SkipNonFinite
from diffcodec.training.realism import UnrolledObjective, optimisation_step, perceptual_networks, unrolled_loss
from diffcodec.zoo.registry import DEFAULT_MODEL_ID, DENOISERS, MODELS, WEIGHTS_DIR, load_model
from diffcodec.zoo.weight_files import export, load_denoiser, load_weights

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def cpu_description() -> dict:
    """The CPU's model name and its bf16 instruction sets (what decides bf16's speed-up)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {"cpu": name, "bf16_units": sorted(f for f in flags if "bf16" in f)}


def fresh_model(init: Path, precision: str, residual_blocks: int = 0,
                transform_width: int = 0) -> tuple[VariableRateHyperprior, torch.optim.Optimizer]:
    """The shipped network in fp32 masters (channels-last), computing its transforms in ``precision``
    (grown by ``residual_blocks`` per scale and widened to ``transform_width``, as the training
    flags of those names do)."""
    shipped = load_weights(init, None).net
    model = VariableRateHyperprior(shipped.config)
    load_learned(model, shipped.state_dict())
    if residual_blocks:
        model = with_residual_blocks(model, residual_blocks)
    if transform_width:
        model = with_transform_width(model, transform_width)
    model = model.to(memory_format=torch.channels_last).train()
    model.transform_dtype = DTYPES[precision]
    params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    return model, torch.optim.Adam(params, lr=1e-4)


def train_step(model: VariableRateHyperprior, opt: torch.optim.Optimizer, x: torch.Tensor, t: torch.Tensor) -> float:
    stats = rd_loss(model, x, t)
    opt.zero_grad(set_to_none=True)
    stats["loss"].backward()
    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
    opt.step()
    return stats["loss"].item()


def batches(data: Path, crop: int, batch: int, count: int, levels: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` fixed (crops, levels) pairs, the same for every precision."""
    sampler = CropSampler(load_corpus(data, crop), crop, seed)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        x = sampler.sample(batch).float().div_(255.0).contiguous(memory_format=torch.channels_last)
        out.append((x, torch.rand(batch, generator=gen) * (levels - 1)))
    return out


def time_precision(init: Path, precision: str, work: list, warmup: int, residual_blocks: int = 0,
                   transform_width: int = 0, compiled: bool = False) -> list[float]:
    """Seconds per step for each batch after ``warmup`` untimed ones (``compiled``: the network
    under ``torch.compile``, whose compilation falls in the untimed steps)."""
    model, opt = fresh_model(init, precision, residual_blocks, transform_width)
    step_model = torch.compile(model) if compiled else model
    times = []
    for i, (x, t) in enumerate(work):
        start = time.perf_counter()
        train_step(step_model, opt, x, t)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


#: the terms of the shipped realism decoder's sittings (its model card): what --model realism times.
#: The weights are realism-cc9-cpu4's; they change no work done (realism-amx.json ran 50 / 1 / 0.2)
REALISM_OBJECTIVE = UnrolledObjective(unroll=(1, 2), pixel_mse_weight=30.0, dists_weight=2.0, adv_weight=0.5)


def time_realism(precision: str, work: list, warmup: int, without: str | None = None,
                 conditional: bool = False) -> list[float]:
    """Seconds per realism training step for each batch after ``warmup`` untimed ones; the
    random draws of step ``i`` (levels, strengths, noise, unrolled steps) are the same in every
    precision. ``without``: a term of the loss left out (``dists`` or ``adv``)."""
    dtype = DTYPES[precision]
    objective = REALISM_OBJECTIVE
    if without is not None:
        objective = dataclasses.replace(objective, **{f"{without}_weight": 0.0})
    codec_net = copy.deepcopy(load_model(DEFAULT_MODEL_ID).net).float().eval().requires_grad_(False)
    shipped = load_denoiser(WEIGHTS_DIR / DENOISERS[DEFAULT_MODEL_ID].filename, None).net
    net = ResidualDenoiser(shipped.config)
    net.load_state_dict(shipped.state_dict())
    net = net.to(memory_format=memory_format_for(dtype)).train()
    optimizers = {"opt": torch.optim.AdamW(net.parameters(), lr=1e-5, weight_decay=0.0)}
    heads = None
    if objective.adv_weight > 0:
        heads = ProjectedHeads(AlexNetFeatures.channels, conditional=conditional)
        optimizers["d_opt"] = torch.optim.Adam(heads.parameters(), lr=2e-4, betas=(0.5, 0.999))
    lpips, dists = perceptual_networks(True, objective.dists_weight > 0, dtype)
    guard, times = SkipNonFinite(), []
    for i, (x, _) in enumerate(work):
        start = time.perf_counter()
        torch.manual_seed(i)
        stats = unrolled_loss(net, codec_net, x, objective, lpips, dists, heads, dtype)
        optimisation_step(stats, net, heads, optimizers, guard, i)["loss"].item()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def equal_run(init: Path, precision: str, work: list, images: list[Path], qualities: list[float]) -> dict:
    """Train on ``work`` in ``precision``, then code ``images`` for real: the RD points and the losses."""
    model, opt = fresh_model(init, precision)
    losses = [train_step(model, opt, x, t) for x, t in work]
    model.transform_dtype = torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        export(model.eval(), Path(tmp) / "w.safetensors")
        codec = Codec(load_weights(Path(tmp) / "w.safetensors", None))
    rows = evaluate(codec, images, qualities)
    tail = max(1, len(losses) // 10)
    return {"loss_first": losses[0], "loss_last_tenth_mean": statistics.fmean(losses[-tail:]),
            "points": [{"quality": q, "bpp": b, "psnr": p} for q, b, p in rows]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    p.add_argument("--init", type=Path, default=None, help="weights to start from (default: the default model's)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--steps", type=int, default=8, help="timed steps per round and precision")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--equal-steps", type=int, default=0,
                   help="instead of timing: train this many steps in each precision and compare RD on Kodak")
    p.add_argument("--kodak", type=Path, default=Path("../shared/data/kodak"))
    p.add_argument("--limit", type=int, default=6, help="Kodak images scored after the equal runs")
    p.add_argument("--qualities", type=float, nargs="+", default=[0, 25, 50, 75, 100])
    p.add_argument("--residual-blocks", type=int, default=0,
                   help="also time the network grown to this many residual blocks per scale (bf16 only)")
    p.add_argument("--transform-width", type=int, default=0,
                   help="also time the network with g_a and g_s widened to this many channels (bf16 only)")
    p.add_argument("--model", choices=("fidelity", "realism"), default="fidelity",
                   help="whose training step to time (realism: timing only, no --equal-steps)")
    p.add_argument("--precisions", nargs="+", choices=tuple(DTYPES), default=list(DTYPES),
                   help="timed precisions (speed only)")
    p.add_argument("--ablate", nargs="+", choices=("dists", "adv"), default=[],
                   help="realism: also time the step without each of these terms")
    p.add_argument("--d-condition", action="store_true", help="realism: time conditional discriminator heads")
    p.add_argument("--compile", action="store_true",
                   help="fidelity: also time each precision with the network under torch.compile")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    init = args.init or Path(os.path.relpath(WEIGHTS_DIR / MODELS[DEFAULT_MODEL_ID].filename))
    levels = load_weights(init, None).net.config.levels
    if args.model == "realism" and (args.equal_steps or args.residual_blocks or args.transform_width or args.init):
        p.error("--model realism times the shipped realism decoder only "
                "(no --equal-steps, --residual-blocks, --transform-width, --init)")
    if args.model == "realism" and args.compile:
        p.error("--compile times the fidelity model's step")
    if args.model != "realism" and (args.ablate or args.d_condition):
        p.error("--ablate and --d-condition time terms of the realism decoder's loss (--model realism)")
    if args.equal_steps and args.precisions != list(DTYPES):
        p.error("--equal-steps compares both precisions")
    if (args.residual_blocks or args.transform_width) and "bf16" not in args.precisions:
        p.error("--residual-blocks and --transform-width are timed in bf16")
    result: dict = {"command": "python -m benchmarks.train_speed " + " ".join(argv or __import__("sys").argv[1:]),
                    "model": args.model, "init": str(init), "batch": args.batch, "crop": args.crop, "threads": args.threads,
                    "torch": torch.__version__, **cpu_description(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "native_bf16": has_native_bf16(torch.device("cpu"))}
    if args.model == "realism":
        result |= {"denoiser": DENOISERS[DEFAULT_MODEL_ID].filename, "conditional_heads": args.d_condition}
    if args.equal_steps:
        from benchmarks.bdrate import bd_rate

        work = batches(args.data, args.crop, args.batch, args.equal_steps, levels, seed=1)
        images = list_images(args.kodak)[: args.limit]
        runs = {prec: equal_run(init, prec, work, images, args.qualities) for prec in DTYPES}
        curve = {prec: ([pt["bpp"] for pt in r["points"]], [pt["psnr"] for pt in r["points"]]) for prec, r in runs.items()}
        result |= {"equal_steps": args.equal_steps, "images": [i.name for i in images], "runs": runs,
                   "bd_rate_bf16_vs_fp32_percent": bd_rate(*curve["fp32"], *curve["bf16"])}
        print(f"BD-rate of bf16 against fp32 after {args.equal_steps} equal steps: "
              f"{result['bd_rate_bf16_vs_fp32_percent']:+.2f} %")
    else:
        work = batches(args.data, args.crop, args.batch, args.warmup + args.steps, levels, seed=0)
        grown, widened = f"bf16+{args.residual_blocks}res", f"bf16+width{args.transform_width}"
        # timed arm -> (precision, residual blocks, width, term left out, compiled)
        arms = {prec: (prec, 0, 0, None, False) for prec in args.precisions}
        for prec in args.precisions:
            for term in args.ablate:
                arms[f"{prec}-no-{term}"] = (prec, 0, 0, term, False)
            if args.compile:
                arms[f"{prec}+compile"] = (prec, 0, 0, None, True)
        if args.residual_blocks:
            arms[grown] = ("bf16", args.residual_blocks, 0, None, False)
        if args.transform_width:
            arms[widened] = ("bf16", 0, args.transform_width, None, False)
        times: dict[str, list[float]] = {name: [] for name in arms}
        for _ in range(args.rounds):
            for name, (prec, blocks, width, without, compiled) in arms.items():
                times[name] += (time_realism(prec, work, args.warmup, without, args.d_condition)
                                if args.model == "realism"
                                else time_precision(init, prec, work, args.warmup, blocks, width, compiled))
        medians = {prec: statistics.median(v) for prec, v in times.items()}
        result |= {"seconds_per_step": times, "median_seconds_per_step": medians}
        for prec in args.precisions:
            print(f"{prec} {medians[prec]:.3f} s/step")
        if len(args.precisions) == 2:
            result["speedup_bf16"] = medians["fp32"] / medians["bf16"]
            print(f"bf16 speed-up: {result['speedup_bf16']:.2f}x")
        if args.compile:
            result["compile_speedup"] = {prec: medians[prec] / medians[f"{prec}+compile"] for prec in args.precisions}
            for prec, gain in result["compile_speedup"].items():
                print(f"{prec}+compile {medians[f'{prec}+compile']:.3f} s/step: {gain:.2f}x")
        if args.ablate:  # what leaving a term out saves, as a share of the whole step
            result["term_share_of_step"] = {
                prec: {term: 1 - medians[f"{prec}-no-{term}"] / medians[prec] for term in args.ablate}
                for prec in args.precisions}
            for prec, shares in result["term_share_of_step"].items():
                print(f"{prec}: " + ", ".join(f"{term} {share:.0%} of the step" for term, share in shares.items()))
        if args.residual_blocks:
            result["residual_blocks"] = args.residual_blocks
            result["grown_cost_vs_bf16"] = medians[grown] / medians["bf16"]
            print(f"{grown} {medians[grown]:.3f} s/step: {result['grown_cost_vs_bf16']:.2f}x bf16's")
        if args.transform_width:
            result["transform_width"] = args.transform_width
            result["widened_cost_vs_bf16"] = medians[widened] / medians["bf16"]
            print(f"{widened} {medians[widened]:.3f} s/step: {result['widened_cost_vs_bf16']:.2f}x bf16's")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
