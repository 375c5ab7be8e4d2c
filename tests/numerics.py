"""The bounds of the numerics tests (marker ``numerics``): what each bounds and why it holds on
any x86 CPU torch runs on (AVX2, AVX-512, AVX-512 with AMX).

Two float32 computations of one function differ by rounding, and by how much depends on the
machine: oneDNN picks its convolution kernels by instruction set, ATen its vectorised loops,
MKL its GEMMs, and each sums in its own order. A bound tuned on one machine fails on another
(the fast path's golden bound of 1e-4 measured 1.22e-4 on a Xeon with AMX). So a bound that
rests on float32 noise follows the noise measured where the test runs: the reference
computation's own float32 rounding error, i.e. it in float32 against it in float64 on the same
input (:func:`faithful_noise` for a whole network, once per model and input in a session;
:func:`float64_noise` for an op). Two float32 computations of one function each err by about
that much, so they differ by about twice it, whatever kernels the CPU picks.

(``cfin bench``'s ``float32_noise``, the faithful path rerun with oneDNN off, is no yardstick
at test sizes: for one image of fewer than 20,480 input values ATen runs a 3x3 convolution by
its own kernel whether oneDNN is on or not, and the rerun measured exactly 0 where the fast
path differed by 3.4e-3.)

The bound is :data:`NOISE_FACTOR` times that noise (:func:`noise_bound`), and never below the
floor the test names: the project's target (``OUT_ATOL``, ``GRAD_RTOL``: a test is never
stricter than what the project promises), or for a single op a few roundings of its result
(:func:`ulps`). Bounds that are not float32 noise (golden outputs, published numbers, exact
equalities) say why beside them. ``tools/numerics_margins.py`` runs the marked tests under
several instruction-set limits and tabulates each bound against the largest deviation seen.
"""
from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Hashable

import torch

from cfin.bench.equality import differences
from cfin.bench.spec import GRAD_RTOL, OUT_ATOL  # noqa: F401  (re-exported: the targets the bounds start from)

GOLDEN_ATOL = 1e-3
"""Ours against the official outputs in ``../shared/reference`` (0-255 scale): the bound the model
library was given (REFERENCE.md), not tuned here. The golden outputs are another float32 run of
the same function: 0.8e-4 to 1.1e-4 from it in float64, where the faithful path's own float32
error on that input measured 0.6e-4 to 1.8e-4 (AMD EPYC: oneDNN AVX-512 or AVX2, ATen AVX-512,
AVX2 or default, MKL AVX2, 1 or 2 threads). The largest deviation seen is 4.0e-4, the fast path
with oneDNN limited to AVX2 (its fused tail's float32 error is 3.4e-4 there), 2.5x under the
bound; a Xeon with AMX measured 1.22e-4."""

SCORE_ATOL = {"psnr": 0.005, "ssim": 5e-5}
"""Two computations of one network scored alike (fast vs faithful path, tiled vs whole image):
half the precision scores are printed to (0.01 dB, 1e-4 SSIM). The images are rounded to uint8
before scoring, so float32 noise moves a score only through the pixels it carries across a
rounding boundary; one such pixel moves the PSNR of a 36 x 36 image by about 1e-4 dB."""

NOISE_FACTOR = 10
"""How many times the reference's own float32 error a bound allows. Another CPU's kernels sum in
another order: over the settings GOLDEN_ATOL lists, every deviation stayed within 3.4x the
error measured in the same run (fast vs faithful gradients with ATen's AVX2 loops; outputs 3.1x
with oneDNN and ATen at AVX2); 10 leaves about 3x for kernels not measured (a Xeon's AMX-era
oneDNN picks). ``tools/numerics_margins.py`` measures it on the machine at hand."""

_MEASURED: dict[Hashable, dict] = {}


def noise_bound(floor: float, noise: float) -> float:
    """``NOISE_FACTOR`` x ``noise``, never below ``floor``."""
    return max(floor, NOISE_FACTOR * noise)


def ulps(t: torch.Tensor, n: int = 4) -> float:
    """``n`` float32 roundings of ``t``'s largest magnitude (``n`` x eps x max |t|): the floor of a
    single op's bound, for where the measured noise happens to be nil."""
    return n * torch.finfo(torch.float32).eps * float(t.detach().abs().max())


def faithful_noise(key: Hashable, one_pass: Callable[[torch.dtype], tuple]) -> dict:
    """The float32 rounding error of a pass of the faithful network: ``one_pass(torch.float32)``
    against ``one_pass(torch.float64)`` (:func:`cfin.bench.equality.differences`), measured once
    per ``key`` in a session.

    ``one_pass(dtype)`` runs the network and its input in ``dtype`` and returns (output,
    gradients or None), its random draws seeded inside. Returns ``max_abs_diff`` (and
    ``grad_rel_diff`` with gradients).
    """
    if key not in _MEASURED:
        _MEASURED[key] = differences(one_pass(torch.float32), one_pass(torch.float64))
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
