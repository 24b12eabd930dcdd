"""The models this diffcodec knows, pinned by SHA-256 (weights ship inside the package)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from diffcodec.weights import LoadedModel, load_weights

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class ModelEntry:
    model_id: int  # the byte stored in every .dcf file
    name: str
    filename: str
    sha256: str


MODELS: dict[int, ModelEntry] = {
    1: ModelEntry(
        model_id=1,
        name="hyperprior-vr-cpu1",
        filename="hyperprior-vr-cpu1.safetensors",
        sha256="b3d2b2d5547c6ef5fce94b4af6528b3000b1882f70194c3f660eda9e33c46074",
    ),
}
DEFAULT_MODEL_ID = 1


@lru_cache(maxsize=4)
def load_model(model_id: int = DEFAULT_MODEL_ID) -> LoadedModel:
    """Load (once per process) and checksum-verify a registered model."""
    entry = MODELS[model_id]
    return load_weights(WEIGHTS_DIR / entry.filename, entry.sha256, entry.name, entry.model_id)
