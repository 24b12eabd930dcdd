"""Shipped weights: export to fp16 safetensors, load with a checksum check.

Codec models and realism decoders (denoisers) alike. A codec weight file holds the network tensors (fp16 except small tables kept in fp32), the
hyper-latent probability tables (fixed arrays, so no machine recomputes them) and its
config as metadata. The registry in :mod:`diffcodec.zoo.registry` pins each file's SHA-256.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load, save
from torch import Tensor

from diffcodec.models.denoiser import DenoiserConfig, ResidualDenoiser
from diffcodec.models.hyperprior import ModelConfig, VariableRateHyperprior

Z_RANGE = 63  # hyper-latent symbols are clamped to [-Z_RANGE, Z_RANGE] around the channel median
_DROP_SUFFIXES = ("._offset", "._quantized_cdf", "._cdf_length", ".scale_table")  # compressai coder state, unused
# fp32 in the file: the gains, the hyper-latent's prior and its tables, and the Gaussian
# conditional's constant bounds (fp16 flushed its 1e-9 likelihood bound to 0 before model 5)
_FP32_PREFIXES = ("log_gain", "log_inv_gain", "entropy_bottleneck", "z_pmf", "z_medians", "gaussian_conditional")


class WeightError(RuntimeError):
    """Missing, damaged or unknown weight file."""


@dataclass
class LoadedModel:
    """A ready-to-use network with its coding tables and identity."""

    net: VariableRateHyperprior
    z_medians: torch.Tensor  # (N,) float32
    z_pmf: torch.Tensor  # (N, 2*Z_RANGE+1) float32, rows sum to 1
    sha256: str
    name: str
    model_id: int = 0  # the id stored in .dcf headers; 0 for unregistered (training) weights

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.sha256[:8])


@torch.no_grad()
def hyper_latent_tables(net: VariableRateHyperprior) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel medians and probability tables of the hyper-latent's factorized prior."""
    eb = net.entropy_bottleneck
    medians = eb._get_medians().detach().reshape(-1).float()
    offsets = torch.arange(-Z_RANGE, Z_RANGE + 1, dtype=torch.float32)
    values = (medians[:, None] + offsets[None, :]).unsqueeze(1)  # (N, 1, L)
    lik, _, _ = eb._likelihood(values)
    pmf = lik.squeeze(1).double().clamp_min(0) + 1e-9
    pmf = pmf / pmf.sum(dim=1, keepdim=True)
    return medians, pmf.float()


def export(net: VariableRateHyperprior, path: Path) -> str:
    """Write ``net`` as fp16 safetensors with its hyper-latent tables; returns the file's SHA-256."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items() if not k.endswith(_DROP_SUFFIXES)}
    medians, pmf = hyper_latent_tables(net)
    state["z_medians"] = medians
    state["z_pmf"] = pmf
    tensors = {
        k: (v.float() if k.startswith(_FP32_PREFIXES) else v.half()).contiguous() for k, v in state.items()
    }
    data = save(tensors, metadata={"config": json.dumps(net.config.to_dict()), "format": "diffcodec-weights-1"})
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_verified(path: Path, expected_sha256: str | None, what: str = "weights") -> tuple[bytes, str]:
    """(bytes, SHA-256) of a weight file, refused when it does not match ``expected_sha256`` (None: no check)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WeightError(f"cannot read {what} {path}: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise WeightError(f"{what} {path} fail their checksum (sha256 {digest[:12]}…, expected {expected_sha256[:12]}…)")
    return data, digest


def safetensors_metadata(data: bytes) -> dict:
    """The ``__metadata__`` of safetensors bytes (raises on a malformed header)."""
    header_len = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + header_len]).get("__metadata__", {})


@torch.inference_mode(False)  # ordinary tensors even when the first load happens in a caller's inference
def load_weights(path: Path, expected_sha256: str | None, name: str = "", model_id: int = 0) -> LoadedModel:
    """Load and verify a weight file; ``expected_sha256=None`` skips the check (for training runs).

    The parameters are never inference tensors, whatever mode the caller is in: encoder-side
    refinement differentiates through them later (:mod:`diffcodec.coding.refine`)."""
    data, digest = read_verified(path, expected_sha256)
    try:
        tensors = load(data)
        metadata = safetensors_metadata(data)
        config = ModelConfig(**json.loads(metadata["config"]))
    except Exception as exc:
        raise WeightError(f"weights {path} are not a diffcodec weight file ({exc})") from None
    net = VariableRateHyperprior(config)
    z_medians = tensors.pop("z_medians").float()
    z_pmf = tensors.pop("z_pmf").float()
    state = {k: v.float() for k, v in tensors.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(_DROP_SUFFIXES)]
    if missing or unexpected:
        raise WeightError(f"weights {path} do not match the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    net.eval().requires_grad_(False)
    return LoadedModel(net=net, z_medians=z_medians, z_pmf=z_pmf, sha256=digest, name=name or Path(path).stem, model_id=model_id)


# ---- realism decoders ---------------------------------------------------------------------
@dataclass
class LoadedDenoiser:
    net: ResidualDenoiser
    sha256: str


@dataclass(frozen=True)
class RealismDecoder:
    """A denoiser and the lambdas its rate-level input spans: all that realism decoding needs.

    The registry makes one for each shipped denoiser; :func:`diffcodec.decompress` also takes
    one directly, to look at a denoiser that is not registered (a training checkpoint).
    """

    net: ResidualDenoiser
    lambda_range: tuple[float, float]
    steps: int = 1  # the defaults of `decompress --realism`
    strength: float = 1.0

    def level(self, lam: float) -> float:
        """The level input for a file coded at rate trade-off ``lam``."""
        return denoiser_level(lam, self.lambda_range, self.net.config.levels)


def export_denoiser(net: ResidualDenoiser, path: Path) -> str:
    """fp16 safetensors with the config as metadata; returns the SHA-256."""
    tensors = {k: v.detach().cpu().half().contiguous() for k, v in net.state_dict().items()}
    data = save(tensors, metadata={"config": json.dumps(net.config.to_dict()), "format": "diffcodec-denoiser-1"})
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_denoiser(path: Path, expected_sha256: str | None) -> LoadedDenoiser:
    """Load and verify a denoiser weight file (``expected_sha256=None`` skips the check, for training)."""
    data, digest = read_verified(path, expected_sha256, "denoiser weights")
    try:
        meta = safetensors_metadata(data)
        if meta.get("format") != "diffcodec-denoiser-1":
            raise ValueError("not a denoiser file")
        net = ResidualDenoiser(DenoiserConfig.from_dict(json.loads(meta["config"])))
        net.load_state_dict({k: v.float() for k, v in load(data).items()})
    except Exception as exc:
        raise WeightError(f"{path} is not a diffcodec denoiser weight file ({exc})") from None
    return LoadedDenoiser(net.eval().requires_grad_(False), digest)


def denoiser_level(lam: float | Tensor, lambda_range: tuple[float, float], levels: int) -> float | Tensor:
    """The denoiser's rate-level input for a file coded at rate trade-off ``lam``.

    Its level input is log-spaced over ``lambda_range`` (the codec it was trained with), so
    a codec whose level grid differs reaches it through lambda; below the range the input
    extrapolates (the sinusoidal embedding is defined for any value).
    """
    lo, hi = math.log(lambda_range[0]), math.log(lambda_range[1])
    log_lam = torch.log(lam) if isinstance(lam, Tensor) else math.log(lam)  # a tensor in training
    return (log_lam - lo) / (hi - lo) * (levels - 1)
