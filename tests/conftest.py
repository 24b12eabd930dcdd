"""Shared fixtures: a tiny random model (no training needed) and real Kodak images."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffcodec.coding.codec import Codec
from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior
from diffcodec.zoo.weight_files import export, load_weights

# A fresh fuzz seed for every run (tests/fuzz), printed in pytest's header so a failure can be replayed.
os.environ.setdefault("FUZZ_SEED", str(secrets.randbits(32)))


def pytest_report_header(config):  # noqa: ARG001
    return f"fuzz seed: {os.environ['FUZZ_SEED']} (replay with FUZZ_SEED={os.environ['FUZZ_SEED']})"


REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A small untrained network exported and reloaded through the real weight-file path."""
    torch.manual_seed(0)
    net = VariableRateHyperprior(ModelConfig(n=16, m=24, levels=4))
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    digest = export(net.eval(), path)
    return load_weights(path, digest, "tiny")


@pytest.fixture(scope="session")
def tiny_codec(tiny_model):
    return Codec(tiny_model)


def kodak_path(n: int) -> Path:
    path = KODAK / f"kodim{n:02d}.png"
    if not path.exists():
        pytest.skip(f"Kodak image {path} not available")
    return path


@pytest.fixture
def kodak_rgb():
    def load(n: int) -> np.ndarray:
        return np.asarray(Image.open(kodak_path(n)).convert("RGB"))
    return load


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).float().div(255.0)
