"""Command-line interface: ``diffcodec compress | decompress | info | demo | train | benchmark``.

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
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_REALISM_STEPS = 1  # the shipped CPU-trained denoiser helps LPIPS only in one step (model card)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".gif", ".avif"}


class UserError(Exception):
    """Expected failure of one input: reported as one line, never a traceback."""


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
    inputs = _expand(sources, in_suffixes)
    if not inputs:
        raise click.UsageError("no input files")
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
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


def _run_batch(pairs: list[tuple[Path, Path]], work: Callable[[Path, Path], str], quiet: bool) -> int:
    """Run ``work`` on every pair, continue past failures, report them at the end."""
    from tqdm import tqdm

    failures: list[str] = []
    show_bar = len(pairs) > 1 and not quiet
    bar = tqdm(pairs, unit="file", disable=not show_bar, file=sys.stderr)
    for src, dst in bar:
        try:
            line = work(src, dst)
            if not quiet:
                (bar.write if show_bar else click.echo)(line)
        except KeyboardInterrupt:
            bar.close()
            click.echo(f"interrupted; {dst} not written", err=True)
            return EXIT_INTERRUPTED
        except UserError as exc:
            failures.append(f"{src}: {exc}")
            msg = f"error: {src}: {exc}"
            (bar.write if show_bar else lambda m: click.echo(m, err=True))(msg)
    bar.close()
    if failures and len(pairs) > 1:
        click.echo(f"{len(failures)} of {len(pairs)} files failed:", err=True)
        for f in failures:
            click.echo(f"  {f}", err=True)
    return EXIT_FAILED if failures else EXIT_OK


def _user_errors(fn: Callable[[Path, Path], str]) -> Callable[[Path, Path], str]:
    """Map the library's expected exceptions onto :class:`UserError` with a one-line message."""
    def wrapped(src: Path, dst: Path) -> str:
        from bitstream import FormatError
        from diffcodec.api import OutputExistsError
        from diffcodec.image_io import ImageInputError
        from diffcodec.weights import WeightError

        try:
            return fn(src, dst)
        except WeightError:
            raise
        except (FormatError, ImageInputError, OutputExistsError, ValueError) as exc:
            raise UserError(str(exc)) from None
        except PermissionError as exc:
            raise UserError(f"permission denied: {exc.filename}") from None
        except OSError as exc:
            raise UserError(f"{exc.strerror or exc}") from None
    return wrapped


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
@_apply(_common)
def compress(sources, quality, target_bpp, max_pixels, force, output_dir, device, threads, quiet):
    """Compress images to .dcf files.

    \b
    diffcodec compress photo.png photo.dcf
    diffcodec compress photo.png --target-bpp 0.25
    diffcodec compress 'shots/*.jpg' -o compressed/ --quality 60
    """
    from bitstream import DEFAULT_MAX_PIXELS
    from diffcodec.api import DEFAULT_QUALITY, compress_file

    if quality is not None and target_bpp is not None:
        raise click.UsageError("use either --quality or --target-bpp, not both")
    _threads(threads)
    pairs = _pairs(sources, output_dir, ".dcf", IMAGE_SUFFIXES, lambda s: s.lower().endswith(".dcf"))

    @_user_errors
    def work(src: Path, dst: Path) -> str:
        t0 = time.perf_counter()
        res = compress_file(src, dst, DEFAULT_QUALITY if quality is None else quality, target_bpp=target_bpp,
                            force=force, device=device, max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
        dt = time.perf_counter() - t0
        notes = "".join(f" ({n})" for n in res.notices)
        return f"{src} -> {dst}: {len(res.data)} bytes, {res.bpp:.4f} bpp, quality {res.quality:g}, {dt:.2f} s{notes}"

    sys.exit(_guarded(lambda: _run_batch(pairs, work, quiet)))


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--format", "fmt", default="png", show_default=True,
              help="Output format for batch mode (png, webp, tiff, bmp, ppm, jpg); SRC DST uses DST's extension.")
@click.option("--max-pixels", type=click.IntRange(1), default=None,
              help="Refuse files announcing more pixels (decompression-bomb guard). [default: 64000000]")
@click.option("--realism", is_flag=True,
              help=f"Realism decoder with its default settings ({DEFAULT_REALISM_STEPS} steps).")
@click.option("--steps", type=click.IntRange(0, 64), default=None,
              help="Decoder steps: 0 = fidelity; 1-64 = realism. [default: the file's recommendation, "
                   "normally 0]")
@click.option("--guidance", type=click.FloatRange(0, 10), default=1.0, show_default=True,
              help="Realism: >1 adds more invented detail, <1 less (classifier-free guidance). "
                   "The shipped realism decoder ignores it at 1 step (measured: see its model card).")
@click.option("--eta", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Realism: 0 = deterministic sampler; up to 1 = fresh noise every step (more texture).")
@click.option("--seed", type=int, default=0, show_default=True, help="Realism: noise seed.")
@_apply(_common)
def decompress(sources, fmt, max_pixels, realism, steps, guidance, eta, seed, force, output_dir, device, threads,
               quiet):
    """Decode .dcf files to images (PNG unless the output's extension says otherwise).

    \b
    diffcodec decompress photo.dcf photo.png
    diffcodec decompress compressed/ -o decoded/ --format webp
    diffcodec decompress photo.dcf photo-real.png --realism --seed 7

    One file serves two decoders. The fidelity decoder (--steps 0, the default) returns the
    closest image in the mean-squared-error sense: at low rates it is blurry but never invents
    anything. The realism decoder (--realism, or --steps N) samples plausible texture and detail
    on top of it with a conditional diffusion model: sharper and closer to a real photograph
    in look, but details (text, faces, fine patterns) may differ from the original, and PSNR
    drops. Same file, settings and seed give the same pixels on a machine.
    """
    from bitstream import DEFAULT_MAX_PIXELS
    from diffcodec.api import decompress_file

    _threads(threads)
    suffix = "." + fmt.lower().lstrip(".")
    pairs = _pairs(sources, output_dir, suffix, {".dcf"}, lambda s: not s.lower().endswith(".dcf"))

    @_user_errors
    def work(src: Path, dst: Path) -> str:
        t0 = time.perf_counter()
        image = decompress_file(src, dst, force=force, device=device, max_pixels=max_pixels or DEFAULT_MAX_PIXELS,
                                steps=DEFAULT_REALISM_STEPS if realism and steps is None else steps,
                                guidance=guidance, eta=eta, seed=seed)
        dt = time.perf_counter() - t0
        return f"{src} -> {dst}: {image.width}x{image.height} {image.mode}, {dt:.2f} s"

    sys.exit(_guarded(lambda: _run_batch(pairs, work, quiet)))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
def info(files, as_json):
    """Show the header of .dcf files (size, quality, model, bpp) without decoding them."""
    import bitstream

    from diffcodec.registry import DENOISERS, MODELS, model_label

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
            "file": str(path), "format_version": bitstream.FORMAT_VERSION, "width": h.width, "height": h.height,
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
    """Train a model (arguments as in `python -m diffcodec.train --help`)."""
    from diffcodec.train import main as train_main

    train_main(ctx.args)


def _guarded(run: Callable[[], int]) -> int:
    """Model-loading failures end the whole run with exit code 3 and one line."""
    from diffcodec.weights import WeightError

    _install_sigterm()
    try:
        return run()
    except WeightError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_MODEL
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED


def _register_benchmark() -> None:
    """`diffcodec benchmark` runs the benchmark suite of benchmarks/ when it is importable."""
    try:
        from benchmarks.cli import benchmark_command  # type: ignore[import-not-found]
    except ImportError:
        return
    main.add_command(benchmark_command, name="benchmark")


_register_benchmark()

if __name__ == "__main__":
    main()
