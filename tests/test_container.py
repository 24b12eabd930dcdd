"""The .dcf container: round trip and every rejection the parser promises."""
from __future__ import annotations

import struct

import pytest

import bitstream
from bitstream import (
    CorruptError,
    ForeignFileError,
    FormatError,
    Header,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
    pack,
    parse,
    seal,
)

HEADER = Header(model_id=1, fingerprint=b"\x01\x02\x03\x04", width=769, height=3, channels=4, bit_depth=16,
                quality=37.25, decode_hint=0)
LATENT = bytes(range(48))
ALPHA = b"alpha-plane"


recrc = seal  # re-seal a modified file so that only the field under test is wrong


def test_round_trip_preserves_every_field():
    data = pack(HEADER, LATENT, ALPHA)
    c = parse(data)
    assert c.header == HEADER
    assert c.latent == LATENT
    assert c.alpha == ALPHA


def test_header_is_small():
    data = pack(Header(1, b"abcd", 768, 512, 3, 8, 50.0), b"\0\0\0\1")
    assert len(data) - 4 <= 26  # fixed overhead beyond the latent stream


def test_rejects_foreign_file():
    with pytest.raises(ForeignFileError):
        parse(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(ForeignFileError):
        parse(b"")


def test_rejects_unknown_version():
    data = bytearray(pack(HEADER, LATENT, ALPHA))
    for version in (0, 3, 255):
        data[4] = version
        with pytest.raises(UnsupportedVersionError, match=f"version {version} .*reads versions 1, 2"):
            parse(bytes(seal(bytes(data[:-4]))))


def test_version_1_files_are_still_read():
    """Files written before the latent stream's end marker (format 2) keep decoding."""
    old = pack(Header(**{**HEADER.__dict__, "format_version": 1}), LATENT, ALPHA)
    assert old[4] == 1
    c = parse(old)
    assert c.header.format_version == 1 and not c.header.stream_terminated
    assert parse(pack(HEADER, LATENT, ALPHA)).header.stream_terminated
    with pytest.raises(ValueError):
        pack(Header(**{**HEADER.__dict__, "format_version": 3}), LATENT, ALPHA)


def test_truncation_anywhere_is_rejected():
    """Every proper prefix, from inside the magic through the header fields to the CRC."""
    data = pack(HEADER, LATENT, ALPHA)
    header_end = len(data) - 4 - len(LATENT) - len(ALPHA)
    assert header_end == 20  # so the loop cuts inside every header field
    for length in range(len(data)):
        with pytest.raises(FormatError):
            parse(data[:length])


def test_truncation_is_reported_as_truncation():
    data = pack(HEADER, LATENT, ALPHA)
    with pytest.raises(TruncatedError):
        parse(data[:-10])


def test_every_single_bit_flip_is_rejected():
    data = pack(HEADER, LATENT, ALPHA)
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FormatError):
            parse(bytes(flipped))


def test_checksum_mismatch_is_corrupt():
    data = bytearray(pack(HEADER, LATENT, ALPHA))
    data[-20] ^= 0xFF
    with pytest.raises(CorruptError, match="checksum"):
        parse(bytes(data))


def test_trailing_garbage_and_concatenation_rejected():
    data = pack(HEADER, LATENT, ALPHA)
    with pytest.raises(FormatError):
        parse(data + data)
    with pytest.raises(FormatError):
        parse(data + b"\0")


def _body(data: bytes) -> bytearray:
    return bytearray(data[:-4])


def test_unknown_flag_bits_rejected():
    body = _body(pack(HEADER, LATENT, ALPHA))
    body[5] |= 0x80
    with pytest.raises(CorruptError, match="flags"):
        parse(recrc(bytes(body)))


def test_invalid_pixel_format_rejected():
    h = Header(1, b"abcd", 5, 5, 3, 8, 1.0)
    body = _body(pack(h, LATENT))
    pos = 4 + 3 + 4 + 1 + 1  # after magic..fingerprint, width, height (1-byte varints)
    assert body[pos] == 0x13
    body[pos] = 0x19  # 9 channels
    with pytest.raises(CorruptError, match="pixel format"):
        parse(recrc(bytes(body)))


def test_absurd_dimensions_rejected_before_allocation():
    h = Header(1, b"abcd", 60000, 60000, 3, 8, 1.0)
    with pytest.raises(LimitError, match="exceeds the limit"):
        parse(pack(h, LATENT))
    assert parse(pack(h, LATENT), max_pixels=60000 * 60000).header.width == 60000


def test_zero_dimension_rejected():
    h = Header(1, b"abcd", 5, 5, 3, 8, 1.0)
    body = _body(pack(h, LATENT))
    body[11] = 0  # width varint -> 0
    with pytest.raises(LimitError):
        parse(recrc(bytes(body)))


def test_quality_out_of_range_rejected():
    h = Header(1, b"abcd", 5, 5, 3, 8, 1.0)
    body = _body(pack(h, LATENT))
    body[14:16] = struct.pack(">H", 10001)
    with pytest.raises(CorruptError, match="quality"):
        parse(recrc(bytes(body)))


def test_non_canonical_varint_rejected():
    h = Header(1, b"abcd", 5, 5, 3, 8, 1.0)
    data = pack(h, LATENT)
    body = bytearray(data[:11]) + bytes([0x85, 0x00]) + data[12:-4]  # width 5 as a 2-byte varint
    with pytest.raises(CorruptError, match="non-canonical"):
        parse(recrc(bytes(body)))


def test_pack_refuses_inconsistent_headers():
    with pytest.raises(ValueError):
        pack(Header(1, b"abcd", 0, 5, 3, 8, 1.0), LATENT)
    with pytest.raises(ValueError):
        pack(Header(1, b"abcd", 5, 5, 4, 8, 1.0), LATENT)  # RGBA without alpha stream
    with pytest.raises(ValueError):
        pack(Header(1, b"abcd", 5, 5, 3, 8, 1.0), b"abc")  # not whole words


def test_magic_and_version_constants():
    assert bitstream.MAGIC == b"\x89DCF"
    assert pack(HEADER, LATENT, ALPHA)[4] == bitstream.FORMAT_VERSION == 2
    assert bitstream.READABLE_VERSIONS == (1, 2)


def test_seal_matches_pack_checksum():
    data = pack(HEADER, LATENT, ALPHA)
    assert seal(data[:-4]) == data
    assert seal(data[:-5] + b"x") != data
