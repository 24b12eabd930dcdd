"""Run codecs x settings x images, measure rate, time, memory and metrics, with caching."""
from __future__ import annotations

import logging
import math
import multiprocessing as mp
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from benchmarks import fid_pass
from benchmarks.cache import ResultCache
from benchmarks.codecs import Codec, get_codec
from benchmarks.codecs.base import format_setting
from benchmarks.dataset import ImageEntry
from benchmarks.metrics import Metric, get_metric

log = logging.getLogger("benchmarks")

# process-wide singletons (one set per worker process)
_CODECS: dict[str, Codec] = {}
_METRICS: dict[str, Metric] = {}
_INCEPTION = fid_pass.LazyInception()


def _codec(name: str) -> Codec:
    if name not in _CODECS:
        _CODECS[name] = get_codec(name)
    return _CODECS[name]


def _metric(name: str) -> Metric:
    if name not in _METRICS:
        _METRICS[name] = get_metric(name)
    return _METRICS[name]


@dataclass
class Job:
    """All pending (codec, setting) points of one image."""

    image: ImageEntry
    points: list[tuple[str, float]]


@dataclass
class RunSpec:
    """What to run: codec names with their settings, metric names, versions, cache root."""

    settings: dict[str, list[float]]
    metrics: list[str]
    codec_versions: dict[str, str]
    metric_versions: dict[str, str]
    cache_root: str | None
    threads: int = 1
    #: with ``--fid``: patch side whose InceptionV3 features are kept for each image decoded
    #: here (at or below ``fid_max_bpp``, of ``fid_codecs``), so that the FID pass need not decode
    #: it again (a realism decode costs seconds)
    fid_patch: int | None = None
    fid_max_bpp: float | None = None
    fid_codecs: list[str] | None = None


@dataclass
class RunOutcome:
    """Entries per (codec, setting label, image name) and codecs that failed at run time."""

    entries: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    computed: int = 0
    cached: int = 0


class _Reference:
    """A source image with lazily prepared per-metric reference states."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self._states: dict[str, Any] = {}

    def state(self, metric: str) -> Any:
        if metric not in self._states:
            self._states[metric] = _metric(metric).prepare(self.rgb)
        return self._states[metric]


def _missing_metrics(entry: dict | None, spec: RunSpec) -> list[str]:
    if entry is None:
        return list(spec.metrics)
    have = entry.get("metrics", {})
    return [m for m in spec.metrics
            if m not in have or have[m].get("version") != spec.metric_versions[m]]


def needs_work(entry: dict | None, spec: RunSpec) -> bool:
    """True when a cached entry is absent or lacks a requested metric (or its version)."""
    return entry is None or bool(_missing_metrics(entry, spec))


def evaluate_point(image: ImageEntry, ref: _Reference, codec_name: str, setting: float,
                   spec: RunSpec, cache: ResultCache) -> dict:
    """Encode/decode one image at one setting (or reuse the cache) and fill in metrics."""
    codec = _codec(codec_name)
    version = spec.codec_versions[codec_name]
    label = format_setting(setting)
    entry = cache.get(image.sha256, codec_name, label, version)
    rec: np.ndarray | None = None
    bitstream: bytes | None = None
    if entry is None:
        enc = codec.encode_measured(ref.rgb, setting)
        bitstream = bytes(enc.value)
        dec = codec.decode_measured(bitstream)
        rec = np.asarray(dec.value, dtype=np.uint8)
        if rec.shape != ref.rgb.shape:
            raise ValueError(f"{codec_name} decoded shape {rec.shape} != {ref.rgb.shape}")
        h, w = ref.rgb.shape[:2]
        entry = {
            "image": image.name, "image_sha256": image.sha256, "codec": codec_name,
            "setting": label, "setting_value": float(setting), "codec_version": version,
            "height": h, "width": w, "num_bytes": len(bitstream),
            "bpp": len(bitstream) * 8.0 / (h * w),
            "encoding_time": enc.seconds, "decoding_time": dec.seconds,
            "encoding_peak_mem": enc.peak_bytes, "decoding_peak_mem": dec.peak_bytes,
            "memory_method": codec.memory_method, "metrics": {},
        }
        extra = getattr(codec, "entry_extras", None)
        if callable(extra):
            entry.update(extra(bitstream))
    missing = _missing_metrics(entry, spec)
    if missing:
        if rec is None:
            bitstream = cache.get_bitstream(image.sha256, codec_name, label, version)
            if bitstream is None:  # bitstream lost: encode again (timings kept)
                bitstream = codec.encode(ref.rgb, setting)
            rec = np.asarray(codec.decode(bitstream), dtype=np.uint8)
        for m in missing:
            value = _metric(m).compare(ref.state(m), rec)
            entry["metrics"][m] = {"value": None if math.isnan(value) else value,
                                   "version": spec.metric_versions[m]}
        cache.put(entry, bitstream)
    if rec is not None:
        keep_fid_features(image, entry, rec, spec, cache)
    return entry


def keep_fid_features(image: ImageEntry, entry: dict, rec: np.ndarray, spec: RunSpec,
                      cache: ResultCache) -> None:
    """Cache the FID patch features of a just-decoded image, as the FID pass would compute them."""
    if spec.fid_patch is None or (spec.fid_codecs is not None and entry["codec"] not in spec.fid_codecs):
        return
    if spec.fid_max_bpp is not None and entry["bpp"] > spec.fid_max_bpp:
        return
    fid_pass.cached_features(cache, _INCEPTION, image.sha256, entry["codec"], entry["setting"],
                             entry["codec_version"], spec.fid_patch, lambda: rec)


def process_job(job: Job, spec: RunSpec, on_point: Callable[[str], None] | None = None,
                failures: dict[str, str] | None = None) -> tuple[list[dict], dict[str, str]]:
    """Evaluate all points of one image; returns (entries, {codec: error}).

    Codecs already in ``failures`` are skipped; new failures are added to it.
    """
    import torch

    torch.set_num_threads(spec.threads)
    cache = ResultCache(Path(spec.cache_root) if spec.cache_root else None)
    ref = _Reference(job.image.load())
    entries: list[dict] = []
    failures = {} if failures is None else failures
    for codec_name, setting in job.points:
        if codec_name in failures:
            if on_point:
                on_point(codec_name)
            continue
        try:
            entries.append(evaluate_point(job.image, ref, codec_name, setting, spec, cache))
        except Exception as exc:  # one broken codec must not stop the others
            failures[codec_name] = (f"{type(exc).__name__}: {exc} (image {job.image.name}, "
                                    f"setting {format_setting(setting)})")
            log.debug("failure:\n%s", traceback.format_exc())
        if on_point:
            on_point(codec_name)
    return entries, failures


def _worker(args: tuple[Job, RunSpec]) -> tuple[list[dict], dict[str, str], int]:
    job, spec = args
    entries, failures = process_job(job, spec)
    return entries, failures, len(job.points)


def plan(images: list[ImageEntry], spec: RunSpec) -> tuple[list[Job], RunOutcome]:
    """Split points into cached (finished) ones and jobs still to compute."""
    cache = ResultCache(Path(spec.cache_root) if spec.cache_root else None)
    outcome = RunOutcome()
    jobs = []
    for image in images:
        pending = []
        for codec_name, settings in spec.settings.items():
            for s in settings:
                label = format_setting(s)
                entry = cache.get(image.sha256, codec_name, label, spec.codec_versions[codec_name])
                if needs_work(entry, spec):
                    pending.append((codec_name, s))
                else:
                    outcome.entries[(codec_name, label, image.name)] = entry
                    outcome.cached += 1
        if pending:
            jobs.append(Job(image, pending))
    return jobs, outcome


def run(images: list[ImageEntry], spec: RunSpec, workers: int = 1,
        progress: bool = True) -> RunOutcome:
    """Evaluate every (codec, setting, image); parallel-unsafe codecs run in this process."""
    from tqdm import tqdm

    jobs, outcome = plan(images, spec)
    total = sum(len(j.points) for j in jobs)
    serial_codecs = {c for c in spec.settings if not _codec(c).parallel_safe}
    bar = tqdm(total=total, desc="benchmark", unit="pt", disable=not progress or total == 0,
               file=sys.stderr, dynamic_ncols=True)

    def collect(entries: Iterable[dict], failures: dict[str, str]) -> None:
        for e in entries:
            outcome.entries[(e["codec"], e["setting"], e["image"])] = e
            outcome.computed += 1
        for c, msg in failures.items():
            outcome.failures.setdefault(c, msg)

    def tick(codec_name: str) -> None:
        bar.set_postfix_str(codec_name, refresh=False)
        bar.update(1)

    serial_jobs = jobs
    if workers > 1:
        parallel_jobs = [Job(j.image, [p for p in j.points if p[0] not in serial_codecs])
                         for j in jobs]
        serial_jobs = [Job(j.image, [p for p in j.points if p[0] in serial_codecs])
                       for j in jobs]
        parallel_jobs = [j for j in parallel_jobs if j.points]
        serial_jobs = [j for j in serial_jobs if j.points]
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers) as pool:
            for entries, failures, n in pool.imap_unordered(
                    _worker, [(j, spec) for j in parallel_jobs]):
                collect(entries, failures)
                bar.update(n)
    for job in serial_jobs:
        entries, _ = process_job(job, spec, tick, outcome.failures)
        collect(entries, {})
    bar.close()
    return outcome
