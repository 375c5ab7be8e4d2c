"""What the Y-channel peers (IDN, MemNet) need to take and return RGB like every other network.

Those methods were trained and tested in MATLAB on the luminance only: ``rgb2ycbcr``, the
network on Y in [0, 1] (from an LR image, or from its bicubic upsampling), Cb and Cr upsampled
by ``imresize(..., 'bicubic')``, then ``ycbcr2rgb``. :func:`luma_sr` does the same on tensors:
RGB [0, 255] in, RGB [0, 255] out, differentiable and shape-only on meta tensors.

The upsampling is MATLAB's bicubic (:func:`matlab_bicubic_upsample`: the weights and taps of
:func:`cfin.imresize.contributions`, applied in torch), not ``F.interpolate(mode="bicubic")``
(Keys' a = -0.75 and edge clamping, where MATLAB has a = -0.5 and mirror padding): the
released weights were trained on MATLAB's, and torch's differs from it by up to a few grey
levels at edges.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from cfin.imresize import contributions

# MATLAB rgb2ycbcr for RGB in [0, 1]: YCbCr = OFFSET + MATRIX @ RGB, in [0, 1] (BT.601, 16-235/240).
YCBCR_MATRIX = np.array([[65.481, 128.553, 24.966],
                         [-37.797, -74.203, 112.0],
                         [112.0, -93.786, -18.214]]) / 255.0
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0


def _mix(x: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,bjhw->bihw", m, x)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """B x 3 x H x W RGB in [0, 1] -> YCbCr in [0, 1] (MATLAB's ``rgb2ycbcr`` on doubles)."""
    return _mix(x, YCBCR_MATRIX) + torch.as_tensor(YCBCR_OFFSET, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_ycbcr` (MATLAB's ``ycbcr2rgb`` on doubles)."""
    offset = torch.as_tensor(YCBCR_OFFSET, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return _mix(x - offset, np.linalg.inv(YCBCR_MATRIX))


@lru_cache(maxsize=64)
def _taps(in_length: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    return contributions(in_length, in_length * scale, float(scale))


def _resize_dim(x: torch.Tensor, dim: int, scale: int) -> torch.Tensor:
    weights, ind = _taps(x.shape[dim], scale)
    out_length, taps = weights.shape
    picked = x.index_select(dim, torch.as_tensor(ind.reshape(-1), device=x.device))
    picked = picked.unflatten(dim, (out_length, taps))
    shape = [1] * picked.dim()
    shape[dim], shape[dim + 1] = out_length, taps
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device).view(shape)
    return (picked * w).sum(dim + 1)


def matlab_bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB's ``imresize(x, scale, 'bicubic')`` for an integer ``scale`` > 1 on B x C x H x W
    floats (no rounding), rows first as MATLAB does for equal scales; differentiable."""
    return _resize_dim(_resize_dim(x, 2, scale), 3, scale)


LumaNet = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def luma_sr(x: torch.Tensor, scale: int, net: LumaNet) -> torch.Tensor:
    """RGB [0, 255] LR -> RGB [0, 255] SR with a Y-channel network, as the MATLAB test scripts do.

    ``net(y_lr, y_bicubic)`` gets the LR luminance and its bicubic upsampling, both B x 1 x H x W
    in [0, 1], and returns the SR luminance (B x 1 x sH x sW, [0, 1]); Cb and Cr are the bicubic
    upsampling of the LR chroma.
    """
    ycbcr = rgb_to_ycbcr(x / 255.0)
    up = matlab_bicubic_upsample(ycbcr, scale)
    y = net(ycbcr[:, :1], up[:, :1])
    return ycbcr_to_rgb(torch.cat([y, up[:, 1:]], dim=1)) * 255.0
