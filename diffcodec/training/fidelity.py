"""Rate-distortion training of the variable-rate model (resumable).

    python -m diffcodec.training.fidelity --data ../shared/data/train --out runs/base --steps 6000

Every step draws a continuous rate level per crop, so one network learns the whole
quality range. Checkpoints (model, EMA, optimizers, sampler state) are written atomically
every ``--ckpt-every`` steps and the run resumes from ``<out>/checkpoint.pt`` if present.

For a lent GPU (see docs/training.md): ``--snapshot DIR`` also writes a compact snapshot
(:mod:`diffcodec.training.parts`, files under 16 MiB) that a later run on another machine resumes
with ``--init DIR``; ``--minutes`` ends the run cleanly inside a time limit.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from diffcodec.models.hyperprior import (  # GDN: compressai's, imported quietly there
    GDN,
    ModelConfig,
    VariableRateHyperprior,
    grown_latent_places,
)
from diffcodec.models.precision import PRECISIONS, training_dtype
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


def rd_loss(model: VariableRateHyperprior, x: torch.Tensor, t: torch.Tensor, rate_only: bool = False) -> dict:
    """Per-crop lambda * 255^2 * MSE + bpp, averaged over the batch.

    ``rate_only`` skips the synthesis: when only the context model trains, the distortion
    does not depend on its parameters (straight-through rounding passes no gradient to the
    means), so the loss is the rate alone and ``psnr`` is reported as NaN.
    """
    out = model(x, t, synthesize=not rate_only)
    num_pixels = x.shape[2] * x.shape[3]
    bits = sum(
        (-torch.log2(lik)).flatten(1).sum(1) for lik in out["likelihoods"].values()
    )
    bpp = bits / num_pixels
    if rate_only:
        return {"loss": bpp.mean(), "bpp": bpp.mean(), "psnr": torch.tensor(float("nan"))}
    mse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1)
    lam = model.level_lambda(t)
    loss = (lam * 255.0**2 * mse + bpp).mean()
    psnr = (-10 * torch.log10(mse.clamp_min(1e-10))).mean()
    return {"loss": loss, "bpp": bpp.mean(), "psnr": psnr}


def _rebuilt(model: VariableRateHyperprior, state: dict[str, torch.Tensor],
             missing_ok: Callable[[list[str]], bool], **changes) -> VariableRateHyperprior:
    """A network of ``model``'s config with ``changes``, holding ``state``; ``missing_ok(names)``
    says which of the new network's entries ``state`` may lack (they keep their initialisation)."""
    config = ModelConfig(**{**model.config.to_dict(), **changes})
    new = VariableRateHyperprior(config).to(next(model.parameters()).device)
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or not missing_ok(missing):
        raise ValueError(f"cannot carry weights over (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return new


def with_context_slices(model: VariableRateHyperprior, slices: int, width: int | None = None) -> VariableRateHyperprior:
    """The same network with ``slices`` context slices; new context networks start at zero (a no-op)."""
    width = width or model.config.context_width
    if (slices, width) == (model.config.context_slices, model.config.context_width):
        return model
    if model.config.context_slices > 1:
        raise ValueError("the model already has a context model of another shape")
    return _rebuilt(model, model.state_dict(), lambda missing: all(k.startswith("context.") for k in missing),
                    context_slices=slices, context_width=width)


def with_residual_blocks(model: VariableRateHyperprior, blocks: int) -> VariableRateHyperprior:
    """The same network with ``blocks`` residual blocks per scale in g_a and g_s; the new blocks
    (after any it already has) start as the identity (zero last convolution), so the grown
    network codes exactly as before."""
    if blocks == model.config.residual_blocks:
        return model
    if blocks < model.config.residual_blocks:
        raise ValueError(f"the model has {model.config.residual_blocks} residual blocks per scale; "
                         "growing cannot remove any")
    return _rebuilt(model, model.state_dict(), lambda missing: all(".res." in k for k in missing),
                    residual_blocks=blocks)


def with_transform_width(model: VariableRateHyperprior, width: int) -> VariableRateHyperprior:
    """The same network with g_a and g_s widened to ``width`` hidden channels.

    The old channels keep their weights. The new channels' incoming weights keep the fresh
    network's initialisation, and every weight from a new channel into an old one (convolutions,
    GDN couplings) starts at zero: the widened network codes as before (up to float summation
    order), and the new channels get gradients from the first step through those zero weights.
    The hyperprior (h_a, h_s, z) keeps its width, so the entropy coding is unchanged.
    """
    old_width = model.config.transform_width or model.config.n
    if width == old_width:
        return model
    if width < old_width:
        raise ValueError(f"g_a and g_s have {old_width} channels; widening cannot remove any")
    state = model.state_dict()
    new = _rebuilt(model, {k: v for k, v in state.items() if not k.startswith(("g_a.", "g_s."))},
                   lambda missing: all(k.startswith(("g_a.", "g_s.")) for k in missing), transform_width=width)
    with torch.no_grad():
        for name in ("g_a", "g_s"):
            for path, layer in getattr(new, name).named_modules():
                if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, GDN)):
                    _widen_into(getattr(model, name).get_submodule(path), layer)
    return new


def _widen_into(old: torch.nn.Module, new: torch.nn.Module) -> None:
    """Copy ``old``'s weights into the leading channels of the wider ``new`` layer and zero the
    weights from ``new``'s extra input channels into the old output channels."""
    if isinstance(new, GDN):  # y_c = x_c / sqrt(beta_c + sum_j gamma_cj x_j^2): gamma is (out, in)
        pairs = [(new.beta, old.beta, None, None), (new.gamma, old.gamma, 0, 1)]
        zero = new.gamma_reparam.init(new.gamma.new_zeros(1)).item()  # the stored value of gamma = 0
    else:  # Conv2d weights are (out, in, k, k), ConvTranspose2d ones (in, out, k, k)
        dims = (1, 0) if isinstance(new, torch.nn.ConvTranspose2d) else (0, 1)
        pairs = [(new.weight, old.weight, *dims), (new.bias, old.bias, None, None)]
        zero = 0.0
    for target, source, out_dim, in_dim in pairs:
        if in_dim is not None:
            outs, ins = source.shape[out_dim], source.shape[in_dim]
            target.narrow(out_dim, 0, outs).narrow(in_dim, ins, target.shape[in_dim] - ins).fill_(zero)
            target.narrow(out_dim, 0, outs).narrow(in_dim, 0, ins).copy_(source)
        else:
            target[:source.shape[0]].copy_(source)


def with_latent_channels(model: VariableRateHyperprior, m: int) -> VariableRateHyperprior:
    """The same network with ``m`` latent channels, the new ones added at the end of every
    context slice, so slice ``i`` still holds the old slice ``i``'s channels first.

    At the start the new channels are silent and the network codes as before (up to float
    summation order): g_a's weights into them are zero, so they round to their mean; the
    hyper-synthesis gives them mean 0 and the smallest scale (zero weights into those
    outputs), so they cost next to nothing; h_a and the context networks read them through zero
    weights. g_s reads them through its fresh initialisation: a rounded zero adds nothing, and
    the straight-through gradient reaches g_a's zero weights from the first step (with zero
    weights on both sides neither would ever move). The hyper-latent z keeps its channels.
    """
    c = model.config
    if m == c.m:
        return model
    if m < c.m:
        raise ValueError(f"the model has {c.m} latent channels; growing cannot remove any")
    latent = grown_latent_places(c.m, m, c.context_slices)  # old channel -> its place (checks the slices)
    old_slice, new_slice = c.m // c.context_slices, m // c.context_slices

    def prefix(k: int) -> torch.Tensor:
        return torch.arange(k)

    new = VariableRateHyperprior(ModelConfig(**{**c.to_dict(), "m": m})).to(next(model.parameters()).device)
    state = model.state_dict()
    # (layer, its outputs' places, its inputs' places, zero the new outputs, zero new inputs -> old outputs)
    layers = [
        ("g_a.6", latent, prefix(c.transform_width or c.n), True, True),
        ("g_s.0", prefix(c.transform_width or c.n), latent, False, False),
        ("h_a.0", prefix(c.n), latent, False, True),
        ("h_s.0", prefix(c.m), prefix(c.n), False, True),
        ("h_s.2", prefix(c.m * 3 // 2), prefix(c.m), False, True),
        ("h_s.4", torch.cat([latent, m + latent]), prefix(c.m * 3 // 2), True, True),
    ]
    within = torch.arange(old_slice)
    for i in range(1, c.context_slices):  # input: (slice mean, slice scale, earlier slices); output: (d_mean, d_scale)
        inputs = torch.cat([within, new_slice + within, 2 * new_slice + latent[: i * old_slice]])
        layers += [(f"context.{i - 1}.0", prefix(c.context_width), inputs, False, True),
                   (f"context.{i - 1}.4", torch.cat([within, new_slice + within]), prefix(c.context_width),
                    True, True)]
    with torch.no_grad():
        for path, outs, ins, zero_new_outputs, zero_new_inputs in layers:
            _embed_layer(state[f"{path}.weight"], state[f"{path}.bias"], new.get_submodule(path),
                         outs, ins, zero_new_outputs, zero_new_inputs)
        for name in ("log_gain", "log_inv_gain"):  # the new channels start at the average channel's gains
            table, target = state[name], getattr(new, name)
            target.copy_(table.mean(dim=1, keepdim=True).expand_as(target))
            target[:, latent] = table
    touched = {f"{path}.{kind}" for path, *_ in layers for kind in ("weight", "bias")} | {"log_gain", "log_inv_gain"}
    missing, unexpected = new.load_state_dict({k: v for k, v in state.items() if k not in touched}, strict=False)
    if unexpected or set(missing) - touched:
        raise ValueError(f"cannot carry weights over (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return new


def _embed_layer(weight: torch.Tensor, bias: torch.Tensor, new: torch.nn.Module, outs: torch.Tensor,
                 ins: torch.Tensor, zero_new_outputs: bool, zero_new_inputs: bool) -> None:
    """Put a smaller convolution's ``weight``/``bias`` into ``new`` at output places ``outs`` and
    input places ``ins``; optionally zero the new outputs and the weights from new inputs into
    the old outputs (everything else keeps ``new``'s initialisation)."""
    transposed = isinstance(new, torch.nn.ConvTranspose2d)  # (in, out, k, k) instead of (out, in, k, k)
    target = new.weight.transpose(0, 1) if transposed else new.weight  # a view: writes reach new.weight
    source = weight.transpose(0, 1) if transposed else weight
    fresh_outputs = torch.ones(target.shape[0], dtype=torch.bool)
    fresh_outputs[outs] = False
    fresh_inputs = torch.ones(target.shape[1], dtype=torch.bool)
    fresh_inputs[ins] = False
    if zero_new_outputs:
        target[fresh_outputs] = 0.0
        new.bias[fresh_outputs] = 0.0
    if zero_new_inputs:
        target[outs[:, None], fresh_inputs.nonzero()[:, 0][None, :]] = 0.0
    target[outs[:, None], ins[None, :]] = source.to(target.dtype)
    new.bias[outs] = bias.to(new.bias.dtype)


def with_levels_below(model: VariableRateHyperprior, extra: int) -> VariableRateHyperprior:
    """The same network with ``extra`` rate levels added below level 0, for lower bit rates.

    The lambda grid keeps its log spacing, so lambda_min drops by ``extra`` steps, and the new
    gain rows continue the log-gains linearly: at first the network codes the new levels exactly
    as the old one's extrapolated gains did (measured before training in docs/training.md).
    """
    if extra <= 0:
        return model
    c = model.config
    step = (math.log(c.lambda_max) - math.log(c.lambda_min)) / (c.levels - 1)
    gains = {"log_gain", "log_inv_gain"}
    new = _rebuilt(model, {k: v for k, v in model.state_dict().items() if k not in gains},
                   lambda missing: set(missing) == gains,
                   levels=c.levels + extra, lambda_min=float(math.exp(math.log(c.lambda_min) - extra * step)))
    below = torch.arange(extra, 0, -1, dtype=torch.float32, device=new.log_gain.device)[:, None]  # extra..1
    with torch.no_grad():
        for name in gains:
            table = getattr(model, name).detach().float()
            getattr(new, name).copy_(torch.cat([table[:1] - below * (table[1:2] - table[:1]), table]))
    return new


def load_learned(model: VariableRateHyperprior, state: dict[str, torch.Tensor], allow_missing: str = "") -> None:
    """Copy the parameters in ``state`` into ``model``, leaving its constant buffers as the code defines them.

    Shipped weights are fp16, which flushes constants such as the 1e-9 likelihood lower bound
    to zero: a model that took its buffers from them trains with an unbounded rate (an
    occasional infinite loss). Parameters whose names start with ``allow_missing`` may be absent
    (new context networks keep their zero initialisation).
    """
    params = dict(model.named_parameters())
    missing = [k for k in params if k not in state and not (allow_missing and k.startswith(allow_missing))]
    buffers = dict(model.named_buffers())
    unexpected = [k for k in state if k not in params and k not in buffers]
    reshaped = [k for k, p in params.items() if k in state and state[k].shape != p.shape]
    if missing or unexpected or reshaped:
        raise ValueError(f"weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]}, "
                         f"other shape {reshaped[:3]})")
    with torch.no_grad():
        for name, param in params.items():
            if name in state:
                param.copy_(state[name].to(param.dtype))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr-drop", type=float, default=0.85,
                   help="fraction of --steps (or of --minutes, whichever comes first) after which lr /= 10")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--n", type=int, default=ModelConfig.n)
    p.add_argument("--m", type=int, default=ModelConfig.m)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC memory layout (about 1.5x faster CPU training here)")
    p.add_argument("--compile", action="store_true",
                   help="run the training forward under torch.compile: fuses the element-wise work around the "
                        "convolutions (1.13x in fp32 on a 2-core CPU without bf16 units, "
                        "benchmarks/results/train_speed/compile-no-bf16.json); compiling takes the first steps' "
                        "time")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="dtype of the four transforms' arithmetic (g_a, g_s, h_a, h_s); weights, optimizer, "
                        "quantization, likelihoods and loss stay fp32. bf16 pays on CPUs with bf16 units "
                        "(benchmarks/results/train_speed/) and is emulated, several times slower, on others; "
                        "auto: bf16 where the device has it natively, fp32 elsewhere")
    p.add_argument("--rescale-gains", type=float, default=None,
                   help="on resume, multiply every gain by this factor (inverse gains divided by it): "
                        "finer quantization of an under-scaled latent, which early CPU training "
                        "is slow to grow by itself. Pass it once, on one resume")
    p.add_argument("--init", type=Path, default=None,
                   help="when no checkpoint exists, start from a shipped .safetensors file or a --snapshot "
                        "directory (fresh optimizer; a snapshot also restores the EMA and the step count)")
    p.add_argument("--snapshot", type=Path, default=None,
                   help="also write a compact resumable snapshot (fp32 weights, fp16 EMA, parts < 16 MiB) "
                        "here at every checkpoint")
    p.add_argument("--context-slices", type=int, default=None,
                   help="channel slices of the context model (1 = none); with --init from a model without "
                        "one, the new context networks start as a no-op")
    p.add_argument("--context-width", type=int, default=ModelConfig.context_width,
                   help="hidden channels of each context network")
    p.add_argument("--train-only", choices=["all", "context"], default="all",
                   help="'context' freezes every other weight and trains the context model on the rate alone")
    p.add_argument("--levels-below", type=int, default=0,
                   help="with --init: add this many rate levels below the lowest one (same lambda spacing, "
                        "gains extrapolated), so the model reaches lower bit rates")
    p.add_argument("--residual-blocks", type=int, default=None,
                   help="residual blocks per scale (1/4, 1/8) in g_a and g_s; with --init from a model "
                        "with fewer, the new ones start as the identity (the trained network is grown)")
    p.add_argument("--transform-width", type=int, default=None,
                   help="hidden channels of g_a and g_s; with --init from a narrower model, the new channels "
                        "start disconnected from the old ones (the trained network is widened)")
    p.add_argument("--latent-channels", type=int, default=None,
                   help="latent channels (y); with --init from a model with fewer, the new ones are added at "
                        "the end of every context slice and start silent (the trained network is grown)")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop (with a checkpoint) after this many minutes of training")
    args = p.parse_args(argv)
    if args.rescale_gains is not None and not (args.out / "checkpoint.pt").exists():
        p.error("--rescale-gains acts on a resume only, and there is no checkpoint in --out")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # re-seeded below once the starting step is known
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    configure_device(device)

    step = 0
    opt_start = 0  # the step at which Adam started from scratch: the warm-up counts from here
    init_ema = None
    ckpt_path = args.out / "checkpoint.pt"
    ck = torch.load(ckpt_path, map_location=device, weights_only=False) if ckpt_path.exists() else None
    if ck is not None:
        config = ModelConfig(**ck["config"])  # the checkpoint's architecture, whatever the flags say
        model = VariableRateHyperprior(config).to(device)
    elif args.init is not None:
        if args.init.is_dir():
            state, init_ema, step, config_dict = load_snapshot(args.init)
            config = ModelConfig(**config_dict)
            model = VariableRateHyperprior(config)
            load_learned(model, state)  # the snapshot's own architecture
            model = model.to(device)
            opt_start = step
            print(f"initialised from snapshot {args.init} at step {step}", flush=True)
        else:
            from diffcodec.zoo.weight_files import load_weights

            shipped = load_weights(args.init, None).net
            config = shipped.config
            model = VariableRateHyperprior(config)
            load_learned(model, shipped.state_dict())
            model = model.to(device)
    else:
        config = ModelConfig(n=args.n, m=args.m, context_slices=args.context_slices or 1,
                             context_width=args.context_width, residual_blocks=args.residual_blocks or 0,
                             transform_width=args.transform_width or 0)
        model = VariableRateHyperprior(config).to(device)
    if args.context_slices is not None and ck is None:
        model = with_context_slices(model, args.context_slices, args.context_width)
        config = model.config
    if args.levels_below and ck is None:
        if args.init is None:
            p.error("--levels-below extends a model given with --init")
        if init_ema is not None:
            p.error("--levels-below starts from a .safetensors file, not a snapshot")
        model = with_levels_below(model, args.levels_below)
        config = model.config
        print(f"levels extended to {config.levels}, lambda_min {config.lambda_min:.6g}", flush=True)
    growths = [("--residual-blocks", args.residual_blocks, lambda c: c.residual_blocks, with_residual_blocks),
               ("--transform-width", args.transform_width, lambda c: c.transform_width or c.n, with_transform_width),
               ("--latent-channels", args.latent_channels, lambda c: c.m, with_latent_channels)]
    for flag, wanted, current, grow in growths:  # grow the network a .safetensors file gave
        if wanted is None or ck is not None:
            continue
        if init_ema is not None and wanted != current(config):
            p.error(f"{flag} grows a model given as a .safetensors file, not a snapshot")
        try:
            model = grow(model, wanted)
        except ValueError as exc:
            p.error(f"{flag}: {exc}")
        config = model.config
    torch.manual_seed(args.seed + step)  # a run initialised from a snapshot draws new levels
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    ema = copy.deepcopy(model).eval()
    model.transform_dtype, slow = training_dtype(args.precision, device)
    if slow:
        print(slow, file=sys.stderr, flush=True)
    print(f"transforms compute in {str(model.transform_dtype).removeprefix('torch.')}", flush=True)
    if init_ema is not None:  # a snapshot of a model without the context networks leaves them as they are
        try:
            load_learned(ema, init_ema, allow_missing="context.")
        except ValueError as exc:
            raise SystemExit(f"error: snapshot {args.init}: {exc}") from None
    if args.train_only == "context":
        if not config.context_slices > 1:
            p.error("--train-only context needs a model with --context-slices > 1")
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("context.") or name.endswith(".quantiles"))
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)

    sampler = CropSampler(load_corpus(args.data, args.crop), args.crop, args.seed + step)
    if ck is not None:
        step, opt_start = restore_checkpoint(ck, model, ema, {"opt": opt, "aux_opt": aux_opt}, sampler.rng)
        print(f"resumed from step {step}", flush=True)
        if args.rescale_gains is not None:
            with torch.no_grad():
                for net in (model, ema):
                    net.log_gain += math.log(args.rescale_gains)
                    net.log_inv_gain -= math.log(args.rescale_gains)
            print(f"gains rescaled by {args.rescale_gains} at step {step}", flush=True)

    # the compiled module shares the model's parameters; checkpoints, EMA and aux loss use the model itself
    step_model = torch.compile(model) if args.compile else model
    log = RunLog(args.out / "log.jsonl")
    t0 = time.time()
    guard = SkipNonFinite()
    with StopOnSignal() as stop:
        while step < args.steps:
            lr = apply_learning_rate(opt, args.lr, step, opt_start, args.warmup, args.lr_drop, args.steps,
                                     time.time() - t0, args.minutes)
            # uint8 crosses to the device (4x less traffic), the float conversion happens there
            x = sampler.sample(args.batch).to(device).float().div_(255.0).contiguous(memory_format=memory_format)
            t = torch.rand(args.batch, device=device) * (config.levels - 1)
            model.train()
            stats = rd_loss(step_model, x, t, rate_only=args.train_only == "context")
            opt.zero_grad(set_to_none=True)
            stats["loss"].backward()
            guard.step(opt, main_params, 1.0, step)
            aux = model.aux_loss()
            aux_opt.zero_grad(set_to_none=True)
            aux.backward()
            aux_opt.step()
            update_ema(ema, model, args.ema)
            step += 1
            # one device sync per step for all the figures
            loss_v, bpp_v, psnr_v, aux_v = torch.stack(
                [stats["loss"].detach(), stats["bpp"].detach(), stats["psnr"].to(aux.device), aux.detach()]).tolist()
            if not math.isfinite(loss_v) and guard.in_a_row == 0:
                raise SystemExit(f"non-finite loss at step {step}")
            rec = {
                "step": step, "loss": round(loss_v, 5), "bpp": round(bpp_v, 5),
                "psnr": round(psnr_v, 3), "aux": round(aux_v, 3), "lr": lr,
                "skipped": guard.skipped, "sec": round(time.time() - t0, 1),
            }

            def save() -> None:
                state = checkpoint_state(model, ema, {"opt": opt, "aux_opt": aux_opt}, sampler.rng, step, opt_start,
                                         config.to_dict(), args={k: str(v) for k, v in vars(args).items()})
                save_checkpoint(state, ckpt_path)
                if args.snapshot is not None:
                    save_snapshot(args.snapshot, model.state_dict(), ema.state_dict(), step, config.to_dict())

            if finish_step(log, rec, args.steps, args.ckpt_every, args.minutes, time.time() - t0, save,
                           stop.received):
                break
    log.close()


if __name__ == "__main__":
    main()
