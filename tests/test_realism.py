"""Realism decoder: sampler maths, determinism, guidance limits, steps=0, training and weights."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from diffcodec.models.denoiser import DenoiserConfig, ResidualDenoiser
from diffcodec.realism.decode import decode_realism
from diffcodec.realism.schedule import (
    SamplerSettings,
    alpha_sigma,
    ddim,
    from_v,
    guided,
    interpret,
    sample_residual,
    time_grid,
)
from diffcodec.training import export as export_mod
from diffcodec.training import realism as train_denoiser
from diffcodec.zoo.weight_files import (
    RealismDecoder,
    WeightError,
    export,
    export_denoiser,
    load_denoiser,
    load_weights,
)

TINY = DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=4)


def _exact(target: torch.Tensor):
    """The ideal prediction (through v) when the data distribution is a single point ``target``."""
    def predict(r_t, t, conditional):
        a, s = alpha_sigma(t)
        return from_v(r_t, (a * r_t - target) / s, t)
    return predict


@pytest.mark.parametrize("steps,eta,strength", [(1, 0.0, 1.0), (3, 0.0, 1.0), (4, 1.0, 1.0), (8, 0.5, 1.0),
                                                (2, 0.0, 0.3), (3, 0.7, 0.6)])
def test_sampler_recovers_a_point_distribution(steps, eta, strength):
    target = torch.linspace(-2, 2, 2 * 3 * 4 * 4).view(2, 3, 4, 4)
    settings = SamplerSettings(steps=steps, eta=eta, seed=5, strength=strength)
    r = sample_residual(_exact(target), tuple(target.shape), settings)
    assert torch.allclose(r, target, atol=1e-5)


def test_time_grid_starts_at_the_strength():
    assert time_grid(1.0, 4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert time_grid(0.5, 2) == [0.5, 0.25, 0.0]


def _random_net(config: DenoiserConfig, seed: int = 0) -> ResidualDenoiser:
    net = ResidualDenoiser(config)
    torch.manual_seed(seed)
    for prm in net.parameters():
        prm.data.normal_(0, 0.05)
    return net.eval()


R0_TINY = DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=4, prediction="r0")


@pytest.mark.parametrize("steps,strength", [(1, 1.0), (2, 1.0), (2, 0.4), (3, 0.7)])
def test_training_unrolls_the_same_sampler_that_decodes(steps, strength):
    """Fixed-step fine-tuning is only right if training runs exactly the decode's steps: the
    unrolled training path (per-crop time tensors, global noise) gives the decoder's pixels."""
    net = _random_net(R0_TINY, 3)
    x_f = torch.rand(1, 3, 16, 24)
    settings = SamplerSettings(steps=steps, strength=strength, seed=9)
    decoded = decode_realism(x_f, 1.5, net, settings)
    noise = torch.randn(x_f.shape, generator=torch.Generator().manual_seed(9))
    _, s_start = alpha_sigma(torch.tensor([strength]))
    times = torch.tensor(time_grid(strength, steps))[:, None]
    level = torch.tensor([1.5])
    with torch.no_grad():
        r0 = ddim(lambda r, t: interpret("r0", r, net(r, x_f, t, level), t), s_start * noise, times)
    trained_path = (x_f + net.config.residual_scale * r0).clamp(0, 1)
    assert torch.allclose(decoded, trained_path, atol=1e-6)


def test_strength_zero_is_the_fidelity_image_and_strength_and_seed_change_the_output():
    net = _random_net(R0_TINY, 4)
    x_f = torch.rand(1, 3, 20, 28)
    run = lambda strength, seed=0: decode_realism(x_f, 1.0, net, SamplerSettings(steps=2, strength=strength, seed=seed))  # noqa: E731
    assert torch.equal(run(0.0), x_f)
    low, high = run(0.2), run(1.0)
    assert not torch.equal(low, high) and not torch.equal(high, run(1.0, seed=1))
    assert torch.equal(high, run(1.0))


def test_an_untrained_r0_network_decodes_to_the_fidelity_image():
    """The output layer starts at zero: a fresh clean-residual network adds nothing, so training
    starts from the fidelity decoder instead of from noise."""
    net = ResidualDenoiser(R0_TINY).eval()
    x_f = torch.rand(1, 3, 16, 16)
    out = decode_realism(x_f, 1.0, net, SamplerSettings(steps=2, strength=1.0))
    assert torch.allclose(out, x_f, atol=1e-6)


def test_sampler_is_seeded():
    net = ResidualDenoiser(TINY)
    torch.manual_seed(0)
    for prm in net.parameters():
        prm.data.normal_(0, 0.05)
    x_f = torch.rand(1, 3, 16, 24)
    run = lambda seed, eta: decode_realism(x_f, 1.5, net, SamplerSettings(steps=3, eta=eta, seed=seed))
    assert torch.equal(run(1, 0.0), run(1, 0.0))
    assert torch.equal(run(1, 0.7), run(1, 0.7))
    assert not torch.equal(run(1, 0.0), run(2, 0.0))


def test_guidance_limits():
    calls = []

    def predict(r_t, t, conditional):
        calls.append(conditional)
        value = 3.0 if conditional else 1.0
        return torch.full_like(r_t, value), torch.full_like(r_t, -value)

    r, t = torch.zeros(1, 3, 4, 4), torch.ones(1)
    assert torch.equal(guided(predict, r, t, 1.0)[0], torch.full_like(r, 3.0)) and calls == [True]
    assert torch.equal(guided(predict, r, t, 0.0)[1], torch.full_like(r, -1.0))
    r0, eps = guided(predict, r, t, 2.5)
    assert torch.equal(r0, torch.full_like(r, 1.0 + 2.5 * 2.0)) and torch.equal(eps, -r0)


def test_zero_steps_is_the_fidelity_image_bit_for_bit():
    x_f = torch.rand(1, 3, 37, 53)
    out = decode_realism(x_f, 2.0, ResidualDenoiser(TINY), SamplerSettings(steps=0))
    assert torch.equal(out, x_f)


def test_odd_sizes_are_padded_and_cropped():
    net = ResidualDenoiser(TINY)
    x_f = torch.rand(1, 3, 37, 53)
    out = decode_realism(x_f, 0.0, net, SamplerSettings(steps=2, eta=0.3))
    assert out.shape == x_f.shape and out.min() >= 0 and out.max() <= 1
    assert net(torch.zeros(2, 3, 16, 32), torch.rand(2, 3, 16, 32), torch.rand(2), torch.rand(2)).shape == (2, 3, 16, 32)


def test_settings_are_validated():
    for bad in ({"steps": -1}, {"eta": 1.5}, {"guidance": -1.0}, {"strength": 1.5}, {"strength": -0.1}):
        with pytest.raises(ValueError):
            SamplerSettings(**bad)


def test_weights_round_trip_and_checksum(tmp_path):
    net = ResidualDenoiser(TINY)
    path = tmp_path / "d.safetensors"
    digest = export_denoiser(net, path)
    loaded = load_denoiser(path, digest)
    assert loaded.net.config == TINY
    with pytest.raises(WeightError, match="checksum"):
        load_denoiser(path, "0" * 64)
    other = tmp_path / "codec.safetensors"
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    export(VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4)), other)
    with pytest.raises(WeightError, match="not a diffcodec denoiser"):
        load_denoiser(other, None)


def _diffusion_run_args(tmp_path) -> list[str]:
    """A tiny codec, one image and the diffusion objective's options, for training runs in ``tmp_path/run``."""
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    torch.manual_seed(0)
    codec_path = tmp_path / "codec.safetensors"
    export(VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4)).eval(), codec_path)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(data / "a.png")
    return ["--data", str(data), "--out", str(tmp_path / "run"), "--codec-weights", str(codec_path), "--batch", "2",
            "--crop", "64", "--width", "8", "--threads", "1", "--ckpt-every", "2", "--p-uncond", "0.5",
            "--t-one-fraction", "0.5", "--mse-weight", "0.5", "--lambda-range", "0.001", "0.1"]


def test_training_resumes_and_exports(tmp_path):
    common = _diffusion_run_args(tmp_path)
    out = tmp_path / "run"
    train_denoiser.main([*common, "--steps", "2"])
    train_denoiser.main([*common, "--steps", "3"])
    lines = (out / "log.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(math.isfinite(__import__("json").loads(line)["loss"]) for line in lines)
    weights = tmp_path / "den.safetensors"
    export_mod.main([str(out / "checkpoint.pt"), str(weights)])
    net = load_denoiser(weights, None).net
    x_f = torch.rand(1, 3, 30, 40)
    assert decode_realism(x_f, 1.0, net, SamplerSettings(steps=2)).shape == x_f.shape


def test_a_stop_signal_ends_the_realism_run_after_its_step_with_a_checkpoint(tmp_path, monkeypatch, capsys):
    import os
    import signal

    real_loss = train_denoiser.denoiser_loss

    def loss_then_sigint(*args, **kwargs):  # Ctrl-C during the first step
        os.kill(os.getpid(), signal.SIGINT)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_denoiser, "denoiser_loss", loss_then_sigint)
    train_denoiser.main([*_diffusion_run_args(tmp_path), "--steps", "1000"])
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 1
    assert "stopping at step 1: SIGINT received" in capsys.readouterr().out


def test_a_share_of_each_batch_trains_at_t_one():
    torch.manual_seed(0)
    t = train_denoiser.diffusion_times(8, 4)
    assert torch.equal(t[:4], torch.ones(4)) and bool(((t[4:] >= 0) & (t[4:] < 1)).all())
    assert bool((train_denoiser.diffusion_times(8, 0) < 1).all())
    assert torch.equal(train_denoiser.diffusion_times(3, 3), torch.ones(3))


def test_training_reaches_the_level_input_through_lambda():
    """With --lambda-range the denoiser sees each crop's level as decoding computes it from lambda."""
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    codec = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4)).eval().requires_grad_(False)
    seen = []

    class Spy(ResidualDenoiser):
        def forward(self, r_t, x_f, t, level):
            seen.append(level.clone())
            return super().forward(r_t, x_f, t, level)

    x = torch.rand(3, 3, 64, 64)

    def levels(net, lambda_range):
        seen.clear()
        torch.manual_seed(1)
        train_denoiser.denoiser_loss(net, codec, x, 0.0, lambda_range=lambda_range)
        return seen[0]

    own = levels(Spy(DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=4)), None)
    same = levels(Spy(DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=4)),
                  (codec.lambda_at(0.0), codec.lambda_at(3.0)))
    shifted = levels(Spy(DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=3)),
                     (codec.lambda_at(1.0), codec.lambda_at(3.0)))
    torch.testing.assert_close(same, own)
    torch.testing.assert_close(shifted, own - 1)


def test_thread_count_changes_pixels_by_less_than_a_level():
    """Not bit-exact across thread counts (float sums reorder); measured: far below one 8-bit level."""
    net = ResidualDenoiser(TINY)
    torch.manual_seed(1)
    for prm in net.parameters():
        prm.data.normal_(0, 0.05)
    x_f = torch.rand(1, 3, 32, 48)
    before = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2, 2):
            torch.set_num_threads(threads)
            outs.append(decode_realism(x_f, 1.0, net, SamplerSettings(steps=3, eta=0.5)))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(outs[1], outs[2])
    assert (outs[0] - outs[1]).abs().max().item() < 0.5 / 255


def test_api_realism_mode(monkeypatch, tmp_path):
    """decompress(steps=N) runs the registered denoiser; without one it refuses with a clear error."""
    import diffcodec
    from diffcodec import api
    from diffcodec.zoo import registry

    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8))
    data = diffcodec.compress(img, quality=30)
    fidelity = np.asarray(diffcodec.decompress(data))
    assert np.array_equal(np.asarray(diffcodec.decompress(data, steps=0)), fidelity)
    model_id = diffcodec.read_header(data).header.model_id
    if model_id not in registry.DENOISERS:
        with pytest.raises(registry.RealismUnavailableError, match="no realism decoder"):
            diffcodec.decompress(data, steps=2)
    net = ResidualDenoiser(DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=8))
    torch.manual_seed(0)
    for prm in net.parameters():
        prm.data.normal_(0, 0.05)
    path = tmp_path / "den.safetensors"
    entry = registry.DenoiserEntry(path.name, export_denoiser(net, path))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(registry.DENOISERS, model_id, entry)
    registry.load_denoiser_file.cache_clear()
    try:
        a = np.asarray(diffcodec.decompress(data, steps=2, seed=3, eta=0.5))
        b = np.asarray(diffcodec.decompress(data, steps=2, seed=3, eta=0.5))
        c = np.asarray(diffcodec.decompress(data, steps=2, seed=4, eta=0.5))
        # a denoiser given directly (a training checkpoint, say) decodes exactly like the registered one
        given = RealismDecoder(load_denoiser(path, None).net, entry.lambda_range)
        d = np.asarray(diffcodec.decompress(data, steps=2, seed=3, eta=0.5, realism_decoder=given))
    finally:
        registry.load_denoiser_file.cache_clear()
        api._on.cache_clear()
    assert a.shape == fidelity.shape and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a, d)
    assert not np.array_equal(a, fidelity)


def test_tiled_denoising_matches_untiled():
    """Per-pixel normalisation keeps the network local: tiles with a wide halo change nothing visible."""
    net = ResidualDenoiser(TINY)
    torch.manual_seed(2)
    for prm in net.parameters():
        prm.data.normal_(0, 0.05)
    x_f = torch.rand(1, 3, 96, 130)
    settings = SamplerSettings(steps=2, eta=0.5, seed=1)
    whole = decode_realism(x_f, 1.0, net, settings)
    tiled = decode_realism(x_f, 1.0, net, settings, tile=32, halo=64)
    assert (whole - tiled).abs().max().item() < 1e-5
    cut = decode_realism(x_f, 1.0, net, settings, tile=32, halo=0)  # without a halo the seams show
    assert (whole - cut).abs().max().item() > 1e-3


def test_evaluate_realism_compares_a_denoiser_with_the_fidelity_decoder(tmp_path, capsys):
    """The training-run check: one fidelity row and one row per step count, from the same files."""
    pytest.importorskip("benchmarks.metrics.lpips")
    from diffcodec.training import evaluate_realism

    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(data / "a.png")
    net = ResidualDenoiser(TINY)
    torch.manual_seed(0)
    for prm in net.parameters():
        prm.data.normal_(0, 0.05)
    weights = tmp_path / "den.safetensors"
    export_denoiser(net, weights)
    evaluate_realism.main([str(weights), "--images", str(data), "--limit", "1", "--qualities", "30",
                           "--steps", "1", "2", "--lambda-range", "0.001", "0.1", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "fidelity" in lines[0] and "1 step:" in lines[1] and "2 steps:" in lines[2]
    rows = evaluate_realism.evaluate(RealismDecoder(net, (0.001, 0.1)), [data / "a.png"], [30.0], [1])
    assert [r["steps"] for r in rows] == [0, 1] and rows[0]["bpp"] == rows[1]["bpp"]
    assert rows[0]["lpips"] != rows[1]["lpips"] and rows[0]["psnr"] != rows[1]["psnr"]
    guided = evaluate_realism.evaluate(RealismDecoder(net, (0.001, 0.1)), [data / "a.png"], [30.0], [1], (1.0, 2.0))
    assert [(r["steps"], r["guidance"]) for r in guided] == [(0, 1.0), (1, 1.0), (1, 2.0)]
    assert guided[1] == rows[1]  # guidance 1 is the plain decode
    assert guided[2]["psnr"] != guided[1]["psnr"] and guided[2]["bpp"] == guided[1]["bpp"]
    grain = evaluate_realism.evaluate(None, [data / "a.png"], [30.0], [], grains=(0.02,))
    assert [(r["steps"], r["grain"]) for r in grain] == [(0, 0.0), (0, 0.02)]
    assert grain[1]["psnr"] < grain[0]["psnr"] and grain[1]["bpp"] == grain[0]["bpp"]


def test_with_grain_is_seeded_and_bounded():
    from diffcodec.training import evaluate_realism

    rgb = np.full((8, 8, 3), 250, dtype=np.uint8)
    assert np.array_equal(evaluate_realism.with_grain(rgb, 0.0), rgb)
    a, b = evaluate_realism.with_grain(rgb, 0.05), evaluate_realism.with_grain(rgb, 0.05)
    assert a.dtype == np.uint8 and np.array_equal(a, b) and a.max() == 255 and (a != rgb).any()
    assert not np.array_equal(a, evaluate_realism.with_grain(rgb, 0.05, seed=1))


def test_unrolled_training_resumes_with_its_discriminator_and_exports(tmp_path):
    """--objective unrolled: clean-residual network, projected discriminator heads and their
    optimizer in the checkpoint, resume, export; the exported decoder runs."""
    pytest.importorskip("benchmarks.metrics.lpips")
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    torch.manual_seed(0)
    codec_path = tmp_path / "codec.safetensors"
    export(VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4)).eval(), codec_path)
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(data / "a.png")
    out = tmp_path / "run"
    base = ["--data", str(data), "--out", str(out), "--codec-weights", str(codec_path), "--batch", "2",
            "--crop", "64", "--width", "8", "--threads", "1", "--ckpt-every", "2"]
    common = [*base, "--objective", "unrolled", "--unroll", "1", "2", "--adv-weight", "0.1", "--adv-start", "1",
              "--max-level", "2", "--precision", "bf16"]
    train_denoiser.main([*common, "--steps", "2"])
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert {"heads", "d_opt", "opt"} <= set(ck) and ck["config"]["prediction"] == "r0"
    train_denoiser.main([*common, "--steps", "3"])
    records = [__import__("json").loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["d_loss"]) and "adv" in r for r in records)
    weights = tmp_path / "real.safetensors"
    export_mod.main([str(out / "checkpoint.pt"), str(weights)])
    net = load_denoiser(weights, None).net
    assert net.config.prediction == "r0"
    x_f = torch.rand(1, 3, 30, 40)
    assert decode_realism(x_f, 1.0, net, SamplerSettings(steps=2, strength=0.5)).shape == x_f.shape
    with pytest.raises(SystemExit):  # a clean-residual run cannot go on with the diffusion objective
        train_denoiser.main([*base, "--objective", "diffusion", "--steps", "4"])
    # a shipped file starts a new run; --latent adds the latent input, zero-initialised
    again = [*common, "--out", str(tmp_path / "again"), "--init", str(weights), "--warmup", "0", "--steps", "2"]
    train_denoiser.main([*again, "--latent"])
    ck = torch.load(tmp_path / "again" / "checkpoint.pt", weights_only=False)
    assert ck["config"]["latent_channels"] == 24 and "latent_in.weight" in ck["model"]
    assert ck["model"]["latent_in.weight"].abs().max() > 0  # it trained
    with pytest.raises(SystemExit):  # a resumed run keeps its network: the first run had no latent input
        train_denoiser.main([*common, "--steps", "4", "--latent"])
    # --synthesis adds a copy of the codec's g_s, started from the codec's weights, and trains it
    codec_g_s = load_weights(codec_path, None).net.g_s.state_dict()
    synth = [*common, "--out", str(tmp_path / "synth"), "--init", str(weights), "--warmup", "0", "--latent",
             "--adv-weight", "0"]
    train_denoiser.main([*synth, "--synthesis", "--steps", "2"])
    ck = torch.load(tmp_path / "synth" / "checkpoint.pt", weights_only=False)
    assert ck["config"]["synthesis_width"] == 16 and ck["config"]["synthesis_blocks"] == 0
    assert not torch.equal(ck["model"]["synthesis.g_s.0.weight"], codec_g_s["0.weight"].float())  # it trained
    assert torch.allclose(ck["model"]["synthesis.g_s.0.weight"], codec_g_s["0.weight"].float(), atol=1e-2)
    with pytest.raises(SystemExit):  # a resumed run keeps its network: that one had no copy
        train_denoiser.main([*again, "--latent", "--synthesis", "--steps", "4"])
    train_denoiser.main([*synth, "--steps", "3"])  # a run with a copy goes on with it
    export_mod.main([str(tmp_path / "synth" / "checkpoint.pt"), str(weights)])
    net = load_denoiser(weights, None).net
    assert net.config.synthesis_width == 16
    assert decode_realism(x_f, 1.0, net, SamplerSettings(steps=1), latent=torch.randn(1, 24, 2, 3)).shape == x_f.shape
    # a run without heads takes up a conditional discriminator: the heads and their optimizer start afresh
    cond = [*synth, "--adv-weight", "0.1", "--d-condition", "--d-width", "16"]
    train_denoiser.main([*cond, "--steps", "4"])
    ck = torch.load(tmp_path / "synth" / "checkpoint.pt", weights_only=False)
    assert ck["heads_settings"] == {"width": 16, "conditional": True} and "d_opt" in ck
    assert ck["heads"]["heads.0.0.weight"].shape[:2] == (16, 2 * 64)  # AlexNet's first level, twice
    with pytest.raises(SystemExit):  # the heads' settings are part of the run
        train_denoiser.main([*synth, "--adv-weight", "0.1", "--d-width", "16", "--steps", "5"])
    train_denoiser.main([*cond, "--steps", "5"])
    records = [__import__("json").loads(line) for line in (tmp_path / "synth" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert "d_loss" not in records[2] and all(math.isfinite(r["d_loss"]) for r in records[3:])


def test_unrolled_loss_weights_the_perceptual_terms_by_strength():
    """At strength 0 only the pixel MSE is left: the knob's zero end is trained towards fidelity."""
    pytest.importorskip("benchmarks.metrics.lpips")
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior
    from diffcodec.perceptual.lpips import LPIPSNet

    codec = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4)).eval().requires_grad_(False)
    net = _random_net(DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=4, prediction="r0"), 5)
    x = torch.rand(2, 3, 64, 64)
    lpips = LPIPSNet("alex")

    def loss(**weights):
        torch.manual_seed(3)
        objective = train_denoiser.UnrolledObjective(unroll=(1,), full_strength_fraction=0.0, **weights)
        return train_denoiser.unrolled_loss(net, codec, x, objective, lpips)

    pixel_only = loss(lpips_weight=0.0)
    both = loss(lpips_weight=1.0)
    assert torch.allclose(pixel_only["loss"], 100.0 * pixel_only["mse"], rtol=1e-5)
    assert both["loss"] > pixel_only["loss"]
    torch.manual_seed(3)
    full = train_denoiser.unrolled_loss(net, codec, x, train_denoiser.UnrolledObjective(unroll=(1,), full_strength_fraction=1.0), lpips)
    assert torch.allclose(full["loss"], 100.0 * full["mse"] + full["lpips"], rtol=1e-4)


def test_bf16_unrolled_loss_trains_fp32_master_weights():
    """--precision bf16: the denoiser computes in bf16 through its fp32 masters and the frozen
    LPIPS and DISTS are bf16 copies; the loss is close to fp32's and the gradients stay fp32."""
    pytest.importorskip("benchmarks.metrics.dists")
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

    codec = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4)).eval().requires_grad_(False)
    net = _random_net(DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=4, prediction="r0"), 5).train()
    net.requires_grad_(True)
    x = torch.rand(2, 3, 64, 64)
    objective = train_denoiser.UnrolledObjective(unroll=(2,), dists_weight=1.0, dists_crop=64)

    def loss(dtype):
        lpips, dists = train_denoiser.perceptual_networks(True, True, dtype)
        torch.manual_seed(3)
        return train_denoiser.unrolled_loss(net, codec, x, objective, lpips, dists, dtype=dtype)

    fp32, bf16 = loss(torch.float32), loss(torch.bfloat16)
    for key in ("loss", "lpips", "dists"):
        assert bf16[key].dtype == torch.float32
        assert abs(bf16[key].item() - fp32[key].item()) < 0.03 * abs(fp32[key].item()), key
    bf16["loss"].backward()
    for name, p in net.named_parameters():
        if name == "null_condition":  # the unconditional input: unused with a fidelity image
            continue
        assert p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p.grad).all(), name


def test_channel_norm_normalises_each_pixel_over_its_channels():
    from diffcodec.models.denoiser import ChannelNorm

    norm = ChannelNorm(6)
    with torch.no_grad():
        norm.weight.normal_(generator=torch.Generator().manual_seed(1))
        norm.bias.normal_(generator=torch.Generator().manual_seed(2))
    x = torch.randn(2, 6, 5, 7, generator=torch.Generator().manual_seed(3)) * 3 + 1
    mean, var = x.mean(dim=1, keepdim=True), x.var(dim=1, unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    for layout in (torch.contiguous_format, torch.channels_last):
        assert torch.allclose(norm(x.contiguous(memory_format=layout)), expected, atol=1e-5)


def test_diff_augment_moves_real_and_decoded_crops_alike():
    from diffcodec.models.discriminator import (
        ProjectedHeads,
        diff_augment,
        discriminator_loss,
        generator_loss,
    )

    x = torch.rand(3, 3, 32, 40, requires_grad=True)
    a, b = diff_augment(x, x.detach().clone(), generator=torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a.detach(), b)
    assert not torch.equal(a.detach(), x.detach())
    a.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    heads = ProjectedHeads((4, 6))
    feats = [torch.rand(2, 4, 8, 8), torch.rand(2, 6, 4, 4)]
    logits = heads(feats)
    assert [tuple(lg.shape) for lg in logits] == [(2, 1, 8, 8), (2, 1, 4, 4)]
    assert generator_loss(logits).shape == (2,)
    perfect = [torch.full((2, 1, 4, 4), 2.0)], [torch.full((2, 1, 4, 4), -2.0)]
    assert float(discriminator_loss(*perfect)) == 0.0 and float(discriminator_loss(perfect[1], perfect[0])) == 6.0


def test_conditional_heads_read_the_fidelity_image_features_beside_the_judged_ones():
    """A conditional head's logits depend on the condition; each kind refuses the other's call."""
    from diffcodec.models.discriminator import ProjectedHeads

    torch.manual_seed(0)
    heads = ProjectedHeads((4, 6), width=8, conditional=True)
    feats = [torch.rand(2, 4, 8, 8), torch.rand(2, 6, 4, 4)]
    cond = [torch.rand(2, 4, 8, 8), torch.rand(2, 6, 4, 4)]
    logits = heads(feats, cond)
    assert [tuple(lg.shape) for lg in logits] == [(2, 1, 8, 8), (2, 1, 4, 4)]
    other = heads(feats, [c.flip(0) for c in cond])
    assert not torch.allclose(logits[0][0], other[0][0])
    assert torch.equal(heads(feats, cond)[1], logits[1])
    with pytest.raises(ValueError, match="condition"):
        heads(feats)
    with pytest.raises(ValueError, match="condition"):
        ProjectedHeads((4, 6))(feats, cond)
    assert heads.settings() == {"width": 8, "conditional": True}


def test_api_strength_and_the_registered_defaults(monkeypatch, tmp_path):
    """strength=0 is the fidelity decoder; realism=True runs the entry's own steps and strength."""
    import diffcodec
    from diffcodec import api
    from diffcodec.zoo import registry

    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 56, 3), dtype=np.uint8))
    data = diffcodec.compress(img, quality=20)
    fidelity = np.asarray(diffcodec.decompress(data, steps=0))
    model_id = diffcodec.read_header(data).header.model_id
    net = _random_net(DenoiserConfig(width=8, mults=(1, 2), blocks=1, levels=8, prediction="r0"), 6)
    path = tmp_path / "real.safetensors"
    entry = registry.DenoiserEntry(path.name, export_denoiser(net, path), steps=2, strength=0.8)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(registry.DENOISERS, model_id, entry)
    registry.load_denoiser_file.cache_clear()
    try:
        assert np.array_equal(np.asarray(diffcodec.decompress(data, strength=0.0)), fidelity)
        assert np.array_equal(np.asarray(diffcodec.decompress(data, realism=True, steps=0)), fidelity)
        default = np.asarray(diffcodec.decompress(data, realism=True))
        assert np.array_equal(default, np.asarray(diffcodec.decompress(data, steps=2, strength=0.8)))
        assert np.array_equal(default, np.asarray(diffcodec.decompress(data, strength=0.8)))  # steps: the entry's
        weaker = np.asarray(diffcodec.decompress(data, strength=0.3))
        assert not np.array_equal(default, fidelity) and not np.array_equal(weaker, default)
        with pytest.raises(ValueError, match="strength"):
            diffcodec.decompress(data, strength=1.5)
    finally:
        registry.load_denoiser_file.cache_clear()
        api._on.cache_clear()


def test_time_grid_of_per_crop_strengths_has_one_column_per_crop():
    strength = torch.tensor([1.0, 0.5, 0.0])
    grid = time_grid(strength, 2)
    assert grid.shape == (3, 3)
    for j, s in enumerate(strength.tolist()):
        assert torch.allclose(grid[:, j], torch.tensor(time_grid(s, 2)))


LATENT_TINY = DenoiserConfig(width=8, mults=(1, 2, 2), blocks=1, levels=4, prediction="r0", latent_channels=5)


def test_latent_conditioning_is_a_zero_initialised_input_at_the_latent_resolution():
    with pytest.raises(ValueError, match="1/16"):
        DenoiserConfig(mults=(1, 2), latent_channels=5)  # lowest level at 1/8
    assert DenoiserConfig.from_dict({k: v for k, v in R0_TINY.to_dict().items() if k != "latent_channels"}) == R0_TINY
    plain = _random_net(DenoiserConfig(**{**LATENT_TINY.to_dict(), "mults": (1, 2, 2), "latent_channels": 0}), 5)
    net = ResidualDenoiser(LATENT_TINY).eval()
    missing, unexpected = net.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"latent_in.weight", "latent_in.bias"} and not unexpected
    r, x_f, t, level = torch.randn(2, 3, 32, 48), torch.rand(2, 3, 32, 48), torch.tensor([0.5, 1.0]), torch.tensor([1.0, 2.0])
    latent = torch.randn(2, 5, 2, 3)
    with torch.no_grad():
        same = plain(r, x_f, t, level)
        assert torch.equal(net(r, x_f, t, level, latent), same)  # zero-initialised: reads nothing yet
        net.latent_in.weight.normal_(0, 0.5)
        assert not torch.allclose(net(r, x_f, t, level, latent), same)
        assert torch.equal(net(r, x_f, t, level, None), same)  # no latent: the condition is left out


def test_latent_conditioned_decode_tiles_and_matches_the_training_path():
    net = _random_net(LATENT_TINY, 6)
    x_f = torch.rand(1, 3, 40, 56)  # padded to 48 x 64: the latent grid is 3 x 4 (the codec's may be larger)
    latent = torch.randn(1, 5, 4, 4)
    settings = SamplerSettings(steps=2, strength=0.8, seed=5)
    decoded = decode_realism(x_f, 1.0, net, settings, latent=latent)
    assert not torch.equal(decoded, decode_realism(x_f, 1.0, net, settings))  # the latent is read
    tiled = decode_realism(x_f, 1.0, net, settings, tile=16, halo=32, latent=latent)
    assert (decoded - tiled).abs().max().item() < 1e-5
    # training decodes unpadded crops whose sides are multiples of 16 the same way
    x_f, latent = x_f[..., :32, :48], latent[..., :2, :3]
    decoded = decode_realism(x_f, 1.0, net, settings, latent=latent)
    noise = torch.randn(x_f.shape, generator=torch.Generator().manual_seed(5))
    _, s_start = alpha_sigma(torch.tensor([0.8]))
    level = torch.tensor([1.0])
    with torch.no_grad():
        r0 = ddim(lambda r, t: interpret("r0", r, net(r, x_f, t, level, latent), t), s_start * noise,
                  time_grid(torch.tensor([0.8]), 2))
    assert torch.allclose(decoded, (x_f + net.config.residual_scale * r0).clamp(0, 1), atol=1e-6)


SYNTHESIS_TINY = DenoiserConfig(**{**LATENT_TINY.to_dict(), "mults": (1, 2, 2), "synthesis_width": 6,
                                    "synthesis_blocks": 1})


def test_synthesis_copy_starts_as_the_codec_and_changes_nothing_until_trained():
    """A fresh copy of g_s gives x_p = x_f, so a decoder that gains one decodes as before;
    once the copy moves, the output does (through the gate and the zero-initialised input)."""
    from diffcodec.models.hyperprior import synthesis_transform

    with pytest.raises(ValueError, match="latent_channels"):
        DenoiserConfig(prediction="r0", synthesis_width=6)
    with pytest.raises(ValueError, match="r0"):
        DenoiserConfig(mults=(1, 2, 2), latent_channels=5, synthesis_width=6)
    assert DenoiserConfig.from_dict({k: v for k, v in LATENT_TINY.to_dict().items()
                                     if not k.startswith("synthesis")}) == LATENT_TINY
    plain = _random_net(LATENT_TINY, 5)
    torch.manual_seed(1)
    codec_g_s = synthesis_transform(5, 6, 1).eval()
    net = ResidualDenoiser(SYNTHESIS_TINY).eval()
    missing, unexpected = net.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("synthesis") for k in missing) and not unexpected
    net.synthesis.g_s.load_state_dict(codec_g_s.state_dict())
    r, t, level = torch.randn(2, 3, 32, 48), torch.tensor([0.5, 1.0]), torch.tensor([1.0, 2.0])
    latent = torch.randn(2, 5, 2, 3)
    with torch.no_grad():
        x_f = codec_g_s(latent).clamp(0, 1)
        same = plain(r, x_f, t, level, latent)
        assert torch.equal(net(r, x_f, t, level, latent), same)
        assert torch.equal(net(r, x_f, t, level, latent, net.synthesis(latent)), same)
        net.synthesis.g_s[0].weight.mul_(1.5)  # the copy drifts from the codec's g_s
        moved = net(r, x_f, t, level, latent)
        assert not torch.allclose(moved, same)
        assert torch.equal(net(r, x_f, t, level, None), plain(r, x_f, t, level, None))  # no latent, no copy
        net.synthesis_gate.bias.zero_()  # with the gate shut only the (still zero) input would read x_p
        assert torch.equal(net(r, x_f, t, level, latent), same)


def test_synthesis_decode_computes_x_p_once_tiles_and_matches_the_training_path():
    net = _random_net(SYNTHESIS_TINY, 6)
    x_f = torch.rand(1, 3, 40, 56)
    latent = torch.randn(1, 5, 4, 4)
    settings = SamplerSettings(steps=2, strength=0.8, seed=5)
    decoded = decode_realism(x_f, 1.0, net, settings, latent=latent)
    tiled = decode_realism(x_f, 1.0, net, settings, tile=16, halo=32, latent=latent)
    assert (decoded - tiled).abs().max().item() < 1e-5
    blind = ResidualDenoiser(LATENT_TINY).eval()
    blind.load_state_dict(net.state_dict(), strict=False)
    assert not torch.equal(decoded, decode_realism(x_f, 1.0, blind, settings, latent=latent))  # x_p is read
    x_f, latent = x_f[..., :32, :48], latent[..., :2, :3]
    decoded = decode_realism(x_f, 1.0, net, settings, latent=latent)
    noise = torch.randn(x_f.shape, generator=torch.Generator().manual_seed(5))
    _, s_start = alpha_sigma(torch.tensor([0.8]))
    level = torch.tensor([1.0])
    with torch.no_grad():  # training computes x_p inside the network call
        r0 = ddim(lambda r, t: interpret("r0", r, net(r, x_f, t, level, latent), t), s_start * noise,
                  time_grid(torch.tensor([0.8]), 2))
    assert torch.allclose(decoded, (x_f + net.config.residual_scale * r0).clamp(0, 1), atol=1e-6)
    assert torch.equal(decode_realism(x_f, 1.0, net, SamplerSettings(steps=2, strength=0.0), latent=latent), x_f)


def test_decompress_hands_the_synthesis_input_to_a_latent_reading_decoder(tmp_path):
    import diffcodec
    from diffcodec import api
    from diffcodec.zoo import registry

    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8))
    data = diffcodec.compress(img, quality=20)
    m = registry.load_model(diffcodec.read_header(data).header.model_id).net.config.m
    config = DenoiserConfig(width=8, mults=(1, 2, 2), blocks=1, levels=8, prediction="r0", latent_channels=m)
    net = _random_net(config, 7)
    with torch.no_grad():  # at _random_net's scale the latent moves the output by ~1e-5: no pixel;
        # at 1.0 a pixel or two, depending on the default model's latent (none with model 16 in release 0.20.0)
        net.latent_in.weight.normal_(0, 10.0, generator=torch.Generator().manual_seed(8))
    blind = ResidualDenoiser(DenoiserConfig(**{**config.to_dict(), "mults": (1, 2, 2), "latent_channels": 0}))
    blind.load_state_dict(net.state_dict(), strict=False)
    decode = lambda n: np.asarray(diffcodec.decompress(  # noqa: E731
        data, steps=2, seed=1, realism_decoder=RealismDecoder(n.eval(), (0.0009, 0.13))))
    try:
        reading, not_reading = decode(net), decode(blind)
        with torch.no_grad():
            net.latent_in.weight.zero_()
            net.latent_in.bias.zero_()
        api._on.cache_clear()  # decompress keeps a channels-last copy of each denoiser it met
        assert np.array_equal(decode(net), not_reading)  # a zero latent input: the same pixels
    finally:
        api._on.cache_clear()
    assert reading.shape == not_reading.shape and not np.array_equal(reading, not_reading)


def test_realism_decodes_in_bf16_only_where_the_cpu_has_bf16_units(monkeypatch):
    """Emulated bf16 made a realism decode several times slower than fp32 (5.4 s per Kodak image)."""
    from diffcodec import api

    monkeypatch.setattr(api, "has_native_bf16", lambda device: False)
    assert api.realism_dtype("cpu") == torch.float32
    monkeypatch.setattr(api, "has_native_bf16", lambda device: True)
    assert api.realism_dtype("cpu") == torch.bfloat16
    assert api.realism_dtype("cuda") == torch.float32


def test_a_latent_reading_decoder_follows_its_codecs_grown_latent(tmp_path):
    """A codec grown by --latent-channels: a decoder trained on the old latent, started on the
    grown codec, reads the new channels through zero weights (its latent input) and through the
    grown codec's own g_s weights (its synthesis copy), so on the grown latent with the new
    channels silent it decodes as before; the realism trainer grows an --init file that way."""
    pytest.importorskip("benchmarks.metrics.lpips")
    from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior, grown_latent_places
    from diffcodec.training import fidelity

    torch.manual_seed(0)
    codec = VariableRateHyperprior(ModelConfig(n=6, m=24, levels=4, context_slices=2, context_width=8,
                                               residual_blocks=1)).eval()
    grown_codec = fidelity.with_latent_channels(codec, 32).eval()
    places = grown_latent_places(24, 32, 2)
    assert places.tolist() == [*range(0, 12), *range(16, 28)]
    config = DenoiserConfig(**{**SYNTHESIS_TINY.to_dict(), "latent_channels": 24})
    old = _random_net(config, 3)
    state = train_denoiser.with_grown_latent(old.state_dict(), places, 32, grown_codec.g_s[0].weight)
    new = ResidualDenoiser(DenoiserConfig(**{**config.to_dict(), "latent_channels": 32})).eval()
    new.load_state_dict(state)
    new_inputs = [c for c in range(32) if c not in places.tolist()]
    assert torch.equal(new.synthesis.g_s[0].weight[new_inputs], grown_codec.g_s[0].weight[new_inputs])
    latent = torch.randn(2, 24, 2, 3)
    grown_latent = torch.zeros(2, 32, 2, 3)
    grown_latent[:, places] = latent
    r, x_f, t, level = torch.randn(2, 3, 32, 48), torch.rand(2, 3, 32, 48), torch.tensor([0.5, 1.0]), torch.tensor([1.0, 2.0])
    with torch.no_grad():
        unclamped = old.synthesis.g_s(latent)
        assert unclamped.std() > 0.01 and torch.allclose(new.synthesis.g_s(grown_latent), unclamped, atol=1e-6)
        x_p = old.synthesis(latent)
        assert torch.allclose(new(r, x_f, t, level, grown_latent, new.synthesis(grown_latent)),
                              old(r, x_f, t, level, latent, x_p), atol=1e-5)
        grown_latent[:, new_inputs] = 1.0  # once the new channels carry something, the copy reads them
        assert (new.synthesis.g_s[0](grown_latent) - old.synthesis.g_s[0](latent)).abs().max() > 0.1
    with pytest.raises(ValueError, match="does not fit"):
        train_denoiser.with_grown_latent(old.state_dict(), places, 32, grown_codec.g_s[0].weight[:, :3])

    # the trainer: --init a decoder of the old codec, --codec-weights the grown codec
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8)).save(data / "a.png")
    export(codec, tmp_path / "codec.safetensors")
    export(grown_codec, tmp_path / "grown.safetensors")
    common = ["--data", str(data), "--batch", "1", "--crop", "64", "--width", "8", "--threads", "1",
              "--objective", "unrolled", "--unroll", "1", "1", "--max-level", "2", "--steps", "1", "--warmup", "0"]
    train_denoiser.main([*common, "--out", str(tmp_path / "old"), "--codec-weights", str(tmp_path / "codec.safetensors"),
                         "--latent", "--synthesis"])
    export_mod.main([str(tmp_path / "old" / "checkpoint.pt"), str(tmp_path / "old.safetensors")])
    train_denoiser.main([*common, "--out", str(tmp_path / "grown"), "--codec-weights", str(tmp_path / "grown.safetensors"),
                         "--init", str(tmp_path / "old.safetensors")])
    export_mod.main([str(tmp_path / "grown" / "checkpoint.pt"), str(tmp_path / "grown-realism.safetensors")])
    assert load_denoiser(tmp_path / "grown-realism.safetensors", None).net.config.latent_channels == 32
    with pytest.raises(SystemExit):  # a codec with fewer channels than the decoder reads: one-line error
        train_denoiser.main([*common, "--out", str(tmp_path / "fewer"), "--init", str(tmp_path / "grown-realism.safetensors"),
                             "--codec-weights", str(tmp_path / "codec.safetensors")])
