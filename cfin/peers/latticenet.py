"""LatticeNet (Table I, "LatticeNet+", x2 / x3 / x4).

Paper: X. Luo, Y. Xie, Y. Zhang, Y. Qu, C. Li, Y. Fu, "LatticeNet: Towards Lightweight Image
Super-resolution with Lattice Block", ECCV 2020.

Shapes and key names: ymff0592/super-resolution @ 7bb1ce0, ``model/latticenet.py`` (with
``model/common.py``'s MeanShift, ``option.py``, ``TestRCAN_scripts.sh``: ``--n_feats 64``,
``rgb_range`` 255), "A PyTorch implementation of LatticeNet" built on RCAN's code. Its README
does not say who wrote it; a BasicSR port of LatticeNet cites it as the official code, and the
x2 / x3 / x4 checkpoints it ships (``premodel/LatticeNet_x{2,3,4}.pt``) load strictly into this
network and score the paper's Set5 PSNR (tests/test_peer_weights_latticenet.py). Table I's "+"
is the x8 self-ensemble of the same network (:func:`cfin.evaluate.self_ensemble`).

Input: RGB in [0, 255] (EDSR-style mean shifts inside; the released checkpoints carry trained,
no longer identity, mean-shift weights: the public MeanShift sets ``requires_grad`` on the
module, not on its parameters). The network differs from Table V's LB block
(cfin/models/blocks/lb.py: population std, its own key names, no BFM) and does not reuse it.
"""
from __future__ import annotations

import torch
from torch import nn

from cfin.peers.common import MeanShift
from cfin.peers.registry import PeerSpec, Source

N_FEATS = 64   # C
N_DIFF = 16    # d: the branches' middle convs run at C - d
N_BLOCKS = 4   # lattice blocks (the BFM is written for four)
REDUCTION = 16
LRELU_SLOPE = 0.05


def _se_branch(channels: int, reduction: int) -> nn.Sequential:
    """1x1 conv C -> C/r, ReLU, 1x1 conv C/r -> C, sigmoid (keys ``0``, ``2``)."""
    return nn.Sequential(
        nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
        nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
    )


class CombinationCoefficient(nn.Module):
    """The combination coefficients of Sec. 3.2 (Fig. 3): the average of two attention vectors,
    one from the channel means, one from the channel standard deviations.

    The standard deviation is ``torch.std`` over the H x W pixels (unbiased), as in the public
    code. Public class: ``CC``.

    Args:
        channels: C.
        reduction: the MLPs' reduction ratio.
    """

    def __init__(self, channels: int, reduction: int = REDUCTION):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_mean = _se_branch(channels, reduction)
        self.conv_std = _se_branch(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        std = torch.std(x.reshape(b, c, -1), dim=2).view(b, c, 1, 1)
        return (self.conv_mean(self.avg_pool(x)) + self.conv_std(std)) / 2


def _residual_branch(n_feats: int, n_diff: int) -> nn.Sequential:
    """The residual branch H of eq. (2): three 3x3 convs C -> C-d -> C-d -> C, each + LeakyReLU(0.05)."""
    mid = n_feats - n_diff
    layers = []
    for cin, cout in ((n_feats, mid), (mid, mid), (mid, n_feats)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(LRELU_SLOPE)]
    return nn.Sequential(*layers)


class LatticeBlock(nn.Module):
    """The lattice block (Sec. 3.2, Fig. 2(d), eq. (5)-(8)): two butterfly structures.

    ``h1 = H1(x)``; ``P1 = x + A1(h1) h1``; ``Q1 = h1 + B1(x) x``; ``h2 = H2(P1)``;
    ``P2 = h2 + A2(Q1) Q1``; ``Q2 = Q1 + B2(h2) h2``; out ``= conv1x1([P2, Q2])``.
    Keys: ``conv_block0/1`` (H1, H2), ``fea_ca1``/``x_ca1`` (A1, B1), ``fea_ca2``/``x_ca2``
    (A2, B2), ``compress``.

    Args:
        n_feats: C.
        n_diff: d, the channels the middle convs of each branch drop.
    """

    def __init__(self, n_feats: int = N_FEATS, n_diff: int = N_DIFF):
        super().__init__()
        self.conv_block0 = _residual_branch(n_feats, n_diff)
        self.fea_ca1 = CombinationCoefficient(n_feats)
        self.x_ca1 = CombinationCoefficient(n_feats)
        self.conv_block1 = _residual_branch(n_feats, n_diff)
        self.fea_ca2 = CombinationCoefficient(n_feats)
        self.x_ca2 = CombinationCoefficient(n_feats)
        self.compress = nn.Conv2d(2 * n_feats, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.conv_block0(x)
        p1 = x + self.fea_ca1(h1) * h1
        q1 = h1 + self.x_ca1(x) * x
        h2 = self.conv_block1(p1)
        p2 = h2 + self.fea_ca2(q1) * q1
        q2 = q1 + self.x_ca2(h2) * h2
        return self.compress(torch.cat((p2, q2), dim=1))


def _tdm(n_feats: int) -> nn.Sequential:
    """One 1x1 conv C -> C/2 + ReLU of the backward fusion module (key ``0``)."""
    return nn.Sequential(nn.Conv2d(n_feats, n_feats // 2, 1), nn.ReLU())


class LatticeNet(nn.Module):
    """LatticeNet (Fig. 4): two 3x3 head convs, four lattice blocks, the backward feature fusion
    module (BFM, Sec. 3.3: the last block's features fused with each earlier block's, from the
    back, by pairs of 1x1 convs ``T_tdm*`` / ``L_tdm*`` and concatenation), a global skip from
    the head, and a 3x3 conv, a 3x3 conv to 3 s^2 channels and a pixel shuffle.

    Args:
        scale: the upscaling factor (2, 3, 4).
        n_feats: C (64).
    """

    def __init__(self, scale: int, n_feats: int = N_FEATS):
        super().__init__()
        self.sub_mean = MeanShift(255.0, sign=-1)
        self.conv1 = nn.Conv2d(3, n_feats, 3, padding=1)
        self.conv2 = nn.Conv2d(n_feats, n_feats, 3, padding=1)
        for i in range(1, N_BLOCKS + 1):
            setattr(self, f"body_unit{i}", LatticeBlock(n_feats))
        for i in range(1, N_BLOCKS):
            setattr(self, f"T_tdm{i}", _tdm(n_feats))
            setattr(self, f"L_tdm{i}", _tdm(n_feats))
        self.tail = nn.Sequential(
            nn.Conv2d(n_feats, n_feats, 3, padding=1),
            nn.Conv2d(n_feats, 3 * scale ** 2, 3, padding=1),
            nn.PixelShuffle(scale),
        )
        self.add_mean = MeanShift(255.0, sign=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(self.sub_mean(x)))
        feats = [x]
        for i in range(1, N_BLOCKS + 1):
            feats.append(getattr(self, f"body_unit{i}")(feats[-1]))
        fused = feats[N_BLOCKS]
        for i in range(1, N_BLOCKS):  # from the back: (res4, res3), then (fused, res2), (fused, res1)
            fused = torch.cat((getattr(self, f"T_tdm{i}")(fused), getattr(self, f"L_tdm{i}")(feats[N_BLOCKS - i])), 1)
        return self.add_mean(self.tail(fused + x))


SPECS = (
    PeerSpec(
        name="latticenet",
        title="LatticeNet+",
        paper="X. Luo, Y. Xie, Y. Zhang, Y. Qu, C. Li, Y. Fu, \"LatticeNet: Towards Lightweight Image "
              "Super-resolution with Lattice Block\", ECCV 2020",
        source=Source("ymff0592/super-resolution", "7bb1ce0", ("model/latticenet.py", "model/common.py")),
        scales=(2, 3, 4),
        builder=LatticeNet,
        trained_range=255.0,
        tables=("I",),
        printed_counting=(
            "torchsummaryX rule (paper convention; full differs by 0.02%): 756,196 / 169.50G at x2, 764,851 / "
            "76.10G at x3, 776,968 / 43.57G at x4 vs printed 756K / 165.5G, 765K / 76.3G, 777K / 43.6G. Params "
            "exact. x2: LatticeNet's 169.5G as SwinIR's Table 3 quotes it; CFIN's 165.5G reads as a misprint "
            "of it. x3: 76.28G at a 240 x 427 LR (1280 / 3 rounded up, MATLAB imresize's size), 76.10G "
            "(-0.26%) at the suite's 240 x 426."),
        weights={s: f"LatticeNet_x{s}.pt" for s in (2, 3, 4)},
        notes="Table I's '+' is the x8 self-ensemble of this network. The checkpoints are those of the "
              "public repository (premodel/); they are not in shared/reference/peers.",
    ),
)
