"""Codec pipeline with a tiny random model: shapes, odd sizes, determinism, rate estimate."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import to_tensor

from diffcodec.coding.codec import Codec


@pytest.mark.parametrize("size", [(1, 1), (1, 97), (65, 33), (64, 64), (130, 7)])
def test_round_trip_odd_sizes(tiny_codec, size):
    h, w = size
    rng = np.random.default_rng(h * 1000 + w)
    x = to_tensor(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    stream = tiny_codec.encode(x, 50.0)
    out = tiny_codec.decode(stream, 50.0, h, w)
    assert out.shape == (1, 3, h, w)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_decoder_reproduces_encoder_latent(tiny_codec):
    """The decoder's y_hat equals symbols + exact means that the encoder used."""
    rng = np.random.default_rng(5)
    x = to_tensor(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    a = tiny_codec.analyse(x)
    z_sym, y_sym, _ = tiny_codec.quantize(a, 80.0)
    y_hat = tiny_codec.decode_latent(tiny_codec.code(a, 80.0), 70, 90, 80.0)
    means, _ = tiny_codec._hyper(torch.from_numpy(z_sym))
    assert torch.equal(y_hat, torch.from_numpy(y_sym).double() + means)


def test_file_made_under_other_dtype_and_threads_decodes_identically(tiny_model):
    """Encoder precision changes the symbols it picks, never the decoder's ability to read them."""
    rng = np.random.default_rng(6)
    x = to_tensor(rng.integers(0, 256, (64, 128, 3), dtype=np.uint8))
    codec = Codec(tiny_model)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        stream = codec.encode(x, 60.0)
        ref_latent = codec.decode_latent(stream, 64, 128, 60.0)
        ref_image = codec.decode(stream, 60.0, 64, 128)
        for threads in (2, 3):
            torch.set_num_threads(threads)
            assert torch.equal(codec.decode_latent(stream, 64, 128, 60.0), ref_latent)
            assert torch.equal(codec.decode(stream, 60.0, 64, 128), ref_image)
            assert codec.encode(x, 60.0) == stream
    finally:
        torch.set_num_threads(before)
    # an encoder computing in bf16 picks other symbols; the decoder reads exactly those
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a_bf16 = codec.analyse(x)
        z_sym, y_sym, _ = codec.quantize(a_bf16, 60.0)
        bf16_stream = codec.code(a_bf16, 60.0)
    means, _ = codec._hyper(torch.from_numpy(z_sym))
    assert torch.equal(codec.decode_latent(bf16_stream, 64, 128, 60.0), torch.from_numpy(y_sym).double() + means)


def test_real_size_matches_model_estimate(tiny_codec, kodak_rgb):
    x = to_tensor(kodak_rgb(23)[:256, :384])
    a = tiny_codec.analyse(x)
    for q in (0.0, 50.0, 100.0):
        bits = len(tiny_codec.code(a, q)) * 8
        est = tiny_codec.estimated_bits(a, q)
        assert bits <= est * 1.01 + 64, (q, bits, est)
        assert bits >= est * 0.99 - 64, (q, bits, est)


def test_quality_is_validated(tiny_codec):
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError):
        tiny_codec.encode(x, 100.5)
    with pytest.raises(ValueError):
        tiny_codec.encode(x, -1)


@pytest.mark.parametrize("kernel,stride,padding,output_padding", [(5, 2, 2, 1), (3, 2, 1, 1), (4, 2, 1, 0), (6, 3, 2, 1)])
def test_subpixel_convolution_computes_the_transposed_convolution(kernel, stride, padding, output_padding):
    """The decoder's g_s runs its transposed convolutions as convolution + pixel shuffle
    (thread-invariant in oneDNN): the same function, symmetric and asymmetric padding alike."""
    from diffcodec.models.subpixel import subpixel_convolution

    torch.manual_seed(kernel + stride)
    deconv = torch.nn.ConvTranspose2d(5, 7, kernel, stride=stride, padding=padding,
                                      output_padding=output_padding).double()
    x = torch.randn(2, 5, 7, 9, dtype=torch.float64)
    expected = deconv(x)
    assert expected.shape[-2:] == (7 * stride, 9 * stride)
    assert torch.allclose(subpixel_convolution(deconv)(x), expected, rtol=0, atol=1e-12)


def test_subpixel_convolution_refuses_what_it_cannot_rewrite():
    from diffcodec.models.subpixel import subpixel_convolution

    with pytest.raises(ValueError, match="stride times"):
        subpixel_convolution(torch.nn.ConvTranspose2d(3, 3, 5, stride=2, padding=2))  # output 2H - 1
    with pytest.raises(ValueError, match="both axes"):
        subpixel_convolution(torch.nn.ConvTranspose2d(3, 3, (5, 3), stride=2, padding=(2, 1), output_padding=1))


def test_codec_synthesis_matches_the_models_g_s(tiny_codec):
    """The codec's rewritten synthesis is the trained g_s up to float summation order."""
    torch.manual_seed(3)
    latent = torch.randn(1, tiny_codec.net.config.m, 5, 6)
    with torch.no_grad():
        assert torch.allclose(tiny_codec.synthesis(latent), tiny_codec.net.g_s(latent), atol=1e-5)
