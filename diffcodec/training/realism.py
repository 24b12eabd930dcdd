"""Train the realism decoder's denoiser on top of a frozen codec (resumable).

    python -m diffcodec.training.realism --data ../shared/data/train --out runs/denoiser --steps 20000

Two objectives. ``--objective unrolled`` (the shipped realism decoders from ``realism-cc5``
on): the network predicts the clean residual; per crop a realism strength ``s`` is drawn, the
fidelity image is noised to start time ``s`` and the decode's own 1..K DDIM steps are unrolled
(:func:`diffcodec.realism.schedule.ddim`, RDEIC's fixed-step fine-tuning); the decoded crop
is scored by ``--pixel-mse-weight`` x MSE + ``s`` x (LPIPS-Alex + ``--dists-weight`` x DISTS +
``--adv-weight`` x a projected discriminator on frozen AlexNet features, with differentiable
augmentation; ``--d-condition`` shows its heads the fidelity image's features too). At
``s = 0`` only the MSE remains, so the strength knob runs from the fidelity image to the most
realistic one. Encoder and entropy model stay frozen: files do not change.
``--latent`` also conditions the network on the synthesis transform's input (the decoded
latent over the rate gain, at 1/16 resolution: what the fidelity image was made from, before
g_s smoothed it); added to a network from ``--init``, that input starts at zero, so the run
starts from the given decoder. ``--synthesis`` gives the network its own copy of the codec's
synthesis transform, started from the codec's weights and trained by the same loss (the
decoder-side perceptual training of No-GAN and MS-ILLM, here feeding the diffusion steps);
added to a network from ``--init``, it too leaves the first decode unchanged. ``--init`` takes
a snapshot directory or a shipped denoiser file.

``--objective diffusion`` (``realism-cc4-cpu1``):
per crop: a random rate level, the frozen codec's fidelity reconstruction ``x_f`` (real
rounding), the normalised residual ``r_0 = (x - x_f) / scale``, a random time ``t`` and
``r_t = alpha r_0 + sigma eps``; the loss is the MSE of the v-prediction, plus optionally
LPIPS (AlexNet) and DISTS (the benchmark's offline implementations) of ``x_f + scale * r_0_hat``
against the crop; ``--t-one-fraction`` puts a share of each batch at ``t = 1``, the
one-step decode's input. With probability ``--p-uncond`` the condition ``x_f`` is dropped, which
classifier-free guidance needs at decode time. Checkpoints, ``--snapshot``, ``--init``
and ``--minutes`` work as in :mod:`diffcodec.training.fidelity`.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from diffcodec.models.denoiser import DenoiserConfig, ResidualDenoiser
from diffcodec.models.hyperprior import grown_latent_places
from diffcodec.models.discriminator import (
    ProjectedHeads,
    diff_augment,
    discriminator_loss,
    generator_loss,
)
from diffcodec.models.precision import PRECISIONS, call_in_dtype, memory_format_for, training_dtype
from diffcodec.realism.schedule import add_noise, alpha_sigma, ddim, interpret, time_grid, v_target
from diffcodec.training.data import CropSampler, load_corpus
from diffcodec.training.loop import (
    RunLog,
    SkipNonFinite,
    StopOnSignal,
    apply_learning_rate,
    checkpoint_state,
    configure_device,
    finish_step,
    restore_checkpoint,
    save_checkpoint,
    update_ema,
)
from diffcodec.training.parts import load_snapshot, save_snapshot
from diffcodec.zoo.registry import DEFAULT_MODEL_ID, load_model
from diffcodec.zoo.weight_files import denoiser_level, load_denoiser, load_weights


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
    time (:func:`diffcodec.zoo.weight_files.denoiser_level`), so a denoiser can be trained further on
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
    eps = torch.randn_like(r0)
    r_t = add_noise(r0, eps, t)
    keep = (torch.rand(b, device=x.device) >= p_uncond)[:, None, None, None]
    cond_pred = net(r_t, x_f, t, level)
    uncond_pred = net(r_t, None, t, level) if p_uncond > 0 and not keep.all() else cond_pred
    v_hat = torch.where(keep, cond_pred, uncond_pred)
    mse = ((v_hat - v_target(r0, eps, t)) ** 2).mean()
    loss = mse_weight * mse
    out = {"mse_v": mse}
    use_lpips, use_dists = lpips is not None and lpips_weight > 0, dists is not None and dists_weight > 0
    if use_lpips or use_dists:
        a, s = alpha_sigma(t)
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


@dataclass(frozen=True)
class UnrolledObjective:
    """Weights and draws of ``--objective unrolled`` (see the module docstring)."""

    unroll: tuple[int, ...] = (1, 2)  # DDIM steps unrolled per batch, drawn uniformly
    max_level: float = 4.5  # rate levels drawn in [0, max_level]: the low rates realism is for
    full_strength_fraction: float = 0.5  # share of crops at strength 1, the default decode
    pixel_mse_weight: float = 100.0  # on [0, 1] images (MS-ILLM's stage 1 uses 150 with LPIPS 1)
    lpips_weight: float = 1.0
    dists_weight: float = 0.0
    dists_crop: int = 128  # DISTS (a VGG16) on centre crops of this side: 1/4 of a 256 crop's cost
    adv_weight: float = 0.0


def _centre(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return x[..., y0:y0 + side, x0:x0 + side]


def unrolled_loss(net: ResidualDenoiser, codec_net, x: torch.Tensor, objective: UnrolledObjective, lpips,
                  dists=None, heads: ProjectedHeads | None = None, dtype: torch.dtype = torch.float32,
                  lambda_range: tuple[float, float] | None = None) -> dict:
    """Decode each crop as ``decompress --realism`` would (noised fidelity image, K steps) and
    score the result; returns the loss terms and, for the discriminator's own step, the
    augmented features of the real and decoded crops (``d_real``, ``d_fake``) and, for conditional
    heads, of the fidelity image (``d_cond``, else ``None``)."""
    b, dev = x.shape[0], x.device
    level = torch.rand(b, device=dev) * objective.max_level
    latent = codec_net.synthesis_input(x, level)
    x_f = codec_net.synthesize(latent)  # = codec_net.reconstruct(x, level)
    latent = latent if net.config.latent_channels else None
    # the network's own g_s copy: once per batch, as a decode computes it once per image
    x_p = call_in_dtype(net.synthesis, dtype, latent) if net.config.synthesis_width else None
    if lambda_range is not None:
        level = denoiser_level(codec_net.level_lambda(level), lambda_range, net.config.levels)
    n_full = round(b * objective.full_strength_fraction)
    strength = torch.rand(b, device=dev)
    strength[:n_full] = 1.0
    k = objective.unroll[int(torch.randint(len(objective.unroll), ()))]
    times = time_grid(strength, k)
    _, s_start = alpha_sigma(strength)
    r = s_start * torch.randn_like(x)

    def predict(r_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = call_in_dtype(net, dtype, r_t, x_f, t, level, latent, x_p)
        return interpret(net.config.prediction, r_t, out, t)

    x_hat = (x_f + net.config.residual_scale * ddim(predict, r, times)).clamp(0, 1)
    mse = ((x_hat - x) ** 2).mean(dim=(1, 2, 3))
    with torch.no_grad():
        real_features = lpips.embed(x)
    perceptual_terms = lpips.distance(lpips.embed(x_hat), real_features)
    out = {"mse": mse.mean().detach(), "lpips": perceptual_terms.detach()[:max(n_full, 1)].mean()}
    perceptual = objective.lpips_weight * perceptual_terms
    if dists is not None and objective.dists_weight > 0:
        n = n_full or b
        xc, hc = _centre(x[:n], objective.dists_crop), _centre(x_hat[:n], objective.dists_crop)
        with torch.no_grad():
            ref = dists.features(xc)
        texture = dists.distance(dists.features(hc), ref)
        perceptual = perceptual + objective.dists_weight * torch.cat([texture, texture.new_zeros(b - n)])
        out["dists"] = texture.detach().mean()
    if heads is not None:
        # one draw for all: the condition moves with the judged images
        augmented = diff_augment(x, x_hat, x_f) if heads.conditional else diff_augment(x, x_hat)
        real_aug, fake_aug = augmented[:2]
        with torch.no_grad():
            d_real = lpips.embed(real_aug)
            d_cond = lpips.embed(augmented[2]) if heads.conditional else None
        d_fake = lpips.embed(fake_aug)
        adversarial = generator_loss(heads(d_fake, d_cond))
        perceptual = perceptual + objective.adv_weight * adversarial
        out.update(adv=adversarial.detach().mean(), d_real=d_real, d_fake=[f.detach() for f in d_fake],
                   d_cond=d_cond)
    out["loss"] = (objective.pixel_mse_weight * mse + strength * perceptual).mean()
    out["psnr"] = -10 * torch.log10(((x_hat[:max(n_full, 1)] - x[:max(n_full, 1)]) ** 2).mean().detach())
    return out


def perceptual_networks(lpips: bool, dists: bool, dtype: torch.dtype = torch.float32,
                        device: torch.device | str = "cpu") -> tuple:
    """The frozen LPIPS-Alex and DISTS networks (``None`` where not wanted), in ``dtype``.

    They compute in their weights' dtype (:mod:`diffcodec.perceptual.backbones`), so bf16 copies
    in channels-last make the losses several times cheaper on a CPU with bf16 units; their
    features and distances stay fp32.
    """
    from diffcodec.perceptual.dists import DISTSNet  # offline weights (benchmarks/requirements-metrics.txt)
    from diffcodec.perceptual.lpips import LPIPSNet

    def frozen(net: torch.nn.Module) -> torch.nn.Module:
        return net.to(device=device, dtype=dtype, memory_format=memory_format_for(dtype)).eval().requires_grad_(False)

    return (frozen(LPIPSNet("alex")) if lpips else None), (frozen(DISTSNet()) if dists else None)


def optimisation_step(stats: dict, net: ResidualDenoiser, heads: ProjectedHeads | None, optimizers: dict,
                      guard: SkipNonFinite, step: int) -> dict:
    """The denoiser's clipped step on ``stats["loss"]``, then the discriminator heads' own step
    on the features the loss left in ``stats``; returns the loggable stats."""
    d_real, d_fake, d_cond = stats.pop("d_real", None), stats.pop("d_fake", None), stats.pop("d_cond", None)
    opt = optimizers["opt"]
    opt.zero_grad(set_to_none=True)
    stats["loss"].backward()
    guard.step(opt, net.parameters(), 1.0, step)
    if heads is not None:
        d_loss = discriminator_loss(heads(d_real, d_cond), heads(d_fake, d_cond))
        optimizers["d_opt"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["d_opt"].step()
        stats["d_loss"] = d_loss.detach()
    return stats


def with_grown_latent(state: dict[str, torch.Tensor], places: torch.Tensor, m: int,
                      codec_g_s_input: torch.Tensor) -> dict[str, torch.Tensor]:
    """A latent-reading denoiser's weights, made to read a latent grown to ``m`` channels, the
    old ones now at ``places`` (:func:`diffcodec.models.hyperprior.grown_latent_places`).

    The latent input reads the new channels through zero weights, so the decoder starts as it
    was. Its synthesis copy (if any) reads them through the grown codec's own g_s weights
    (``codec_g_s_input``, its first transposed convolution's): the copy stays as close to the
    codec's synthesis as it was, whatever the new channels have learnt to carry.
    """
    state = dict(state)
    if "latent_in.weight" in state:
        old = state["latent_in.weight"]  # (out, old m, k, k)
        grown = old.new_zeros(old.shape[0], m, *old.shape[2:])
        grown[:, places] = old
        state["latent_in.weight"] = grown
    if "synthesis.g_s.0.weight" in state:
        old = state["synthesis.g_s.0.weight"]  # ConvTranspose2d: (in = old m, out, k, k)
        grown = codec_g_s_input.detach().to(old.dtype).clone()
        if grown.shape[0] != m or grown.shape[1:] != old.shape[1:]:
            raise ValueError(f"the codec's synthesis input {tuple(grown.shape)} does not fit the copy's {tuple(old.shape)}")
        grown[places] = old
        state["synthesis.g_s.0.weight"] = grown
    return state


def _load_adding(net: ResidualDenoiser, state: dict, added: set[str]) -> None:
    """Load ``state``; only the ``added`` parameters (new, zero-initialised inputs) may be missing."""
    missing, unexpected = net.load_state_dict(state, strict=False)
    if set(missing) - added or unexpected:
        raise SystemExit(f"error: weights do not fit the network (missing {sorted(set(missing) - added)}, "
                         f"unexpected {sorted(unexpected)})")


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
    p.add_argument("--latent", action="store_true",
                   help="condition the network on the decoded latent too (added, zero-initialised, to a "
                        "network from --init, which then starts out decoding as before)")
    p.add_argument("--synthesis", action="store_true",
                   help="give the network its own trainable copy of the codec's synthesis transform, started "
                        "from the codec's weights (needs the latent input; added to a network from --init, "
                        "which then starts out decoding as before)")
    p.add_argument("--p-uncond", type=float, default=0.1)
    p.add_argument("--lpips-weight", type=float, default=None,
                   help="LPIPS-Alex term [default: 1 with --objective unrolled, else 0]")
    p.add_argument("--dists-weight", type=float, default=0.0,
                   help="DISTS term (on the t = 1 crops when --t-one-fraction > 0)")
    p.add_argument("--mse-weight", type=float, default=1.0, help="weight of the v-prediction MSE")
    p.add_argument("--lambda-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="lambdas of the denoiser's lowest and highest level input (default: the codec's);"
                        " the registry entry must name the same range")
    p.add_argument("--t-one-fraction", type=float, default=0.0,
                   help="share of each batch trained at t = 1, the one-step decode's input")
    p.add_argument("--objective", choices=("diffusion", "unrolled"), default="diffusion")
    p.add_argument("--unroll", type=int, nargs="+", default=list(UnrolledObjective.unroll),
                   help="unrolled: DDIM steps per batch, one drawn per batch")
    p.add_argument("--max-level", type=float, default=UnrolledObjective.max_level,
                   help="unrolled: rate levels drawn in [0, MAX_LEVEL]")
    p.add_argument("--full-strength-fraction", type=float, default=UnrolledObjective.full_strength_fraction)
    p.add_argument("--pixel-mse-weight", type=float, default=UnrolledObjective.pixel_mse_weight)
    p.add_argument("--dists-crop", type=int, default=UnrolledObjective.dists_crop)
    p.add_argument("--adv-weight", type=float, default=0.0, help="unrolled: projected discriminator term")
    p.add_argument("--adv-start", type=int, default=0,
                   help="unrolled: the adversarial term counts from this step (the heads train from the start)")
    p.add_argument("--d-lr", type=float, default=2e-4, help="discriminator heads' learning rate")
    p.add_argument("--d-width", type=int, default=64, help="channels of each discriminator head")
    p.add_argument("--d-condition", action="store_true",
                   help="conditional discriminator: the heads also see the fidelity image's features")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: the frozen perceptual networks are bf16 copies and (unrolled) the denoiser computes "
                        "in bf16 on fp32 master weights (optimizer, EMA and loss stay fp32); pays on CPUs with bf16 "
                        "units, emulated and several times slower on others; auto: bf16 where it is native")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, default=None,
                   help="snapshot directory or shipped denoiser .safetensors file to start from")
    p.add_argument("--snapshot", type=Path, default=None)
    p.add_argument("--minutes", type=float, default=None)
    args = p.parse_args(argv)
    if args.lpips_weight is None:
        args.lpips_weight = UnrolledObjective.lpips_weight if args.objective == "unrolled" else 0.0
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
    elif args.init is not None and args.init.is_dir():
        state, init_ema, step, config_dict = load_snapshot(args.init)
        config = DenoiserConfig.from_dict(config_dict)
        opt_start = step
    elif args.init is not None:  # a shipped denoiser file: its weights start both net and EMA
        shipped = load_denoiser(args.init, None).net
        config = shipped.config
        state = init_ema = shipped.state_dict()
    else:
        config = DenoiserConfig(width=args.width, levels=codec_net.config.levels,
                                prediction="r0" if args.objective == "unrolled" else "v")
    added = set()
    if config.latent_channels and config.latent_channels != codec_net.config.m:  # the codec's latent grew
        c = codec_net.config
        if ck is not None:
            p.error(f"the checkpoint's network reads {config.latent_channels} latent channels, the codec has {c.m}")
        try:
            places = grown_latent_places(config.latent_channels, c.m, c.context_slices)
        except ValueError as exc:
            p.error(f"the codec's latent ({c.m} channels) is not a grown copy of the one the network reads: {exc}")
        state, init_ema = (with_grown_latent(weights, places, c.m, codec_net.g_s[0].weight)
                           for weights in (state, init_ema))
        config = DenoiserConfig.from_dict({**config.to_dict(), "latent_channels": c.m})
        print(f"latent input grown to {c.m} channels (the new ones read through zero weights)", flush=True)
    if args.latent and not config.latent_channels:  # start reading the latent (a zero-initialised input)
        if ck is not None:
            p.error("--latent starts a run (from --init or afresh), not a resumed one")
        config = DenoiserConfig.from_dict({**config.to_dict(), "latent_channels": codec_net.config.m})
        added = {"latent_in.weight", "latent_in.bias"}
    synthesis_added = args.synthesis and not config.synthesis_width
    if synthesis_added:  # a copy of the codec's g_s, then zero-initialised inputs and a unit gate
        if ck is not None:
            p.error("--synthesis starts a run (from --init or afresh), not a resumed one")
        if not config.latent_channels or args.objective != "unrolled":
            p.error("--synthesis needs the latent input (--latent) and --objective unrolled")
        c = codec_net.config
        config = DenoiserConfig.from_dict({**config.to_dict(), "synthesis_width": c.transform_width or c.n,
                                           "synthesis_blocks": c.residual_blocks})
    if (config.prediction == "r0") != (args.objective == "unrolled"):
        p.error(f"a {config.prediction}-prediction network cannot train with --objective {args.objective}")
    dtype, slow = training_dtype(args.precision, device)
    if slow:
        print(slow, file=sys.stderr, flush=True)
    net = ResidualDenoiser(config).to(device, memory_format=memory_format_for(dtype))  # fp32 masters
    if synthesis_added:  # the copy and its input and gate are new: absent from the --init weights
        added |= {k for k in net.state_dict() if k.startswith("synthesis")}
    if init_ema is not None:
        _load_adding(net, state, added)
    ema = copy.deepcopy(net).eval()
    if init_ema is not None:
        _load_adding(ema, init_ema, added)
    if synthesis_added:
        for copy_of_codec in (net, ema):
            copy_of_codec.synthesis.g_s.load_state_dict(codec_net.g_s.state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    optimizers = {"opt": opt}
    heads = None
    if args.objective == "unrolled" and args.adv_weight > 0:
        from diffcodec.perceptual.backbones import AlexNetFeatures

        heads = ProjectedHeads(AlexNetFeatures.channels, args.d_width, args.d_condition).to(device)
        optimizers["d_opt"] = torch.optim.Adam(heads.parameters(), lr=args.d_lr, betas=(0.5, 0.999))
    torch.manual_seed(args.seed + step)
    sampler = CropSampler(load_corpus(args.data, args.crop), args.crop, args.seed + step)
    if ck is not None:
        restored = dict(optimizers)
        if heads is not None and "heads" in ck:
            saved = ck.get("heads_settings", {"width": 64, "conditional": False})  # before settings were saved
            if saved != heads.settings():
                p.error(f"the checkpoint's discriminator heads are {saved}, not {heads.settings()}: "
                        "resume with the same --d-width and --d-condition")
            heads.load_state_dict(ck["heads"])
        elif heads is not None:  # the run had no adversarial term so far
            print("the checkpoint has no discriminator heads: they start afresh", flush=True)
            del restored["d_opt"]
        step, opt_start = restore_checkpoint(ck, net, ema, restored, sampler.rng)
        print(f"resumed from step {step}", flush=True)
    objective = UnrolledObjective(tuple(args.unroll), args.max_level, args.full_strength_fraction,
                                  args.pixel_mse_weight, args.lpips_weight, args.dists_weight, args.dists_crop,
                                  args.adv_weight)

    lpips, dists = perceptual_networks(args.lpips_weight > 0 or args.objective == "unrolled",
                                       args.dists_weight > 0, dtype, device)

    log = RunLog(args.out / "log.jsonl")
    t0 = time.time()
    guard = SkipNonFinite()
    with StopOnSignal() as stop:
        while step < args.steps:
            lr = apply_learning_rate(opt, args.lr, step, opt_start, args.warmup, args.lr_drop, args.steps,
                                     time.time() - t0, args.minutes)
            x = sampler.sample(args.batch).to(device).float().div_(255.0)
            net.train()
            lambda_range = tuple(args.lambda_range) if args.lambda_range else None
            if args.objective == "unrolled":
                active = objective if step >= args.adv_start else dataclasses.replace(objective, adv_weight=0.0)
                stats = unrolled_loss(net, codec_net, x, active, lpips, dists, heads, dtype, lambda_range)
            else:
                stats = denoiser_loss(net, codec_net, x, args.p_uncond, lpips, args.lpips_weight,
                                      args.t_one_fraction, args.mse_weight, lambda_range, dists, args.dists_weight)
            stats = optimisation_step(stats, net, heads, optimizers, guard, step)
            update_ema(ema, net, args.ema, copy_buffers=False)
            step += 1
            values = dict(zip(stats, torch.stack([v.detach() for v in stats.values()]).tolist()))  # one sync
            if not math.isfinite(values["loss"]) and guard.in_a_row == 0:
                raise SystemExit(f"non-finite loss at step {step}")
            rec = {"step": step, **{k: round(v, 5) for k, v in values.items()}, "lr": lr,
                   "skipped": guard.skipped, "sec": round(time.time() - t0, 1)}

            def save() -> None:
                extra = {"heads": heads.state_dict(), "heads_settings": heads.settings()} if heads is not None else {}
                save_checkpoint(checkpoint_state(net, ema, optimizers, sampler.rng, step, opt_start, config.to_dict(),
                                                 **extra), ckpt_path)
                if args.snapshot is not None:
                    save_snapshot(args.snapshot, net.state_dict(), ema.state_dict(), step, config.to_dict())

            if finish_step(log, rec, args.steps, args.ckpt_every, args.minutes, time.time() - t0, save,
                           stop.received):
                break
    log.close()


if __name__ == "__main__":
    main()
