"""MATLAB-compatible bicubic ``imresize`` (the SR field's LR generator and bicubic baseline).

Reproduces MATLAB's ``imresize(img, scale, 'bicubic')`` (antialiasing on): Keys' cubic
kernel with a = -0.5, support 4 widened to 4/scale when shrinking, output size
``ceil(scale * size)``, sample positions ``u = x/scale + (1 - 1/scale)/2`` (1-based),
symmetric (mirror, edge repeated) padding, weights normalised per output pixel, the
dimension with the smaller scale resized first. As in MATLAB, a uint8 image stays uint8
after each one-dimensional pass (rounded half away from zero, saturated), so an LR image
made here is bit-identical in construction to the ones the published tables used; float
input is resized in float64 without rounding.

No library does this exactly (PIL, OpenCV, torch and scikit-image differ in kernel,
antialiasing or padding), hence the hand-written version.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cfin.errors import CFINError

__all__ = ["imresize", "modcrop", "to_uint8", "cubic", "contributions"]

KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def contributions(in_length: int, out_length: int, scale: float,
                  antialiasing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based source indices, each ``out_length x taps``, for one dimension.

    Follows MATLAB's ``contributions``: when shrinking with antialiasing the kernel is
    stretched by ``1/scale``; indices outside the image are mirrored (symmetric padding);
    taps whose weight is zero for every output pixel are dropped.
    """
    width = KERNEL_WIDTH
    if scale < 1 and antialiasing:
        width = KERNEL_WIDTH / scale

        def kernel(x):
            return scale * cubic(scale * x)
    else:
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    ind = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - ind)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # symmetric padding: 1..n, n..1 repeated (MATLAB's aux vector), converted to 0-based
    aux = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    ind = aux[np.mod(ind.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], ind[:, keep]


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float -> uint8 as MATLAB's ``uint8()``: round half away from zero, saturate at 0/255."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    return np.floor(np.clip(img.astype(np.float64), 0, 255) + 0.5).astype(np.uint8)


def _resize_along(img: np.ndarray, dim: int, weights: np.ndarray, ind: np.ndarray) -> np.ndarray:
    """One separable pass: output row i = sum_k weights[i, k] * img[ind[i, k]] along ``dim``."""
    src = np.moveaxis(img, dim, 0)
    shape = (weights.shape[0],) + (1,) * (src.ndim - 1)
    out = np.zeros((weights.shape[0],) + src.shape[1:], dtype=np.float64)
    for k in range(weights.shape[1]):  # accumulate tap by tap, as MATLAB's mex does
        out += weights[:, k].reshape(shape) * src[ind[:, k]]
    return np.moveaxis(out, 0, dim)


def _parse_size(in_shape: tuple[int, int], scale, output_shape) -> tuple[list[float], list[int]]:
    if (scale is None) == (output_shape is None):
        raise CFINError("imresize needs exactly one of scale or output_shape")
    if scale is not None:
        scales = list(scale) if isinstance(scale, Sequence) else [scale, scale]
        if len(scales) != 2 or any(not np.isfinite(s) or s <= 0 for s in scales):
            raise CFINError(f"imresize scale must be a positive number or (sh, sw); got {scale!r}")
        scales = [float(s) for s in scales]
        sizes = [int(math.ceil(s * n)) for s, n in zip(scales, in_shape)]
    else:
        sizes = [int(v) for v in output_shape]
        if len(sizes) != 2 or any(v <= 0 for v in sizes):
            raise CFINError(f"imresize output_shape must be two positive ints (h, w); got {output_shape!r}")
        scales = [o / n for o, n in zip(sizes, in_shape)]
    return scales, sizes


def imresize(img: np.ndarray, scale: float | Sequence[float] | None = None,
             output_shape: Sequence[int] | None = None, antialiasing: bool = True) -> np.ndarray:
    """Bicubic resize of an H x W or H x W x C image exactly as MATLAB's ``imresize``.

    Args:
        img: uint8 or floating-point array, H x W or H x W x C.
        scale: factor (or per-axis ``(sh, sw)``); the output is ``ceil(scale * size)``.
        output_shape: ``(h, w)`` instead of ``scale``; the scale is then ``out / in`` per axis.
        antialiasing: widen the kernel when shrinking (MATLAB's default, on).

    Returns:
        uint8 (rounded and clipped after each pass, as MATLAB) for uint8 input, otherwise
        an array of the input's float dtype.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise CFINError(f"imresize expects an H x W or H x W x C image; got shape {img.shape}")
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise CFINError(f"imresize expects uint8 or float input; got dtype {img.dtype}")
    if min(img.shape[:2]) < 1:
        raise CFINError(f"imresize got an empty image of shape {img.shape}")
    scales, sizes = _parse_size(img.shape[:2], scale, output_shape)
    is_uint8 = img.dtype == np.uint8
    out = img
    for dim in np.argsort(scales, kind="stable"):  # smaller scale first, rows on ties
        weights, ind = contributions(img.shape[dim], sizes[dim], scales[dim], antialiasing)
        out = _resize_along(out, int(dim), weights, ind)
        if is_uint8:
            out = to_uint8(out)
    return out if is_uint8 else out.astype(img.dtype, copy=False)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale`` (MATLAB ``modcrop``)."""
    if int(scale) != scale or scale < 1:
        raise CFINError(f"modcrop scale must be a positive integer; got {scale!r}")
    scale = int(scale)
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise CFINError(f"image of size {h}x{w} is smaller than the scale {scale}")
    return img[: h - h % scale, : w - w % scale]
