"""Minimal HEVC Annex-B helpers: split NAL units and read the picture size from the SPS."""
from __future__ import annotations

from dataclasses import dataclass

NAL_VPS, NAL_SPS, NAL_PPS = 32, 33, 34


def split_nal_units(stream: bytes) -> list[bytes]:
    """NAL unit payloads (header included, start codes removed) of an Annex-B stream."""
    units: list[bytes] = []
    starts: list[int] = []
    i = 0
    n = len(stream)
    while True:
        j = stream.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        unit = stream[s:e]
        # a 4-byte start code leaves a trailing zero on the previous unit
        while k + 1 < len(starts) and unit.endswith(b"\x00"):
            unit = unit[:-1]
        units.append(unit)
    return units


def nal_type(unit: bytes) -> int:
    """nal_unit_type of a NAL unit (first 2 bytes are its header)."""
    return (unit[0] >> 1) & 0x3F


def parameter_set_bytes(stream: bytes) -> int:
    """Bytes taken by VPS/SPS/PPS NAL units including their start codes."""
    total = 0
    for u in split_nal_units(stream):
        if nal_type(u) in (NAL_VPS, NAL_SPS, NAL_PPS):
            total += len(u) + 4
    return total


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            v = (v << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)


def _unescape(rbsp: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00)."""
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


@dataclass
class SPSInfo:
    """Fields of the sequence parameter set that the decoder wrapper needs."""

    chroma_format_idc: int
    width: int  # displayed (conformance-cropped) width
    height: int


def parse_sps(stream: bytes) -> SPSInfo:
    """Picture size and chroma format from the first SPS of an Annex-B stream."""
    for u in split_nal_units(stream):
        if nal_type(u) == NAL_SPS:
            break
    else:
        raise ValueError("no SPS in stream")
    r = _BitReader(_unescape(u[2:]))
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    r.u(1)  # temporal_id_nesting
    # profile_tier_level: general part is 88 bits + general_level_idc (8)
    r.u(32), r.u(32), r.u(24), r.u(8)
    sub_profile = []
    sub_level = []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(r.u(1))
        sub_level.append(r.u(1))
    if max_sub_layers_minus1 > 0:
        for _ in range(max_sub_layers_minus1, 8):
            r.u(2)
    for i in range(max_sub_layers_minus1):
        if sub_profile[i]:
            r.u(32), r.u(32), r.u(24)
        if sub_level[i]:
            r.u(8)
    r.ue()  # sps_seq_parameter_set_id
    chroma = r.ue()
    if chroma == 3:
        r.u(1)  # separate_colour_plane_flag
    width = r.ue()
    height = r.ue()
    if r.u(1):  # conformance_window_flag
        sub_w = 2 if chroma in (1, 2) else 1
        sub_h = 2 if chroma == 1 else 1
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    return SPSInfo(chroma, width, height)
