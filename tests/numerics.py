"""The bounds of the numerics tests (marker ``numerics``): what each bounds and why it holds on
any x86 CPU torch runs on (AVX2, AVX-512, AVX-512 with AMX).

Two float32 computations of one function differ by rounding, and by how much depends on the
machine: oneDNN picks its convolution kernels by instruction set, ATen its vectorised loops,
MKL its GEMMs, and each sums in its own order. A bound tuned on one machine fails on another
(the fast path's golden bound of 1e-4 measured 1.22e-4 on a Xeon with AMX). So a bound that
rests on float32 noise follows the noise measured where the test runs:

- whole networks: :func:`faithful_noise`, the faithful path against itself with its
  convolutions from ATen's own kernels instead of oneDNN's (``cfin bench``'s
  ``float32_noise``, :func:`cfin.bench.equality.float32_noise`), once per model and input in
  a session;
- single ops: :func:`float64_noise`, the reference op in float32 against the same op in
  float64, i.e. its own float32 rounding error.

The bound is :data:`NOISE_FACTOR` times that noise (:func:`noise_bound`), and never below the
floor the test names: the project's target (``OUT_ATOL``, ``GRAD_RTOL``: a test is never
stricter than what the project promises), or for a single op a few roundings of its result
(:func:`ulps`).
Bounds that are not float32 noise (golden outputs, published numbers, exact equalities) say
why beside them. ``tools/numerics_margins.py`` runs the marked tests under several
instruction-set limits and tabulates each bound against the largest deviation seen.
"""
from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Hashable

import torch

from cfin.bench.equality import float32_noise
from cfin.bench.spec import GRAD_RTOL, OUT_ATOL  # noqa: F401  (re-exported: the targets the bounds start from)

GOLDEN_ATOL = 1e-3
"""Ours against the official outputs in ``../shared/reference`` (0-255 scale): the bound the model
library was given (REFERENCE.md). The golden outputs are another float32 run of the same
function; float32 noise of the faithful path on that input is 0.9e-4 to 2.1e-4, and the largest
deviation seen is 4.0e-4 (the fast path, oneDNN limited to AVX2), 2.5x under it."""

SCORE_ATOL = {"psnr": 0.005, "ssim": 5e-5}
"""Two computations of one network scored alike (fast vs faithful path, tiled vs whole image):
half the precision scores are printed to (0.01 dB, 1e-4 SSIM). The images are rounded to uint8
before scoring, so float32 noise moves a score only through the pixels it carries across a
rounding boundary; one such pixel moves the PSNR of a 36 x 36 image by about 1e-4 dB."""

NOISE_FACTOR = 8
"""How many times the measured float32 noise a bound allows. Another CPU's kernels sum in
another order: across AVX2, AVX-512 and ATen's default and AVX2 loops, 1 and 2 threads, the
deviations measured stayed within 3x the noise measured in the same run; 8 leaves the rest
for kernels not measured (AMX machines' oneDNN picks)."""

_MEASURED: dict[Hashable, dict] = {}


def noise_bound(floor: float, noise: float) -> float:
    """``NOISE_FACTOR`` x ``noise``, never below ``floor``."""
    return max(floor, NOISE_FACTOR * noise)


def ulps(t: torch.Tensor, n: int = 4) -> float:
    """``n`` float32 roundings of ``t``'s largest magnitude (``n`` x eps x max |t|): the floor of a
    single op's bound, for where the measured noise happens to be nil."""
    return n * torch.finfo(torch.float32).eps * float(t.detach().abs().max())


def faithful_noise(key: Hashable, one_pass: Callable[[], tuple], device: torch.device | None = None) -> dict:
    """:func:`~cfin.bench.equality.float32_noise` of ``one_pass`` (a faithful pass: output and
    gradients or None, its random draws seeded inside), measured once per ``key`` in a session.

    Returns ``max_abs_diff`` (and ``grad_rel_diff`` with gradients) and the ``method``.
    """
    if key not in _MEASURED:
        _MEASURED[key] = float32_noise(one_pass, one_pass(), device or torch.device("cpu"))
    return _MEASURED[key]


def float64_noise(fn: Callable[..., torch.Tensor | tuple], *inputs: torch.Tensor) -> float | list[float]:
    """Largest absolute difference between ``fn`` on float32 ``inputs`` and ``fn`` on the same
    inputs in float64 (memory format kept): ``fn``'s own float32 rounding error; a list, one
    per tensor, where ``fn`` returns several. A module runs in float64 as a float64 copy."""
    exact = copy.deepcopy(fn).double() if isinstance(fn, torch.nn.Module) else fn
    single, double = fn(*inputs), exact(*(t.detach().double().requires_grad_(t.requires_grad) for t in inputs))
    if isinstance(single, torch.Tensor):
        return float((single.detach().double() - double.detach()).abs().max())
    return [float((a.detach().double() - b.detach()).abs().max()) for a, b in zip(single, double)]


def check(name: str, deviation: float, bound: float, noise: float | None = None) -> None:
    """Assert ``deviation <= bound``; ``name`` says what is bounded (one name per kind of bound).

    With ``CFIN_NUMERICS_LOG`` set, each check is appended to that file as one JSON line (the
    test, ``name``, deviation, bound and noise) for ``tools/numerics_margins.py``.
    """
    deviation, bound = float(deviation), float(bound)
    log = os.environ.get("CFIN_NUMERICS_LOG")
    if log:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        with open(log, "a") as f:
            f.write(json.dumps({"test": test, "bound": name, "deviation": deviation, "limit": bound,
                                "noise": noise}) + "\n")
    assert deviation <= bound, f"{name}: {deviation:.3g} above its bound {bound:.3g}" + (
        f" (float32 noise {noise:.3g})" if noise is not None else "")


def assert_within(name: str, got: torch.Tensor, want: torch.Tensor, bound: float, noise: float | None = None):
    """Same shape and dtype, and the largest absolute difference within ``bound`` (:func:`check`)."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    check(name, (got - want).detach().abs().max(), bound, noise)
