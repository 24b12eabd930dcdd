"""ANS coding of latents: exact round trip, escapes, corrupt streams, rate overhead."""
from __future__ import annotations

import numpy as np
import pytest

from bitstream import SCALE_TABLE, CorruptError, StreamReader, StreamWriter, scale_indices
from bitstream.entropy import GAUSSIAN_RANGE, MAX_ESCAPE


def _pmfs(rng, channels, size):
    p = rng.random((channels, size)) + 0.01
    return p / p.sum(1, keepdims=True)


def test_round_trip_with_escapes():
    rng = np.random.default_rng(0)
    pmfs = _pmfs(rng, 4, 11)
    z = rng.integers(0, 11, (4, 9))
    idx = rng.integers(0, len(SCALE_TABLE), 5000)
    y = np.round(rng.normal(0, SCALE_TABLE[idx])).astype(np.int64)
    y[:6] = [GAUSSIAN_RANGE, -GAUSSIAN_RANGE, GAUSSIAN_RANGE + 1, -GAUSSIAN_RANGE - 77, 10**5, -(10**5)]
    w = StreamWriter()
    w.categorical(z, pmfs)
    w.gaussian(y, idx)
    r = StreamReader(w.finish())
    assert (r.categorical(pmfs, 9) == z).all()
    assert (r.gaussian(idx) == y).all()
    r.finish()


def test_values_beyond_escape_range_are_clipped_not_lost():
    idx = np.array([10, 10])
    y = np.array([GAUSSIAN_RANGE + MAX_ESCAPE + 5, 3])
    w = StreamWriter()
    w.gaussian(y, idx)
    out = StreamReader(w.finish()).gaussian(idx)
    assert out.tolist() == [GAUSSIAN_RANGE + MAX_ESCAPE, 3]


def test_rate_matches_information_content():
    rng = np.random.default_rng(1)
    idx = rng.integers(5, 40, 200_000)
    y = np.round(rng.normal(0, SCALE_TABLE[idx])).astype(np.int64)
    w = StreamWriter()
    w.gaussian(y, idx)
    bits = len(w.finish()) * 8
    from math import erf, sqrt

    def cdf(v, s):
        return 0.5 * (1 + erf(v / (s * sqrt(2))))

    ideal = sum(-np.log2(cdf(v + 0.5, s) - cdf(v - 0.5, s)) for v, s in zip(y[:20000], SCALE_TABLE[idx[:20000]]))
    assert bits / len(y) == pytest.approx(ideal / 20000, rel=0.02)


def test_scale_indices_snap_to_nearest_log_entry():
    assert scale_indices(np.array([0.0, 0.11, 1e9])).tolist() == [0, 0, len(SCALE_TABLE) - 1]
    mids = np.sqrt(SCALE_TABLE[:-1] * SCALE_TABLE[1:])
    assert (scale_indices(SCALE_TABLE) == np.arange(len(SCALE_TABLE))).all()
    assert (scale_indices(mids * 0.999) == np.arange(len(mids))).all()
    assert (scale_indices(mids * 1.001) == np.arange(1, len(mids) + 1)).all()


def test_corrupt_streams_raise_only_corrupt_error():
    rng = np.random.default_rng(2)
    pmfs = _pmfs(rng, 3, 7)
    idx = rng.integers(0, len(SCALE_TABLE), 300)
    for trial in range(200):
        junk = rng.integers(0, 256, 4 * rng.integers(0, 40), dtype=np.uint8).tobytes()
        try:
            r = StreamReader(junk)
            r.categorical(pmfs, 5)
            r.gaussian(idx)
            r.finish()
        except CorruptError:
            pass


def test_stream_must_be_whole_words():
    with pytest.raises(CorruptError):
        StreamReader(b"abc")


def test_leftover_data_detected():
    rng = np.random.default_rng(3)
    pmfs = _pmfs(rng, 2, 5)
    w = StreamWriter()
    w.categorical(np.array([[1, 2], [3, 4]]), pmfs)
    w.categorical(np.array([[0, 0], [1, 1]]), pmfs)
    r = StreamReader(w.finish())
    r.categorical(pmfs, 2)
    with pytest.raises(CorruptError, match="left over"):
        r.finish()
