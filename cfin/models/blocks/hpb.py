"""HPB: high preserving block of ESRT (Lu et al., CVPR Workshops 2022)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.models.blocks.common import ChannelAttention, check_width
from cfin.models.common import ConvStageBlock, Scale, conv


class RU(nn.Module):
    """Residual unit of the ARFB: ``l_res * x + l_x * Ex(PReLU(Re(x)))``.

    Reduction ``Re``: 3x3 conv C -> C/2; expansion ``Ex``: 3x3 conv C/2 -> C; the two
    adaptive weights are learnable scalars (init 1).
    """

    def __init__(self, channels: int):
        super().__init__()
        half = max(1, channels // 2)
        self.reduce = conv(channels, half, 3)
        self.act = nn.PReLU(half)
        self.expand = conv(half, channels, 3)
        self.scale_skip = Scale(1.0)
        self.scale_res = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale_skip(x) + self.scale_res(self.expand(self.act(self.reduce(x))))


class ARFB(nn.Module):
    """Adaptive residual feature block (ESRT).

    Two residual units in series; their weighted outputs are concatenated (2C), fused by a
    1x1 conv (+ ReLU) to C, channel attention (reduction 16), a 3x3 conv (+ ReLU); the
    output is ``l_res * x + l_x * that`` (learnable scalars). The fusion convs have no bias
    and the channel attention sits between them, as in ESRT's code.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.ru1 = RU(channels)
        self.ru2 = RU(channels)
        self.scale_ru1 = Scale(1.0)
        self.scale_ru2 = Scale(1.0)
        self.fuse = nn.Sequential(
            conv(2 * channels, channels, 1, bias=False), nn.ReLU(inplace=True),
            ChannelAttention(channels, reduction),
            conv(channels, channels, 3, bias=False), nn.ReLU(inplace=True),
        )
        self.scale_skip = Scale(1.0)
        self.scale_res = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r1 = self.ru1(x)
        r2 = self.ru2(r1)
        y = self.fuse(torch.cat((self.scale_ru2(r2), self.scale_ru1(r1)), dim=1))
        return self.scale_skip(x) + self.scale_res(y)


def hfm(x: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """High-frequency filtering module (ESRT): returns ``(low, high)``.

    ``low`` = k x k average pooling (stride k) of ``x``; ``high = x - up(low)`` with ``up``
    a bilinear resize back to H x W (align_corners, as ESRT's code). Pooling uses
    ceil_mode: identical for sizes divisible by k; otherwise the last partial row/column
    is averaged on its own instead of dropped, so 1-pixel maps work.
    """
    low = F.avg_pool2d(x, k, stride=k, ceil_mode=True)
    high = x - F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=True)
    return low, high


class HPB(ConvStageBlock):
    """High preserving block (ESRT).

    ``x1 = ARFB_in(x)``; the HFM splits ``x1`` into a downsampled low-frequency map and the
    high-frequency residue ``P_high``. The low branch runs one ARFB ``low_steps`` times
    with shared weights at half resolution and is upsampled (bilinear) back; the high
    branch is one ARFB on ``P_high``. The two are concatenated (2C) and fused: 1x1 conv
    (no bias) + ReLU to C, channel attention, ARFB; plus the block input.

    Structure, widths (RU reduction C/2, CA reduction 16) and the 5 shared-weight steps
    follow ESRT's code, which produced its numbers; the fusion of the two branches is its
    "concatenate, then reduce the channels back to C" (no separate split layer exists in
    that code). Simplification: only the HFM's ceil-mode pooling (see :func:`hfm`).

    Args:
        n_feats: width C.
        low_steps: applications of the shared low-frequency ARFB (5).
        pool: HFM pooling factor k (2).
        reduction: channel-attention reduction (16).
    """

    def __init__(self, n_feats: int, *, low_steps: int = 5, pool: int = 2, reduction: int = 16):
        super().__init__()
        check_width("HPB", n_feats)
        self.arfb_in = ARFB(n_feats, reduction)
        self.arfb_low = ARFB(n_feats, reduction)
        self.arfb_high = ARFB(n_feats, reduction)
        self.low_steps = low_steps
        self.pool = pool
        self.fuse = nn.Sequential(conv(2 * n_feats, n_feats, 1, bias=False), nn.ReLU(inplace=True),
                                  ChannelAttention(n_feats, reduction))
        self.arfb_out = ARFB(n_feats, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = hfm(self.arfb_in(x), self.pool)
        for _ in range(self.low_steps):
            low = self.arfb_low(low)
        low = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=True)
        y = self.fuse(torch.cat((low, self.arfb_high(high)), dim=1))
        return x + self.arfb_out(y)
