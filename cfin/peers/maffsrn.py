"""MAFFSRN (Table IX, x4) and MAFFSRN-L (Table I, x2 / x3 / x4).

Paper: A. Muqeet, J. Hwang, S. Yang, J. H. Kang, Y. Kim, S.-H. Bae, "Multi-attention Based Ultra
Lightweight Image Super-Resolution", ECCV Workshops (AIM 2020), 2020.

Shapes and key names: AbdulMoqeet/MAFFSRN @ 74647b7, ``MAFFSRN/src/model/maffsrn.py`` and
``MAFFSRN/src/template.py`` (MAFFSRN: 4 FFGs, MAFFSRN-L: 8 FFGs, both ``n_feats`` 32) and
``MAFFSRN/src/option.py`` (``rgb_range`` 1). The code grew out of AWSRN's: weight-normed head,
FFG fusions and tail (keys ``weight_g`` / ``weight_v``, mapped as in :mod:`cfin.peers.awsrn`),
and the tail is AWSRN's AWMS with kernels 3 and 5. The repository holds no checkpoints.

Input: RGB in [0, 1] in the public code (no mean shift; its ``rgb_mean`` is never used); this
network takes [0, 255] and converts at its ends.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.errors import CFINError
from cfin.models.common import Scale, conv
from cfin.peers.awsrn import AWMS
from cfin.peers.common import from_trained_range, to_trained_range, weight_norm_key
from cfin.peers.registry import PeerSpec, Source

N_FEATS = 32
REDUCTION = 4       # the CEA's channel reduction in the MAB
LRELU_SLOPE = 0.05
POOL, POOL_STRIDE = 7, 3
# The MAB's stride-2 conv, then a 7 x 7 max pool without padding: the LR side must give at least 7.
MIN_LR_SIDE = 13
TRAINED_RANGE = 1.0


def _conv_act(cin: int, cout: int, k: int, act: str | None = None, dilation: int = 1, groups: int = 1):
    """A 'same'-padded conv (key ``0``) with an optional activation: the public ``conv_block``."""
    layers = [nn.Conv2d(cin, cout, k, padding=dilation * (k - 1) // 2, dilation=dilation, groups=groups)]
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "lrelu":
        layers.append(nn.LeakyReLU(LRELU_SLOPE, inplace=True))
    return nn.Sequential(*layers)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: ``groups`` interleaved (B, g, C/g, H, W -> B, C/g, g, H, W)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class MAB(nn.Module):
    """Multi-attention block (Sec. 3.2, Fig. 3): two 3x3 convs (``conv01`` with LeakyReLU, then
    ``conv00``), then the product of two attentions on their output ``x``:

    - the cost-efficient attention (CEA, an ESA variant): 1x1 conv C -> C/4 (``reduce_channels``),
      3x3 stride-2 conv (``reduce_spatial_size``), 7x7 max pool stride 3, the sum of a 3x3 conv and
      a dilation-2 3x3 conv (each + LeakyReLU), nearest upsampling to the C/4 map's size plus that
      map, 1x1 conv to C + ReLU (``increase_channels``), sigmoid;
    - a pixel attention: 1x1 conv (``bottom11``), depth-wise 5x5 conv (``bottom11_dw``), sigmoid.

    Args:
        n_feats: C.
        reduction: the CEA's channel reduction.
    """

    def __init__(self, n_feats: int, reduction: int = REDUCTION):
        super().__init__()
        f = n_feats // reduction
        self.reduce_channels = nn.Conv2d(n_feats, f, 1)
        self.reduce_spatial_size = nn.Conv2d(f, f, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(POOL, stride=POOL_STRIDE)
        self.increase_channels = _conv_act(f, n_feats, 1, "relu")
        self.conv1 = _conv_act(f, f, 3, "lrelu")
        self.conv2 = _conv_act(f, f, 3, "lrelu", dilation=2)
        self.sigmoid = nn.Sigmoid()
        self.conv00 = _conv_act(n_feats, n_feats, 3)
        self.conv01 = _conv_act(n_feats, n_feats, 3, "lrelu")
        self.bottom11 = _conv_act(n_feats, n_feats, 1)
        self.bottom11_dw = _conv_act(n_feats, n_feats, 5, groups=n_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv00(self.conv01(x))
        rc = self.reduce_channels(x)
        pooled = self.pool(self.reduce_spatial_size(rc))
        context = self.conv2(pooled) + self.conv1(pooled)
        up = F.interpolate(context, size=rc.shape[2:], mode="nearest") + rc
        cea = self.sigmoid(self.increase_channels(up))
        return cea * x * self.sigmoid(self.bottom11_dw(self.bottom11(x)))


class FFG(nn.Module):
    """Feature fusion group (Sec. 3.1, Fig. 2): four MABs ``b0..b3`` (the middle two with a
    residual), fused pairwise by channel shuffle + weight-normed 1x1 convs 2C -> C
    (``reduction1..3``: [x0, x1] -> r1, [r1, x2] -> r2, [r2, x3] -> out), plus the input, both
    adaptively weighted.

    Args:
        n_feats: C.
    """

    def __init__(self, n_feats: int):
        super().__init__()
        self.b0 = MAB(n_feats)
        self.b1 = MAB(n_feats)
        self.b2 = MAB(n_feats)
        self.b3 = MAB(n_feats)
        self.reduction1 = conv(2 * n_feats, n_feats, 1, wn=True)
        self.reduction2 = conv(2 * n_feats, n_feats, 1, wn=True)
        self.reduction3 = conv(2 * n_feats, n_feats, 1, wn=True)
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.b0(x)
        x1 = self.b1(x0) + x0
        x2 = self.b2(x1) + x1
        x3 = self.b3(x2)
        res = self.reduction1(channel_shuffle(torch.cat((x0, x1), dim=1), 2))
        res = self.reduction2(channel_shuffle(torch.cat((res, x2), dim=1), 2))
        res = self.reduction3(channel_shuffle(torch.cat((res, x3), dim=1), 2))
        return self.res_scale(res) + self.x_scale(x)


class MAFFSRN(nn.Module):
    """MAFFSRN (Fig. 2): a weight-normed 3x3 head conv, ``n_ffg`` FFGs, the two-kernel AWMS tail,
    plus the bicubically upsampled input (``F.interpolate``, ``align_corners=False``).

    Args:
        scale: the upscaling factor (2, 3, 4).
        n_ffg: FFGs (MAFFSRN: 4, MAFFSRN-L: 8).
        n_feats: C.
    """

    def __init__(self, scale: int, n_ffg: int = 4, n_feats: int = N_FEATS):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(conv(3, n_feats, 3, wn=True))
        self.body = nn.Sequential(*(FFG(n_feats) for _ in range(n_ffg)))
        self.tail = AWMS(n_feats, scale, kernels=(3, 5), init=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < MIN_LR_SIDE:
            raise CFINError(f"MAFFSRN needs an LR input of at least {MIN_LR_SIDE} x {MIN_LR_SIDE} pixels (its "
                            f"attention pools a 7 x 7 window after a stride-2 conv); got {tuple(x.shape[-2:])}")
        x = to_trained_range(x, TRAINED_RANGE)
        out = self.tail(self.body(self.head(x)))
        out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return from_trained_range(out, TRAINED_RANGE)


def maffsrn(scale: int) -> MAFFSRN:
    """MAFFSRN: 4 FFGs."""
    return MAFFSRN(scale, n_ffg=4)


def maffsrn_l(scale: int) -> MAFFSRN:
    """MAFFSRN-L: 8 FFGs."""
    return MAFFSRN(scale, n_ffg=8)


_PAPER = ("A. Muqeet, J. Hwang, S. Yang, J. H. Kang, Y. Kim, S.-H. Bae, \"Multi-attention Based Ultra "
          "Lightweight Image Super-Resolution\", ECCV Workshops (AIM 2020), 2020")
_SOURCE = Source("AbdulMoqeet/MAFFSRN", "74647b7", ("MAFFSRN/src/model/maffsrn.py", "MAFFSRN/src/template.py",
                                                    "MAFFSRN/src/option.py"))

SPECS = (
    PeerSpec(
        name="maffsrn",
        title="MAFFSRN",
        paper=_PAPER,
        source=_SOURCE,
        scales=(4,),
        builder=maffsrn,
        trained_range=TRAINED_RANGE,
        tables=("IX",),
        printed_counting=(
            "torchsummaryX rule (paper convention): 441,706 / 19.30G at x4 vs printed 441K / 19.3G. The "
            "rule charges the weight-normed convs (head, FFG fusions, tail) once per call; every MAC "
            "(full) is 23.77G."),
        key_map=weight_norm_key,
    ),
    PeerSpec(
        name="maffsrn-l",
        title="MAFFSRN-L",
        paper=_PAPER,
        source=_SOURCE,
        scales=(2, 3, 4),
        builder=maffsrn_l,
        trained_range=TRAINED_RANGE,
        tables=("I",),
        printed_counting=(
            "torchsummaryX rule (paper convention): 790,754 / 154.40G at x2, 807,134 / 68.51G at x3, "
            "830,066 / 38.60G at x4 vs printed 790K / 154.4G, 807K / 68.5G, 830K / 38.6G (full: 168.94G, "
            "76.63G, 44.49G: the rule charges the weight-normed convs once per call)."),
        key_map=weight_norm_key,
    ),
)
