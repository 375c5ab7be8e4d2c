"""LBNet: Lightweight Bimodal Network, symmetric CNN and recursive Transformer (Table II).

Paper: Guangwei Gao, Zhengxue Wang, Juncheng Li, Wenjie Li, Yi Yu, Tieyong Zeng, "Lightweight
Bimodal Network for Single-Image Super-Resolution via Symmetric CNN and Recursive Transformer",
IJCAI 2022. Shapes and key names: IVIPLab/LBNet @ 0fe8632, model/lbnet.py (``LBNet``, ``LFFM``,
``FRDAB``, ``CALayer``, ``SpatialAttention``), util/rlutrans.py (``TransBlock``, ``EffAttention``,
``Mlp``), util/tools.py (3 x 3 patch unfold / fold), model/common.py (EDSR's MeanShift), option.py
(``n_feats=32``, ``num_heads=8``, ``rgb_range=255``). Serves Table II (x4). Released weights
(test_model/LBNet/LBNet-X{2,3,4}.pt) expect RGB in [0, 255] (``trained_range`` 255) and carry
trained mean shifts (EDSR's ``requires_grad = False`` on the module freezes nothing).

The symmetric CNN runs each of its three LFFMs twice (weights shared); each recursive Transformer
runs its one ET three times. The ET is ESRT's (cfin/peers/esrt.py: :class:`~cfin.peers.esrt.EMHA`,
:class:`~cfin.peers.esrt.Mlp`, :class:`~cfin.peers.esrt.CALayer`, the same layers and keys), with
its tokens split into chunks of ``N // 16`` instead of ``N // 4``.
"""
from __future__ import annotations

import torch
from torch import nn

from cfin.models.common import MeanShift
from cfin.peers.common import RGB_MEAN_DIV2K, from_trained_range, to_trained_range
from cfin.peers.esrt import EMHA, CALayer, Mlp, conv, fold3, unfold3
from cfin.peers.registry import PeerSpec, Source


class SpatialAttention(nn.Module):
    """Spatial attention (CBAM): ``x * sigmoid(conv7x7([mean_c(x), max_c(x)]))``, conv without bias."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True).values), 1)
        return x * self.sigmoid(self.conv1(pooled))


class FRDAB(nn.Module):
    """Feature refinement dual-attention block (LBNet Fig. 3).

    ``y1 = ReLU(c1 x)`` (1x1); two 3x3 branches ``y2``, ``y3`` (C/2 each); ``y4 = ReLU(c4 [y1, y2, y3])``;
    ``y5 = c5 y3``; ``u = [y2, y5, y4]`` (2C) goes through channel and spatial attention in parallel,
    their sum is fused by a 1x1 conv to C, plus the input.

    Args:
        n_feats: width C.
    """

    def __init__(self, n_feats: int):
        super().__init__()
        half = n_feats // 2
        self.c1 = conv(n_feats, n_feats, 1)
        self.c2 = conv(n_feats, half, 3)
        self.c3 = conv(n_feats, half, 3)
        self.c4 = conv(2 * n_feats, n_feats, 3)
        self.c5 = conv(half, half, 3)
        self.c6 = conv(2 * n_feats, n_feats, 1)
        self.se = CALayer(2 * n_feats, 16)
        self.sa = SpatialAttention()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.act(self.c1(x))
        y2 = self.act(self.c2(y1))
        y3 = self.act(self.c3(y1))
        y4 = self.act(self.c4(torch.cat((y1, y2, y3), 1)))
        u = torch.cat((y2, self.c5(y3), y4), 1)
        return x + self.c6(self.se(u) + self.sa(u))


class LFFM(nn.Module):
    """Local feature fusion module (LBNet Fig. 2): three FRDABs densely connected, each later one fed
    by a 1x1 conv (groups 2) over the input and the earlier outputs; a 1x1 conv fuses all four,
    plus the input.

    Args:
        n_feats: width C.
    """

    def __init__(self, n_feats: int):
        super().__init__()
        self.b1 = FRDAB(n_feats)
        self.b2 = FRDAB(n_feats)
        self.b3 = FRDAB(n_feats)
        self.c1 = nn.Conv2d(2 * n_feats, n_feats, 1, groups=2)
        self.c2 = nn.Conv2d(3 * n_feats, n_feats, 1, groups=2)
        self.c3 = nn.Conv2d(4 * n_feats, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.b1(x)
        out2 = self.b2(self.c1(torch.cat((x, out1), 1)))
        out3 = self.b3(self.c2(torch.cat((x, out1, out2), 1)))
        return x + self.c3(torch.cat((x, out1, out2, out3), 1))


class TransBlock(nn.Module):
    """The Transformer of LBNet's recursive Transformer (LBNet Fig. 4; ESRT's ET on tokens):
    ``x + EMHA(LN(x))``, ``x + MLP(LN(x))``, on B x N x D tokens, chunks of ``N // 16``.

    Args:
        dim: token width D (9C: a 3 x 3 patch of C channels).
        num_heads: EMHA heads.
    """

    def __init__(self, dim: int, num_heads: int = 8):
        super().__init__()
        self.atten = EMHA(dim, num_heads, splits=16)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.atten(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class LBNet(nn.Module):
    """LBNet (Fig. 2): mean shift, 3x3 head; the symmetric CNN (LFFMs r1, r2, r3, then again, each fed
    the previous output plus a channel-attended skip from its first pass); a 1x1 conv over the six
    outputs; two recursive Transformers (each: 3 x 3 patches, one TransBlock three times, fold, 3x3
    conv); plus the head output; 3x3 conv to ``3 s^2`` and pixel shuffle; mean shift back.

    Args:
        scale: upscaling factor.
        n_feats: width C (32).
        num_heads: EMHA heads (8; LBNet-T: 6).
        recursions: applications of each TransBlock (3).
        rgb_range: the pixel range of its weights (255).
    """

    def __init__(self, scale: int, n_feats: int = 32, num_heads: int = 8, recursions: int = 3,
                 rgb_range: float = 255.0):
        super().__init__()
        self.recursions = recursions
        self.sub_mean = MeanShift(rgb_range, RGB_MEAN_DIV2K, -1)
        self.head = conv(3, n_feats, 3)
        self.r1 = LFFM(n_feats)
        self.r2 = LFFM(n_feats)
        self.r3 = LFFM(n_feats)
        self.se1 = CALayer(n_feats, 16)
        self.se2 = CALayer(n_feats, 16)
        self.se3 = CALayer(n_feats, 16)
        self.attention = TransBlock(9 * n_feats, num_heads)
        self.attention2 = TransBlock(9 * n_feats, num_heads)
        self.c1 = conv(6 * n_feats, n_feats, 1)
        self.c2 = conv(n_feats, n_feats, 3)
        self.c3 = conv(n_feats, n_feats, 3)
        self.tail = nn.Sequential(conv(n_feats, 3 * scale * scale, 3), nn.PixelShuffle(scale))
        self.add_mean = MeanShift(rgb_range, RGB_MEAN_DIV2K, 1)

    def recursive_transformer(self, block: TransBlock, x: torch.Tensor) -> torch.Tensor:
        """One TransBlock applied ``recursions`` times to the map's 3 x 3 patches, folded back."""
        tokens = unfold3(x)
        for _ in range(self.recursions):
            tokens = block(tokens)
        return fold3(tokens, x.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(self.sub_mean(to_trained_range(x, 255.0)))
        y1 = self.r1(head)
        y2 = self.r2(y1)
        y3 = self.r3(y2)
        y5 = self.r1(y3 + self.se1(y1))
        y6 = self.r2(y5 + self.se2(y2))
        y7 = self.r3(y6 + self.se3(y3))
        y = self.c1(torch.cat((y1, y2, y3, y5, y6, y7), 1))
        y = self.c2(self.recursive_transformer(self.attention, y))
        y = self.c3(self.recursive_transformer(self.attention2, y))
        return from_trained_range(self.add_mean(self.tail(y + head)), 255.0)


SPECS = (
    PeerSpec(
        name="lbnet",
        title="LBNet",
        paper=("Gao, Wang, Li, Li, Yu, Zeng: Lightweight Bimodal Network for Single-Image Super-Resolution via "
               "Symmetric CNN and Recursive Transformer, IJCAI 2022"),
        source=Source("IVIPLab/LBNet", "0fe8632", ("model/lbnet.py", "util/rlutrans.py", "util/tools.py",
                                                    "model/common.py", "option.py")),
        scales=(4,),
        builder=LBNet,
        trained_range=255.0,
        tables=("II",),
        printed_counting=(
            "torchsummaryX rule (paper convention): 741,668 / 38.90G at x4 vs printed 742K / 38.9G (a Linear is "
            "charged its weights once per call, the attention matmuls nothing; x2 / x3 likewise give its README's "
            "731K / 153.2G and 736K / 68.4G); full 741,668 / 461.73G (358.32G of it the attention's q k^T and "
            "attn v), ptflops 104.41G."),
        notes=("n_feats 32, 8 heads (LBNet, not LBNet-T). The mean shifts are trainable, as in the official "
               "code (its released weights carry trained values)."),
    ),
)
