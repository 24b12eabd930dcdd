"""Pieces shared by the two training loops (:mod:`diffcodec.training.fidelity`, :mod:`diffcodec.training.realism`)."""
from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from diffcodec.image_io import atomic_write


def learning_rate(base: float, step: int, opt_start: int, warmup: int, dropped: bool) -> float:
    """Linear warm-up from the step Adam (re)started, then ``base``, divided by 10 once ``dropped``."""
    ramp = min(1.0, (step - opt_start + 1) / warmup) if warmup > 0 else 1.0
    return base * ramp * (0.1 if dropped else 1.0)


def lr_dropped(step: int, lr_drop: float, total_steps: int, elapsed_s: float, minutes: float | None) -> bool:
    """Whether the run is past ``lr_drop`` of its length: of ``total_steps``, or of ``minutes`` when a
    time limit ends it first (a GPU sitting does not know beforehand how many steps it will reach)."""
    if step >= int(lr_drop * total_steps):
        return True
    return minutes is not None and elapsed_s >= lr_drop * 60.0 * minutes


def apply_learning_rate(optimizer: torch.optim.Optimizer, base: float, step: int, opt_start: int, warmup: int,
                        lr_drop: float, total_steps: int, elapsed_s: float, minutes: float | None) -> float:
    """Set this step's rate (warm-up, then ``base``, a tenth after ``lr_drop`` of the run) on every
    parameter group; returns it for the log. One place, so both loops follow the same schedule."""
    dropped = lr_dropped(step, lr_drop, total_steps, elapsed_s, minutes)
    lr = learning_rate(base, step, opt_start, warmup, dropped)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


class SkipNonFinite:
    """Optimizer steps with gradient clipping that skip a non-finite gradient instead of applying it.

    A rare infinite or NaN gradient would poison every weight (and the EMA after it); skipping
    that one update keeps the run going. ``limit`` non-finite gradients in a row end the run:
    then something is broken, not rare.
    """

    def __init__(self, limit: int = 20):
        self.limit = limit
        self.skipped = 0  # over the run, for the log
        self.in_a_row = 0

    def step(self, opt: torch.optim.Optimizer, params: Iterable[torch.Tensor], max_norm: float, step: int) -> None:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if torch.isfinite(grad_norm):
            opt.step()
            self.in_a_row = 0
            return
        self.skipped += 1
        self.in_a_row += 1
        if self.in_a_row >= self.limit:
            raise SystemExit(f"{self.limit} non-finite gradients in a row at step {step}")


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float, copy_buffers: bool = True) -> None:
    """ema <- decay * ema + (1 - decay) * model, in one fused call per device (cheap on a GPU)."""
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - decay)
    if copy_buffers:
        for be, bm in zip(ema.buffers(), model.buffers()):
            be.copy_(bm)


def configure_device(device: torch.device) -> None:
    """TF32 matmuls/convolutions and cuDNN autotuning on a GPU (the crops have fixed shapes)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def checkpoint_state(model: torch.nn.Module, ema: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                     sampler_rng, step: int, opt_start: int, config: dict, **extra) -> dict:
    """Everything a run needs to continue exactly: weights, EMA, optimizers (under their keys,
    e.g. ``opt``, ``aux_opt``), both random generators, the step and the architecture."""
    return {"model": model.state_dict(), "ema": ema.state_dict(),
            **{key: opt.state_dict() for key, opt in optimizers.items()},
            "rng": sampler_rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "step": step, "opt_start": opt_start, "config": config, **extra}


def restore_checkpoint(ck: dict, model: torch.nn.Module, ema: torch.nn.Module,
                       optimizers: dict[str, torch.optim.Optimizer], sampler_rng) -> tuple[int, int]:
    """Load a :func:`checkpoint_state` dict into a freshly built run; returns (step, opt_start)."""
    model.load_state_dict(ck["model"])
    ema.load_state_dict(ck["ema"])
    for key, opt in optimizers.items():
        opt.load_state_dict(ck[key])
    sampler_rng.bit_generator.state = ck["rng"]
    torch.set_rng_state(ck["torch_rng"])
    return ck["step"], ck.get("opt_start", 0)


def save_checkpoint(state: dict, path: Path) -> None:
    """``torch.save`` through the one atomic write: a run killed mid-save keeps its last checkpoint."""
    atomic_write(path, write=lambda fh: torch.save(state, fh))


class StopOnSignal:
    """Ctrl-C (SIGINT) or SIGTERM ends a training run after the step in progress, with a
    checkpoint, instead of killing it mid-step and losing every step since the last checkpoint;
    so a sitting can be ended at any moment (``kill PID``). A second signal stops at once,
    without one. Installed only in the main thread (where Python delivers signals); the
    previous handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None  # the signal's name once one arrived
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            raise SystemExit(f"{name} received again: stopped without a checkpoint")
        self.received = name
        print(f"{name} received: stopping after this step with a checkpoint (again to stop at once)", flush=True)


def finish_step(log: "RunLog", record: dict, total_steps: int, ckpt_every: int, minutes: float | None,
                elapsed_s: float, save: Callable[[], None], stop_signal: str | None = None) -> bool:
    """Log a step's record and call ``save`` every ``ckpt_every`` steps, at the last step, when
    ``minutes`` have run out and when a stop signal arrived (:class:`StopOnSignal`); True when the
    run must stop (out of time or signalled)."""
    step = record["step"]
    log.write(record)
    out_of_time = minutes is not None and elapsed_s > 60 * minutes
    stop = out_of_time or stop_signal is not None
    if step % ckpt_every == 0 or step == total_steps or stop:
        save()
    if out_of_time:
        print(f"stopping at step {step}: --minutes {minutes} reached", flush=True)
    elif stop_signal is not None:
        print(f"stopping at step {step}: {stop_signal} received", flush=True)
    return stop


class RunLog:
    """One JSON line per step in ``log.jsonl`` (appended, so a resumed run continues it); every
    ``echo_every`` steps the file is flushed and the line printed, for a person watching."""

    def __init__(self, path: Path, echo_every: int = 20):
        self.file = open(path, "a")
        self.echo_every = echo_every

    def write(self, record: dict) -> None:
        line = json.dumps(record)
        self.file.write(line + "\n")
        if record["step"] % self.echo_every == 0:
            self.file.flush()
            print(line, flush=True)

    def close(self) -> None:
        self.file.close()
