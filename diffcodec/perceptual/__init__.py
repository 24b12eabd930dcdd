"""Frozen perceptual networks (LPIPS, DISTS) with their offline, checksum-verified weights.

Used as training losses (:mod:`diffcodec.training.realism`, :mod:`diffcodec.training.evaluate_realism`)
and, through ``benchmarks.metrics``, as benchmark metrics: the weights and the networks live
here, below both, so the codec never imports its benchmark suite.
"""
