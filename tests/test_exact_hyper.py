"""The exact hyper-synthesis: equal to the float network up to grid error, identical everywhere."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from diffcodec.coding.exact_hyper import ExactHyperSynthesis, InexactError


def _z(model, seed=0, h=3, w=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-20, 21, (1, model.net.config.n, h, w), generator=g).double() + model.z_medians.double().view(1, -1, 1, 1)


def test_matches_float_network(tiny_model):
    exact = ExactHyperSynthesis(tiny_model.net.h_s)
    z = _z(tiny_model)
    ref = tiny_model.net.h_s.double()(z)
    tiny_model.net.h_s.float()
    out = exact(z)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() < 1e-2 * max(1.0, ref.abs().max().item())


def test_output_lies_on_the_fixed_point_grid(tiny_model):
    from diffcodec.coding.exact_hyper import ACT_BITS, WEIGHT_BITS

    out = ExactHyperSynthesis(tiny_model.net.h_s)(_z(tiny_model, 1))
    scaled = out * 2.0 ** (ACT_BITS + WEIGHT_BITS)
    assert torch.equal(scaled, torch.round(scaled))


def test_identical_across_thread_counts(tiny_model):
    exact = ExactHyperSynthesis(tiny_model.net.h_s)
    z = _z(tiny_model, 2, 7, 9)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = exact(z)
        torch.set_num_threads(2)
        two = exact(z)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


def test_independent_of_summation_order(tiny_model):
    """Permuting input channels (and weights alike) reorders every sum; the result must not move."""
    h_s = tiny_model.net.h_s
    exact = ExactHyperSynthesis(h_s)
    z = _z(tiny_model, 3)
    perm = torch.randperm(z.shape[1], generator=torch.Generator().manual_seed(0))
    first = h_s[0]
    permuted = nn.Sequential(*h_s)
    clone = nn.ConvTranspose2d(first.in_channels, first.out_channels, first.kernel_size, first.stride,
                               first.padding, first.output_padding)
    clone.weight.data = first.weight.data[perm].clone()
    clone.bias.data = first.bias.data.clone()
    permuted[0] = clone
    assert torch.equal(exact(z), ExactHyperSynthesis(permuted)(z[:, perm]))


def test_overflow_is_detected_not_silently_inexact(tiny_model):
    exact = ExactHyperSynthesis(tiny_model.net.h_s)
    with pytest.raises(InexactError):
        exact(torch.full((1, tiny_model.net.config.n, 2, 2), 2.0**40, dtype=torch.float64))


def test_rejects_layers_it_cannot_make_exact():
    with pytest.raises(TypeError):
        ExactHyperSynthesis(nn.Sequential(nn.Conv2d(2, 2, 3), nn.Sigmoid()))


def test_channel_chunking_bounds_memory_without_changing_a_bit(tiny_model):
    """Tiny unfold buffers force one channel per call; the integers must be the same."""
    z = _z(tiny_model, 4, 6, 5)
    whole = ExactHyperSynthesis(tiny_model.net.h_s)(z)
    chunked = ExactHyperSynthesis(tiny_model.net.h_s, max_columns=1)(z)
    assert torch.equal(whole, chunked)
