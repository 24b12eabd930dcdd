"""Command-line interface: ``diffcodec compress | decompress | info | demo | view | train | benchmark``.

\b
Exit codes:
  0  success
  1  one or more inputs failed (unreadable image, corrupt .dcf, output exists, ...); each is reported
  2  usage error (bad option or argument)
  3  the installed model could not be loaded (missing or damaged weights)
  130 interrupted (Ctrl-C / SIGTERM); no partial output file is left behind
"""
from __future__ import annotations

import glob
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import click

from diffcodec.batch import CompressJob, DecompressJob, attempt

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _expand(sources: Iterable[str], suffixes: set[str]) -> list[Path]:
    """Files named directly, matched by a glob, or found (recursively) in a directory."""
    out: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
        elif not p.exists() and glob.has_magic(src):
            matches = sorted(Path(m) for m in glob.glob(src, recursive=True) if Path(m).is_file())
            if not matches:
                raise click.UsageError(f"no files match '{src}'")
            out += matches
        else:
            out.append(p)  # a missing file is reported per file, not as a usage error
    return out


def _pairs(sources: tuple[str, ...], output_dir: Path | None, out_suffix: str, in_suffixes: set[str],
           is_output: Callable[[str], bool]) -> list[tuple[Path, Path]]:
    """(input, output) pairs; ``SRC DST`` when exactly two arguments and the second is an output."""
    if len(sources) == 2 and is_output(sources[1]) and output_dir is None and not Path(sources[0]).is_dir():
        return [(Path(sources[0]), Path(sources[1]))]
    if len(sources) >= 2 and is_output(sources[-1]) and output_dir is None:
        raise click.UsageError(f"'{sources[-1]}' names one output file, but the inputs are a directory or "
                               "several files: write them into a directory with -o DIR")
    inputs = _expand(sources, in_suffixes)
    if not inputs:
        raise click.UsageError("no input files")
    if output_dir is not None:
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(f"cannot create output directory {output_dir}: "
                                       f"{exc.strerror or exc}") from None
        pairs = [(i, output_dir / (i.stem + out_suffix)) for i in inputs]
    else:
        pairs = [(i, i.with_suffix(out_suffix)) for i in inputs]
    seen: set[Path] = set()
    for _, o in pairs:
        if o in seen:
            raise click.UsageError(f"two inputs would both be written to {o}")
        seen.add(o)
    return pairs


def _install_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C so the atomic writers clean up their temporary files."""
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def _report_line(bar, show_bar: bool, line: str, err: bool = False) -> None:
    if show_bar:
        bar.write(line, file=sys.stderr if err else sys.stdout)
    else:
        click.echo(line, err=err)


def _run_batch(pairs: list[tuple[Path, Path]], work: Callable[[Path, Path], str], quiet: bool,
               workers: int = 1, threads: int | None = None) -> int:
    """Run ``work`` on every pair (in ``workers`` processes), continue past failures, report them at the end."""
    from tqdm import tqdm

    failures: list[str] = []
    show_bar = len(pairs) > 1 and not quiet
    bar = tqdm(total=len(pairs), unit="file", disable=not show_bar, file=sys.stderr)
    results = _results_serial(pairs, work) if workers <= 1 or len(pairs) <= 1 else None
    pool = None
    if results is None:
        import multiprocessing

        per_worker = max(1, (threads or os.cpu_count() or 1) // workers)
        # spawn: a forked child of a process whose OpenMP runtime already started can hang
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(pairs)), _init_worker, (per_worker,))
        results = pool.imap_unordered(attempt, [(work, src, dst) for src, dst in pairs])
    current = pairs[0][1]
    try:
        for src, dst, ok, text in results:
            current = dst
            bar.update(1)
            if ok:
                if not quiet:
                    _report_line(bar, show_bar, text)
            else:
                named = text if text.startswith(f"{src}:") else f"{src}: {text}"  # name the input once
                failures.append(named)
                _report_line(bar, show_bar, f"error: {named}", err=True)
    except KeyboardInterrupt:
        if pool is not None:
            pool.terminate()  # workers take SIGTERM as an interrupt: their temporary files are removed
            pool.join()
        bar.close()
        click.echo(f"interrupted; {current if pool is None else 'the files in progress'} not written", err=True)
        return EXIT_INTERRUPTED
    if pool is not None:
        pool.close()
        pool.join()  # workers leave on their own: no SIGTERM during their interpreter shutdown
    bar.close()
    if failures and len(pairs) > 1:
        click.echo(f"{len(failures)} of {len(pairs)} files failed:", err=True)
        for f in failures:
            click.echo(f"  {f}", err=True)
    return EXIT_FAILED if failures else EXIT_OK


def _results_serial(pairs: list[tuple[Path, Path]], work: Callable[[Path, Path], str]):
    for src, dst in pairs:
        yield attempt((work, src, dst))


def _init_worker(threads: int) -> None:
    """A batch worker process: its share of the CPU threads. Ctrl-C is the main process's to
    handle; it ends the workers with SIGTERM, which unwinds a worker (its temporary file is
    removed) and exits it quietly."""
    import torch

    def stop(signum, frame):  # noqa: ARG001
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
        raise SystemExit(EXIT_INTERRUPTED)

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)


def _parse_workers(ctx, param, value: str) -> int:  # noqa: ARG001
    if value == "auto":
        return os.cpu_count() or 1
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise click.BadParameter("must be a positive number or 'auto'")
    return n


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=__doc__.split("\n", 2)[2].replace("\\b", "\b"))
@click.version_option(package_name="diffcodec")
def main() -> None:
    """diffcodec: learned lossy image compression to .dcf files."""


_common = [
    click.option("--force", "-f", is_flag=True, help="Overwrite existing output files."),
    click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Write outputs into this directory (default: beside each input)."),
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto."),
    click.option("--threads", type=click.IntRange(1, 256), default=None, help="CPU threads for the networks."),
    click.option("--quiet", "-q", is_flag=True, help="Only print errors."),
    click.option("--workers", default="1", show_default=True, callback=_parse_workers,
                 help="Files coded at once, each in its own process with its share of --threads "
                      "(default: all cores); 'auto' = one per core."),
]


def _apply(options):
    def deco(fn):
        for opt in reversed(options):
            fn = opt(fn)
        return fn
    return deco


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--quality", "-Q", type=click.FloatRange(0, 100), default=None,
              help="Quality 0 (smallest) .. 100 (best), like cjpeg/cwebp. [default: 75]")
@click.option("--target-bpp", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Choose the highest quality whose file is at most this many bits per pixel.")
@click.option("--max-pixels", type=click.IntRange(1), default=None, help="Refuse larger images.")
@click.option("--refine", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Slower, smaller files: gradient steps refining each image's latent before coding "
                   "(about 1.7 s per step for 768x512 on 2 CPU threads here; 20 is a good start). Same file format.")
@_apply(_common)
def compress(sources, quality, target_bpp, max_pixels, refine, force, output_dir, device, threads, quiet, workers):
    """Compress images to .dcf files.

    \b
    diffcodec compress photo.png photo.dcf
    diffcodec compress photo.png --target-bpp 0.25
    diffcodec compress 'shots/*.jpg' -o compressed/ --quality 60
    """
    from bitstream import DEFAULT_MAX_PIXELS
    from diffcodec.api import DEFAULT_QUALITY

    if quality is not None and target_bpp is not None:
        raise click.UsageError("use either --quality or --target-bpp, not both")
    _threads(threads)
    from diffcodec.image_io import IMAGE_SUFFIXES

    pairs = _pairs(sources, output_dir, ".dcf", IMAGE_SUFFIXES, lambda s: s.lower().endswith(".dcf"))

    work = CompressJob(DEFAULT_QUALITY if quality is None else quality, target_bpp,
                       max_pixels or DEFAULT_MAX_PIXELS, force, device, refine)
    sys.exit(_guarded(lambda: _run_batch(pairs, work, quiet, workers, threads)))


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--format", "fmt", default="png", show_default=True,
              help="Output format for batch mode (png, webp, tiff, bmp, ppm, jpg); SRC DST uses DST's extension.")
@click.option("--max-pixels", type=click.IntRange(1), default=None,
              help="Refuse files announcing more pixels (decompression-bomb guard). [default: 64000000]")
@click.option("--realism", is_flag=True,
              help="Realism decoder with its default steps and strength (the model card says which).")
@click.option("--strength", type=click.FloatRange(0, 1), default=None,
              help="Realism strength, 0-1 (implies --realism): how far the fidelity image is noised before "
                   "the realism decoder samples; 0 = the fidelity image, 1 = the most invented detail.")
@click.option("--steps", type=click.IntRange(0, 64), default=None,
              help="Decoder steps: 0 = fidelity; 1-64 = realism. [default: the realism decoder's, with "
                   "--realism; else the file's recommendation, normally 0]")
@click.option("--guidance", type=click.FloatRange(0, 10), default=1.0, show_default=True,
              help="Realism: >1 adds more invented detail, <1 less (classifier-free guidance; decoders trained "
                   "without a dropped condition ignore it).")
@click.option("--eta", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Realism: 0 = deterministic sampler; up to 1 = fresh noise every step (more texture).")
@click.option("--seed", type=int, default=0, show_default=True, help="Realism: noise seed.")
@_apply(_common)
def decompress(sources, fmt, max_pixels, realism, strength, steps, guidance, eta, seed, force, output_dir, device,
               threads, quiet, workers):
    """Decode .dcf files to images (PNG unless the output's extension says otherwise).

    \b
    diffcodec decompress photo.dcf photo.png
    diffcodec decompress compressed/ -o decoded/ --format webp
    diffcodec decompress photo.dcf photo-real.png --realism --seed 7
    diffcodec decompress photo.dcf photo-half.png --strength 0.5

    One file serves two decoders. The fidelity decoder (--steps 0, the default) returns the
    closest image in the mean-squared-error sense: at low rates it is blurry but never invents
    anything. The realism decoder (--realism, --strength S or --steps N) noises the fidelity
    image to the strength and samples plausible texture and detail from it with a conditional
    diffusion model in a few steps: sharper and closer to a real photograph in look, but
    details (text, faces, fine patterns) may differ from the original, and PSNR drops. Same
    file, settings and seed give the same pixels on a machine.
    """
    from bitstream import DEFAULT_MAX_PIXELS

    _threads(threads)
    suffix = "." + fmt.lower().lstrip(".")
    pairs = _pairs(sources, output_dir, suffix, {".dcf"}, lambda s: not s.lower().endswith(".dcf"))

    work = DecompressJob(max_pixels or DEFAULT_MAX_PIXELS, steps, guidance, eta, seed, force, device, realism, strength)
    sys.exit(_guarded(lambda: _run_batch(pairs, work, quiet, workers, threads)))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
def info(files, as_json):
    """Show the header of .dcf files (size, quality, model, bpp) without decoding them."""
    import bitstream
    from diffcodec.zoo.registry import DENOISERS, MODELS, model_label

    failed = False
    for path in files:
        try:
            data = path.read_bytes()
            container = bitstream.parse(data)
        except (OSError, bitstream.FormatError) as exc:
            click.echo(f"error: {path}: {getattr(exc, 'strerror', None) or exc}", err=True)
            failed = True
            continue
        h = container.header
        entry = MODELS.get(h.model_id)
        fields = {
            "file": str(path), "format_version": h.format_version, "width": h.width, "height": h.height,
            "channels": h.channels, "source_bit_depth": h.bit_depth, "quality": h.quality,
            "model_id": h.model_id, "model": model_label(h.model_id),
            "realism_decoder": "available" if h.model_id in DENOISERS else "none",
            "recommended_steps": h.decode_hint,
            "weights_match": bool(entry and bytes.fromhex(entry.sha256[:8]) == h.fingerprint),
            "fingerprint": h.fingerprint.hex(), "bytes": len(data), "latent_bytes": len(container.latent),
            "alpha_bytes": len(container.alpha) if container.alpha is not None else 0,
            "bpp": round(len(data) * 8 / (h.width * h.height), 5),
        }
        if as_json:
            click.echo(json.dumps(fields))
        else:
            click.echo("\n".join(f"{k:>16}: {v}" for k, v in fields.items()) + "\n")
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@main.command()
@click.argument("image", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--quality", "-Q", "qualities", type=click.FloatRange(0, 100), multiple=True,
              help="Qualities to try (repeatable). [default: 20 50 80]")
@click.option("--threads", type=click.IntRange(1, 256), default=2, show_default=True)
def demo(image, qualities, threads):
    """Compress and decompress a sample image with the shipped model; print bpp, PSNR and timings.

    Uses the bundled sample photo (CC0) unless IMAGE is given. Nothing is written to disk.
    """
    import numpy as np

    from diffcodec.api import compress_detailed, decompress
    from diffcodec.image_io import open_image
    from diffcodec.psnr import psnr

    _threads(threads)
    path = image or Path(__file__).parent / "samples" / "chelsea.png"

    def run_demo() -> int:
        source = open_image(path)
        h, w = source.rgb.shape[:2]
        click.echo(f"{path.name}: {w}x{h}, {threads} CPU threads")
        compress_detailed(source, 50.0)  # load the model and warm up once, outside the timings
        for q in qualities or (20.0, 50.0, 80.0):
            t0 = time.perf_counter()
            res = compress_detailed(source, q)
            t1 = time.perf_counter()
            out = np.asarray(decompress(res.data).convert("RGB"))
            t2 = time.perf_counter()
            quality_db = psnr(source.rgb, out)
            click.echo(f"quality {q:5.1f}: {len(res.data):7d} bytes  {res.bpp:.4f} bpp  PSNR {quality_db:.2f} dB  "
                       f"encode {t1 - t0:.3f} s  decode {t2 - t1:.3f} s")
        return EXIT_OK

    sys.exit(_guarded(run_demo))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def train(ctx):
    """Train a model (arguments as in `python -m diffcodec.training.fidelity --help`)."""
    from diffcodec.training.fidelity import main as train_main

    train_main(ctx.args)


def _guarded(run: Callable[[], int]) -> int:
    """Model-loading failures end the whole run with exit code 3 and one line."""
    from diffcodec.zoo.weight_files import WeightError

    _install_sigterm()
    try:
        return run()
    except WeightError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_MODEL
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED


@main.command()
@click.argument("source", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on (another host than 127.0.0.1 exposes the page to the network).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--max-pixels", type=click.IntRange(1), default=4_000_000, show_default=True,
              help="Refuse larger uploads and images.")
def view(source, host, port, max_pixels):
    """Compare every codec side by side at one target size in a local web page.

    \b
    diffcodec view ../shared/data/kodak      # pick one of its images in the page, or drop your own
    diffcodec view photo.png

    diffcodec fidelity and realism, JPEG, WebP, AVIF and HEVC (where installed) at the same
    size, each with its real byte count, PSNR and LPIPS, synchronized zoom/pan and a split
    slider. Needs `pip install 'diffcodec[view]'` and the benchmark suite (benchmarks/).
    """
    try:  # loaded only when called, like the benchmark command
        from benchmarks.view.app import serve
    except ImportError as exc:
        raise click.ClickException(f"the comparison page needs Flask and the benchmark suite ({exc.name} is "
                                   "missing): pip install 'diffcodec[view]'") from None
    serve(source, host, port, max_pixels)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def benchmark(args: tuple[str, ...]) -> None:
    """Rate-distortion benchmark (same options as `python -m benchmarks run`)."""
    try:  # loaded only when called: the codec never imports its benchmark suite
        from benchmarks.cli import main as benchmark_main
    except ImportError:
        raise click.ClickException("the benchmark suite (benchmarks/) is not installed with this diffcodec") from None
    argv = list(args)
    if not argv or argv[0] not in ("run", "bdrate"):
        argv = ["run", *argv]
    sys.exit(benchmark_main(argv))


if __name__ == "__main__":
    main()
