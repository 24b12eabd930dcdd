"""The .dcf container: header fields, coded streams and a CRC-32, all byte-exact.

Layout (big-endian, see docs/format.md)::

    magic       4  b"\\x89DCF"
    version     1  FORMAT_VERSION
    flags       1  bit 0: alpha stream present; other bits must be 0
    model_id    1  which network family made the file
    fingerprint 4  first 4 bytes of the SHA-256 of the weights
    width       varint (LEB128, at most 3 bytes)
    height      varint
    pixel       1  low nibble: source channels (1-4); high nibble: source bit depth / 8
    quality     2  uint16, quality * 100
    decode_hint 1  recommended decoder mode (0 = fidelity)
    latent_len  varint   bytes of the entropy-coded latent stream (multiple of 4)
    alpha_len   varint   only when flags bit 0 is set
    latent      latent_len bytes
    alpha       alpha_len bytes
    crc32       4  CRC-32 of every preceding byte

The reader checks everything that can be checked without a model before returning:
magic, version, checksum, field ranges, dimensions against a pixel limit and the
stream lengths against the file size.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from bitstream.errors import (
    CorruptError,
    ForeignFileError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)

MAGIC = b"\x89DCF"
FORMAT_VERSION = 2  # written; 2 added the latent stream's end marker (bitstream.entropy)
READABLE_VERSIONS = (1, 2)
MAX_SIDE = 1 << 20  # hard ceiling of one image side (3-byte varint)
DEFAULT_MAX_PIXELS = 64_000_000
FLAG_ALPHA = 0x01
_KNOWN_FLAGS = FLAG_ALPHA
_MIN_SIZE = len(MAGIC) + 1 + 1 + 1 + 4 + 1 + 1 + 1 + 2 + 1 + 1 + 4


@dataclass(frozen=True)
class Header:
    """Everything the decoder needs besides the streams."""

    model_id: int
    fingerprint: bytes  # 4 bytes
    width: int
    height: int
    channels: int  # channels of the source image: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
    bit_depth: int  # bit depth of the source image (8 or 16); the codec itself is 8-bit
    quality: float  # 0..100 in steps of 0.01
    decode_hint: int = 0
    format_version: int = FORMAT_VERSION  # version 1 files are read, never written

    @property
    def stream_terminated(self) -> bool:
        """Whether the latent stream ends with the end marker (format version 2 on)."""
        return self.format_version >= 2

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)


@dataclass(frozen=True)
class Container:
    header: Header
    latent: bytes
    alpha: bytes | None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    """Bounds-checked cursor over the file bytes."""

    def __init__(self, data: bytes, end: int):
        self.data = data
        self.pos = 0
        self.end = end

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise TruncatedError(f"file is truncated (ends inside the {what})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str, max_bytes: int) -> int:
        value = 0
        for i in range(max_bytes):
            byte = self.u8(what)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if i > 0 and byte == 0:
                    raise CorruptError(f"corrupt header: non-canonical {what}")
                return value
        raise CorruptError(f"corrupt header: {what} field is too long")


def seal(body: bytes) -> bytes:
    """Append the CRC-32 trailer to a file body (everything but the last 4 bytes).

    Public so that tools which edit a header field on purpose (format tests, fuzzers, the
    reliability report) make a file whose *only* defect is the field under test.
    """
    return bytes(body) + struct.pack(">I", zlib.crc32(body))


def pack(header: Header, latent: bytes, alpha: bytes | None = None) -> bytes:
    """Serialise a header and its streams into .dcf bytes."""
    if not 1 <= header.width <= MAX_SIDE or not 1 <= header.height <= MAX_SIDE:
        raise ValueError(f"image size {header.width}x{header.height} outside 1..{MAX_SIDE}")
    if header.channels not in (1, 2, 3, 4) or header.bit_depth not in (8, 16):
        raise ValueError("channels must be 1-4 and bit depth 8 or 16")
    if (alpha is not None) != header.has_alpha:
        raise ValueError("an alpha stream is required exactly when the source has alpha")
    if len(latent) % 4:
        raise ValueError("latent stream must be whole 32-bit words")
    if len(header.fingerprint) != 4:
        raise ValueError("fingerprint must be 4 bytes")
    if header.format_version not in READABLE_VERSIONS:
        raise ValueError(f"format version must be one of {READABLE_VERSIONS}")
    q = round(header.quality * 100)
    if not 0 <= q <= 10000:
        raise ValueError("quality must be within 0..100")
    out = bytearray(MAGIC)
    out += bytes([header.format_version, FLAG_ALPHA if alpha is not None else 0, header.model_id])
    out += header.fingerprint
    out += _varint(header.width) + _varint(header.height)
    out += bytes([header.channels | (header.bit_depth // 8) << 4])
    out += struct.pack(">HB", q, header.decode_hint)
    out += _varint(len(latent))
    if alpha is not None:
        out += _varint(len(alpha))
    out += latent
    if alpha is not None:
        out += alpha
    return seal(bytes(out))


def parse(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Container:
    """Parse and validate .dcf bytes; raises a :class:`bitstream.errors.FormatError` subclass."""
    if not data:
        raise ForeignFileError("empty file (not a .dcf file)")
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if len(data) < len(MAGIC) and MAGIC.startswith(bytes(data)):
            raise TruncatedError("file is truncated (shorter than the .dcf signature)")
        raise ForeignFileError("not a .dcf file (wrong signature)")
    if len(data) < len(MAGIC) + 1:
        raise TruncatedError("file is truncated (no format version)")
    version = data[len(MAGIC)]
    if version not in READABLE_VERSIONS:
        raise UnsupportedVersionError(
            f"unsupported .dcf format version {version} (this diffcodec reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )
    if len(data) < _MIN_SIZE:
        raise TruncatedError(f"file is truncated ({len(data)} bytes, a .dcf file has at least {_MIN_SIZE})")
    body_end = len(data) - 4
    r = _Reader(data, body_end)
    r.pos = len(MAGIC) + 1
    flags = r.u8("flags")
    model_id = r.u8("model id")
    fingerprint = r.take(4, "fingerprint")
    width = r.varint("width", 3)
    height = r.varint("height", 3)
    pixel = r.u8("pixel format")
    quality_raw, decode_hint = struct.unpack(">HB", r.take(3, "quality"))
    latent_len = r.varint("latent length", 5)
    alpha_len = r.varint("alpha length", 5) if flags & FLAG_ALPHA else None
    # Lengths first: a short file is reported as truncated rather than as a checksum error.
    expected = r.pos + latent_len + (alpha_len or 0)
    if expected > body_end:
        raise TruncatedError(f"file is truncated ({len(data)} bytes, header announces {expected + 4})")
    stored_crc = struct.unpack(">I", data[body_end:])[0]
    if zlib.crc32(data[:body_end]) != stored_crc:
        raise CorruptError("file is corrupt (checksum mismatch)")
    if expected != body_end:
        raise CorruptError(f"file is corrupt ({body_end - expected} unexpected trailing bytes)")
    if flags & ~_KNOWN_FLAGS:
        raise CorruptError(f"corrupt header: unknown flags 0x{flags:02x}")
    channels, depth_code = pixel & 0x0F, pixel >> 4
    if channels not in (1, 2, 3, 4) or depth_code not in (1, 2):
        raise CorruptError(f"corrupt header: invalid pixel format byte 0x{pixel:02x}")
    if (alpha_len is not None) != (channels in (2, 4)):
        raise CorruptError("corrupt header: alpha flag disagrees with channel count")
    if not 1 <= width <= MAX_SIDE or not 1 <= height <= MAX_SIDE:
        raise LimitError(f"invalid image size {width}x{height}")
    if width * height > max_pixels:
        raise LimitError(
            f"image of {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} pixels"
        )
    if quality_raw > 10000:
        raise CorruptError(f"corrupt header: quality {quality_raw / 100} out of range")
    if latent_len % 4:
        raise CorruptError("corrupt header: latent stream length is not a multiple of 4")
    latent = bytes(data[r.pos : r.pos + latent_len])
    alpha = bytes(data[r.pos + latent_len : expected]) if alpha_len is not None else None
    header = Header(
        model_id=model_id, fingerprint=bytes(fingerprint), width=width, height=height,
        channels=channels, bit_depth=8 * depth_code, quality=quality_raw / 100, decode_hint=decode_hint,
        format_version=version,
    )
    return Container(header, latent, alpha)
