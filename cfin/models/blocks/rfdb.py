"""RFDB: residual feature distillation block of RFDN (Liu et al., ECCV Workshops 2020)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.models.blocks.common import ESA, check_width
from cfin.models.common import ConvStageBlock, conv

LRELU_SLOPE = 0.05


class SRB(nn.Module):
    """Shallow residual block of RFDN: ``LeakyReLU(conv3x3(x) + x)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x) + x, LRELU_SLOPE)


class RFDB(ConvStageBlock):
    """Residual feature distillation block (RFDN).

    Feature distillation connections: at each of three steps a 1x1 conv (+ LeakyReLU 0.05)
    distils ``d = C/2`` channels while a shallow residual block (SRB) refines the full C
    channels; a final 3x3 conv (+ LeakyReLU) maps the last SRB output to d. The four
    distilled parts (4d = 2C channels) are concatenated, fused by a 1x1 conv to C and
    weighted by enhanced spatial attention (ESA, C/4 inner channels).

    As in RFDN (and its code) the block has no identity skip of its own: the SRBs carry the
    residual learning. Simplification: only ESA's padding of maps smaller than 15 pixels
    (see :class:`ESA`).

    Args:
        n_feats: width C.
        distillation_rate: distilled channels per step as a fraction of C (0.5).
        esa_reduction: ESA's channel reduction (4).
    """

    def __init__(self, n_feats: int, *, distillation_rate: float = 0.5, esa_reduction: int = 4):
        super().__init__()
        check_width("RFDB", n_feats)
        d = max(1, int(n_feats * distillation_rate))
        self.distil = nn.ModuleList(conv(n_feats, d, 1) for _ in range(3))
        self.refine = nn.ModuleList(SRB(n_feats) for _ in range(3))
        self.last = conv(n_feats, d, 3)
        self.fuse = conv(4 * d, n_feats, 1)
        self.esa = ESA(n_feats, esa_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        h = x
        for distil, refine in zip(self.distil, self.refine):
            parts.append(F.leaky_relu(distil(h), LRELU_SLOPE))
            h = refine(h)
        parts.append(F.leaky_relu(self.last(h), LRELU_SLOPE))
        return self.esa(self.fuse(torch.cat(parts, dim=1)))
