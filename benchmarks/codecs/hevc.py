"""HEVC intra (x265) in full-range BT.601 YCbCr 4:4:4: the codec inside BPG.

Encoding: our own RGB -> YCbCr conversion, raw yuv444p into the ``x265`` CLI with the
settings bpgenc uses (``--tune ssim``, intra, 4:4:4 8-bit). Decoding: ``libde265-dec265``
(Debian ``libde265-examples``) or, if absent, ``ffmpeg``. The bitstream counted is the raw
Annex-B stream (VPS+SPS+PPS+slice); a BPG file wraps the same slice data with its own header
of a few bytes and a compact form of the parameter sets instead.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import colorspace
from benchmarks.codecs import hevc_bitstream
from benchmarks.codecs.base import Codec, CodecUnavailable, Measured, run_tool, tool_output

X265_ARGS = ("--preset", "slow", "--tune", "ssim", "--input-csp", "i444",
             "--profile", "main444-8", "--output-depth", "8", "--no-info",
             "--keyint", "1", "--frames", "1", "--fps", "1",
             "--pools", "1", "--frame-threads", "1", "--lookahead-threads", "0",
             "--no-progress", "--log-level", "error")


def _ctu_args(h: int, w: int) -> list[str]:
    """x265 needs at least one CTU: smaller CTUs for images under 64 px (never on Kodak)."""
    side = min(h, w)
    if side >= 64:
        return []
    if side < 16:
        raise ValueError(f"x265 needs images of at least 16x16 pixels, got {w}x{h}")
    return ["--ctu", "32" if side >= 32 else "16"]


class HEVCIntra(Codec):
    """x265 intra, 4:4:4 full-range BT.601 YCbCr, fixed QP (the BPG codec)."""

    name = "hevc"
    label = "HEVC-intra (x265), the codec inside BPG"
    # bpgenc's QP range is 0..51 (default 28); every 5th QP from 12 to 47 spans ~0.05-4 bpp.
    default_settings = (47, 42, 37, 32, 27, 22, 17, 12)
    memory_method = "child-rss"

    def _decoder(self) -> list[str] | None:
        if shutil.which("libde265-dec265"):
            return ["libde265-dec265"]
        if shutil.which("dec265"):
            return ["dec265"]
        if shutil.which("ffmpeg"):
            return ["ffmpeg"]
        return None

    def check_available(self) -> None:
        if not shutil.which("x265"):
            raise CodecUnavailable("x265 CLI not found (Debian: apt-get install x265)")
        if self._decoder() is None:
            raise CodecUnavailable("no HEVC decoder found (Debian: apt-get install "
                                   "libde265-examples, or ffmpeg)")

    def tool_version(self) -> str:
        enc = tool_output(["x265", "--version"]).splitlines()
        dec = self._decoder() or ["none"]
        return " | ".join([enc[0] if enc else "x265 ?", dec[0]])

    def helper_files(self) -> list[Path]:
        return [Path(colorspace.__file__), Path(hevc_bitstream.__file__)]

    def version_extra(self) -> str:
        return " ".join(X265_ARGS) + _ctu_args.__doc__ + str([_ctu_args(h, 64) for h in (16, 32, 64)])

    def description(self) -> str:
        dec = (self._decoder() or ["?"])[0]
        enc = (tool_output(["x265", "--version"]).splitlines() or ["?"])[0]
        flags = " ".join(X265_ARGS[:X265_ARGS.index("--fps")])
        return ("HEVC intra by x265 (" + enc.replace("x265 [info]: ", "") + "), the codec "
                "inside BPG: RGB -> full-range BT.601 YCbCr 4:4:4 (own conversion), raw "
                f"yuv444p into x265 {flags} --qp QP (single thread); decoded with {dec} and "
                "converted back. bpp counts the raw Annex-B stream (VPS+SPS+PPS+slice; the "
                "parameter sets take about 80 bytes); a .bpg file has instead a BPG header of "
                "a few bytes and compacted parameter sets.")

    def entry_extras(self, bitstream: bytes) -> dict:
        """Extra per-image fields: bytes taken by the VPS/SPS/PPS headers."""
        return {"parameter_set_bytes": hevc_bitstream.parameter_set_bytes(bitstream)}

    # ---------------------------------------------------------------- encode
    def encode_measured(self, rgb: np.ndarray, setting: float) -> Measured:
        h, w = rgb.shape[:2]
        yuv = colorspace.rgb_to_ycbcr444(rgb)
        with tempfile.TemporaryDirectory(prefix="bench_hevc_") as tmp:
            src, out = Path(tmp) / "in.yuv", Path(tmp) / "out.hevc"
            src.write_bytes(yuv.tobytes())
            cmd = ["x265", "--input", str(src), "--input-res", f"{w}x{h}", *X265_ARGS,
                   *_ctu_args(h, w), "--qp", str(int(setting)), "-o", str(out)]
            seconds, peak, _ = run_tool(cmd)
            data = out.read_bytes()
        return Measured(data, seconds, peak)

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        return self.encode_measured(rgb, setting).value

    # ---------------------------------------------------------------- decode
    def decode_measured(self, data: bytes) -> Measured:
        info = hevc_bitstream.parse_sps(data)
        if info.chroma_format_idc != 3:
            raise ValueError(f"expected a 4:4:4 stream, got chroma_format_idc={info.chroma_format_idc}")
        dec = self._decoder()
        if dec is None:
            raise CodecUnavailable("no HEVC decoder")
        with tempfile.TemporaryDirectory(prefix="bench_hevc_") as tmp:
            src, out = Path(tmp) / "in.hevc", Path(tmp) / "out.yuv"
            src.write_bytes(data)
            if dec[0] == "ffmpeg":
                cmd = ["ffmpeg", "-loglevel", "error", "-threads", "1", "-f", "hevc", "-i",
                       str(src), "-f", "rawvideo", "-pix_fmt", "yuv444p", str(out)]
            else:
                cmd = [*dec, "-q", "-t", "0", "-o", str(out), str(src)]
            seconds, peak, _ = run_tool(cmd)
            raw = np.frombuffer(out.read_bytes(), np.uint8)
        expected = 3 * info.width * info.height
        if raw.size != expected:
            raise ValueError(f"decoder wrote {raw.size} bytes, expected {expected}")
        rgb = colorspace.ycbcr444_to_rgb(raw.reshape(3, info.height, info.width))
        return Measured(rgb, seconds, peak)

    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_measured(data).value
