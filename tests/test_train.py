"""Training loop: a few steps on tiny crops, checkpoint, resume, export, warm start."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from diffcodec import export as export_mod
from diffcodec import train
from diffcodec.weights import load_weights


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
