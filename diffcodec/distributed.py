"""Compress or decompress a collection across a Dask cluster (``pip install 'diffcodec[distributed]'``).

    from dask.distributed import Client
    from diffcodec.distributed import compress_folder

    client = Client("tcp://scheduler:8786")          # or LocalCluster() on one machine
    report = compress_folder("photos/", "dcf/", quality=60, client=client)
    print(report.summary())

Every file is one task of a Dask bag; each worker process loads the model once (the codec
is cached per process) and writes its outputs atomically, with the same checks and
one-line errors as the CLI. Outputs are the bytes ``diffcodec compress`` writes: the
encoder is deterministic across processes and thread counts. No scheduler of our own:
a multi-node run is the same call with that cluster's client.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from diffcodec.batch import CompressJob, DecompressJob, attempt
from diffcodec.image_io import IMAGE_SUFFIXES



@dataclass
class BatchReport:
    """What a distributed batch did: written outputs and one-line failures, per input."""

    written: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)

    def summary(self) -> str:
        return f"{len(self.written)} written, {len(self.failed)} failed"


def _files(folder: Path, suffixes: set[str]) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _run_pair(pair: list[str], job) -> tuple[Path, Path, bool, str]:
    return attempt((job, Path(pair[0]), Path(pair[1])))


def run_jobs(pairs: list[tuple[Path, Path]], job, client=None, partitions: int | None = None) -> BatchReport:
    """Map ``job`` over (input, output) pairs as a Dask bag; ``client`` None runs Dask's local processes."""
    import dask.bag as db

    # plain [input, output] strings as elements: a tuple that starts with a callable would read
    # to Dask as a task of its own
    bag = db.from_sequence([[str(src), str(dst)] for src, dst in pairs],
                           npartitions=partitions or max(1, min(len(pairs), 64)))
    results = bag.map(partial(_run_pair, job=job)).compute(scheduler=client if client is not None else "processes")
    report = BatchReport()
    for src, dst, ok, text in results:
        if ok:
            report.written.append(Path(dst))
        else:
            report.failed[Path(src)] = text
    return report


def compress_folder(src: str | Path, dst: str | Path, *, quality: float = 75.0, target_bpp: float | None = None,
                    force: bool = False, max_pixels: int = 64_000_000, client=None, refine: int = 0) -> BatchReport:
    """Compress every image under ``src`` into ``dst`` (same relative paths, ``.dcf``;
    ``refine`` as in :func:`diffcodec.compress`)."""
    src, dst = Path(src), Path(dst)
    inputs = _files(src, IMAGE_SUFFIXES)
    pairs = [(p, (dst / p.relative_to(src)).with_suffix(".dcf")) for p in inputs]
    for _, out in pairs:
        out.parent.mkdir(parents=True, exist_ok=True)
    return run_jobs(pairs, CompressJob(quality, target_bpp, max_pixels, force, "cpu", refine), client)


def decompress_folder(src: str | Path, dst: str | Path, *, fmt: str = "png", force: bool = False,
                      max_pixels: int = 64_000_000, client=None) -> BatchReport:
    """Decode every ``.dcf`` under ``src`` into ``dst`` (same relative paths, ``.{fmt}``) with the fidelity decoder."""
    src, dst = Path(src), Path(dst)
    pairs = [(p, (dst / p.relative_to(src)).with_suffix("." + fmt.lstrip("."))) for p in _files(src, {".dcf"})]
    for _, out in pairs:
        out.parent.mkdir(parents=True, exist_ok=True)
    return run_jobs(pairs, DecompressJob(max_pixels, 0, 1.0, 0.0, 0, force, "cpu"), client)
