"""The comparison page: a Flask app on 127.0.0.1 serving one static page and one JSON endpoint.

``diffcodec view [IMAGE_OR_DIR]`` runs it. Uploads are size-limited (``max_upload_bytes``) and
read through the codec's own image reader with a pixel limit, like every other input; named
images are only those listed from the folder given on the command line.
"""
from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
from flask import Flask, jsonify, request, send_from_directory

from benchmarks.view.compare import compare
from diffcodec.image_io import IMAGE_SUFFIXES, ImageInputError, open_image

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 4_000_000  # a comparison runs ~30 encodes: keep it interactive


def list_images(source: Path | None) -> dict[str, Path]:
    """Name -> path of the images the page may load by name (a file, or a folder's images)."""
    if source is None:
        return {}
    if source.is_file():
        return {source.name: source}
    return {p.name: p for p in sorted(source.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def parse_budget(value: str, unit: str, pixels: int) -> int:
    """A target of ``value`` bpp or kB as a byte budget; ValueError with a one-line message."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"target must be a number, got {value!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise ValueError("target must be a positive number")
    if unit == "bpp":
        budget = v * pixels / 8
    elif unit == "kB":
        budget = v * 1000
    else:
        raise ValueError(f"unit must be bpp or kB, got {unit!r}")
    if budget < 64:
        raise ValueError("target is below 64 bytes")
    return int(budget)


def create_app(source: Path | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    images = list_images(source)
    lock = threading.Lock()  # one comparison at a time: each uses every core

    @app.get("/")
    def index():
        return send_from_directory(STATIC, "index.html")

    @app.get("/static/<path:name>")
    def static_file(name: str):
        return send_from_directory(STATIC, name)

    @app.get("/api/images")
    def image_list():
        return jsonify(sorted(images))

    @app.post("/api/compare")
    def run_compare():
        upload = request.files.get("image")
        try:
            if upload is not None and upload.filename:
                name = Path(upload.filename).name
                source_image = open_image(io.BytesIO(upload.read()), max_pixels, name=name)
            else:
                name = request.form.get("name", "")
                if name not in images:
                    raise ValueError(f"no image named {name!r}")
                source_image = open_image(images[name], max_pixels)
            rgb = source_image.rgb
            budget = parse_budget(request.form.get("target", ""), request.form.get("unit", "bpp"),
                                  rgb.shape[0] * rgb.shape[1])
        except (ImageInputError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        with lock:
            panels = compare(np.ascontiguousarray(rgb), budget)
        return jsonify(name=name, width=int(rgb.shape[1]), height=int(rgb.shape[0]), budget_bytes=budget,
                       panels=[p.to_json() for p in panels])

    @app.errorhandler(413)
    def too_large(_exc):
        return jsonify(error=f"upload larger than {max_upload_bytes} bytes"), 413

    return app


def serve(source: Path | None, host: str = "127.0.0.1", port: int = 8765, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Run the page until interrupted (Flask's threaded server: a local, single-user tool)."""
    from werkzeug.serving import run_simple

    print(f"diffcodec comparison page on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    run_simple(host, port, create_app(source, max_pixels=max_pixels), threaded=True, use_reloader=False)
