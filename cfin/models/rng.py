"""The default CPU generator's exponential draws, generated vectorised (the Gumbel mask's noise).

``Tensor.exponential_`` on the CPU runs one element at a time on one thread: each value is
two 32-bit outputs of the generator's MT19937 joined into 64 bits, the low 53 of them
scaled into a double ``u`` in [0, 1), and ``-log1p(-u)`` rounded to the tensor's dtype. At
x4 720p the official RIFU's 24 hard Gumbel masks draw 4.1M such values, on one core while
the others idle (its share of a forward: docs/performance.md).

:func:`exponential_like` returns the same numbers and leaves the generator where
``exponential_`` would: numpy's MT19937 (the same engine) produces the 32-bit outputs from
the generator's state, torch joins and transforms them on all threads, and the advanced
state is written back. Whether this torch build lays out its generator state and
transforms the bits as described is checked once per process against ``exponential_``
itself on a copy of the generator (:func:`supported`); where it does not, or for another
dtype, device or generator, the call is ``exponential_``; so it is for fewer than
:data:`VECTORISED_FROM` values, where the draw's fixed cost (numpy's engine and the state's
round trip) outweighs its speed: the two took the same time near 16k values
(docs/performance.md). Unlike ``exponential_``, which
holds the generator's lock, reading and writing back the state is not atomic: a thread that
draws from the default CPU generator at the same moment would see the same numbers.
"""
from __future__ import annotations

import struct

import numpy as np
import torch

_MT_N = 624                      # MT19937's state words
_HEAD = struct.Struct("<QiiQ")   # CPU generator state: initial seed, left, seeded, next
_KEY_OFFSET = _HEAD.size         # then the 624 state words, one uint64 each
_LOW_21 = (1 << 21) - 1          # the high word's bits that reach the 53-bit mantissa

VECTORISED_FROM = 16384         # values; fewer go through exponential_ (module docstring)

_checked: bool | None = None


def exponential_like(t: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(t, memory_format=torch.legacy_contiguous_format).exponential_()``
    from the default generator, vectorised where :func:`supported` and ``t`` holds at least
    :data:`VECTORISED_FROM` values."""
    if t.device.type != "cpu" or t.dtype != torch.float32 or t.numel() < VECTORISED_FROM or not supported():
        return torch.empty_like(t, memory_format=torch.legacy_contiguous_format).exponential_()
    values, state = draw(torch.default_generator.get_state(), t.numel())
    torch.default_generator.set_state(state)
    return values.view(t.shape)


def draw(state: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float32 exponential draws (rate 1) from a CPU generator ``state`` and the state after them."""
    raw = state.numpy()
    seed, left, seeded, _ = _HEAD.unpack_from(raw, 0)
    key = np.frombuffer(raw, dtype=np.uint64, count=_MT_N, offset=_KEY_OFFSET).astype(np.uint32)
    engine = np.random.MT19937(0)
    # torch holds `left` outputs until its next twist; numpy a position in the same words
    engine.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": _MT_N + 1 - left}}
    words = torch.from_numpy(engine.random_raw(2 * n).view(np.int64)).view(n, 2)   # (high, low) pairs
    u = ((words[:, 0] & _LOW_21) << 32 | words[:, 1]).double().mul_(2.0 ** -53)
    values = u.neg_().log1p_().neg_().float()
    after = engine.state["state"]
    out = raw.copy()
    _HEAD.pack_into(out, 0, seed, _MT_N + 1 - after["pos"], seeded, after["pos"])
    out[_KEY_OFFSET:_KEY_OFFSET + _MT_N * 8] = after["key"].astype(np.uint64).view(np.uint8)
    return values, torch.from_numpy(out)


def supported() -> bool:
    """Whether :func:`draw` matches ``exponential_`` bit for bit in this torch build (checked once,
    on a copy of the default generator, which it leaves untouched)."""
    global _checked
    if _checked is None:
        _checked = _matches_exponential()
    return _checked


def _matches_exponential(n: int = 4099) -> bool:
    try:
        state = torch.default_generator.get_state()
        twin = torch.Generator()
        twin.set_state(state)
        values, after = draw(state, n)
        expected = torch.empty(n).exponential_(generator=twin)
        return torch.equal(values, expected) and torch.equal(after, twin.get_state())
    except (AttributeError, RuntimeError, ValueError, TypeError, struct.error):
        return False
