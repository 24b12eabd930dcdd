"""``diffcodec view``: a local page showing every codec side by side at one target size.

Runs diffcodec fidelity and realism, JPEG, WebP, AVIF and HEVC (where installed) through the
benchmark's own adapters, with synchronized zoom/pan and a split slider (Flask; 127.0.0.1 only
by default). See :mod:`benchmarks.view.app` and :mod:`benchmarks.view.compare`.
"""
