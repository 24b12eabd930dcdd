"""JPEG XL through the reference ``cjxl`` / ``djxl`` tools (Debian ``libjxl-tools``)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.codecs.base import Codec, CodecUnavailable, Measured, run_tool, tool_output
from benchmarks.codecs.ppm import read_ppm, write_ppm


class JPEGXL(Codec):
    """Lossy JPEG XL (VarDCT) at a Butteraugli distance, effort 7 (the default)."""

    name = "jxl"
    label = "JPEG XL"
    # distance (lower is better); 25 is cjxl's maximum
    default_settings = (25.0, 12.0, 7.0, 4.5, 3.0, 2.0, 1.3, 0.7)
    memory_method = "child-rss"
    EFFORT = 7

    def check_available(self) -> None:
        missing = [t for t in ("cjxl", "djxl") if not shutil.which(t)]
        if missing:
            raise CodecUnavailable(f"{', '.join(missing)} not found "
                                   "(Debian: apt-get install libjxl-tools)")

    def tool_version(self) -> str:
        return (tool_output(["cjxl", "--version"]).splitlines() or ["cjxl ?"])[0]

    def helper_files(self) -> list[Path]:
        from benchmarks.codecs import ppm

        return [Path(ppm.__file__)]

    def version_extra(self) -> str:
        return f"effort={self.EFFORT}"

    def description(self) -> str:
        return (f"JPEG XL via {self.tool_version()}: cjxl -d DISTANCE -e {self.EFFORT} "
                "--num_threads=0 (single thread) from an 8-bit PPM; djxl --num_threads=1 to PPM.")

    def encode_measured(self, rgb: np.ndarray, setting: float) -> Measured:
        with tempfile.TemporaryDirectory(prefix="bench_jxl_") as tmp:
            src, out = Path(tmp) / "in.ppm", Path(tmp) / "out.jxl"
            write_ppm(src, rgb)
            cmd = ["cjxl", str(src), str(out), "-d", repr(float(setting)), "-e",
                   str(self.EFFORT), "--num_threads=0", "--quiet"]
            seconds, peak, _ = run_tool(cmd)
            return Measured(out.read_bytes(), seconds, peak)

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        return self.encode_measured(rgb, setting).value

    def decode_measured(self, data: bytes) -> Measured:
        with tempfile.TemporaryDirectory(prefix="bench_jxl_") as tmp:
            src, out = Path(tmp) / "in.jxl", Path(tmp) / "out.ppm"
            src.write_bytes(data)
            seconds, peak, _ = run_tool(["djxl", str(src), str(out), "--num_threads=1",
                                         "--quiet"])
            return Measured(read_ppm(out), seconds, peak)

    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_measured(data).value
