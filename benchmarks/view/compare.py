"""Every codec at one target size: the setting whose real file fits the budget, decoded and measured.

Pure functions over uint8 RGB arrays; the web page (:mod:`benchmarks.view.app`) only calls
:func:`compare`. Classical codecs come from the benchmark's adapters (``benchmarks.codecs``),
so the page runs exactly what the benchmark measures.
"""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from benchmarks.codecs import get_codec
from benchmarks.codecs.base import Codec, CodecUnavailable
from diffcodec.psnr import psnr


@dataclass(frozen=True)
class SettingRange:
    """A codec's setting axis: ``lo``..``hi``, whether a larger setting makes a larger file, integer steps."""

    lo: float
    hi: float
    grows: bool
    integer: bool = True


#: the classical codecs of the page and the axis searched for each
CLASSICAL = {
    "jpeg420": SettingRange(1, 100, grows=True),
    "webp": SettingRange(0, 100, grows=True),
    "avif": SettingRange(0, 100, grows=True),
    "hevc": SettingRange(0, 51, grows=False),
}


@dataclass
class Panel:
    """One decoded image of the comparison with its real size and quality."""

    name: str
    label: str
    bytes: int | None = None
    bpp: float | None = None
    psnr: float | None = None
    lpips: float | None = None
    setting: float | None = None
    rgb: np.ndarray | None = None
    note: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "label": self.label, "bytes": self.bytes, "bpp": self.bpp, "psnr": self.psnr,
                "lpips": self.lpips, "setting": self.setting, "note": self.note,
                "image": png_data_url(self.rgb) if self.rgb is not None else None}


def png_data_url(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def fit_to_budget(codec: Codec, rgb: np.ndarray, axis: SettingRange, budget_bytes: int) -> tuple[float, bytes]:
    """The highest-quality setting whose file has at most ``budget_bytes`` (the smallest file if none does).

    Bisection on the setting axis (file size is monotone in it for these codecs): about
    log2(range) encodes.
    """
    lo, hi = (axis.lo, axis.hi) if axis.grows else (axis.hi, axis.lo)  # lo: smallest file

    def size_ok(setting: float) -> tuple[bool, bytes]:
        data = codec.encode(rgb, setting)
        return len(data) <= budget_bytes, data

    ok, best = size_ok(lo)
    best_setting = lo
    if not ok:
        return lo, best
    ok, data = size_ok(hi)
    if ok:
        return hi, data
    for _ in range(12):
        mid = (lo + hi) / 2
        if axis.integer:
            mid = math.floor(mid) if axis.grows else math.ceil(mid)
        if mid in (lo, hi):
            break
        ok, data = size_ok(mid)
        if ok:
            lo, best, best_setting = mid, data, mid
        else:
            hi = mid
    return best_setting, best


def _lpips_net():
    try:
        from diffcodec.perceptual.lpips import LPIPSNet

        return LPIPSNet("alex")
    except Exception:  # weights not installed: the page shows PSNR only
        return None


def compare(rgb: np.ndarray, budget_bytes: int, codecs: tuple[str, ...] = tuple(CLASSICAL), lpips=None,
            ) -> list[Panel]:
    """Original, diffcodec fidelity and realism, and each available classical codec at ``budget_bytes``."""
    import torch

    import diffcodec
    from diffcodec.image_io import to_tensor

    h, w = rgb.shape[:2]
    lpips = lpips if lpips is not None else _lpips_net()
    panels = [Panel("original", "original", rgb=rgb)]
    res = diffcodec.compress_detailed(Image.fromarray(rgb), target_bpp=budget_bytes * 8 / (h * w))
    decoders = (("diffcodec", "diffcodec fidelity", {"steps": 0}),
                ("diffcodec-realism", "diffcodec realism", {"realism": True}))  # the decoder's own defaults
    for name, label, kwargs in decoders:
        try:
            decoded = np.asarray(diffcodec.decompress(res.data, **kwargs).convert("RGB"))
        except Exception as exc:  # e.g. no realism decoder for this model
            panels.append(Panel(name, label, note=str(exc)))
            continue
        panels.append(Panel(name, label, bytes=len(res.data), setting=res.quality, rgb=decoded,
                            note="; ".join(res.notices)))
    for name in codecs:
        codec = get_codec(name)
        try:
            codec.check_available()
        except CodecUnavailable as exc:
            panels.append(Panel(name, codec.label, note=f"not installed: {exc}"))
            continue
        setting, data = fit_to_budget(codec, rgb, CLASSICAL[name], budget_bytes)
        note = "" if len(data) <= budget_bytes else "its smallest file is larger than the target"
        panels.append(Panel(name, codec.label, bytes=len(data), setting=setting, rgb=codec.decode(data), note=note))
    ref = to_tensor(rgb)
    with torch.inference_mode():
        ref_features = lpips.embed(ref) if lpips is not None else None
        for p in panels[1:]:
            if p.rgb is None:
                continue
            p.bpp = round(p.bytes * 8 / (h * w), 4)
            p.psnr = round(psnr(rgb, p.rgb), 2)
            if ref_features is not None:
                p.lpips = round(float(lpips.distance(ref_features, lpips.embed(to_tensor(p.rgb)))[0]), 4)
    return panels
