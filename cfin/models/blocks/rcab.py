"""RCAB: residual channel attention block of RCAN (Zhang et al., ECCV 2018)."""
from __future__ import annotations

import torch
from torch import nn

from cfin.models.blocks.common import ChannelAttention, check_width
from cfin.models.common import ConvStageBlock, conv


class RCAB(ConvStageBlock):
    """Residual channel attention block (RCAN, Fig. 4).

    ``x + CA(conv3x3(ReLU(conv3x3(x))))`` with the channel attention of Fig. 3 (global average
    pool, 1x1 conv C -> C/r, ReLU, 1x1 conv C/r -> C, sigmoid), all convs with bias, residual
    scale 1 as in RCAN. No simplification.

    Args:
        n_feats: width C (input and output channels).
        reduction: channel-attention reduction r (16 in RCAN).
    """

    def __init__(self, n_feats: int, *, reduction: int = 16):
        super().__init__()
        check_width("RCAB", n_feats)
        self.body = nn.Sequential(
            conv(n_feats, n_feats, 3), nn.ReLU(inplace=True), conv(n_feats, n_feats, 3),
            ChannelAttention(n_feats, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
