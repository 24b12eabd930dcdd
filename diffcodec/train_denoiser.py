"""Train the realism decoder's denoiser on top of a frozen codec (resumable).

    python -m diffcodec.train_denoiser --data ../shared/data/train --out runs/denoiser --steps 20000

Per crop: a random rate level, the frozen codec's fidelity reconstruction ``x_f`` (real
rounding), the normalised residual ``r_0 = (x - x_f) / scale``, a random time ``t`` and
``r_t = alpha r_0 + sigma eps``; the loss is the MSE of the v-prediction, plus optionally
LPIPS (AlexNet) and DISTS (the benchmark's offline implementations) of ``x_f + scale * r_0_hat``
against the crop; ``--t-one-fraction`` puts a share of each batch at ``t = 1``, the
one-step decode's input. With probability ``--p-uncond`` the condition ``x_f`` is dropped, which
classifier-free guidance needs at decode time. Checkpoints, ``--snapshot``, ``--init DIR``
and ``--minutes`` work as in :mod:`diffcodec.train`.
"""
from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import torch

from diffcodec.data import CropSampler, load_corpus
from diffcodec.denoiser import DenoiserConfig, ResidualDenoiser
from diffcodec.parts import load_snapshot, save_snapshot
from diffcodec.realism import denoiser_level
from diffcodec.training import (RunLog, SkipNonFinite, checkpoint_state, configure_device, learning_rate,
                                lr_dropped, restore_checkpoint, save_checkpoint, update_ema)
from diffcodec.registry import DEFAULT_MODEL_ID, load_model
from diffcodec.weights import load_weights


def diffusion_times(b: int, n_one: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``t ~ U[0, 1]``, except that the first ``n_one`` crops get ``t = 1``.

    ``t = 1`` is the input of the one-step decode (pure noise), so a share of crops there
    trains the path that ``--realism`` actually runs, with its LPIPS term, instead of leaving
    it to the one crop in many that uniform sampling puts near 1.
    """
    t = torch.rand(b, device=device)
    t[:n_one] = 1.0
    return t


def denoiser_loss(net: ResidualDenoiser, codec_net, x: torch.Tensor, p_uncond: float,
                  lpips=None, lpips_weight: float = 0.0, t_one_fraction: float = 0.0,
                  mse_weight: float = 1.0, lambda_range: tuple[float, float] | None = None,
                  dists=None, dists_weight: float = 0.0) -> dict:
    """``mse_weight`` x v-prediction MSE (+ LPIPS, DISTS of the implied clean image) for crops in [0, 1].

    DISTS (a VGG16 per crop, ~15x LPIPS's cost on a CPU) is taken on the crops at ``t = 1``
    only when there are any, else on all: those are the crops the one-step decode is made of.

    ``lambda_range``: the lambdas the denoiser's level input spans (default: the frozen
    codec's own levels); the input is computed from each crop's lambda exactly as at decode
    time (:func:`diffcodec.realism.denoiser_level`), so a denoiser can be trained further on
    a codec with another level grid.
    """
    b = x.shape[0]
    level = torch.rand(b, device=x.device) * (codec_net.config.levels - 1)
    x_f = codec_net.reconstruct(x, level)
    if lambda_range is not None:
        level = denoiser_level(codec_net.level_lambda(level), lambda_range, net.config.levels)
    scale = net.config.residual_scale
    r0 = (x - x_f) / scale
    n_one = round(b * t_one_fraction)
    t = diffusion_times(b, n_one, x.device)
    a = torch.cos(math.pi * t / 2)[:, None, None, None]
    s = torch.sin(math.pi * t / 2)[:, None, None, None]
    eps = torch.randn_like(r0)
    r_t = a * r0 + s * eps
    keep = (torch.rand(b, device=x.device) >= p_uncond)[:, None, None, None]
    cond_pred = net(r_t, x_f, t, level)
    uncond_pred = net(r_t, None, t, level) if p_uncond > 0 and not keep.all() else cond_pred
    v_hat = torch.where(keep, cond_pred, uncond_pred)
    v = a * eps - s * r0
    mse = ((v_hat - v) ** 2).mean()
    loss = mse_weight * mse
    out = {"mse_v": mse}
    use_lpips, use_dists = lpips is not None and lpips_weight > 0, dists is not None and dists_weight > 0
    if use_lpips or use_dists:
        x0_hat = (x_f + scale * (a * r_t - s * v_hat)).clamp(0, 1)
    if use_lpips:
        perceptual = lpips(x0_hat, x).mean()
        loss = loss + lpips_weight * perceptual
        out["lpips"] = perceptual
    if use_dists:
        n = n_one or b
        texture = dists.distance(dists.features(x0_hat[:n]), dists.features(x[:n])).mean()
        loss = loss + dists_weight * texture
        out["dists"] = texture
    out["loss"] = loss
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--codec-weights", type=Path, default=None,
                   help="frozen codec weights (default: the shipped default model)")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lr-drop", type=float, default=0.9)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--width", type=int, default=DenoiserConfig.width)
    p.add_argument("--p-uncond", type=float, default=0.1)
    p.add_argument("--lpips-weight", type=float, default=0.0)
    p.add_argument("--dists-weight", type=float, default=0.0,
                   help="DISTS term (on the t = 1 crops when --t-one-fraction > 0)")
    p.add_argument("--mse-weight", type=float, default=1.0, help="weight of the v-prediction MSE")
    p.add_argument("--lambda-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="lambdas of the denoiser's lowest and highest level input (default: the codec's);"
                        " the registry entry must name the same range")
    p.add_argument("--t-one-fraction", type=float, default=0.0,
                   help="share of each batch trained at t = 1, the one-step decode's input")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, default=None, help="snapshot directory to start from")
    p.add_argument("--snapshot", type=Path, default=None)
    p.add_argument("--minutes", type=float, default=None)
    args = p.parse_args(argv)
    if not 0.0 <= args.t_one_fraction <= 1.0:
        p.error("--t-one-fraction must be within 0..1")
    if args.dists_weight > 0 and args.device != "cpu":
        p.error("--dists-weight runs on the CPU only (the benchmark's DISTS keeps its constants there)")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configure_device(device)
    args.out.mkdir(parents=True, exist_ok=True)
    codec = load_weights(args.codec_weights, None) if args.codec_weights else load_model(DEFAULT_MODEL_ID)
    codec_net = copy.deepcopy(codec.net).float().to(device).eval().requires_grad_(False)

    step = opt_start = 0
    ckpt_path = args.out / "checkpoint.pt"
    ck = torch.load(ckpt_path, map_location=device, weights_only=False) if ckpt_path.exists() else None
    init_ema = None
    if ck is not None:
        config = DenoiserConfig.from_dict(ck["config"])
    elif args.init is not None:
        state, init_ema, step, config_dict = load_snapshot(args.init)
        config = DenoiserConfig.from_dict(config_dict)
        opt_start = step
    else:
        config = DenoiserConfig(width=args.width, levels=codec_net.config.levels)
    net = ResidualDenoiser(config).to(device)
    if init_ema is not None:
        net.load_state_dict(state)
    ema = copy.deepcopy(net).eval()
    if init_ema is not None:
        ema.load_state_dict(init_ema)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    torch.manual_seed(args.seed + step)
    sampler = CropSampler(load_corpus(args.data, args.crop), args.crop, args.seed + step)
    if ck is not None:
        step, opt_start = restore_checkpoint(ck, net, ema, {"opt": opt}, sampler.rng)
        print(f"resumed from step {step}", flush=True)

    lpips = None
    if args.lpips_weight > 0:
        from diffcodec.perceptual.lpips import LPIPSNet  # offline AlexNet weights (benchmarks/requirements-metrics.txt)

        lpips = LPIPSNet("alex").to(device).eval().requires_grad_(False)
    dists = None
    if args.dists_weight > 0:
        from diffcodec.perceptual.dists import DISTSNet  # offline VGG16 + alpha/beta (benchmarks/requirements-metrics.txt)

        dists = DISTSNet().to(device).eval().requires_grad_(False)

    log = RunLog(args.out / "log.jsonl")
    t0 = time.time()
    guard = SkipNonFinite()
    while step < args.steps:
        dropped = lr_dropped(step, args.lr_drop, args.steps, time.time() - t0, args.minutes)
        lr = learning_rate(args.lr, step, opt_start, args.warmup, dropped)
        for g in opt.param_groups:
            g["lr"] = lr
        x = sampler.sample(args.batch).to(device).float().div_(255.0)
        net.train()
        stats = denoiser_loss(net, codec_net, x, args.p_uncond, lpips, args.lpips_weight,
                              args.t_one_fraction, args.mse_weight,
                              tuple(args.lambda_range) if args.lambda_range else None, dists, args.dists_weight)
        opt.zero_grad(set_to_none=True)
        stats["loss"].backward()
        guard.step(opt, net.parameters(), 1.0, step)
        update_ema(ema, net, args.ema, copy_buffers=False)
        step += 1
        values = dict(zip(stats, torch.stack([v.detach() for v in stats.values()]).tolist()))  # one sync
        if not math.isfinite(values["loss"]) and guard.in_a_row == 0:
            raise SystemExit(f"non-finite loss at step {step}")
        rec = {"step": step, **{k: round(v, 5) for k, v in values.items()}, "lr": lr,
               "skipped": guard.skipped, "sec": round(time.time() - t0, 1)}
        log.write(rec)
        out_of_time = args.minutes is not None and time.time() - t0 > 60 * args.minutes
        if step % args.ckpt_every == 0 or step == args.steps or out_of_time:
            save_checkpoint(checkpoint_state(net, ema, {"opt": opt}, sampler.rng, step, opt_start, config.to_dict()),
                            ckpt_path)
            if args.snapshot is not None:
                save_snapshot(args.snapshot, net.state_dict(), ema.state_dict(), step, config.to_dict())
        if out_of_time:
            print(f"stopping at step {step}: --minutes {args.minutes} reached", flush=True)
            break
    log.close()


if __name__ == "__main__":
    main()
