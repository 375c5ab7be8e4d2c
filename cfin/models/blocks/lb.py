"""LB: lattice block of LatticeNet (Luo et al., ECCV 2020)."""
from __future__ import annotations

import torch
from torch import nn

from cfin.models.blocks.common import CombinationCoefficient, check_width
from cfin.models.common import ConvStageBlock, conv

LRELU_SLOPE = 0.05


def lattice_branch(channels: int, mid: int) -> nn.Sequential:
    """A residual branch of the lattice block: three 3x3 convs C -> C-d -> C-d -> C, each + LeakyReLU(0.05)."""
    layers = []
    for cin, cout in ((channels, mid), (mid, mid), (mid, channels)):
        layers += [conv(cin, cout, 3), nn.LeakyReLU(LRELU_SLOPE, inplace=True)]
    return nn.Sequential(*layers)


class LB(ConvStageBlock):
    """Lattice block (LatticeNet): two butterfly structures combining two residual branches.

    With ``H1, H2`` the residual branches and ``A, B`` combination coefficients from
    channel attention on the channel means and standard deviations (averaged):

    - butterfly 1: ``h1 = H1(x)``; ``P1 = x + A1(h1) * h1``; ``Q1 = h1 + B1(x) * x``
    - butterfly 2: ``h2 = H2(P1)``; ``P2 = h2 + A2(Q1) * Q1``; ``Q2 = Q1 + B2(h2) * h2``
    - out ``= conv1x1(concat(P2, Q2))`` (2C -> C).

    Widths as LatticeNet (d = C/4: at C = 64 the branches run 64 -> 48 -> 48 -> 64;
    coefficient reduction 16). Simplification: LatticeNet's backward feature fusion (BFM)
    fuses the outputs of all its LBs at the network level, so it is not part of a
    swap-in block; the coefficients use the population standard deviation (an unbiased
    one is undefined on a 1x1 map).

    Args:
        n_feats: width C.
        diff_ratio: d / C, the width the branches' middle convs drop (0.25).
        reduction: combination-coefficient reduction (16).
    """

    def __init__(self, n_feats: int, *, diff_ratio: float = 0.25, reduction: int = 16):
        super().__init__()
        check_width("LB", n_feats)
        mid = max(1, n_feats - int(n_feats * diff_ratio))
        self.branch1 = lattice_branch(n_feats, mid)
        self.a1 = CombinationCoefficient(n_feats, reduction)
        self.b1 = CombinationCoefficient(n_feats, reduction)
        self.branch2 = lattice_branch(n_feats, mid)
        self.a2 = CombinationCoefficient(n_feats, reduction)
        self.b2 = CombinationCoefficient(n_feats, reduction)
        self.compress = conv(2 * n_feats, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.branch1(x)
        p1 = x + self.a1(h1) * h1
        q1 = h1 + self.b1(x) * x
        h2 = self.branch2(p1)
        p2 = h2 + self.a2(q1) * q1
        q2 = q1 + self.b2(h2) * h2
        return self.compress(torch.cat((p2, q2), dim=1))
