"""Training loop: a few steps on tiny crops, checkpoint, resume, export, warm start."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from diffcodec.training import export as export_mod
from diffcodec.training import fidelity as train
from diffcodec.zoo.weight_files import load_weights


def _data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(d / f"im{i}.png")
    return d


def test_train_resume_export_and_warm_start(tmp_path):
    data = _data(tmp_path)
    out = tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24",
              "--ckpt-every", "2", "--threads", "1"]
    train.main([*common, "--steps", "2"])
    train.main([*common, "--steps", "3"])  # resumes from step 2
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    rec = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss", "bpp", "psnr", "lr"} <= rec.keys() and np.isfinite(rec["loss"])

    weights = tmp_path / "w.safetensors"
    export_mod.main([str(out / "checkpoint.pt"), str(weights)])
    model = load_weights(weights, None)
    assert model.net.config.n == 16 and model.z_pmf.shape == (16, 127)

    warm = tmp_path / "warm"
    train.main(["--data", str(data), "--out", str(warm), "--batch", "2", "--crop", "64", "--steps", "1",
                "--init", str(weights), "--threads", "1"])
    assert (warm / "checkpoint.pt").exists()
    # fp16 weights flush the 1e-9 likelihood bound to zero; a warm start must keep the code's
    # constants (else an unbounded rate gives an occasional infinite loss) and the learned values
    ck = torch.load(warm / "checkpoint.pt", weights_only=False)
    for state in (ck["model"], ck["ema"]):
        assert state["gaussian_conditional.likelihood_lower_bound.bound"].item() == pytest.approx(1e-9)
    # files exported from model 5 on keep the Gaussian conditional's constants in fp32
    assert model.net.state_dict()["gaussian_conditional.likelihood_lower_bound.bound"].item() == pytest.approx(1e-9)


def test_compiled_training_computes_the_eager_steps_and_checkpoints_the_plain_model(tmp_path, monkeypatch):
    """--compile: the same losses as eager training (inductor drawing its random numbers as eager
    does), and a checkpoint an eager run resumes."""
    import shutil

    if not (shutil.which("g++") or shutil.which("clang++")):
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    data = _data(tmp_path)
    common = ["--data", str(data), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24", "--threads", "1",
              "--ckpt-every", "2", "--steps", "2", "--warmup", "0"]

    def losses(run):
        return [json.loads(line)["loss"] for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]

    train.main([*common, "--out", str(tmp_path / "eager")])
    train.main([*common, "--out", str(tmp_path / "compiled"), "--compile"])
    assert losses("compiled") == pytest.approx(losses("eager"), rel=1e-3)
    ck = torch.load(tmp_path / "compiled" / "checkpoint.pt", weights_only=False)
    assert not any(k.startswith("_orig_mod") for k in ck["model"])
    train.main([*common, "--out", str(tmp_path / "compiled"), "--steps", "3"])  # resumed without --compile
    assert len(losses("compiled")) == 3


def test_bf16_transforms_train_fp32_master_weights():
    """--precision bf16: the transforms compute in bf16, the parameters and their gradients stay
    fp32, and the loss is close to the fp32 loss of the same network and batch."""
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    torch.manual_seed(0)
    net = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4, context_slices=2, context_width=8))
    x = torch.rand(2, 3, 64, 64)
    t = torch.tensor([0.5, 2.5])
    fp32 = train.rd_loss(net, x, t)["loss"]
    net.transform_dtype = torch.bfloat16
    stats = train.rd_loss(net, x, t)
    stats["loss"].backward()
    assert stats["loss"].dtype == torch.float32
    assert abs(stats["loss"].item() - fp32.item()) < 0.02 * abs(fp32.item())
    for name, p in net.named_parameters():
        assert p.dtype == torch.float32
        if name.startswith(("g_a.", "g_s.", "h_a.", "h_s.")):
            assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("capabilities, native", [({"amx_bf16": True}, True), ({"avx512_bf16": True}, True),
                                                  ({"avx512_f": True}, False), ({}, False)])
def test_precision_auto_picks_bf16_only_where_the_cpu_has_it(monkeypatch, capabilities, native):
    """--precision auto is bf16 on a CPU with AMX-BF16 or AVX512-BF16 and fp32 elsewhere; an explicit
    bf16 on a CPU without either is kept (it still trains) but warned about: emulated bf16 is several
    times slower than fp32."""
    from diffcodec.models.precision import training_dtype

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    cpu = torch.device("cpu")
    assert training_dtype("auto", cpu) == ((torch.bfloat16 if native else torch.float32), None)
    assert training_dtype("fp32", cpu) == (torch.float32, None)
    dtype, warning = training_dtype("bf16", cpu)
    assert dtype == torch.bfloat16
    assert (warning is None) == native
    if warning:
        assert warning.startswith("warning: ") and "\n" not in warning and "--precision auto" in warning
    with pytest.raises(ValueError):
        training_dtype("fp16", cpu)


def test_fidelity_training_warns_once_about_emulated_bf16(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_f": True})
    data = _data(tmp_path)
    common = ["--data", str(data), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24", "--threads", "1",
              "--steps", "1"]
    train.main([*common, "--out", str(tmp_path / "bf16"), "--precision", "bf16"])
    captured = capsys.readouterr()
    assert captured.err.count("no native bf16") == 1 and "transforms compute in bfloat16" in captured.out
    train.main([*common, "--out", str(tmp_path / "auto"), "--precision", "auto"])
    captured = capsys.readouterr()
    assert "no native bf16" not in captured.err and "transforms compute in float32" in captured.out


def test_load_learned_refuses_weights_of_another_shape():
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    small = VariableRateHyperprior(ModelConfig(n=16, m=24))
    other = VariableRateHyperprior(ModelConfig(n=16, m=32)).state_dict()
    with pytest.raises(ValueError, match="other shape"):
        train.load_learned(small, other)
    state = {k: v + 1 for k, v in small.state_dict().items()}
    train.load_learned(small, {k: state[k] for k in dict(small.named_parameters())})
    assert torch.equal(small.g_a[0].weight, state["g_a.0.weight"])


def test_levels_below_extends_the_rate_grid_and_keeps_every_old_level():
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    torch.manual_seed(0)
    old = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4, lambda_min=0.001, lambda_max=0.064))
    with torch.no_grad():
        old.log_gain.normal_()
        old.log_inv_gain.normal_()
    new = train.with_levels_below(old, 2)
    assert new.config.levels == 6 and new.config.lambda_min == pytest.approx(0.001 / 4**2)
    assert torch.equal(new.g_s[0].weight, old.g_s[0].weight)
    # level t of the old grid is level t + 2 of the new one, with the same lambda and gains,
    # extrapolated levels included: the new rows continue the old table linearly
    for t in (-2.0, -1.5, -0.25, 0.0, 1.3, 3.0):
        assert new.lambda_at(t + 2) == pytest.approx(old.lambda_at(t), rel=1e-12)
        for a, b in zip(old.gains(torch.tensor([t])), new.gains(torch.tensor([t + 2]))):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert train.with_levels_below(old, 0) is old


def test_levels_below_from_the_command_line(tmp_path, capsys):
    data = _data(tmp_path)
    run = tmp_path / "run"
    common = ["--data", str(data), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24", "--threads", "1"]
    train.main([*common, "--out", str(run), "--steps", "1"])
    weights = tmp_path / "w.safetensors"
    export_mod.main([str(run / "checkpoint.pt"), str(weights)])
    wide = tmp_path / "wide"
    train.main([*common, "--out", str(wide), "--steps", "1", "--init", str(weights), "--levels-below", "2"])
    ck = torch.load(wide / "checkpoint.pt", weights_only=False)
    assert ck["config"]["levels"] == 10 and ck["ema"]["log_gain"].shape[0] == 10
    with pytest.raises(SystemExit):
        train.main([*common, "--out", str(tmp_path / "bad"), "--steps", "1", "--levels-below", "2"])
    assert "--levels-below extends a model given with --init" in capsys.readouterr().err


def test_rescale_gains_on_resume_scales_gains_and_inverse_gains(tmp_path):
    import math

    import torch

    data = _data(tmp_path)
    out = tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24",
              "--ckpt-every", "1", "--threads", "1", "--lr", "0"]
    train.main([*common, "--steps", "1"])
    before = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    train.main([*common, "--steps", "2", "--rescale-gains", "4"])
    after = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    # lr 0: the only change to the gains is the rescale itself
    assert torch.allclose(after["log_gain"], before["log_gain"] + math.log(4), atol=1e-6)
    assert torch.allclose(after["log_inv_gain"], before["log_inv_gain"] - math.log(4), atol=1e-6)


def test_snapshot_carries_a_run_to_another_machine(tmp_path):
    """--snapshot writes checksummed parts; --init DIR resumes the weights, EMA and step count."""
    import torch

    from diffcodec.training.parts import SnapshotError, load_snapshot

    data = _data(tmp_path)
    snap = tmp_path / "snap"
    common = ["--data", str(data), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24", "--threads", "1",
              "--ckpt-every", "2"]
    train.main([*common, "--out", str(tmp_path / "a"), "--steps", "2", "--snapshot", str(snap)])
    model, ema, step, config = load_snapshot(snap)
    ck = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    assert step == 2 and config["n"] == 16
    assert all(torch.equal(model[k], v.float()) for k, v in ck["model"].items())
    assert all(torch.allclose(ema[k], v.float(), rtol=1e-3, atol=1e-6) for k, v in ck["ema"].items())

    # another machine: no checkpoint, only the snapshot
    b = tmp_path / "b"
    train.main([*common, "--out", str(b), "--steps", "4", "--init", str(snap), "--warmup", "4",
                "--lr-drop", "1"])
    recs = [json.loads(line) for line in (b / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [3, 4]
    # Adam restarted, so the warm-up restarts too: lr 1/4 and 2/4 of the base rate
    assert [round(r["lr"] / 3e-4, 6) for r in recs] == [0.25, 0.5]

    weights = tmp_path / "w.safetensors"
    export_mod.main([str(snap), str(weights)])
    assert load_weights(weights, None).net.config.m == 24

    part = sorted(snap.glob("part-*.safetensors"))[0]
    part.write_bytes(part.read_bytes()[:-1] + b"\x00")
    with pytest.raises(SnapshotError, match="checksum"):
        load_snapshot(snap)


def test_snapshot_parts_respect_the_size_cap(tmp_path):
    import torch

    from diffcodec.training.parts import load_snapshot, save_snapshot

    state = {f"w{i}": torch.randn(100, 100) for i in range(5)}  # 40 kB each in fp32
    paths = save_snapshot(tmp_path, state, state, 7, {"n": 1}, max_bytes=65536 + 90_000)
    assert len(paths) == 4 and all(p.stat().st_size <= 65536 + 90_000 for p in paths)  # 200 kB fp32 + 100 kB fp16
    model, ema, step, _ = load_snapshot(tmp_path)
    assert step == 7 and all(torch.equal(model[k], v) for k, v in state.items())


def test_minutes_stops_with_a_checkpoint(tmp_path):
    import torch

    data = _data(tmp_path)
    out = tmp_path / "run"
    train.main(["--data", str(data), "--out", str(out), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24",
                "--threads", "1", "--steps", "1000", "--ckpt-every", "1000", "--minutes", "0"])
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 1


def test_a_stop_signal_ends_the_run_after_its_step_with_a_checkpoint(tmp_path, monkeypatch, capsys):
    import os
    import signal

    real_loss, calls = train.rd_loss, []

    def loss_then_sigterm(*args, **kwargs):  # `kill PID` arrives during the second step
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train, "rd_loss", loss_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    train.main(["--data", str(_data(tmp_path)), "--out", str(out), "--batch", "2", "--crop", "64", "--n", "16",
                "--m", "24", "--threads", "1", "--steps", "1000", "--ckpt-every", "1000"])
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 2
    assert "stopping at step 2: SIGTERM received" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the caller's again


def test_a_second_stop_signal_stops_at_once():
    import os
    import signal

    from diffcodec.training.loop import StopOnSignal

    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.received == "SIGINT"
        with pytest.raises(SystemExit, match="SIGINT received again"):
            os.kill(os.getpid(), signal.SIGINT)
            [None for _ in range(1000)]  # the handler runs between bytecodes


def test_rescale_gains_without_checkpoint_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train.main(["--data", str(_data(tmp_path)), "--out", str(tmp_path / "new"), "--rescale-gains", "4"])
    assert exc.value.code == 2 and "resume only" in capsys.readouterr().err


def test_shards_hold_every_file_once_within_the_cap():
    from diffcodec.training.shards import plan_shards

    rng = np.random.default_rng(1)
    files = [(f"f{i}.jpg", int(s)) for i, s in enumerate(rng.integers(1_000, 50_000, 300))]
    shards = plan_shards(files, 400_000)
    sizes = dict(files)
    names = [n for s in shards for n in s]
    assert sorted(names) == sorted(sizes) and len(names) == len(set(names))
    totals = [sum(sizes[n] for n in s) for s in shards]
    assert max(totals) <= 400_000 and len(shards) <= -(-sum(sizes.values()) // 400_000) + 1
    assert max(totals) - min(totals) < 50_000  # about equally full
    with pytest.raises(ValueError):
        plan_shards([("big", 10)], 9)


def test_evaluate_reads_checkpoints_snapshots_and_weight_files(tmp_path, capsys):
    from diffcodec.training import evaluate

    data = _data(tmp_path)
    out = tmp_path / "run"
    train.main(["--data", str(data), "--out", str(out), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24",
                "--threads", "1", "--steps", "1", "--snapshot", str(tmp_path / "snap")])
    export_mod.main([str(out / "checkpoint.pt"), str(tmp_path / "w.safetensors")])
    for source in (out / "checkpoint.pt", tmp_path / "snap", tmp_path / "w.safetensors"):
        evaluate.main([str(source), "--images", str(data), "--limit", "2", "--qualities", "10", "90", "--threads", "1"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("quality")]
    assert len(lines) == 6 and lines[0] == lines[2] == lines[4]  # the same EMA weights each time


def test_learning_rate_drops_by_steps_or_by_minutes():
    from diffcodec.training.loop import learning_rate, lr_dropped

    assert learning_rate(1e-3, 0, 0, 100, False) == pytest.approx(1e-5)
    assert learning_rate(1e-3, 500, 0, 100, True) == pytest.approx(1e-4)
    assert learning_rate(1e-3, 500, 450, 100, False) == pytest.approx(1e-3 * 51 / 100)  # warm-up restarts
    assert not lr_dropped(84, 0.85, 100, 0.0, None) and lr_dropped(85, 0.85, 100, 0.0, None)
    # a time-limited sitting drops at 85 % of its minutes even far from 85 % of --steps
    assert not lr_dropped(10, 0.85, 10**6, 0.84 * 600, 10.0)
    assert lr_dropped(10, 0.85, 10**6, 0.86 * 600, 10.0)


def test_apply_learning_rate_sets_every_group_to_the_schedule():
    from diffcodec.training.loop import apply_learning_rate, learning_rate

    opt = torch.optim.Adam([{"params": [torch.zeros(2, requires_grad=True)]},
                            {"params": [torch.zeros(3, requires_grad=True)], "lr": 5.0}], lr=1.0)
    lr = apply_learning_rate(opt, 1e-3, 50, 0, 100, 0.8, 1000, 0.0, None)
    assert lr == pytest.approx(learning_rate(1e-3, 50, 0, 100, False))
    assert [g["lr"] for g in opt.param_groups] == [lr, lr]
    # past 80 % of the minutes the rate is a tenth, whatever the step count says
    assert apply_learning_rate(opt, 1e-3, 500, 0, 100, 0.8, 10**6, 0.81 * 600, 10.0) == pytest.approx(1e-4)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(1e-4)] * 2


def test_update_ema_moves_parameters_and_copies_buffers():
    from diffcodec.training.loop import update_ema

    model, ema = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.running_mean.fill_(5.0)
        ema.weight.fill_(1.0)
    update_ema(ema, model, 0.75)
    assert torch.allclose(ema.weight, torch.full((3,), 1.25))
    assert torch.equal(ema.running_mean, model.running_mean)


def test_a_non_finite_gradient_skips_the_update(tmp_path, monkeypatch):
    data = _data(tmp_path)
    out = tmp_path / "run"
    calls = {"n": 0}
    real_loss = train.rd_loss

    def sometimes_infinite(*args, **kwargs):
        stats = real_loss(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            stats["loss"] = stats["loss"] * float("inf")
        return stats

    monkeypatch.setattr(train, "rd_loss", sometimes_infinite)
    train.main(["--data", str(data), "--out", str(out), "--batch", "2", "--crop", "64", "--n", "16", "--m", "24",
                "--steps", "3", "--threads", "1"])
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["skipped"] for r in recs] == [0, 1, 1]
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_skip_non_finite_gives_up_after_its_limit():
    from diffcodec.training.loop import SkipNonFinite

    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    guard = SkipNonFinite(limit=3)
    w.grad = torch.tensor([1.0, 1.0])
    guard.step(opt, [w], 1.0, step=1)
    assert guard.skipped == 0 and not torch.equal(w.detach(), torch.ones(2))
    before = w.detach().clone()
    for step in (2, 3):
        w.grad = torch.tensor([float("nan"), 1.0])
        guard.step(opt, [w], 1.0, step)
    assert guard.skipped == 2 and torch.equal(w.detach(), before)
    w.grad = torch.tensor([float("inf"), 1.0])
    with pytest.raises(SystemExit, match="3 non-finite gradients in a row at step 4"):
        guard.step(opt, [w], 1.0, step=4)


def test_residual_blocks_grow_a_trained_network_without_changing_it(tmp_path):
    """--residual-blocks on a model without them: same outputs before training, the new blocks
    learn (their zero convolution gets a gradient), and the grown model round-trips its file."""
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    torch.manual_seed(0)
    old = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4, context_slices=2, context_width=8)).eval()
    new = train.with_residual_blocks(old, 1).eval()
    assert new.config.residual_blocks == 1 and train.with_residual_blocks(new, 1) is new
    added = [k for k in new.state_dict() if k not in old.state_dict()]
    assert added and all(".res." in k for k in added)
    x, t = torch.rand(2, 3, 64, 64), torch.tensor([0.5, 2.5])
    with torch.no_grad():
        a, b = old(x, t), new(x, t)
    assert torch.equal(a["x_hat"], b["x_hat"]) and torch.equal(a["likelihoods"]["y"], b["likelihoods"]["y"])
    new.train()
    train.rd_loss(new, x, t)["loss"].backward()
    assert new.g_s.res["1"][0].conv2.weight.grad.abs().sum() > 0
    assert new.g_a.res["5"][0].conv2.weight.grad.abs().sum() > 0

    # growing again adds blocks after the trained ones (which no longer start at zero) and
    # keeps the outputs; removing blocks is refused
    with torch.no_grad():
        for block in [new.g_a.res["3"][0], new.g_s.res["3"][0]]:
            block.conv2.weight.normal_(0, 0.05)
    new.eval()
    deeper = train.with_residual_blocks(new, 2).eval()
    assert len(deeper.g_a.res["3"]) == 2 and len(deeper.g_s.res["1"]) == 2
    assert {k for k in deeper.state_dict() if k not in new.state_dict()} == {
        k for k in deeper.state_dict() if ".res." in k and ".1.conv" in k}
    with torch.no_grad():
        c, d = new(x, t), deeper(x, t)
    assert not torch.equal(c["x_hat"], a["x_hat"])  # the perturbed block is in use
    assert torch.equal(c["x_hat"], d["x_hat"]) and torch.equal(c["likelihoods"]["y"], d["likelihoods"]["y"])
    with pytest.raises(ValueError, match="cannot remove"):
        train.with_residual_blocks(deeper, 1)

    data, weights = _data(tmp_path), tmp_path / "plain.safetensors"
    from diffcodec.zoo.weight_files import export

    export(old, weights)
    run = tmp_path / "grown"
    train.main(["--data", str(data), "--out", str(run), "--batch", "2", "--crop", "64", "--steps", "1",
                "--init", str(weights), "--residual-blocks", "1", "--threads", "1"])
    export_mod.main([str(run / "checkpoint.pt"), str(tmp_path / "grown.safetensors")])
    grown = load_weights(tmp_path / "grown.safetensors", None).net
    assert grown.config.residual_blocks == 1 and "g_s.res.3.0.conv1.weight" in grown.state_dict()
    again = ["--data", str(data), "--batch", "2", "--crop", "64", "--steps", "1",
             "--init", str(tmp_path / "grown.safetensors"), "--threads", "1"]
    train.main(again + ["--out", str(tmp_path / "again"), "--residual-blocks", "2"])  # grown once more
    export_mod.main([str(tmp_path / "again" / "checkpoint.pt"), str(tmp_path / "again.safetensors")])
    assert "g_s.res.3.1.conv2.weight" in load_weights(tmp_path / "again.safetensors", None).net.state_dict()
    with pytest.raises(SystemExit):  # fewer blocks than the file has: a one-line error
        train.main(again + ["--out", str(tmp_path / "fewer"), "--residual-blocks", "0"])


def test_transform_width_widens_a_trained_network_without_changing_it(tmp_path):
    """--transform-width on a narrower model: same reconstruction and rates (up to float summation
    order), the zero weights from the new channels get gradients, the hyperprior keeps its width,
    and the CLI widens a shipped file (narrowing is a one-line error)."""
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior
    from diffcodec.zoo.weight_files import export, load_weights

    torch.manual_seed(0)
    old = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4, context_slices=2, context_width=8,
                                             residual_blocks=1)).eval()
    with torch.no_grad():  # trained-looking GDNs: couplings between channels, not the identity init
        for gdn in [old.g_a[1], old.g_s[3]]:
            gdn.gamma.add_(0.05 * torch.rand_like(gdn.gamma))
        old.g_s.res["1"][0].conv2.weight.normal_(0, 0.05)
    new = train.with_transform_width(old, 24).eval()
    assert new.config.transform_width == 24 and train.with_transform_width(new, 24) is new
    assert new.g_a[0].weight.shape == (24, 3, 5, 5) and new.g_s[6].weight.shape == (24, 3, 5, 5)
    assert new.h_a[0].weight.shape == old.h_a[0].weight.shape  # the hyperprior (and z) keep their width
    x, t = torch.rand(2, 3, 64, 64), torch.tensor([0.5, 2.5])
    with torch.no_grad():
        a, b = old(x, t), new(x, t)
    assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5)
    assert torch.allclose(a["likelihoods"]["y"], b["likelihoods"]["y"], atol=1e-5)
    assert not torch.equal(new.g_a[2].weight[16:], torch.zeros_like(new.g_a[2].weight[16:]))  # new channels live
    new.train()
    train.rd_loss(new, x, t)["loss"].backward()
    assert new.g_a[2].weight.grad[:16, 16:].abs().sum() > 0  # new -> old: zero now, learning
    assert new.g_s[6].weight.grad[16:].abs().sum() > 0
    with pytest.raises(ValueError, match="cannot remove"):
        train.with_transform_width(new, 16)

    data, weights = _data(tmp_path), tmp_path / "narrow.safetensors"
    export(old, weights)
    common = ["--data", str(data), "--batch", "2", "--crop", "64", "--steps", "1", "--init", str(weights),
              "--threads", "1"]
    train.main(common + ["--out", str(tmp_path / "wide"), "--transform-width", "24"])
    export_mod.main([str(tmp_path / "wide" / "checkpoint.pt"), str(tmp_path / "wide.safetensors")])
    wide = load_weights(tmp_path / "wide.safetensors", None).net
    assert wide.config.transform_width == 24 and wide.g_s[0].weight.shape == (24, 24, 5, 5)
    with pytest.raises(SystemExit):
        train.main(common + ["--out", str(tmp_path / "narrower"), "--transform-width", "8"])


def test_latent_channels_grow_a_trained_network_without_changing_it(tmp_path):
    """--latent-channels on a model with fewer: the old channels keep their places within each
    context slice, the new ones start silent (same reconstruction, old rates, nearly free), the
    codec's exact path decodes the same image, g_a's zero weights into the new channels get a
    gradient, and the CLI grows a shipped file (removing channels is a one-line error)."""
    from diffcodec.coding.codec import Codec
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior
    from diffcodec.zoo.weight_files import export, load_weights

    torch.manual_seed(0)
    old = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4, context_slices=2, context_width=8)).eval()
    with torch.no_grad():  # trained-looking: context corrections in use, a gain of its own per channel
        old.context[0][4].weight.normal_(0, 0.05)
        old.context[0][4].bias.normal_(0, 0.05)
        old.log_gain.add_(0.2 * torch.randn_like(old.log_gain))
    new = train.with_latent_channels(old, 32).eval()
    assert new.config.m == 32 and train.with_latent_channels(new, 32) is new
    assert new.g_a[6].weight.shape[0] == 32 and new.h_s[4].weight.shape[0] == 64
    assert new.slice_bounds() == [(0, 16), (16, 32)]
    kept = [*range(0, 12), *range(16, 28)]  # old channel i -> slice i // 12, place i % 12
    assert torch.equal(new.log_gain[:, kept], old.log_gain)
    x, t = torch.rand(2, 3, 64, 64), torch.tensor([0.5, 2.5])
    with torch.no_grad():
        a, b = old(x, t), new(x, t)
    assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5)
    assert torch.allclose(a["likelihoods"]["y"], b["likelihoods"]["y"][:, kept], atol=1e-6)
    added = b["likelihoods"]["y"][:, [c for c in range(32) if c not in kept]]
    assert added.min() > 0.999  # silent channels cost (almost) no bits
    new.train()
    train.rd_loss(new, x, t)["loss"].backward()
    assert new.g_a[6].weight.grad[12:16].abs().sum() > 0  # zero now, learning
    with pytest.raises(ValueError, match="cannot remove"):
        train.with_latent_channels(new, 24)
    with pytest.raises(ValueError, match="slices"):
        train.with_latent_channels(old, 25)

    files = {}
    for name, net in [("old", old), ("new", train.with_latent_channels(old, 32))]:
        export(net.eval(), tmp_path / f"{name}.safetensors")
        files[name] = Codec(load_weights(tmp_path / f"{name}.safetensors", None))
    image = torch.rand(1, 3, 80, 96)
    streams = {name: codec.encode(image, 40.0) for name, codec in files.items()}
    decoded = {name: files[name].decode(streams[name], 40.0, 80, 96) for name in files}
    assert torch.allclose(decoded["old"], decoded["new"], atol=1e-5)
    assert len(streams["new"]) <= len(streams["old"]) + 4

    data = _data(tmp_path)
    common = ["--data", str(data), "--batch", "2", "--crop", "64", "--steps", "1",
              "--init", str(tmp_path / "old.safetensors"), "--threads", "1"]
    train.main(common + ["--out", str(tmp_path / "grown"), "--latent-channels", "32"])
    export_mod.main([str(tmp_path / "grown" / "checkpoint.pt"), str(tmp_path / "grown.safetensors")])
    assert load_weights(tmp_path / "grown.safetensors", None).net.config.m == 32
    with pytest.raises(SystemExit):
        train.main(common + ["--out", str(tmp_path / "fewer"), "--latent-channels", "16"])


def test_train_speed_times_both_precisions_a_grown_and_a_widened_network(tmp_path):
    from benchmarks import train_speed

    out = tmp_path / "speed.json"
    train_speed.main(["--data", str(_data(tmp_path)), "--batch", "1", "--crop", "64", "--steps", "1",
                      "--warmup", "0", "--rounds", "1", "--threads", "1", "--residual-blocks", "4",
                      "--transform-width", "128", "--out", str(out)])
    result = json.loads(out.read_text())  # (the default model has 3 blocks per scale since release 0.10.0)
    assert set(result["seconds_per_step"]) == {"fp32", "bf16", "bf16+4res", "bf16+width128"}
    assert result["residual_blocks"] == 4 and result["grown_cost_vs_bf16"] > 0
    assert result["transform_width"] == 128 and result["widened_cost_vs_bf16"] > 0


def test_train_speed_times_the_realism_decoders_step(tmp_path):
    pytest.importorskip("benchmarks.metrics.dists")
    from benchmarks import train_speed

    out = tmp_path / "speed.json"
    common = ["--data", str(_data(tmp_path)), "--batch", "1", "--crop", "64", "--threads", "1", "--out", str(out)]
    train_speed.main([*common, "--model", "realism", "--steps", "1", "--warmup", "1", "--rounds", "1"])
    result = json.loads(out.read_text())
    assert result["model"] == "realism" and result["denoiser"].endswith(".safetensors")
    assert set(result["seconds_per_step"]) == {"fp32", "bf16"} and result["speedup_bf16"] > 0
    with pytest.raises(SystemExit):  # no equal-steps check for the realism decoder
        train_speed.main([*common, "--model", "realism", "--equal-steps", "2"])
    # each term's share of the step: the same step without it, in the precisions asked for
    train_speed.main([*common, "--model", "realism", "--steps", "1", "--warmup", "0", "--rounds", "1",
                      "--precisions", "fp32", "--ablate", "dists", "adv", "--d-condition"])
    result = json.loads(out.read_text())
    assert set(result["seconds_per_step"]) == {"fp32", "fp32-no-dists", "fp32-no-adv"}
    assert set(result["term_share_of_step"]["fp32"]) == {"dists", "adv"} and result["conditional_heads"]
    assert "speedup_bf16" not in result
    with pytest.raises(SystemExit):  # the fidelity model's loss has no such terms
        train_speed.main([*common, "--ablate", "dists"])
