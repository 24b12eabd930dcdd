"""The .dcf file format and its entropy coding; knows nothing of neural networks."""
from bitstream.container import (DEFAULT_MAX_PIXELS, FORMAT_VERSION, MAGIC, READABLE_VERSIONS, Container, Header, pack,
                                 parse, seal)
from bitstream.entropy import StreamReader, StreamWriter
from bitstream.errors import (
    CorruptError,
    ForeignFileError,
    FormatError,
    LimitError,
    ModelMismatchError,
    TruncatedError,
    UnsupportedVersionError,
)
from bitstream.tables import SCALE_TABLE, scale_indices

__all__ = [
    "DEFAULT_MAX_PIXELS", "FORMAT_VERSION", "MAGIC", "READABLE_VERSIONS", "Container", "Header", "pack", "parse", "seal",
    "StreamReader", "StreamWriter", "CorruptError", "ForeignFileError", "FormatError", "LimitError",
    "ModelMismatchError", "TruncatedError", "UnsupportedVersionError", "SCALE_TABLE", "scale_indices",
]
