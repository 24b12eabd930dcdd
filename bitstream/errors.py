"""Error types of the .dcf reader; every rejection of a file is one of these."""


class FormatError(ValueError):
    """A .dcf file cannot be decoded; the message is a one-line explanation for the user."""


class ForeignFileError(FormatError):
    """Not a .dcf file at all (wrong magic)."""


class UnsupportedVersionError(FormatError):
    """A .dcf file of a format version this reader does not know."""


class TruncatedError(FormatError):
    """The file ends before the data its header announces."""


class CorruptError(FormatError):
    """Checksum mismatch or inconsistent header fields."""


class LimitError(FormatError):
    """The header announces something larger than the reader allows (e.g. image dimensions)."""


class ModelMismatchError(FormatError):
    """The file was made by a model (or weights) that this decoder does not have."""
