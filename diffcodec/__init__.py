"""diffcodec: a learned lossy image codec (variable-rate hyperprior, .dcf files)."""
from diffcodec.api import (
    DEFAULT_QUALITY,
    OutputExistsError,
    compress,
    compress_detailed,
    compress_file,
    decompress,
    decompress_file,
    read_header,
)

__version__ = "0.2.1"
__all__ = [
    "DEFAULT_QUALITY", "OutputExistsError", "compress", "compress_detailed", "compress_file", "decompress",
    "decompress_file", "read_header", "__version__",
]
