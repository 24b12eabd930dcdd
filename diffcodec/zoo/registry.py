"""The models this diffcodec knows, pinned by SHA-256 (weights ship inside the package)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the weights loader imports torch: only load_model needs it
    from diffcodec.zoo.weight_files import LoadedModel

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class ModelEntry:
    model_id: int  # the byte stored in every .dcf file
    name: str
    filename: str
    sha256: str


MODELS: dict[int, ModelEntry] = {
    2: ModelEntry(
        model_id=2,
        name="channel-context-cpu2",
        filename="channel-context-cpu2.safetensors",
        sha256="5727d53425bc15ebde8d128e0b1904dbb63d2f10b2fcc11026c7470cc9da58aa",
    ),
    16: ModelEntry(
        model_id=16,
        name="channel-context-res3-cpu15",
        filename="channel-context-res3-cpu15.safetensors",
        sha256="05b63a8e2bffda4db79276287d23912e3e5f84e973081c4a7a2b1e58d7414c4a",
    ),
}
DEFAULT_MODEL_ID = 16

#: Models whose weights no longer ship (the package keeps its weights under 50 MB): their files
#: get a clear error naming the last release that decodes them.
RETIRED: dict[int, tuple[str, str]] = {
    1: ("hyperprior-vr-cpu1", "0.1.0"),
    3: ("channel-context-gpu1", "0.2.1"),
    4: ("channel-context-cpu3", "0.3.0"),
    5: ("channel-context-cpu4", "0.5.0"),
    6: ("channel-context-cpu5", "0.6.0"),
    7: ("channel-context-res1-cpu6", "0.7.0"),
    8: ("channel-context-res1-cpu7", "0.8.0"),
    9: ("channel-context-res2-cpu8", "0.9.0"),
    10: ("channel-context-res3-cpu9", "0.11.0"),
    11: ("channel-context-res3-cpu10", "0.13.0"),
    12: ("channel-context-res3-cpu11", "0.15.0"),
    13: ("channel-context-res3-cpu12", "0.17.0"),
    14: ("channel-context-res3-cpu13", "0.18.0"),
    15: ("channel-context-res3-cpu14", "0.19.0"),
}


def model_label(model_id: int) -> str:
    """A model id as people read it: its name, a retired model's name and the release that decodes it, or 'unknown'."""
    if model_id in MODELS:
        return MODELS[model_id].name
    if model_id in RETIRED:
        name, release = RETIRED[model_id]
        return f"{name} (retired: decode with diffcodec {release})"
    return "unknown"


@dataclass(frozen=True)
class DenoiserEntry:
    """A realism decoder's weight file and the rate trade-offs its level input was trained on.

    The denoiser's rate-level input is log-spaced over ``lambda_range``, the lambdas of the codec
    it was trained with; a codec with another level grid (model 4 adds two levels below model
    3's) reaches it through lambda (:func:`diffcodec.zoo.weight_files.denoiser_level`).
    """

    filename: str
    sha256: str
    lambda_range: tuple[float, float] = (0.0009, 0.13)  # lambda at its lowest and highest level input
    steps: int = 1  # what `decompress --realism` runs: steps and strength (start time) of the sampler
    strength: float = 1.0


#: realism-cc12-cpu7 (the lineage of realism-cc5-cpu2: the unrolled objective, docs/training.md,
#: reading the decoded latent and its own trainable copy of the codec's synthesis transform as
#: well as the fidelity image) trained further on model 13's reconstructions against a
#: conditional discriminator (its heads also read the fidelity image's features; adversarial
#: weight 0.5 -> 0.15); its level input is model 5's level scale, which models 6-16 share. Steps
#: and strength as its predecessor's; measured against it on model 13's files in
#: benchmarks/results/realism/cc13-on-model13 (6 Kodak images; realism-cc12-cpu7 in cc12-on-model13).
#: Models 14 to 16 (model 13 trained on, then models 14 and 15) use it as it is; measured on their
#: files in benchmarks/results/realism/cc13-on-model14, cc13-on-model15 and cc13-on-model16
REALISM_CC13 = DenoiserEntry(
    filename="realism-cc13-cpu8.safetensors",
    sha256="f82d8ed372f5448447ce1183de7337ee4d55983899d47d871e5f72b2b734b9f3",
    lambda_range=(0.0002173627528885617, 0.13),
    steps=2,
    strength=0.5,
)

#: Realism decoders by codec model id; a model without one decodes in fidelity mode only.
DENOISERS: dict[int, DenoiserEntry] = {16: REALISM_CC13}


class RealismUnavailableError(ValueError):
    """The file's model has no realism decoder in this installation."""


def realism_decoder_for(model_id: int):
    """The checksum-verified realism decoder of a codec model (RealismUnavailableError if none)."""
    from diffcodec.zoo.weight_files import RealismDecoder

    entry = DENOISERS.get(model_id)
    if entry is None:
        raise RealismUnavailableError(f"model '{model_label(model_id)}' has no realism decoder in this "
                                      "installation; decode with --steps 0 (fidelity)")
    return RealismDecoder(load_denoiser_file(WEIGHTS_DIR / entry.filename, entry.sha256).net, entry.lambda_range,
                          entry.steps, entry.strength)


@lru_cache(maxsize=4)
def load_denoiser_file(path: Path, sha256: str):
    """Load a denoiser file once per process, however many codec models it serves."""
    from diffcodec.zoo.weight_files import load_denoiser

    return load_denoiser(path, sha256)


@lru_cache(maxsize=4)
def load_model(model_id: int = DEFAULT_MODEL_ID) -> LoadedModel:
    """Load (once per process) and checksum-verify a registered model."""
    from diffcodec.zoo.weight_files import load_weights

    entry = MODELS[model_id]
    return load_weights(WEIGHTS_DIR / entry.filename, entry.sha256, entry.name, entry.model_id)
