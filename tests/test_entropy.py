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


def _decode_all(data: bytes, pmfs, idx, terminated: bool = True) -> None:
    r = StreamReader(data, end_key=b"k" if terminated else None)
    r.categorical(pmfs, 5)
    r.gaussian(idx)
    r.finish()


def test_junk_streams_are_rejected():
    """Random words are no stream: every one fails a check (the end marker matches by 2**-32 chance)."""
    rng = np.random.default_rng(2)
    pmfs = _pmfs(rng, 3, 7)
    idx = rng.integers(0, len(SCALE_TABLE), 300)
    for trial in range(200):
        junk = rng.integers(0, 256, 4 * rng.integers(0, 40), dtype=np.uint8).tobytes()
        with pytest.raises(CorruptError):
            _decode_all(junk, pmfs, idx)


def _stream(rng, pmfs, idx, terminated=True):
    w = StreamWriter(end_key=b"k" if terminated else None)
    w.categorical(rng.integers(0, pmfs.shape[1], (pmfs.shape[0], 5)), pmfs)
    w.gaussian(np.round(rng.normal(0, SCALE_TABLE[idx])).astype(np.int64), idx)
    return w.finish()


def test_every_single_bit_flip_of_a_stream_is_rejected():
    """Measured here: all flips of a 3-segment stream fail the dry-coder, marker or leftover check."""
    rng = np.random.default_rng(5)
    pmfs = _pmfs(rng, 3, 7)
    idx = rng.integers(0, 30, 400)
    data = _stream(rng, pmfs, idx)
    _decode_all(data, pmfs, idx)
    rejected = 0
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            _decode_all(bytes(flipped), pmfs, idx)
        except CorruptError:
            rejected += 1
    assert rejected == len(data) * 8


@pytest.mark.parametrize("change", ["cut", "extra-word", "fewer-symbols", "more-symbols"])
def test_streams_of_another_length_or_symbol_count_are_rejected(change):
    rng = np.random.default_rng(6)
    pmfs = _pmfs(rng, 3, 7)
    idx = rng.integers(0, 30, 400)
    data = _stream(rng, pmfs, idx)
    if change == "cut":
        data = data[4:]  # the first words: what the decoder reads last
    elif change == "extra-word":
        data = b"\x00\x00\x00\x07" + data
    elif change == "fewer-symbols":
        idx = idx[:-50]
    else:
        idx = np.concatenate([idx, idx[:200]])
    with pytest.raises(CorruptError):
        _decode_all(data, pmfs, idx)


def test_version_1_streams_without_end_marker_still_decode():
    rng = np.random.default_rng(7)
    pmfs = _pmfs(rng, 3, 7)
    idx = rng.integers(0, 30, 400)
    old = _stream(np.random.default_rng(8), pmfs, idx, terminated=False)
    new = _stream(np.random.default_rng(8), pmfs, idx, terminated=True)
    assert new != old  # the marker: at most one more word (it may fit in the coder's last word)
    _decode_all(old, pmfs, idx, terminated=False)
    with pytest.raises(CorruptError):
        _decode_all(old, pmfs, idx, terminated=True)


def test_stream_must_be_whole_words():
    with pytest.raises(CorruptError):
        StreamReader(b"abc")


@pytest.mark.parametrize("terminated", [True, False])
def test_leftover_data_detected(terminated):
    rng = np.random.default_rng(3)
    pmfs = _pmfs(rng, 2, 5)
    w = StreamWriter(end_key=b"k" if terminated else None)
    w.categorical(np.array([[1, 2], [3, 4]]), pmfs)
    w.categorical(np.array([[0, 0], [1, 1]]), pmfs)
    r = StreamReader(w.finish(), end_key=b"k" if terminated else None)
    r.categorical(pmfs, 2)
    with pytest.raises(CorruptError, match="end marker" if terminated else "left over"):
        r.finish()


def test_a_stream_read_under_another_key_is_rejected():
    """The marker is keyed by the header fields the stream depends on (size, quality)."""
    rng = np.random.default_rng(9)
    pmfs = _pmfs(rng, 3, 7)
    idx = rng.integers(0, 30, 400)
    data = _stream(rng, pmfs, idx)
    r = StreamReader(data, end_key=b"other")
    r.categorical(pmfs, 5)
    r.gaussian(idx)
    with pytest.raises(CorruptError, match="end marker"):
        r.finish()
