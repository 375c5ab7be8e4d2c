"""cfin.models.rng: the Gumbel mask's exponential draws, vectorised, are ``exponential_``'s own."""
from __future__ import annotations

import pytest
import torch

from cfin.models import rng


def reference(shape, dtype=torch.float32):
    return torch.empty(shape, dtype=dtype).exponential_()


@pytest.fixture
def vectorised_always(monkeypatch):
    """The vectorised draw for any size (by default small tensors take exponential_ itself)."""
    monkeypatch.setattr(rng, "VECTORISED_FROM", 0)


@pytest.mark.parametrize("shape", [(1,), (7,), (311,), (1, 3, 17, 23), (2, 3, 180, 33)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("offset", [0, 1, 623, 1000], ids=lambda o: f"after{o}")
def test_same_numbers_and_same_generator_state_as_exponential(shape, offset, vectorised_always, mt19937_exponential):
    """Bit for bit, from a fresh seed or part-way through MT19937's 624-word block, across
    twists (the largest shape draws 35k words), and the generator ends where exponential_ leaves it."""
    assert rng.supported()
    torch.manual_seed(2024)
    reference((offset,))
    expected, state_after = reference(shape), torch.default_generator.get_state()
    torch.manual_seed(2024)
    reference((offset,))
    got = rng.exponential_like(torch.empty(shape))
    assert torch.equal(torch.default_generator.get_state(), state_after)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert torch.equal(got, expected)


@pytest.mark.parametrize("n", [rng.VECTORISED_FROM - 1, rng.VECTORISED_FROM])
def test_small_tensors_take_exponential_itself(monkeypatch, n, mt19937_exponential):
    """Below VECTORISED_FROM values the draw's fixed cost outweighs it: ``exponential_`` runs."""
    calls = []
    real = rng.draw
    monkeypatch.setattr(rng, "draw", lambda state, m: calls.append(m) or real(state, m))
    assert rng.supported()
    calls.clear()  # the support check's own draw
    torch.manual_seed(4)
    expected = reference((n,))
    torch.manual_seed(4)
    assert torch.equal(rng.exponential_like(torch.empty(n)), expected)
    assert calls == ([] if n < rng.VECTORISED_FROM else [n])


def test_values_are_nchw_whatever_the_layout_asked_for(vectorised_always):
    """Like ``empty_like(..., legacy_contiguous_format)``: channels-last input, NCHW draws."""
    t = torch.empty(1, 3, 5, 7).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(5)
    expected = torch.empty_like(t, memory_format=torch.legacy_contiguous_format).exponential_()
    torch.manual_seed(5)
    got = rng.exponential_like(t)
    assert got.is_contiguous() and torch.equal(got, expected)


def test_other_dtypes_fall_back_to_exponential(vectorised_always):
    torch.manual_seed(3)
    expected = reference((4, 5), torch.float64)
    torch.manual_seed(3)
    got = rng.exponential_like(torch.empty(4, 5, dtype=torch.float64))
    assert got.dtype == torch.float64 and torch.equal(got, expected)


def test_the_support_check_leaves_the_default_generator_alone(monkeypatch, exponential_is_mt19937):
    monkeypatch.setattr(rng, "_checked", None)
    torch.manual_seed(11)
    before = torch.default_generator.get_state()
    assert rng.supported() is exponential_is_mt19937   # True on torch 2.13
    assert torch.equal(torch.default_generator.get_state(), before)


def test_a_build_whose_draws_differ_gets_exponential(monkeypatch, vectorised_always):
    """Where the check fails (another engine, state layout or transform), the call is exponential_."""
    monkeypatch.setattr(rng, "_checked", None)
    monkeypatch.setattr(rng, "draw", lambda state, n: (torch.zeros(n), state))
    assert not rng.supported()
    torch.manual_seed(8)
    expected = reference((3, 4))
    torch.manual_seed(8)
    assert torch.equal(rng.exponential_like(torch.empty(3, 4)), expected)


def test_draws_are_exponential():
    """The transform is -log1p(-u) with u uniform in [0, 1): positive, mean and variance near 1."""
    torch.manual_seed(0)
    x = rng.exponential_like(torch.empty(200_000))
    assert (x >= 0).all() and torch.isfinite(x).all()
    # sampling error of 200,000 draws: mean sd 0.0022, variance sd 0.0063 (4.5 and 4.7 sd); a fixed
    # seed, so the same numbers on any CPU
    assert abs(x.mean().item() - 1) < 0.01 and abs(x.var().item() - 1) < 0.03
