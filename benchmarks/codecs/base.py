"""Codec adapter interface and helpers shared by all adapters."""
from __future__ import annotations

import ctypes
import gc
import hashlib
import inspect
import os
import re
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np


class CodecUnavailable(RuntimeError):
    """The codec cannot run here (missing binary, library or API); the message says why."""


@dataclass
class Measured:
    """Result of one timed call: its return value, wall seconds and peak memory in bytes."""

    value: Any
    seconds: float
    peak_bytes: int | None


class Codec(ABC):
    """One image codec at a family of settings.

    Subclasses implement :meth:`encode` / :meth:`decode` on uint8 RGB arrays and bytes.
    ``bpp`` is always ``len(bitstream) * 8 / (H * W)`` of the real bitstream.
    """

    #: short id used on the command line and in file names
    name: str = ""
    #: human readable label for plots and tables
    label: str = ""
    #: default sweep of settings (quality, QP, ...)
    default_settings: Sequence[float] = ()
    #: False when the codec must run in the main process (e.g. to time it with fixed threads)
    parallel_safe: bool = True
    #: how peak memory is measured ("child-rss" for external tools, "hwm-delta" in process)
    memory_method: str = "hwm-delta"

    def check_available(self) -> None:
        """Raise :class:`CodecUnavailable` when the codec cannot run here."""

    def available(self) -> tuple[bool, str]:
        """(True, "") or (False, reason)."""
        try:
            self.check_available()
        except CodecUnavailable as exc:
            return False, str(exc)
        return True, ""

    @abstractmethod
    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        """Compress a uint8 (H, W, 3) RGB image at ``setting``; returns the whole file."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decompress bytes back to a uint8 (H, W, 3) RGB array."""

    def description(self) -> str:
        """One paragraph describing exactly what is run."""
        return self.label

    def tool_version(self) -> str:
        """Version string of the underlying library/binary (enters the cache key)."""
        return ""

    #: methods whose source code defines the output (hashed into :meth:`version`)
    VERSIONED_METHODS = ("encode", "decode", "encode_measured", "decode_measured",
                         "entry_extras")

    def helper_files(self) -> list[Path]:
        """Helper modules whose code affects the output (hashed into :meth:`version`)."""
        return []

    def version_extra(self) -> str:
        """Output-relevant parameters not visible in the method sources (e.g. CLI flags)."""
        return ""

    def version(self) -> str:
        """Code version of this adapter for the cache key.

        Hash of the source of its encode/decode methods, its helper modules, its
        output-relevant parameters and the tool version, so editing a description or a
        default sweep keeps the cache, while any change to what is computed invalidates it.
        """
        h = hashlib.sha256(type(self).__name__.encode())
        for meth in self.VERSIONED_METHODS:
            fn = getattr(type(self), meth, None)
            if fn is not None:
                h.update(inspect.getsource(fn).encode())
        for f in self.helper_files():
            h.update(Path(f).read_bytes())
        h.update(self.version_extra().encode())
        h.update(self.tool_version().encode())
        return h.hexdigest()[:16]

    # --- timed wrappers (overridden by adapters that time external processes) ---
    def encode_measured(self, rgb: np.ndarray, setting: float) -> Measured:
        """:meth:`encode` with wall time and peak memory."""
        return measure_in_process(self.encode, rgb, setting)

    def decode_measured(self, data: bytes) -> Measured:
        """:meth:`decode` with wall time and peak memory."""
        return measure_in_process(self.decode, data)


def format_setting(setting: float) -> str:
    """Stable text for a numeric setting: integers without a trailing '.0'."""
    f = float(setting)
    return str(int(f)) if f.is_integer() else repr(f)


# ---------------------------------------------------------------- measurement helpers
_HWM_RE = re.compile(rb"VmHWM:\s+(\d+)\s+kB")
_RSS_RE = re.compile(rb"VmRSS:\s+(\d+)\s+kB")


def _status_kb(pattern: re.Pattern) -> int | None:
    try:
        with open("/proc/self/status", "rb") as f:
            m = pattern.search(f.read())
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _release_free_memory() -> None:
    """Give freed heap pages back to the OS so that the next allocations show up in RSS."""
    gc.collect()
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:
            _LIBC = False
    if _LIBC:
        try:
            _LIBC.malloc_trim(0)
        except AttributeError:
            pass


_LIBC: Any = None


def measure_in_process(fn, *args: Any) -> Measured:
    """Call ``fn(*args)``; peak memory = rise of the process's peak RSS over its RSS before.

    Freed heap memory is first returned to the OS (``malloc_trim``), then the peak-RSS mark is
    reset through Linux ``/proc/self/clear_refs``, so C/C++ allocations (Pillow, torch) count
    too. ``peak_bytes`` is None where that is unavailable.
    """
    _release_free_memory()
    ok = _reset_hwm()
    before = _status_kb(_RSS_RE) if ok else None
    t0 = time.perf_counter()
    value = fn(*args)
    seconds = time.perf_counter() - t0
    peak = None
    if ok and before is not None:
        hwm = _status_kb(_HWM_RE)
        peak = max(0, hwm - before) if hwm is not None else None
    return Measured(value, seconds, peak)


GNU_TIME = "/usr/bin/time"


def run_tool(cmd: Sequence[str], timeout: float = 900.0) -> tuple[float, int | None, bytes]:
    """Run an external program; returns (wall seconds, peak RSS of the program in bytes, stderr).

    Peak RSS comes from GNU time's ``%M`` (Debian package ``time``): the program is started
    by the small ``time`` process, so the figure is the program's own maximum resident set.
    (``ru_maxrss`` from ``wait4`` on a direct child would include this Python process's RSS,
    which Linux carries over the exec.) Without GNU time the peak is None.
    Raises ``RuntimeError`` on a non-zero exit.
    """
    use_time = os.access(GNU_TIME, os.X_OK)
    with tempfile.TemporaryDirectory(prefix="bench_tool_") as tmp:
        rss_file = Path(tmp) / "rss"
        full = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd] if use_time else list(cmd)
        with open(Path(tmp) / "stderr", "w+b") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err)
            try:
                proc.wait(timeout=timeout)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            seconds = time.perf_counter() - t0
            err.seek(0)
            stderr = err.read()
        peak = None
        if use_time and rss_file.exists():
            text = rss_file.read_text().strip().splitlines()
            if text and text[-1].strip().isdigit():
                peak = int(text[-1].strip()) * 1024
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): "
                           f"{stderr.decode(errors='replace')[-2000:]}")
    return seconds, peak, stderr


def tool_output(cmd: Sequence[str]) -> str:
    """stdout+stderr of a short informational command ('' if it cannot run)."""
    try:
        r = subprocess.run(list(cmd), capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (r.stdout + r.stderr).decode(errors="replace")
