"""Channel-conditional context model: exact on both sides, a no-op at initialisation, trainable."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import to_tensor
from PIL import Image
from torch import nn

from diffcodec.coding.codec import Codec
from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior
from diffcodec.training import fidelity as train
from diffcodec.zoo.weight_files import export, load_weights

CONFIG = ModelConfig(n=16, m=24, levels=4, context_slices=3, context_width=8)


def _smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    return np.array(big)


def _load(net: VariableRateHyperprior, path) -> Codec:
    return Codec(load_weights(path, export(net.eval(), path), path.stem))


@pytest.fixture(scope="module")
def nets():
    """(context model with an active context, the same with its context zeroed, the base model)."""
    torch.manual_seed(3)
    base = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4))
    zero = train.with_context_slices(base, 3, 8)
    assert zero.config == CONFIG
    active = VariableRateHyperprior(CONFIG)
    active.load_state_dict(zero.state_dict())
    with torch.no_grad():
        for net in active.context:
            nn.init.normal_(net[-1].weight, std=0.05)
            nn.init.normal_(net[-1].bias, std=0.2)
    return active, zero, base


@pytest.fixture(scope="module")
def codecs(nets, tmp_path_factory):
    d = tmp_path_factory.mktemp("ctx")
    return tuple(_load(net, d / f"{name}.safetensors") for net, name in zip(nets, ("active", "zero", "base")))


def test_zero_context_codes_exactly_like_the_base_model(codecs):
    active, zero, base = codecs
    x = to_tensor(_smooth(72, 100))
    assert zero.encode(x, 60) == base.encode(x, 60)
    assert active.encode(x, 60) != base.encode(x, 60)


def test_decoder_reproduces_the_encoders_latent(codecs):
    codec = codecs[0]
    x = to_tensor(_smooth(90, 130, seed=1))
    for q in (0, 45, 100):
        a = codec.analyse(x)
        stream = codec.code(a, q)
        y_hat = codec.decode_latent(stream, 90, 130, q)
        gain, _ = codec.net.gains(torch.tensor([q / 100 * 3.0]))
        y = (a.y * gain).double()
        # y_hat = round(y - mu) + mu with the encoder's mu: within half a step of y everywhere
        assert (y - y_hat).abs().max().item() <= 0.5 + 1e-6
        img = codec.decode(stream, q, 90, 130)
        assert img.shape == (1, 3, 90, 130)


def test_file_size_matches_the_models_estimate(codecs):
    codec = codecs[0]
    x = to_tensor(_smooth(256, 320, seed=2))
    a = codec.analyse(x)
    for q in (20, 80):
        real = 8 * len(codec.code(a, q))
        est = codec.estimated_bits(a, q)
        assert real <= est * 1.01 + 64 * 8 and real >= est * 0.99 - 64


def test_context_stream_is_thread_invariant(codecs):
    codec = codecs[0]
    x = to_tensor(_smooth(128, 192, seed=4))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.encode(x, 70)
        torch.set_num_threads(2)
        two = codec.encode(x, 70)
    finally:
        torch.set_num_threads(before)
    assert one == two
    assert torch.equal(codec.decode(one, 70, 128, 192), codec.decode(two, 70, 128, 192))


def test_forward_with_zero_context_equals_the_base_forward(nets):
    _, zero, base = nets
    x = torch.rand(2, 3, 64, 64)
    t = torch.tensor([0.5, 2.5])
    zero.eval(), base.eval()
    torch.manual_seed(0)
    a = zero(x, t)
    torch.manual_seed(0)
    b = base(x, t)
    assert torch.equal(a["x_hat"], b["x_hat"])
    assert torch.allclose(a["likelihoods"]["y"], b["likelihoods"]["y"])


def test_context_only_training_changes_only_the_context(tmp_path, nets):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(_smooth(80, 96, seed=i)).save(data / f"{i}.png")
    base_path = tmp_path / "base.safetensors"
    export(nets[2].eval(), base_path)
    out = tmp_path / "run"
    train.main(["--data", str(data), "--out", str(out), "--init", str(base_path), "--context-slices", "3",
                "--train-only", "context", "--steps", "3", "--batch", "2", "--crop", "64", "--threads", "1",
                "--warmup", "1", "--lr", "1e-2"])
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["config"]["context_slices"] == 3
    base_state = load_weights(base_path, None).net.state_dict()  # fp16-rounded, as --init loaded it
    fresh = VariableRateHyperprior(ModelConfig(**ck["config"]))
    for k, _ in fresh.named_parameters():
        if k.startswith("context."):
            continue
        if k.endswith(".quantiles"):
            continue  # the factorized prior's auxiliary parameters keep training
        assert torch.equal(ck["model"][k], base_state[k]), k
    params = dict(fresh.named_parameters())
    for k, v in fresh.state_dict().items():  # constants come from the code, not from the fp16 file
        if k not in params:
            assert torch.equal(ck["model"][k], v), k
    assert any(ck["model"][f"context.{i}.4.weight"].abs().sum() > 0 for i in range(2))


def test_context_model_starts_from_a_snapshot_without_one(tmp_path, nets):
    """The path of a real run: snapshot of a trained hyperprior -> joint training with context."""
    from diffcodec.training.parts import load_snapshot, save_snapshot

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(_smooth(80, 96)).save(data / "a.png")
    base = nets[2]
    save_snapshot(tmp_path / "snap", base.state_dict(), base.state_dict(), 40, base.config.to_dict())
    out = tmp_path / "run"
    train.main(["--data", str(data), "--out", str(out), "--init", str(tmp_path / "snap"), "--context-slices", "3",
                "--context-width", "8", "--steps", "41", "--batch", "1", "--crop", "64", "--threads", "1",
                "--snapshot", str(tmp_path / "snap2")])
    model, ema, step, config = load_snapshot(tmp_path / "snap2")
    assert step == 41 and config["context_slices"] == 3 and config["context_width"] == 8
    assert "context.1.4.weight" in model and "context.1.4.weight" in ema
