"""Property-based fuzzing of the .dcf reader and the entropy decoder (hypothesis).

Only the project's own error types may escape: :class:`bitstream.FormatError` (and its
subclasses) for bad files. Seeds are real files made by the shipped model from Kodak crops
and synthetic images of every mode; mutations are byte flips, insertions, deletions, splices
and truncations, with and without a recomputed checksum (so mutated payloads reach the
entropy decoder and the synthesis). ``FUZZ_EXAMPLES`` sets the run length (CI: 150 each).
Every run draws new examples from a seed that pytest prints in its header
(``fuzz seed: N``); ``FUZZ_SEED=N`` replays a run.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

import bitstream
import diffcodec
from bitstream import FormatError, StreamReader

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ_SEED = int(os.environ["FUZZ_SEED"])  # set (and printed) by tests/fuzz/conftest.py
_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def FUZZ(test):  # noqa: N802 - reads like the decorator it stands for
    return seed(FUZZ_SEED)(_SETTINGS(test))


KODAK_SEED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "kodak", "kodim23.png")


def _seed_images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    images = [Image.fromarray(rgb), Image.fromarray(rgb[..., 0], "L"),
              Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA"),
              Image.fromarray(rgb[:1, :1])]
    if os.path.exists(KODAK_SEED):
        with Image.open(KODAK_SEED) as im:
            images.append(im.convert("RGB").crop((200, 100, 328, 196)))
    return images


SEEDS = [diffcodec.compress(im, quality=q) for im, q in zip(_seed_images(), (10, 50, 80, 30, 60))]


def _reseal(data: bytes) -> bytes:
    return bitstream.seal(data[:-4] if len(data) >= 4 else data)


def _decode_or_reject(data: bytes) -> None:
    """The whole decoder: only FormatError may escape; a decoded image has the announced size."""
    try:
        header = bitstream.parse(data).header
    except FormatError:
        return
    try:
        image = diffcodec.decompress(data)
    except FormatError:
        return
    assert image.size == (header.width, header.height)


@st.composite
def mutated(draw, reseal: bool) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            other = draw(st.sampled_from(SEEDS))
            data[pos:] = other[draw(st.integers(0, len(other) - 1)):]
    return _reseal(bytes(data)) if reseal else bytes(data)


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes_are_rejected_cleanly(data):
    _decode_or_reject(data)


@FUZZ
@given(st.binary(max_size=64))
def test_random_bytes_behind_a_valid_signature(tail):
    _decode_or_reject(bitstream.MAGIC + bytes([bitstream.FORMAT_VERSION]) + tail)


@FUZZ
@given(mutated(reseal=False))
def test_mutated_real_files(data):
    _decode_or_reject(data)


@FUZZ
@given(mutated(reseal=True))
def test_mutated_real_files_with_valid_checksum(data):
    """Mutations the checksum cannot see reach the entropy decoder and the synthesis."""
    _decode_or_reject(data)


@FUZZ
@given(st.binary(min_size=4, max_size=512).map(lambda b: b[: len(b) // 4 * 4]),
       st.integers(1, 300), st.integers(0, 63))
def test_entropy_decoder_rejects_garbage(words, count, scale_index):
    """Random words pass the end-marker check by a 2**-32 chance: every one must be refused."""
    with pytest.raises(FormatError):
        reader = StreamReader(words, end_key=b"fuzz")
        reader.categorical(np.full((2, 127), 1 / 127), count)
        reader.gaussian(np.full(count, scale_index))
        reader.finish()


def test_kodak_seed_is_in_the_corpus():
    if not os.path.exists(KODAK_SEED):
        pytest.skip(f"{KODAK_SEED} not found: the fuzz corpus lacks its Kodak seed")
    assert len(SEEDS) == 5


def test_seed_corpus_decodes_to_the_source_sizes():
    for data, im in zip(SEEDS, _seed_images()):
        assert diffcodec.decompress(data).size == im.size
